package policy_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

func ddlTemplate(name, ddl string) *pgtenancytest.Template {
	return &pgtenancytest.Template{Name: name, Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, ddl)
		return err
	}}
}

var storeTemplates = map[rls.KeyType]*pgtenancytest.Template{
	rls.BigInt: ddlTemplate("policy_store_bigint", storeDDL(rls.BigInt)),
	rls.UUID:   ddlTemplate("policy_store_uuid", storeDDL(rls.UUID)),
	rls.Text:   ddlTemplate("policy_store_text", storeDDL(rls.Text)),
}

var quotingTemplate = ddlTemplate("policy_quoting", quotingDDL+`GRANT USAGE ON SCHEMA "Sales Data" TO `+pgtenancytest.AppRole+`;`)

var keyTypes = []rls.KeyType{rls.BigInt, rls.UUID, rls.Text}

// snapshotSQL lists, for every user schema, the constraints, policies,
// indexes, and each relation's RLS flags and privileges (with NULL ACLs
// spelled out as their defaults, so that GRANT then REVOKE compares equal to
// never granting).
const snapshotSQL = `
WITH ns AS (
    SELECT oid FROM pg_catalog.pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%'
)
SELECT line FROM (
    SELECT 'constraint ' || k.conrelid::regclass::text || ' ' || k.conname || ': ' || pg_catalog.pg_get_constraintdef(k.oid)
    FROM pg_catalog.pg_constraint k WHERE k.connamespace IN (SELECT oid FROM ns)
    UNION ALL
    SELECT 'policy ' || p.polrelid::regclass::text || ' ' || p.polname || ': ' || p.polpermissive::text || ' ' || p.polcmd::text
        || ' ' || p.polroles::text || ' ' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '-')
        || ' ' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '-')
    FROM pg_catalog.pg_policy p
    UNION ALL
    SELECT 'relation ' || c.oid::regclass::text || ': ' || c.relkind::text
        || ' rls=' || c.relrowsecurity::text || ' force=' || c.relforcerowsecurity::text
        || ' acl=' || coalesce((
            SELECT string_agg(a.grantee::regrole::text || ':' || a.privilege_type, ',' ORDER BY a.grantee::regrole::text, a.privilege_type)
            FROM pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault(
                CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a), '')
    FROM pg_catalog.pg_class c WHERE c.relnamespace IN (SELECT oid FROM ns)
) s(line)
ORDER BY line`

func snapshot(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), snapshotSQL)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	return lines
}

// execTx runs sql in one transaction, as tern runs a migration.
func execTx(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	err := pgx.BeginFunc(t.Context(), conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), sql)
		return err
	})
	require.NoError(t, err)
}

func TestUpDownRoundTrip(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		tmpl  *pgtenancytest.Template
		model *policy.Model
	}
	var cases []tc
	for _, key := range keyTypes {
		cases = append(cases, tc{"store_" + key.String(), storeTemplates[key], storeModel(key, pgtenancytest.AppRole)})
	}
	cases = append(cases, tc{"quoting", quotingTemplate, quotingModel(pgtenancytest.AppRole)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, c.tmpl)
			admin, owner := db.AdminConn(t), db.OwnerConn(t)
			mig, err := policy.Generate(c.model)
			require.NoError(t, err)

			before := snapshot(t, admin)
			execTx(t, owner, mig.Up)
			applied := snapshot(t, admin)
			assert.NotEqual(t, before, applied)
			joined := strings.Join(applied, "\n")
			assert.Contains(t, joined, "rls=true force=true")
			assert.Contains(t, joined, policy.GuardPolicy+": false *")
			assert.Contains(t, joined, policy.IsolationPolicy+": true *")
			assert.Contains(t, joined, "_pgtenancy_fkey: FOREIGN KEY")
			assert.Contains(t, joined, pgtenancytest.AppRole+":DELETE")

			execTx(t, owner, mig.Down)
			assert.Equal(t, before, snapshot(t, admin), "Down restores the catalog")

			// And Up applies again after Down.
			execTx(t, owner, mig.Up)
			assert.Equal(t, applied, snapshot(t, admin))
		})
	}
}

// inTenant runs fn in a transaction of conn with the tenant setting set
// locally (to nothing when id is empty).
func inTenant(t *testing.T, conn *pgx.Conn, setting, id string, fn func(tx pgx.Tx) error) error {
	t.Helper()
	return pgx.BeginFunc(t.Context(), conn, func(tx pgx.Tx) error {
		if id != "" {
			if _, err := tx.Exec(t.Context(), "SELECT set_config($1, $2, true)", setting, id); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}

func count(t *testing.T, tx pgx.Tx, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, tx.QueryRow(t.Context(), sql, args...).Scan(&n))
	return n
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestIsolationAsAppRole(t *testing.T) {
	t.Parallel()
	for _, key := range keyTypes {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplates[key])
			owner, app := db.OwnerConn(t), db.AppConn(t)
			mig, err := policy.Generate(storeModel(key, pgtenancytest.AppRole))
			require.NoError(t, err)
			execTx(t, owner, mig.Up)
			// Another permissive policy must not widen access: the guard is restrictive.
			_, err = owner.Exec(t.Context(), `CREATE POLICY wide_open ON products FOR SELECT USING (true)`)
			require.NoError(t, err)

			t1, t2 := tenantID(key, 1), tenantID(key, 2)
			want := map[string][3]int{t1: {1, 2, 1}, t2: {1, 1, 1}} // stores, products, purchases
			for id, w := range want {
				err := inTenant(t, app, policy.DefaultSetting, id, func(tx pgx.Tx) error {
					for i, table := range []string{"stores", "products", "purchases"} {
						col := "store_id"
						if table == "stores" {
							col = "id"
						}
						assert.Equal(t, w[i], count(t, tx, "SELECT count(*) FROM "+table), "%s as %s", table, id)
						assert.Zero(t, count(t, tx, fmt.Sprintf("SELECT count(*) FROM %s WHERE %s::text <> $1", table, col), id), "%s as %s", table, id)
					}
					assert.Equal(t, 2, count(t, tx, "SELECT count(*) FROM currencies"), "global table readable")
					return nil
				})
				require.NoError(t, err)
			}

			// No tenant, also after a SET LOCAL ended (the setting reads ''): no rows, no error.
			for range 2 {
				err = inTenant(t, app, "", "", func(tx pgx.Tx) error {
					assert.Zero(t, count(t, tx, "SELECT count(*) FROM products"))
					assert.Zero(t, count(t, tx, "SELECT count(*) FROM stores"))
					return nil
				})
				require.NoError(t, err)
			}

			// Writing another tenant's rows fails the policy.
			err = inTenant(t, app, policy.DefaultSetting, t1, func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), `INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')`, t2)
				return err
			})
			assert.Equal(t, "42501", sqlState(err), "%v", err)
			// Updating nothing visible: another tenant's product stays.
			err = inTenant(t, app, policy.DefaultSetting, t1, func(tx pgx.Tx) error {
				tag, err := tx.Exec(t.Context(), `UPDATE products SET name = 'stolen' WHERE id = 3`)
				assert.Zero(t, tag.RowsAffected())
				return err
			})
			require.NoError(t, err)
			// The composite foreign key stops a reference to another tenant's
			// product, which the plain foreign key alone allows.
			err = inTenant(t, app, policy.DefaultSetting, t1, func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), `INSERT INTO purchases (store_id, product_id, qty) VALUES ($1, 3, 1)`, t1)
				return err
			})
			assert.Equal(t, "23503", sqlState(err), "%v", err)
			// Inserting one's own rows works, bigserial sequence included.
			err = inTenant(t, app, policy.DefaultSetting, t1, func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), `INSERT INTO purchases (store_id, product_id, qty) VALUES ($1, 2, 1)`, t1)
				if err != nil {
					return err
				}
				_, err = tx.Exec(t.Context(), `INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'plum', 1, 'EUR')`, t1)
				return err
			})
			require.NoError(t, err)
			// Revoked and never granted privileges.
			for _, sql := range []string{"TRUNCATE products", "INSERT INTO currencies VALUES ('GBP')"} {
				err = inTenant(t, app, policy.DefaultSetting, t1, func(tx pgx.Tx) error {
					_, err := tx.Exec(t.Context(), sql)
					return err
				})
				assert.Equal(t, "42501", sqlState(err), "%s: %v", sql, err)
			}
		})
	}
}

func TestIsolationQuotedNames(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, quotingTemplate)
	owner, app := db.OwnerConn(t), db.AppConn(t)
	mig, err := policy.Generate(quotingModel(pgtenancytest.AppRole))
	require.NoError(t, err)
	execTx(t, owner, mig.Up)
	err = inTenant(t, app, "tenancy.shop", "2", func(tx pgx.Tx) error {
		assert.Equal(t, 1, count(t, tx, `SELECT count(*) FROM "Sales Data"."Order Items"`))
		assert.Equal(t, 1, count(t, tx, `SELECT count(*) FROM "Sales Data"."Order Items" WHERE "Shop ID" = 2`))
		assert.Equal(t, 1, count(t, tx, `SELECT count(*) FROM "Shops"`))
		// serial column: needs the sequence grant.
		_, err := tx.Exec(t.Context(), `INSERT INTO "Sales Data"."Order Items" ("Shop ID", "order""ref", sku) VALUES (2, 20, 'b')`)
		return err
	})
	require.NoError(t, err)
	err = inTenant(t, app, "tenancy.shop", "2", func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO "Sales Data"."Order Items" ("Shop ID", "order""ref") VALUES (2, 10)`)
		return err
	})
	assert.Equal(t, "23503", sqlState(err), "%v", err)
	// ON DELETE SET NULL ("order""ref") keeps the tenant column. Without the
	// plain key, whose trigger would otherwise act first.
	_, err = owner.Exec(t.Context(), `ALTER TABLE "Sales Data"."Order Items" DROP CONSTRAINT "Order Items_order""ref_fkey"`)
	require.NoError(t, err)
	err = inTenant(t, app, "tenancy.shop", "2", func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `DELETE FROM "Orders" WHERE "Order No" = 20`); err != nil {
			return err
		}
		assert.Equal(t, 2, count(t, tx, `SELECT count(*) FROM "Sales Data"."Order Items" WHERE "Shop ID" = 2 AND "order""ref" IS NULL`))
		return nil
	})
	require.NoError(t, err)
}

func storeOptions() policy.DiscoverOptions {
	return policy.DiscoverOptions{TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"}, AppRole: pgtenancytest.AppRole}
}

func TestDiscoverMatchesDeclared(t *testing.T) {
	t.Parallel()
	for _, key := range keyTypes {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplates[key])
			conn := db.AppConn(t) // the catalog is readable by anyone
			got, err := policy.Discover(t.Context(), conn, storeOptions())
			require.NoError(t, err)
			assert.Equal(t, key, got.KeyType)
			assert.Equal(t, []string{"currencies"}, got.Global)
			require.Len(t, got.Tables, 3)
			assert.Equal(t, policy.Table{Name: "purchases", TenantColumn: "store_id", ExistingKeys: [][]string{{"id"}},
				ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}}}}, got.Tables[1])

			// The catalog adds the plain foreign key that the composite
			// one replaces, which Generate drops.
			plainFK := policy.Constraint{Table: "purchases", Name: "purchases_product_id_fkey", Type: "FOREIGN KEY",
				Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"},
				Definition: "FOREIGN KEY (product_id) REFERENCES public.products(id)"}
			assert.Equal(t, []policy.Constraint{plainFK}, got.Constraints)

			declared := storeModel(key, pgtenancytest.AppRole)
			require.NoError(t, policy.Check(t.Context(), conn, declared))
			resolved, err := policy.Resolve(t.Context(), conn, declared)
			require.NoError(t, err)
			assert.Equal(t, []policy.Constraint{plainFK}, resolved.Constraints)
			want, err := policy.Generate(resolved)
			require.NoError(t, err)
			fromDB, err := policy.Generate(got)
			require.NoError(t, err)
			assert.Equal(t, want.Up, fromDB.Up)
			assert.Equal(t, want.Down, fromDB.Down)
			assert.Contains(t, want.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`)

			// Declared with that constraint, the same SQL.
			declared.Constraints = []policy.Constraint{plainFK}
			fromDeclared, err := policy.Generate(declared)
			require.NoError(t, err)
			assert.Equal(t, want, fromDeclared)
			assert.Nil(t, storeModel(key, pgtenancytest.AppRole).Constraints)
			resolvedAgain, err := policy.Resolve(t.Context(), conn, storeModel(key, pgtenancytest.AppRole))
			require.NoError(t, err)
			assert.Nil(t, storeModel(key, pgtenancytest.AppRole).Tables[1].ExistingKeys, "Resolve leaves its input alone")
			assert.Equal(t, resolved, resolvedAgain)
		})
	}
}

func TestDiscoverQuotedNames(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, quotingTemplate)
	conn := db.OwnerConn(t)
	opts := policy.DiscoverOptions{
		TenantColumn: "Shop ID", Root: "Shops", RootColumn: "Shop ID", Schemas: []string{"public", "Sales Data"},
		Global: []string{"Sales Data.Tax Rates"}, Setting: "tenancy.shop", AppRole: pgtenancytest.AppRole,
	}
	got, err := policy.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	assert.Equal(t, []string{"Sales Data.Tax Rates"}, got.Global)
	resolvedBefore, err := policy.Resolve(t.Context(), conn, quotingModel(pgtenancytest.AppRole))
	require.NoError(t, err)
	assert.Len(t, got.Constraints, 3, "the plain foreign keys that the composite ones replace")
	want, err := policy.Generate(resolvedBefore)
	require.NoError(t, err)
	fromDB, err := policy.Generate(got)
	require.NoError(t, err)
	assert.Equal(t, want, fromDB)

	// After Up, the keys and composite foreign keys are found as existing:
	// generating again adds none of them, for the discovered model as for
	// the declared one.
	execTx(t, conn, want.Up)
	after, err := policy.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	again, err := policy.Generate(after)
	require.NoError(t, err)
	assert.NotContains(t, again.Up, "ADD CONSTRAINT")
	assert.NotContains(t, again.Down, "DROP CONSTRAINT")
	assert.Contains(t, again.Up, "CREATE POLICY")
	resolved, err := policy.Resolve(t.Context(), conn, quotingModel(pgtenancytest.AppRole))
	require.NoError(t, err)
	fromResolved, err := policy.Generate(resolved)
	require.NoError(t, err)
	assert.Equal(t, again, fromResolved)
}

func TestDiscoverExistingComposite(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	conn := db.OwnerConn(t)
	_, err := conn.Exec(t.Context(), `
		ALTER TABLE products ADD CONSTRAINT products_tenant_key UNIQUE (store_id, id);
		ALTER TABLE purchases ADD CONSTRAINT purchases_tenant_fkey FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id);
		CREATE TABLE reviews (store_id bigint NOT NULL REFERENCES stores, product_id bigint, body text,
			FOREIGN KEY (product_id, store_id) REFERENCES products (id, store_id));`)
	require.NoError(t, err)
	got, err := policy.Discover(t.Context(), conn, storeOptions())
	require.NoError(t, err)
	require.Len(t, got.Tables, 4)
	assert.Equal(t, []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}, Exists: true}}, got.Tables[1].ForeignKeys)
	assert.Equal(t, [][]string{{"id"}, {"store_id", "id"}}, got.Tables[0].ExistingKeys)
	// reviews' key has the tenant column second: Citus needs it first, so
	// pgtenancy adds its own.
	assert.Equal(t, "reviews", got.Tables[2].Name)
	assert.Equal(t, []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}}}, got.Tables[2].ForeignKeys)

	mig, err := policy.Generate(got)
	require.NoError(t, err)
	assert.NotContains(t, mig.Up, "UNIQUE")
	assert.NotContains(t, mig.Up, `"purchases_store_id_product_id_pgtenancy_fkey"`)
	assert.Contains(t, mig.Up, `ALTER TABLE "public"."reviews" ADD CONSTRAINT "reviews_store_id_product_id_pgtenancy_fkey" FOREIGN KEY ("store_id", "product_id") REFERENCES "public"."products" ("store_id", "id");`)

	declared := storeModel(rls.BigInt, pgtenancytest.AppRole)
	declared.Tables = append(declared.Tables, policy.Table{Name: "reviews", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products"}}})
	resolved, err := policy.Resolve(t.Context(), conn, declared)
	require.NoError(t, err)
	fromResolved, err := policy.Generate(resolved)
	require.NoError(t, err)
	assert.Equal(t, mig, fromResolved)
	execTx(t, conn, mig.Up)
	execTx(t, conn, mig.Down)
}

func TestDiscoverOptions(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	conn := db.OwnerConn(t)

	opts := storeOptions()
	opts.Include = []string{"products"}
	got, err := policy.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	require.Len(t, got.Tables, 2, "the root is always included")
	assert.Equal(t, "products", got.Tables[0].Name)
	assert.Equal(t, "stores", got.Tables[1].Name)
	assert.Empty(t, got.Global)

	opts = storeOptions()
	opts.Exclude = []string{"currencies", "public.purchases"}
	got, err = policy.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	require.Len(t, got.Tables, 2)
	assert.Empty(t, got.Global)

	opts = storeOptions()
	opts.KeyType = rls.BigInt
	opts.Setting = "app.store"
	got, err = policy.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	assert.Equal(t, "app.store", got.Setting)
}

// schemaErrors returns the *SchemaErrors joined in err.
func schemaErrors(t *testing.T, err error) []*policy.SchemaError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, policy.ErrSchemaMismatch)
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var out []*policy.SchemaError
	for _, e := range list {
		var se *policy.SchemaError
		require.True(t, errors.As(e, &se), "%T: %v", e, e)
		out = append(out, se)
	}
	return out
}

// requireSchemaError checks that err holds a SchemaError about table and
// column whose reason contains reason, and that its message names them.
func requireSchemaError(t *testing.T, err error, table, column, reason string) {
	t.Helper()
	for _, se := range schemaErrors(t, err) {
		if se.Table == table && se.Column == column {
			assert.Contains(t, se.Reason, reason)
			assert.Contains(t, se.Error(), fmt.Sprintf("table %q", table))
			if column != "" {
				assert.Contains(t, se.Error(), fmt.Sprintf("column %q", column))
			}
			return
		}
	}
	t.Fatalf("no error about table %q column %q in: %v", table, column, err)
}

func TestDiscoverErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		ddl           string
		mutate        func(o *policy.DiscoverOptions)
		table, column string
		reason        string
	}{
		{"root missing", "", func(o *policy.DiscoverOptions) { o.Root = "shops" }, "shops", "", "does not exist"},
		{"root column missing", "", func(o *policy.DiscoverOptions) { o.RootColumn = "ident" }, "stores", "ident", "does not exist"},
		{"include unknown", "", func(o *policy.DiscoverOptions) { o.Include = []string{"products", "nosuch"} }, "nosuch", "", "does not exist"},
		{"exclude unknown", "", func(o *policy.DiscoverOptions) { o.Exclude = []string{"other.products"} }, "other.products", "", "does not exist"},
		{"exclude root", "", func(o *policy.DiscoverOptions) { o.Exclude = []string{"stores"} }, "stores", "", "excluded"},
		{"key type differs", "", func(o *policy.DiscoverOptions) { o.KeyType = rls.UUID }, "products", "store_id", "type bigint"},
		{"tenant column type", "CREATE TABLE refunds (store_id integer NOT NULL, amount int)", nil, "refunds", "store_id", "type integer"},
		{"FK to root by other column", "CREATE TABLE transfers (store_id bigint NOT NULL REFERENCES stores, to_store bigint REFERENCES stores (id))", nil, "transfers", "to_store", "root table"},
		{"tenant column to a non-tenant column", "CREATE TABLE oddities (store_id bigint NOT NULL REFERENCES products (id))", nil, "oddities", "store_id", "cannot be made tenant-safe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
			conn := db.OwnerConn(t)
			if c.ddl != "" {
				_, err := conn.Exec(t.Context(), c.ddl)
				require.NoError(t, err)
			}
			opts := storeOptions()
			if c.mutate != nil {
				c.mutate(&opts)
			}
			m, err := policy.Discover(t.Context(), conn, opts)
			assert.Nil(t, m)
			requireSchemaError(t, err, c.table, c.column, c.reason)
		})
	}

	t.Run("bad options", func(t *testing.T) {
		t.Parallel()
		db := pgtenancytest.NewDB(t, nil)
		for _, o := range []policy.DiscoverOptions{
			{Root: "stores"},
			{TenantColumn: "store_id"},
			{TenantColumn: "store_id", Root: "stores", Schemas: []string{"a.b"}},
			{TenantColumn: "store_id", Root: "stores", KeyType: 42},
		} {
			m, err := policy.Discover(t.Context(), db.OwnerConn(t), o)
			assert.Nil(t, m)
			var me *policy.ModelError
			require.ErrorAs(t, err, &me, "%+v", o)
			assert.ErrorIs(t, err, policy.ErrInvalidModel)
		}
		// An invalid setting reaches Validate.
		_, err := policy.Discover(t.Context(), db.OwnerConn(t), policy.DiscoverOptions{TenantColumn: "x", Root: "nosuch"})
		requireSchemaError(t, err, "nosuch", "", "does not exist")
	})
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	conn := db.AppConn(t)
	fk := func(m *policy.Model) *policy.ForeignKey { return &m.Tables[2].ForeignKeys[0] }
	cases := []struct {
		name          string
		mutate        func(m *policy.Model)
		table, column string
		reason        string
	}{
		{"tenant column type", func(m *policy.Model) { m.KeyType = rls.UUID }, "products", "store_id", "type bigint; the tenant key type is uuid"},
		{"root column type", func(m *policy.Model) { m.KeyType = rls.Text }, "stores", "id", "type bigint"},
		{"unknown table", func(m *policy.Model) { m.Tables[1].Name = "produce"; fk(m).RefTable = "produce" }, "produce", "", "does not exist"},
		{"unknown schema", func(m *policy.Model) {
			m.Tables = append(m.Tables, policy.Table{Name: "billing.invoices", TenantColumn: "store_id"})
		}, "billing.invoices", "", "does not exist"},
		{"unknown tenant column", func(m *policy.Model) { m.Tables[1].TenantColumn = "shop_id" }, "products", "shop_id", "does not exist"},
		{"unknown FK column", func(m *policy.Model) { fk(m).Columns = []string{"product_no"} }, "purchases", "product_no", "does not exist"},
		{"FK target lacks column", func(m *policy.Model) { fk(m).RefColumns = []string{"sku"} }, "products", "sku", "referenced by foreign key"},
		{"unknown global", func(m *policy.Model) { m.Global = []string{"currencys"} }, "currencys", "", "does not exist"},
		{"existing key column", func(m *policy.Model) { m.Tables[1].ExistingKeys = [][]string{{"store_id", "uid"}} }, "products", "uid", "existing key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := storeModel(rls.BigInt, pgtenancytest.AppRole)
			c.mutate(m)
			require.NoError(t, m.Validate(), "the model is valid in itself")
			requireSchemaError(t, policy.Check(t.Context(), conn, m), c.table, c.column, c.reason)
			r, err := policy.Resolve(t.Context(), conn, m)
			assert.Nil(t, r)
			requireSchemaError(t, err, c.table, c.column, c.reason)
		})
	}
	t.Run("invalid model", func(t *testing.T) {
		m := storeModel(rls.BigInt, pgtenancytest.AppRole)
		m.Setting = "App.X"
		err := policy.Check(t.Context(), conn, m)
		assert.ErrorIs(t, err, policy.ErrInvalidModel)
		assert.NotErrorIs(t, err, policy.ErrSchemaMismatch)
	})
}

// Discover, Check and Resolve take a *pgx.Conn, a pgx.Tx or a *pgxpool.Pool.
var (
	_ policy.Querier = (*pgx.Conn)(nil)
	_ policy.Querier = pgx.Tx(nil)
	_ policy.Querier = (*pgxpool.Pool)(nil)
)

// Catalog queries work through a pool and with the simple protocol that
// PgBouncer users choose, names with spaces and quotes included.
func TestDiscoverSimpleProtocolAndPool(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, quotingTemplate)
	opts := policy.DiscoverOptions{
		TenantColumn: "Shop ID", Root: "Shops", RootColumn: "Shop ID", Schemas: []string{"public", "Sales Data"},
		Global: []string{"Sales Data.Tax Rates"}, Setting: "tenancy.shop", AppRole: pgtenancytest.AppRole,
	}
	want, err := policy.Discover(t.Context(), db.OwnerConn(t), opts)
	require.NoError(t, err)

	cfg, err := pgx.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	simple, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = simple.Close(context.Background()) })
	got, err := policy.Discover(t.Context(), simple, opts)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	pool := db.AppPool(t)
	got, err = policy.Discover(t.Context(), pool, opts)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, policy.Check(t.Context(), pool, quotingModel(pgtenancytest.AppRole)))

	tx, err := simple.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	require.NoError(t, policy.Check(t.Context(), tx, quotingModel(pgtenancytest.AppRole)))
}

// TestGeneratePlainFKDropAndRestore: from the resolved model, Up drops the
// plain foreign key that the composite one replaces, and Down restores it
// as it was.
func TestGeneratePlainFKDropAndRestore(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	conn := db.OwnerConn(t)
	def := func() string {
		var d string
		err := conn.QueryRow(t.Context(), `SELECT coalesce(max(pg_get_constraintdef(oid)), '')
			FROM pg_constraint WHERE conrelid = 'purchases'::regclass AND conname = 'purchases_product_id_fkey'`).Scan(&d)
		require.NoError(t, err)
		return d
	}
	before := def()
	require.Equal(t, "FOREIGN KEY (product_id) REFERENCES products(id)", before)
	resolved, err := policy.Resolve(t.Context(), conn, storeModel(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)
	mig, err := policy.Generate(resolved)
	require.NoError(t, err)
	execTx(t, conn, mig.Up)
	assert.Empty(t, def(), "Up dropped the plain key")
	execTx(t, conn, mig.Down)
	assert.Equal(t, before, def(), "Down restored it")
	execTx(t, conn, mig.Up)
	assert.Empty(t, def())
}

// TestLongNamesInDatabase applies a model whose table and column names use
// PostgreSQL's whole 63 bytes and differ only in their last byte: every
// constraint the server creates keeps exactly the name Generate chose (the
// server would silently truncate a longer one), and no two collide.
func TestLongNamesInDatabase(t *testing.T) {
	t.Parallel()
	long := func(prefix string, last byte) string {
		return prefix + strings.Repeat("x", 62-len(prefix)) + string(last)
	}
	root, parent, child := long("root_", 'r'), long("parent_", 'p'), long("child_", 'c')
	col1, col2, tenant := long("parent_ref_", '1'), long("parent_ref_", '2'), long("tenant_", 't')
	ddl := fmt.Sprintf(`
CREATE TABLE %[1]q (id bigint PRIMARY KEY);
CREATE TABLE %[2]q (%[4]q bigint NOT NULL REFERENCES %[1]q, id bigint PRIMARY KEY);
CREATE TABLE %[3]q (%[4]q bigint NOT NULL REFERENCES %[1]q, id bigint PRIMARY KEY,
    %[5]q bigint REFERENCES %[2]q, %[6]q bigint REFERENCES %[2]q);`, root, parent, child, tenant, col1, col2)
	db := pgtenancytest.NewDB(t, ddlTemplate("policy_long_names", ddl))
	owner := db.OwnerConn(t)
	m := &policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{
		{Name: root, TenantColumn: "id", Root: true},
		{Name: parent, TenantColumn: tenant},
		{Name: child, TenantColumn: tenant, ForeignKeys: []policy.ForeignKey{
			{Columns: []string{col1}, RefTable: parent},
			{Columns: []string{col2}, RefTable: parent},
		}},
	}}
	mig, err := policy.Generate(m)
	require.NoError(t, err)
	var generated []string
	for _, n := range regexp.MustCompile(`ADD CONSTRAINT "([^"]*)"`).FindAllStringSubmatch(mig.Up, -1) {
		generated = append(generated, n[1])
	}
	require.Len(t, generated, 3, "one unique key on the parent, two composite foreign keys:\n%s", mig.Up)
	for _, n := range generated {
		assert.LessOrEqual(t, len(n), 63, n)
		assert.Contains(t, n, "_pgtenancy_")
	}
	execTx(t, owner, mig.Up)
	rows, err := owner.Query(t.Context(), `SELECT conname FROM pg_constraint WHERE conname LIKE '%pgtenancy%' ORDER BY conname`)
	require.NoError(t, err)
	inDB, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	slices.Sort(generated)
	assert.Equal(t, generated, inDB, "the server keeps every generated name as it is, and they are distinct")
	assert.Len(t, slices.Compact(slices.Clone(inDB)), 3)
}
