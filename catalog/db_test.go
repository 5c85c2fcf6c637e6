package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

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
				err := inTenant(t, app, rls.DefaultSetting, id, func(tx pgx.Tx) error {
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
			err = inTenant(t, app, rls.DefaultSetting, t1, func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), `INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')`, t2)
				return err
			})
			assert.Equal(t, "42501", sqlState(err), "%v", err)
			// Updating nothing visible: another tenant's product stays.
			err = inTenant(t, app, rls.DefaultSetting, t1, func(tx pgx.Tx) error {
				tag, err := tx.Exec(t.Context(), `UPDATE products SET name = 'stolen' WHERE id = 3`)
				assert.Zero(t, tag.RowsAffected())
				return err
			})
			require.NoError(t, err)
			// The composite foreign key stops a reference to another tenant's
			// product, which the plain foreign key alone allows.
			err = inTenant(t, app, rls.DefaultSetting, t1, func(tx pgx.Tx) error {
				_, err := tx.Exec(t.Context(), `INSERT INTO purchases (store_id, product_id, qty) VALUES ($1, 3, 1)`, t1)
				return err
			})
			assert.Equal(t, "23503", sqlState(err), "%v", err)
			// Inserting one's own rows works, bigserial sequence included.
			err = inTenant(t, app, rls.DefaultSetting, t1, func(tx pgx.Tx) error {
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
				err = inTenant(t, app, rls.DefaultSetting, t1, func(tx pgx.Tx) error {
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

// storeOptions discovers the store. The application role, which
// DiscoverOptions carried before, is set on the returned model
// (withRole).
func storeOptions() catalog.DiscoverOptions {
	return catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"}}
}

// withRole sets what DiscoverOptions used to copy into the model.
func withRole(m *policy.Model, setting string) *policy.Model {
	m.AppRole = pgtenancytest.AppRole
	m.Setting = setting
	return m
}

func TestDiscoverMatchesDeclared(t *testing.T) {
	t.Parallel()
	for _, key := range keyTypes {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplates[key])
			conn := db.AppConn(t) // the catalog is readable by anyone
			got, err := catalog.Discover(t.Context(), conn, storeOptions())
			require.NoError(t, err)
			withRole(got, "")
			assert.Equal(t, key, got.KeyType)
			assert.Equal(t, []string{"currencies"}, got.Global)
			require.Len(t, got.Tables, 3)
			assert.Equal(t, policy.Table{Name: "purchases", TenantColumn: "store_id",
				ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}}}}, got.Tables[1])
			// The key that was ExistingKeys, now a fact of Existing.
			fromDiscovered := mustExisting(t, conn, got)
			assert.Equal(t, []policy.Constraint{{Table: "purchases", Name: "purchases_pkey", Type: policy.ConstraintPrimaryKey,
				Columns: []string{"id"}, Definition: "PRIMARY KEY (id)"}},
				constraintsOf(fromDiscovered, "purchases", policy.ConstraintPrimaryKey))

			// The catalog adds the plain foreign key that the composite
			// one replaces, which Plan drops.
			plainFK := policy.Constraint{Table: "purchases", Name: "purchases_product_id_fkey", Type: "FOREIGN KEY",
				Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}, Replaceable: true,
				Definition: "FOREIGN KEY (product_id) REFERENCES public.products(id)"}
			replaced := func(e *policy.Existing) []policy.Constraint {
				var out []policy.Constraint
				for _, c := range constraintsOf(e, "purchases", policy.ConstraintForeignKey) {
					if c.RefTable == "products" {
						out = append(out, c)
					}
				}
				return out
			}
			assert.Equal(t, []policy.Constraint{plainFK}, replaced(fromDiscovered))

			declared := storeModel(key, pgtenancytest.AppRole)
			require.NoError(t, catalog.Check(t.Context(), conn, declared))
			resolved := mustExisting(t, conn, declared)
			assert.Equal(t, []policy.Constraint{plainFK}, replaced(resolved))
			// A discovered and a declared model have the same facts, listed
			// in the order of their tables.
			assert.ElementsMatch(t, fromDiscovered.Constraints, resolved.Constraints)
			assert.ElementsMatch(t, fromDiscovered.Tables, resolved.Tables)
			want := mustPlan(t, conn, declared)
			fromDB := mustPlan(t, conn, got)
			assert.Equal(t, want.Up, fromDB.Up)
			assert.Equal(t, want.Down, fromDB.Down)
			assert.Contains(t, want.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`)

			// Declared with that constraint, the same SQL.
			fromDeclared, err := policy.Plan(declared, &policy.Existing{Constraints: []policy.Constraint{plainFK},
				SerialSequences: resolved.SerialSequences, SequencesWithoutUsage: resolved.SequencesWithoutUsage})
			require.NoError(t, err)
			assert.Equal(t, want, fromDeclared)
			resolvedAgain := mustExisting(t, conn, storeModel(key, pgtenancytest.AppRole))
			assert.Equal(t, storeModel(key, pgtenancytest.AppRole), declared, "Existing and Plan leave the model alone")
			assert.Equal(t, resolved, resolvedAgain)
		})
	}
}

func quotingOptions() catalog.DiscoverOptions {
	return catalog.DiscoverOptions{
		TenantColumn: "Shop ID", Root: "Shops", RootColumn: "Shop ID", Schemas: []string{"public", "Sales Data"},
		Global: []string{"Sales Data.Tax Rates"},
	}
}

func TestDiscoverQuotedNames(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, quotingTemplate)
	conn := db.OwnerConn(t)
	opts := quotingOptions()
	got, err := catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	withRole(got, "tenancy.shop")
	assert.Equal(t, []string{"Sales Data.Tax Rates"}, got.Global)
	resolvedBefore := mustExisting(t, conn, quotingModel(pgtenancytest.AppRole))
	var plainFKs []string
	for _, c := range resolvedBefore.Constraints {
		if c.Type == policy.ConstraintForeignKey && c.Replaceable && c.RefTable != "Shops" {
			plainFKs = append(plainFKs, c.Name)
		}
	}
	assert.Len(t, plainFKs, 3, "the plain foreign keys that the composite ones replace")
	want := mustPlan(t, conn, quotingModel(pgtenancytest.AppRole))
	for _, name := range plainFKs {
		assert.Contains(t, want.Up, `DROP CONSTRAINT `+sqlquote.Ident(name)+`;`)
	}
	fromDB := mustPlan(t, conn, got)
	assert.Equal(t, want, fromDB)

	// After Up, the keys and composite foreign keys are found as existing:
	// planning again with those facts (what Generate did with a model
	// discovered or resolved again) adds none of them, for the discovered
	// model as for the declared one.
	execTx(t, conn, want.Up)
	after, err := catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	withRole(after, "tenancy.shop")
	again := generateResolved(t, conn, after)
	assert.NotContains(t, again.Up, "ADD CONSTRAINT")
	assert.NotContains(t, again.Down, "DROP CONSTRAINT")
	assert.Contains(t, again.Up, "CREATE POLICY")
	fromResolved := generateResolved(t, conn, quotingModel(pgtenancytest.AppRole))
	assert.Equal(t, again, fromResolved)
	// And with what is in place, nothing is left to do.
	assert.Equal(t, &policy.Migration{}, mustPlan(t, conn, after))
	assert.Equal(t, &policy.Migration{}, mustPlan(t, conn, quotingModel(pgtenancytest.AppRole)))
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
	got, err := catalog.Discover(t.Context(), conn, storeOptions())
	require.NoError(t, err)
	withRole(got, "")
	require.Len(t, got.Tables, 4)
	// The foreign key whose composite form exists is listed once, without
	// the tenant column; the composite form is a fact of Existing (Exists
	// before).
	assert.Equal(t, []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}}}, got.Tables[1].ForeignKeys)
	e := mustExisting(t, conn, got)
	assert.Contains(t, constraintsOf(e, "purchases", policy.ConstraintForeignKey), policy.Constraint{
		Table: "purchases", Name: "purchases_tenant_fkey", Type: policy.ConstraintForeignKey,
		Columns: []string{"store_id", "product_id"}, RefTable: "products", RefColumns: []string{"store_id", "id"}, Replaceable: true,
		Definition: "FOREIGN KEY (store_id, product_id) REFERENCES public.products(store_id, id)"})
	// The keys of products (ExistingKeys before).
	var keys [][]string
	for _, typ := range []string{policy.ConstraintPrimaryKey, policy.ConstraintUnique} {
		for _, c := range constraintsOf(e, "products", typ) {
			keys = append(keys, c.Columns)
		}
	}
	assert.Equal(t, [][]string{{"id"}, {"store_id", "id"}}, keys)
	// reviews' key has the tenant column second: Citus needs it first, so
	// pgtenancy adds its own.
	assert.Equal(t, "reviews", got.Tables[2].Name)
	assert.Equal(t, []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}}}, got.Tables[2].ForeignKeys)

	mig := mustPlan(t, conn, got)
	assert.NotContains(t, mig.Up, "UNIQUE")
	assert.NotContains(t, mig.Up, `"purchases_store_id_product_id_pgtenancy_fkey"`)
	assert.Contains(t, mig.Up, `ALTER TABLE "public"."reviews" ADD CONSTRAINT "reviews_store_id_product_id_pgtenancy_fkey" FOREIGN KEY ("store_id", "product_id") REFERENCES "public"."products" ("store_id", "id");`)

	declared := storeModel(rls.BigInt, pgtenancytest.AppRole)
	declared.Tables = append(declared.Tables, policy.Table{Name: "reviews", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products"}}})
	fromResolved := mustPlan(t, conn, declared)
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
	got, err := catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	require.Len(t, got.Tables, 2, "the root is always included")
	assert.Equal(t, "products", got.Tables[0].Name)
	assert.Equal(t, "stores", got.Tables[1].Name)
	assert.Empty(t, got.Global)

	opts = storeOptions()
	opts.Exclude = []string{"currencies", "public.purchases"}
	got, err = catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	require.Len(t, got.Tables, 2)
	assert.Empty(t, got.Global)

	// DiscoverOptions has no Setting, AppRole or Citus any more (the old
	// test checked that Setting was copied into the model): the model
	// leaves them to the caller.
	opts = storeOptions()
	opts.KeyType = rls.BigInt
	got, err = catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	assert.Equal(t, rls.BigInt, got.KeyType)
	assert.Empty(t, got.Setting)
	assert.Empty(t, got.AppRole)
	assert.False(t, got.Citus)
}

// schemaErrors returns the *SchemaErrors joined in err.
func schemaErrors(t *testing.T, err error) []*catalog.SchemaError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, catalog.ErrSchemaMismatch)
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var out []*catalog.SchemaError
	for _, e := range list {
		var se *catalog.SchemaError
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
			assert.True(t, strings.HasPrefix(se.Error(), "catalog: schema mismatch: "), se.Error())
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
		mutate        func(o *catalog.DiscoverOptions)
		table, column string
		reason        string
	}{
		{"root missing", "", func(o *catalog.DiscoverOptions) { o.Root = "shops" }, "shops", "", "does not exist"},
		{"root column missing", "", func(o *catalog.DiscoverOptions) { o.RootColumn = "ident" }, "stores", "ident", "does not exist"},
		{"include unknown", "", func(o *catalog.DiscoverOptions) { o.Include = []string{"products", "nosuch"} }, "nosuch", "", "does not exist"},
		{"exclude unknown", "", func(o *catalog.DiscoverOptions) { o.Exclude = []string{"other.products"} }, "other.products", "", "does not exist"},
		{"exclude root", "", func(o *catalog.DiscoverOptions) { o.Exclude = []string{"stores"} }, "stores", "", "excluded"},
		{"key type differs", "", func(o *catalog.DiscoverOptions) { o.KeyType = rls.UUID }, "products", "store_id", "type bigint"},
		{"tenant column type", "CREATE TABLE refunds (store_id text NOT NULL, amount int)", nil, "refunds", "store_id", "type text"},
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
			m, err := catalog.Discover(t.Context(), conn, opts)
			assert.Nil(t, m)
			requireSchemaError(t, err, c.table, c.column, c.reason)
		})
	}

	t.Run("bad options", func(t *testing.T) {
		t.Parallel()
		db := pgtenancytest.NewDB(t, nil)
		for _, o := range []catalog.DiscoverOptions{
			{Root: "stores"},
			{TenantColumn: "store_id"},
			{TenantColumn: "store_id", Root: "stores", Schemas: []string{"a.b"}},
			{TenantColumn: "store_id", Root: "stores", KeyType: 42},
		} {
			m, err := catalog.Discover(t.Context(), db.OwnerConn(t), o)
			assert.Nil(t, m)
			// A *ModelError (ErrInvalidModel) before.
			var oe *catalog.OptionsError
			require.ErrorAs(t, err, &oe, "%+v", o)
			assert.ErrorIs(t, err, catalog.ErrInvalidOptions)
			assert.NotErrorIs(t, err, policy.ErrInvalidModel)
		}
		_, err := catalog.Discover(t.Context(), db.OwnerConn(t), catalog.DiscoverOptions{TenantColumn: "x", Root: "nosuch"})
		requireSchemaError(t, err, "nosuch", "", "does not exist")
	})
}

func TestCheckErrors(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	conn := db.AppConn(t)
	fk := func(m *policy.Model) *policy.ForeignKey { return &m.Tables[2].ForeignKeys[0] }
	// The old case "existing key column" (Table.ExistingKeys naming a
	// column that does not exist) has no counterpart: keys are read from
	// the catalog, never declared.
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := storeModel(rls.BigInt, pgtenancytest.AppRole)
			c.mutate(m)
			require.NoError(t, m.Validate(), "the model is valid in itself")
			requireSchemaError(t, catalog.Check(t.Context(), conn, m), c.table, c.column, c.reason)
			e, err := catalog.Existing(t.Context(), conn, m)
			assert.Nil(t, e)
			requireSchemaError(t, err, c.table, c.column, c.reason)
			plan, err := catalog.Plan(t.Context(), conn, m)
			assert.Nil(t, plan)
			requireSchemaError(t, err, c.table, c.column, c.reason)
		})
	}
	t.Run("invalid model", func(t *testing.T) {
		m := storeModel(rls.BigInt, pgtenancytest.AppRole)
		m.Setting = "App.X"
		err := catalog.Check(t.Context(), conn, m)
		assert.ErrorIs(t, err, policy.ErrInvalidModel)
		assert.ErrorIs(t, err, rls.ErrInvalidSetting)
		assert.NotErrorIs(t, err, catalog.ErrSchemaMismatch)
	})
}

// Discover, Check, Existing and Plan take a *pgx.Conn, a pgx.Tx, a
// *pgxpool.Pool or a *pgxpool.Conn.
var (
	_ catalog.Conn = (*pgx.Conn)(nil)
	_ catalog.Conn = pgx.Tx(nil)
	_ catalog.Conn = (*pgxpool.Pool)(nil)
	_ catalog.Conn = (*pgxpool.Conn)(nil)
)

// Catalog queries work through a pool and with the simple protocol that
// PgBouncer users choose, names with spaces and quotes included.
func TestDiscoverSimpleProtocolAndPool(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, quotingTemplate)
	opts := quotingOptions()
	want, err := catalog.Discover(t.Context(), db.OwnerConn(t), opts)
	require.NoError(t, err)
	wantPlan := mustPlan(t, db.OwnerConn(t), quotingModel(pgtenancytest.AppRole))

	cfg, err := pgx.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	simple, err := pgx.ConnectConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = simple.Close(context.Background()) })
	got, err := catalog.Discover(t.Context(), simple, opts)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, wantPlan, mustPlan(t, simple, quotingModel(pgtenancytest.AppRole)))

	pool := db.AppPool(t)
	got, err = catalog.Discover(t.Context(), pool, opts)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	require.NoError(t, catalog.Check(t.Context(), pool, quotingModel(pgtenancytest.AppRole)))
	assert.Equal(t, wantPlan, mustPlan(t, pool, quotingModel(pgtenancytest.AppRole)))

	tx, err := simple.Begin(t.Context())
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	require.NoError(t, catalog.Check(t.Context(), tx, quotingModel(pgtenancytest.AppRole)))
	assert.Equal(t, wantPlan, mustPlan(t, tx, quotingModel(pgtenancytest.AppRole)))
}

// TestGeneratePlainFKDropAndRestore: from the catalog, Up drops the plain
// foreign key that the composite one replaces, and Down restores it as it
// was.
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
	mig := mustPlan(t, conn, storeModel(rls.BigInt, pgtenancytest.AppRole))
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

// TestSessionTenantInert: a tenant set at session level (set_config with
// is_local false), its companion stamp included, admits rows in the
// transaction that set it only: in every later transaction on the
// connection it is inert, whatever application, library or injected SQL
// left it there.
func TestSessionTenantInert(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	owner, app := db.OwnerConn(t), db.AppConn(t)
	mig, err := policy.Generate(storeModel(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)
	execTx(t, owner, mig.Up)
	setting, xact := rls.DefaultSetting, rls.XactSetting(rls.DefaultSetting)

	err = pgx.BeginFunc(t.Context(), app, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `SELECT pg_catalog.set_config($1, '1', false), pg_catalog.set_config($2, `+rls.XactStamp+`, false)`, setting, xact)
		if err == nil {
			assert.Equal(t, 2, count(t, tx, "SELECT count(*) FROM products"), "in the transaction that set it")
		}
		return err
	})
	require.NoError(t, err)
	var tenant, stamp string
	require.NoError(t, app.QueryRow(t.Context(), "SELECT current_setting($1), current_setting($2)", setting, xact).Scan(&tenant, &stamp))
	assert.Equal(t, "1", tenant, "the session keeps the tenant after the commit")
	assert.NotEmpty(t, stamp)

	tx, err := app.Begin(t.Context())
	require.NoError(t, err)
	assert.Zero(t, count(t, tx, "SELECT count(*) FROM products"), "a later transaction sees no rows")
	assert.Zero(t, count(t, tx, "SELECT count(*) FROM stores"))
	_, err = tx.Exec(t.Context(), `INSERT INTO products (store_id, name, price_cents, currency) VALUES (1, 'x', 1, 'EUR')`)
	assert.Equal(t, "42501", sqlState(err), "and can write none: %v", err)
	require.NoError(t, tx.Rollback(t.Context()))
	var n int
	require.NoError(t, app.QueryRow(t.Context(), "SELECT count(*) FROM products").Scan(&n))
	assert.Zero(t, n, "nor a statement in a transaction of its own")

	// Set for the transaction, the tenant is admitted again.
	err = inTenant(t, app, setting, "1", func(tx pgx.Tx) error {
		assert.Equal(t, 2, count(t, tx, "SELECT count(*) FROM products"))
		return nil
	})
	require.NoError(t, err)
}

// TestPlanReplacesUnstampedPolicies: on PostgreSQL, pgtenancy policies in
// the per-row form (no transaction stamp, as Generate wrote them before
// 2026-11-26) count as not generated: Plan replaces them with the stamped
// form, after which a tenant left at session level is inert; a second Plan
// is empty. With a Citus model the per-row form is the generated one.
func TestPlanReplacesUnstampedPolicies(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	owner, app := db.OwnerConn(t), db.AppConn(t)
	m := storeModel(rls.BigInt, pgtenancytest.AppRole)
	mig, err := policy.Generate(m)
	require.NoError(t, err)
	execTx(t, owner, mig.Up)
	for _, table := range []string{"stores", "products", "purchases"} {
		col := "store_id"
		if table == "stores" {
			col = "id"
		}
		expr := policy.CitusPolicyExpr(col, rls.BigInt, rls.DefaultSetting)
		for _, name := range []string{policy.IsolationPolicy, policy.GuardPolicy} {
			execTx(t, owner, fmt.Sprintf("ALTER POLICY %s ON %s USING (%s) WITH CHECK (%s)", name, table, expr, expr))
		}
	}
	leave := func() {
		_, err := app.Exec(t.Context(), "SELECT set_config('app.current_tenant', '1', false)")
		require.NoError(t, err)
	}
	leave()
	var n int
	require.NoError(t, app.QueryRow(t.Context(), "SELECT count(*) FROM products").Scan(&n))
	require.Equal(t, 2, n, "the per-row form admits a session-level tenant (the test's premise)")

	plan, err := catalog.Plan(t.Context(), owner, m)
	require.NoError(t, err)
	assert.Equal(t, 6, strings.Count(plan.Up, "DROP POLICY"), "every unstamped policy is replaced:\n%s", plan.Up)
	execTx(t, owner, plan.Up)
	leave()
	require.NoError(t, app.QueryRow(t.Context(), "SELECT count(*) FROM products").Scan(&n))
	assert.Zero(t, n, "a session-level tenant is inert after the plan")
	again, err := catalog.Plan(t.Context(), owner, m)
	require.NoError(t, err)
	assert.True(t, again.IsEmpty(), "a second plan: %s", again.Up)

	// Down puts the per-row policies back.
	execTx(t, owner, plan.Down)
	leave()
	require.NoError(t, app.QueryRow(t.Context(), "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 2, n)
}
