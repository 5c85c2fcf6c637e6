package catalog_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// citusStore creates the store schema of internal/testschema, seeded, on a
// fresh Citus database, installs the library, and applies the Citus
// migration that catalog.Plan writes (Generate for the resolved model
// before), as the tables' owner (not a superuser) and in one Exec, as tern
// runs a migration.
func citusStore(t *testing.T, key rls.KeyType) (*pgtenancytest.CitusDB, *policy.Model, *policy.Migration) {
	t.Helper()
	db := pgtenancytest.NewCitusDB(t)
	ctx := t.Context()
	owner := db.OwnerConn(t)
	_, err := owner.Exec(ctx, testschema.DDL(key)+testschema.Seed(key))
	require.NoError(t, err)
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
	m := testschema.Model(key, pgtenancytest.AppRole)
	m.Citus = true
	mig := mustPlan(t, owner, m)
	execInTx(t, owner, mig.Up)
	return db, m, mig
}

func execInTx(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(t.Context(), conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), sql)
		return err
	}))
}

// citusTenant runs fn in a transaction of conn with the tenant set as the
// pool's Citus option sets it, and rolls it back.
func citusTenant(t *testing.T, conn *pgx.Conn, tenant rls.Tenant, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := t.Context()
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.WithoutCancel(ctx))
	_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant($1) FROM pg_catalog.set_config('citus.propagate_set_commands', 'local', true)", tenant.String())
	require.NoError(t, err)
	fn(tx)
}

func citusCount(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, q.QueryRow(t.Context(), sql, args...).Scan(&n), sql)
	return n
}

// execSavepoint runs sql in a savepoint of tx, so that a failure leaves tx
// usable.
func execSavepoint(t *testing.T, tx pgx.Tx, sql string, args ...any) (pgconn.CommandTag, error) {
	t.Helper()
	ctx := t.Context()
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

// CitusIsolation checks the whole isolation proof list on a Citus database
// holding the seeded store schema, as the application role. It is shared
// with the tests of shard moves and tenant isolation.
func checkCitusIsolation(t *testing.T, db *pgtenancytest.CitusDB, key rls.KeyType) {
	t.Helper()
	app := db.AppConn(t)
	ctx := t.Context()
	a, b, c := testschema.Tenants(key)[0], testschema.Tenants(key)[1], testschema.Tenants(key)[2]
	var super, bypass bool
	require.NoError(t, app.QueryRow(ctx, "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Scan(&super, &bypass))
	require.False(t, super || bypass, "the app role must be subject to RLS")

	t.Run("reads", func(t *testing.T) {
		citusTenant(t, app, a, func(tx pgx.Tx) {
			assert.EqualValues(t, 1, citusCount(t, tx, "SELECT count(*) FROM stores"))
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM products"))
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM products WHERE store_id = $1", a.String()), "router query")
			assert.EqualValues(t, 0, citusCount(t, tx, "SELECT count(*) FROM products WHERE store_id = $1", b.String()), "router query to B's shard")
			assert.EqualValues(t, 0, citusCount(t, tx, "SELECT count(*) FROM products WHERE store_id <> $1", a.String()))
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM purchases pu JOIN products p ON p.store_id = pu.store_id AND p.id = pu.product_id"))
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM products p JOIN stores s ON s.id = p.store_id JOIN currencies c ON c.code = p.currency"))
			assert.EqualValues(t, 0, citusCount(t, tx, "SELECT count(*) FROM products WHERE id IN (201, 202, 301)"))
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM products p WHERE id IN (SELECT product_id FROM purchases WHERE store_id = p.store_id)"))
			assert.EqualValues(t, 600, citusCount(t, tx, "SELECT sum(price_cents) FROM products"))
			assert.EqualValues(t, 6, citusCount(t, tx, "SELECT sum(quantity) FROM purchases"))
			assert.EqualValues(t, 1, citusCount(t, tx, "SELECT count(DISTINCT store_id) FROM purchases"))
			assert.EqualValues(t, 2, citusCount(t, tx, "SELECT count(*) FROM currencies"), "reference tables stay readable")
		})
		citusTenant(t, app, b, func(tx pgx.Tx) {
			assert.EqualValues(t, 2, citusCount(t, tx, "SELECT count(*) FROM products"))
			assert.EqualValues(t, 3000, citusCount(t, tx, "SELECT sum(price_cents) FROM products"))
			assert.EqualValues(t, 9, citusCount(t, tx, "SELECT sum(quantity) FROM purchases"))
		})
	})

	t.Run("writes", func(t *testing.T) {
		citusTenant(t, app, a, func(tx pgx.Tx) {
			_, err := execSavepoint(t, tx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", a.String())
			assert.NoError(t, err, "insert for own tenant")
			var store string
			_, err = execSavepoint(t, tx, "INSERT INTO products (name, price_cents, currency) VALUES ('y', 1, 'EUR')")
			assert.NoError(t, err, "insert without the tenant: the column's default, set before distribution")
			require.NoError(t, tx.QueryRow(ctx, "SELECT store_id::text FROM products WHERE name = 'y'").Scan(&store))
			assert.Equal(t, a.String(), store)
			_, err = execSavepoint(t, tx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", b.String())
			assert.Equal(t, "42501", sqlState(err), "insert for another tenant: %v", err)

			tag, err := execSavepoint(t, tx, "UPDATE products SET price_cents = 0 WHERE store_id = $1", b.String())
			require.NoError(t, err)
			assert.EqualValues(t, 0, tag.RowsAffected(), "update of another tenant's rows")
			tag, err = execSavepoint(t, tx, "UPDATE products SET price_cents = 0 WHERE id = 201")
			require.NoError(t, err)
			assert.EqualValues(t, 0, tag.RowsAffected())
			tag, err = execSavepoint(t, tx, "DELETE FROM purchases WHERE store_id = $1", b.String())
			require.NoError(t, err)
			assert.EqualValues(t, 0, tag.RowsAffected(), "delete of another tenant's rows")

			_, err = execSavepoint(t, tx, "UPDATE products SET store_id = $1 WHERE id = 101", b.String())
			assert.Error(t, err, "moving a row to another tenant")
			_, err = execSavepoint(t, tx, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", a.String())
			assert.Equal(t, "23503", sqlState(err), "purchase of A pointing at B's product: %v", err)

			tag, err = execSavepoint(t, tx, "DELETE FROM products WHERE name = 'y'")
			require.NoError(t, err)
			assert.EqualValues(t, 1, tag.RowsAffected())
			tag, err = execSavepoint(t, tx, "DELETE FROM purchases")
			require.NoError(t, err)
			assert.EqualValues(t, 3, tag.RowsAffected(), "an unfiltered (multi-shard) delete touches only the tenant's rows")
		})
		citusTenant(t, app, b, func(tx pgx.Tx) {
			assert.EqualValues(t, 3000, citusCount(t, tx, "SELECT sum(price_cents) FROM products"))
			assert.EqualValues(t, 2, citusCount(t, tx, "SELECT count(*) FROM purchases"))
		})
	})

	t.Run("moving a row to another tenant", func(t *testing.T) {
		// Citus refuses to change the distribution column; the policy's
		// WITH CHECK refuses it on plain PostgreSQL. Either way the row stays.
		citusTenant(t, app, a, func(tx pgx.Tx) {
			_, err := execSavepoint(t, tx, "UPDATE purchases SET store_id = $1 WHERE id = 1001", b.String())
			require.Error(t, err)
			assert.EqualValues(t, 3, citusCount(t, tx, "SELECT count(*) FROM purchases"))
		})
	})

	t.Run("composite foreign key holds with RLS bypassed", func(t *testing.T) {
		admin := db.AdminConn(t)
		assert.EqualValues(t, 6, citusCount(t, admin, "SELECT count(*) FROM products"), "the admin connection really bypasses RLS")
		_, err := admin.Exec(ctx, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", a.String())
		assert.Equal(t, "23503", sqlState(err), "%v", err)
		_, err = admin.Exec(ctx, "UPDATE purchases SET product_id = 301 WHERE id = 1001")
		assert.Equal(t, "23503", sqlState(err), "%v", err)
	})

	t.Run("no tenant", func(t *testing.T) {
		assert.EqualValues(t, 0, citusCount(t, app, "SELECT count(*) FROM products"))
		assert.EqualValues(t, 0, citusCount(t, app, "SELECT count(*) FROM stores"))
		_, err := app.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", c.String())
		assert.Equal(t, "42501", sqlState(err), "%v", err)
		tag, err := app.Exec(ctx, "DELETE FROM products")
		require.NoError(t, err)
		assert.EqualValues(t, 0, tag.RowsAffected())
		// After a transaction that set the tenant, the worker connections
		// hold '' for the setting: still no rows, and no cast error.
		citusTenant(t, app, c, func(tx pgx.Tx) {
			assert.EqualValues(t, 1, citusCount(t, tx, "SELECT count(*) FROM products"))
		})
		assert.EqualValues(t, 0, citusCount(t, app, "SELECT count(*) FROM products"))
		assert.EqualValues(t, 0, citusCount(t, app, "SELECT count(*) FROM products WHERE store_id = $1", c.String()))
	})

	t.Run("naive ways fail closed", func(t *testing.T) {
		for name, set := range map[string]string{
			"set_config local without propagation": "SELECT set_config('app.current_tenant', $1, true)",
			"set_config local with propagation":    "SELECT set_config('app.current_tenant', $1, true) FROM set_config('citus.propagate_set_commands', 'local', true)",
			"set_tenant without propagation":       "SELECT pgtenancy.set_tenant($1) FROM set_config('citus.propagate_set_commands', 'none', true)",
			"session set_config with propagation":  "SELECT set_config('app.current_tenant', $1, false) FROM set_config('citus.propagate_set_commands', 'local', false)",
		} {
			conn := db.AppConn(t)
			tx, err := conn.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.Exec(ctx, set, a.String())
			require.NoError(t, err, name)
			assert.EqualValues(t, 0, citusCount(t, tx, "SELECT count(*) FROM products"), name)
			assert.EqualValues(t, 0, citusCount(t, tx, "SELECT count(*) FROM products WHERE store_id = $1", a.String()), name)
			_, err = execSavepoint(t, tx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", a.String())
			assert.Equal(t, "42501", sqlState(err), "%s: %v", name, err)
			require.NoError(t, tx.Rollback(ctx))
		}
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
}

func TestCitusGenerateIsolation(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	for _, key := range keyTypes {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db, _, _ := citusStore(t, key)
			checkCitusIsolation(t, db, key)
		})
	}
}

// TestCitusDownAndPlan applies the Citus migration, checks that Plan then
// has nothing to do, that Down brings the catalog and the rows back as
// they were, and that Up applies again.
func TestCitusDownAndPlan(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	key := rls.BigInt
	db := pgtenancytest.NewCitusDB(t)
	ctx := t.Context()
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	// Citus cannot undistribute a table with an identity column: serials.
	ddl := strings.ReplaceAll(testschema.DDL(key), "bigint GENERATED BY DEFAULT AS IDENTITY", "bigserial")
	_, err := owner.Exec(ctx, ddl+testschema.Seed(key))
	require.NoError(t, err)
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
	m := testschema.Model(key, pgtenancytest.AppRole)
	m.Citus = true
	mig := generateResolved(t, owner, m)
	plan, err := catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	assert.Equal(t, mig, plan, "on a database without any of it, the plan is Generate's SQL")

	before := snapshot(t, admin)
	execInTx(t, owner, mig.Up)
	applied := snapshot(t, admin)
	assert.EqualValues(t, 4, citusCount(t, admin, "SELECT count(*) FROM pg_dist_partition"))
	assert.EqualValues(t, 1, citusCount(t, admin, `SELECT count(DISTINCT colocationid) FROM pg_dist_partition
		WHERE logicalrelid IN ('stores'::regclass, 'products'::regclass, 'purchases'::regclass)`))
	assert.EqualValues(t, 0, citusCount(t, admin, "SELECT pg_relation_size('products')"), "no rows left in the coordinator's shell table")

	plan, err = catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	assert.Empty(t, plan.Up, "nothing left to do after Up")

	execInTx(t, owner, mig.Down)
	assert.Equal(t, before, snapshot(t, admin), "Down restores the catalog")
	assert.EqualValues(t, 0, citusCount(t, admin, "SELECT count(*) FROM pg_dist_partition"))
	assert.EqualValues(t, 6, citusCount(t, admin, "SELECT count(*) FROM products"), "the rows are back on the coordinator")
	assert.EqualValues(t, 6, citusCount(t, owner, "SELECT count(*) FROM purchases"))

	execInTx(t, owner, mig.Up)
	assert.Equal(t, withoutShardIDs(applied), withoutShardIDs(snapshot(t, admin)), "Up applies again after Down")
	checkCitusIsolation(t, db, key)
}

// withoutShardIDs replaces the shard ids in the names of the reference
// table's shard on the coordinator, which change at each distribution.
func withoutShardIDs(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = shardID.ReplaceAllString(l, "_<shard>")
	}
	return out
}

var shardID = regexp.MustCompile(`_[0-9]{6,}\b`)

// TestCitusFromPlainRLS moves a database that already has pgtenancy's
// isolation (FORCE ROW LEVEL SECURITY on tables with rows, composite keys)
// to Citus with Plan, as the tables' owner, which is not a superuser.
func TestCitusFromPlainRLS(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	key := rls.UUID
	db := pgtenancytest.NewCitusDB(t)
	ctx := t.Context()
	owner := db.OwnerConn(t)
	_, err := owner.Exec(ctx, testschema.DDL(key)+testschema.Seed(key))
	require.NoError(t, err)
	require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
	plain, err := policy.Generate(testschema.Model(key, pgtenancytest.AppRole))
	require.NoError(t, err)
	execInTx(t, owner, plain.Up)

	m := testschema.Model(key, pgtenancytest.AppRole)
	m.Citus = true
	plan, err := catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	// The policies of plain PostgreSQL read the setting in a subquery,
	// which Citus cannot distribute: dropped first, created again in the
	// Citus form after distribution.
	drop := strings.Index(plan.Up, "DROP POLICY")
	distribute := strings.Index(plan.Up, "create_distributed_table")
	create := strings.Index(plan.Up, "CREATE POLICY")
	require.True(t, drop >= 0 && distribute > drop && create > distribute, "drop %d, distribute %d, create %d:\n%s", drop, distribute, create, plan.Up)
	assert.Equal(t, 6, strings.Count(plan.Up, "DROP POLICY"))
	assert.Equal(t, 6, strings.Count(plan.Up, "CREATE POLICY"))
	execInTx(t, owner, plan.Up)
	checkCitusIsolation(t, db, key)
	// Now nothing is left to do.
	again, err := catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	assert.Empty(t, again.Up)

	// The composite key came back after distribution.
	var fks []string
	rows, err := owner.Query(ctx, "SELECT conname::text FROM pg_constraint WHERE conrelid = 'purchases'::regclass AND contype = 'f' ORDER BY 1")
	require.NoError(t, err)
	fks, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"purchases_store_id_fkey", "purchases_store_id_product_id_pgtenancy_fkey"}, fks)

	plan, err = catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	assert.Empty(t, plan.Up)
}

// TestCitusDownIdentity: Citus cannot undistribute a table with an identity
// column, so Down fails there, and leaves everything as it was.
func TestCitusDownIdentity(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db, _, mig := citusStore(t, rls.Text)
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	before := snapshot(t, admin)
	err := pgx.BeginFunc(t.Context(), owner, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), mig.Down)
		return err
	})
	assert.Equal(t, "0A000", sqlState(err), "%v", err)
	assert.ErrorContains(t, err, "identity column")
	assert.Equal(t, before, snapshot(t, admin))
	checkCitusIsolation(t, db, rls.Text)
}
