package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

var keyTypes = []rls.KeyType{rls.BigInt, rls.UUID, rls.Text}

// storeTemplates hold, per key type, the store schema seeded with stores A, B
// and C, the library objects installed, and the generated tenant isolation
// applied through tern, as a user would.
var storeTemplates = map[rls.KeyType]*pgtenancytest.Template{}

func init() {
	for _, key := range keyTypes {
		storeTemplates[key] = &pgtenancytest.Template{
			Name: "store_" + key.String(),
			Setup: func(ctx context.Context, conn *pgx.Conn) error {
				return setupStore(ctx, conn, key)
			},
		}
	}
}

func setupStore(ctx context.Context, conn *pgx.Conn, key rls.KeyType) error {
	if _, err := conn.Exec(ctx, testschema.DDL(key)+testschema.Seed(key)); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
		return err
	}
	gen, err := policy.Generate(testschema.Model(key, pgtenancytest.AppRole))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "pgtenancy-migrations-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := migrations.WriteTernFile(dir, "tenant_isolation", gen); err != nil {
		return err
	}
	return ternMigrate(ctx, conn, dir, -1)
}

// ternMigrate applies the tern migrations in dir up to version (-1: newest).
func ternMigrate(ctx context.Context, conn *pgx.Conn, dir string, version int32) error {
	m, err := migrate.NewMigrator(ctx, conn, "public.schema_version")
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(os.DirFS(dir)); err != nil {
		return err
	}
	if version < 0 {
		return m.Migrate(ctx)
	}
	return m.MigrateTo(ctx, version)
}

// inTenant runs fn in a transaction of conn with the tenant set through the
// library's function, and rolls it back.
func inTenant(t *testing.T, conn *pgx.Conn, tenant rls.Tenant, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant($1)", tenant.String())
	require.NoError(t, err)
	fn(tx)
}

func queryInt(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, q.QueryRow(context.Background(), sql, args...).Scan(&n), sql)
	return n
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// execIn runs sql inside a savepoint so a failure does not abort tx, and
// returns the error.
func execIn(t *testing.T, tx pgx.Tx, sql string, args ...any) (pgconn.CommandTag, error) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	require.NoError(t, err)
	tag, err := sp.Exec(ctx, sql, args...)
	if err != nil {
		require.NoError(t, sp.Rollback(ctx))
		return tag, err
	}
	require.NoError(t, sp.Commit(ctx))
	return tag, nil
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, key := range keyTypes {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplates[key])
			app := db.AppConn(t)
			a, b, c := testschema.Tenants(key)[0], testschema.Tenants(key)[1], testschema.Tenants(key)[2]
			ctx := context.Background()

			t.Run("reads", func(t *testing.T) {
				inTenant(t, app, a, func(tx pgx.Tx) {
					assert.EqualValues(t, 1, queryInt(t, tx, "SELECT count(*) FROM stores"))
					assert.EqualValues(t, 3, queryInt(t, tx, "SELECT count(*) FROM products"))
					assert.EqualValues(t, 0, queryInt(t, tx, "SELECT count(*) FROM products WHERE store_id <> $1", a.String()))
					assert.EqualValues(t, 3, queryInt(t, tx, "SELECT count(*) FROM purchases pu JOIN products p ON p.id = pu.product_id"))
					assert.EqualValues(t, 3, queryInt(t, tx, "SELECT count(*) FROM products p JOIN stores s ON s.id = p.store_id JOIN currencies c ON c.code = p.currency"))
					assert.EqualValues(t, 0, queryInt(t, tx, "SELECT count(*) FROM products WHERE id IN (201, 202, 301)"))
					assert.EqualValues(t, 3, queryInt(t, tx, "SELECT count(*) FROM products WHERE id IN (SELECT product_id FROM purchases)"))
					assert.EqualValues(t, 600, queryInt(t, tx, "SELECT sum(price_cents) FROM products"))
					assert.EqualValues(t, 6, queryInt(t, tx, "SELECT sum(quantity) FROM purchases"))
					assert.EqualValues(t, 1, queryInt(t, tx, "SELECT count(DISTINCT store_id) FROM purchases"))
					assert.EqualValues(t, 2, queryInt(t, tx, "SELECT count(*) FROM currencies"), "global tables stay readable")
				})
				inTenant(t, app, b, func(tx pgx.Tx) {
					assert.EqualValues(t, 2, queryInt(t, tx, "SELECT count(*) FROM products"))
					assert.EqualValues(t, 3000, queryInt(t, tx, "SELECT sum(price_cents) FROM products"))
					assert.EqualValues(t, 9, queryInt(t, tx, "SELECT sum(quantity) FROM purchases"))
				})
			})

			t.Run("writes", func(t *testing.T) {
				inTenant(t, app, a, func(tx pgx.Tx) {
					_, err := execIn(t, tx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", a.String())
					assert.NoError(t, err, "insert for own tenant")

					_, err = execIn(t, tx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", b.String())
					assert.Equal(t, "42501", sqlState(err), "insert for another tenant: %v", err)

					tag, err := execIn(t, tx, "UPDATE products SET price_cents = 0 WHERE store_id = $1", b.String())
					require.NoError(t, err)
					assert.EqualValues(t, 0, tag.RowsAffected(), "update of another tenant's rows")
					tag, err = execIn(t, tx, "UPDATE products SET price_cents = 0 WHERE id = 201")
					require.NoError(t, err)
					assert.EqualValues(t, 0, tag.RowsAffected())

					tag, err = execIn(t, tx, "DELETE FROM purchases WHERE store_id = $1", b.String())
					require.NoError(t, err)
					assert.EqualValues(t, 0, tag.RowsAffected(), "delete of another tenant's rows")
					tag, err = execIn(t, tx, "DELETE FROM purchases")
					require.NoError(t, err)
					assert.EqualValues(t, 3, tag.RowsAffected(), "an unfiltered delete touches only the tenant's rows")

					_, err = execIn(t, tx, "UPDATE products SET store_id = $1 WHERE id = 101", b.String())
					assert.Equal(t, "42501", sqlState(err), "moving a row to another tenant: %v", err)

					_, err = execIn(t, tx, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", a.String())
					assert.Equal(t, "23503", sqlState(err), "purchase of A pointing at B's product: %v", err)
				})
				// B's rows are all still there.
				inTenant(t, app, b, func(tx pgx.Tx) {
					assert.EqualValues(t, 3000, queryInt(t, tx, "SELECT sum(price_cents) FROM products"))
					assert.EqualValues(t, 2, queryInt(t, tx, "SELECT count(*) FROM purchases"))
				})
			})

			t.Run("composite foreign key holds with RLS bypassed", func(t *testing.T) {
				admin := db.AdminConn(t) // superuser: RLS does not apply
				assert.EqualValues(t, 6, queryInt(t, admin, "SELECT count(*) FROM products"), "the admin connection really bypasses RLS")
				_, err := admin.Exec(ctx, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", a.String())
				assert.Equal(t, "23503", sqlState(err), "%v", err)
				_, err = admin.Exec(ctx, "UPDATE purchases SET product_id = 301 WHERE id = 1001")
				assert.Equal(t, "23503", sqlState(err), "%v", err)
			})

			t.Run("no tenant", func(t *testing.T) {
				assert.EqualValues(t, 0, queryInt(t, app, "SELECT count(*) FROM products"))
				assert.EqualValues(t, 0, queryInt(t, app, "SELECT count(*) FROM stores"))
				_, err := app.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", c.String())
				assert.Equal(t, "42501", sqlState(err), "%v", err)
				tag, err := app.Exec(ctx, "DELETE FROM products")
				require.NoError(t, err)
				assert.EqualValues(t, 0, tag.RowsAffected())

				// After a transaction that set the tenant, the setting reads '' in this session.
				inTenant(t, app, c, func(tx pgx.Tx) {
					assert.EqualValues(t, 1, queryInt(t, tx, "SELECT count(*) FROM products"))
				})
				var setting string
				require.NoError(t, app.QueryRow(ctx, "SELECT coalesce(current_setting('app.current_tenant', true), '<null>')").Scan(&setting))
				assert.Equal(t, "", setting)
				assert.EqualValues(t, 0, queryInt(t, app, "SELECT count(*) FROM products"), "'' must mean no tenant, without a cast error")
				_, err = app.Exec(ctx, "SELECT pgtenancy.set_tenant('')")
				assert.Equal(t, "22023", sqlState(err), "empty tenant refused: %v", err)
			})

			t.Run("truncate and references denied", func(t *testing.T) {
				_, err := app.Exec(ctx, "TRUNCATE products CASCADE")
				assert.Equal(t, "42501", sqlState(err), "%v", err)
				for _, table := range []string{"stores", "products", "purchases"} {
					for priv, want := range map[string]bool{"SELECT": true, "INSERT": true, "UPDATE": true, "DELETE": true, "TRUNCATE": false, "REFERENCES": false, "TRIGGER": false} {
						var has bool
						require.NoError(t, app.QueryRow(ctx, "SELECT has_table_privilege(current_user, $1, $2)", table, priv).Scan(&has))
						assert.Equal(t, want, has, "%s on %s", priv, table)
					}
				}
			})
		})
	}
}

// TestMigrateDownAndUp checks that the generated tern migration reverses
// cleanly and applies again.
func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	key := rls.BigInt
	db := pgtenancytest.NewDB(t, storeTemplates[key])
	owner := db.OwnerConn(t)
	ctx := context.Background()
	dir := t.TempDir()
	gen, err := policy.Generate(testschema.Model(key, pgtenancytest.AppRole))
	require.NoError(t, err)
	_, err = migrations.WriteTernFile(dir, "tenant_isolation", gen)
	require.NoError(t, err)

	require.NoError(t, ternMigrate(ctx, owner, dir, 0))
	var policies, forced int64
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_policy").Scan(&policies))
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_class WHERE relforcerowsecurity OR relrowsecurity").Scan(&forced))
	assert.Zero(t, policies)
	assert.Zero(t, forced)
	assert.EqualValues(t, 6, queryInt(t, owner, "SELECT count(*) FROM products"), "down removed FORCE: the owner sees every row")
	_, err = db.AppConn(t).Exec(ctx, "SELECT 1 FROM products")
	assert.Equal(t, "42501", sqlState(err), "down revoked the grants up made: %v", err)

	require.NoError(t, ternMigrate(ctx, owner, dir, -1))
	assert.EqualValues(t, 0, queryInt(t, db.AppConn(t), "SELECT count(*) FROM products"))
}

func TestInstallIsIdempotent(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	owner := db.OwnerConn(t)
	ctx := context.Background()
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
	steps, err := policy.Library("")
	require.NoError(t, err)
	var v int32
	require.NoError(t, owner.QueryRow(ctx, "SELECT version FROM pgtenancy.schema_version").Scan(&v))
	assert.EqualValues(t, len(steps), v)

	// The app role can call the function, and it sets the setting for the transaction only.
	app := db.AppConn(t)
	tx, err := app.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant($1)", "it's")
	require.NoError(t, err)
	var got string
	require.NoError(t, tx.QueryRow(ctx, "SELECT current_setting('app.current_tenant')").Scan(&got))
	assert.Equal(t, "it's", got)
	// And the companion, to this transaction's stamp.
	var stamped bool
	require.NoError(t, tx.QueryRow(ctx, "SELECT current_setting('app.current_tenant_xact') = "+rls.XactStamp).Scan(&stamped))
	assert.True(t, stamped)
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, app.QueryRow(ctx, "SELECT current_setting('app.current_tenant')").Scan(&got))
	assert.Equal(t, "", got)
	_, err = app.Exec(ctx, "SELECT pgtenancy.set_tenant(NULL)")
	assert.Equal(t, "22023", sqlState(err))
}

// TestInstalledBody: the body that Install leaves in pg_proc is what
// policy.SetTenantBody says, which verify compares it with, for the default
// setting and a custom one.
func TestInstalledBody(t *testing.T) {
	t.Parallel()
	for _, setting := range []string{"", "myapp.tenant"} {
		db := pgtenancytest.NewDB(t, nil)
		owner := db.OwnerConn(t)
		require.NoError(t, migrations.Install(t.Context(), owner, migrations.Options{Setting: setting}))
		var src string
		require.NoError(t, owner.QueryRow(t.Context(), "SELECT prosrc FROM pg_proc WHERE oid = 'pgtenancy.set_tenant(text)'::regprocedure").Scan(&src))
		want, err := policy.SetTenantBody(setting)
		require.NoError(t, err)
		assert.Equal(t, want, src, "setting %q", setting)
	}
}

func TestInstallCustomSetting(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	owner := db.OwnerConn(t)
	ctx := context.Background()
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{Setting: "myapp.tenant"}))
	var got string
	tx, err := owner.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant('7')")
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(ctx, "SELECT current_setting('myapp.tenant')").Scan(&got))
	assert.Equal(t, "7", got)

	err = migrations.Install(ctx, owner, migrations.Options{Setting: "bad; drop"})
	assert.Error(t, err)

	// Installed for myapp.tenant: installing for another setting is refused, not skipped.
	err = migrations.Install(ctx, owner, migrations.Options{})
	assert.ErrorIs(t, err, migrations.ErrSettingMismatch)
	assert.ErrorContains(t, err, `sets "myapp.tenant", want "app.current_tenant"`)
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{Setting: "myapp.tenant"}))
}

func TestLibrarySQL(t *testing.T) {
	t.Parallel()
	m, err := policy.LibrarySQL("")
	require.NoError(t, err)
	assert.Contains(t, m.Up, "CREATE SCHEMA IF NOT EXISTS pgtenancy;")
	assert.Contains(t, m.Up, "SET LOCAL app.current_tenant = %L")
	assert.NotContains(t, m.Up, "{{")
	assert.Contains(t, m.Down, "DROP FUNCTION pgtenancy.set_tenant(text);")

	// The printed SQL works on its own: apply, then reverse.
	db := pgtenancytest.NewDB(t, nil)
	owner := db.OwnerConn(t)
	ctx := context.Background()
	_, err = owner.Exec(ctx, m.Up)
	require.NoError(t, err)
	_, err = owner.Exec(ctx, "BEGIN; SELECT pgtenancy.set_tenant('1'); COMMIT")
	require.NoError(t, err)
	_, err = owner.Exec(ctx, m.Down)
	require.NoError(t, err)
	var n int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = 'pgtenancy'").Scan(&n))
	assert.Zero(t, n)
}

func TestWriteTernFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := &policy.Migration{Up: "SELECT '{{ not a template }}';\n", Down: "SELECT 2;\n"}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "001_init.sql"), []byte("SELECT 1;"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "009_other.sql"), []byte("SELECT 1;"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644))

	p, err := migrations.WriteTernFile(dir, "tenant_isolation", m)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "010_tenant_isolation.sql"), p)
	p2, err := migrations.WriteTernFile(dir, "tenant_isolation", m)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "011_tenant_isolation.sql"), p2)

	_, err = migrations.WriteTernFile(dir, "Bad Name", m)
	assert.ErrorIs(t, err, migrations.ErrBadMigrationName)
	_, err = migrations.WriteTernFile(dir, "empty", &policy.Migration{Up: " \n"})
	assert.ErrorIs(t, err, migrations.ErrEmptyMigration)
	_, err = migrations.WriteTernFile(filepath.Join(dir, "missing"), "x", m)
	assert.Error(t, err)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 5, "failed writes leave nothing behind")

	// tern reads the escaped template back to the original SQL.
	tm := &migrate.Migrator{Data: map[string]any{}}
	sub := t.TempDir()
	body, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(sub, "001_x.sql"), body, 0o644))
	require.NoError(t, tm.LoadMigrations(os.DirFS(sub)))
	require.Len(t, tm.Migrations, 1)
	assert.Equal(t, "SELECT '{{ not a template }}';", tm.Migrations[0].UpSQL)
	assert.Equal(t, "SELECT 2;", tm.Migrations[0].DownSQL)
}
