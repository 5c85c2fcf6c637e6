package catalog_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

func plainFKDef(t *testing.T, conn *pgx.Conn, table, name string) string {
	t.Helper()
	var d string
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT coalesce(max(pg_get_constraintdef(k.oid, true) || ' -> ' || k.confrelid::regclass::text), '')
		FROM pg_constraint k WHERE conrelid = $1::regclass AND conname = $2`, table, name).Scan(&d))
	return d
}

// Discovery and planning under search_path=app, Down under the default
// search_path: Down restores the key onto the same table (names are
// qualified).
var plainFKSchemaTmpl = ddlTemplate("plainfk_schema", `
CREATE SCHEMA app;
GRANT USAGE ON SCHEMA app TO `+pgtenancytest.AppRole+`;
CREATE TABLE app.stores (id bigint PRIMARY KEY);
CREATE TABLE app.products (store_id bigint NOT NULL REFERENCES app.stores, id bigint PRIMARY KEY);
CREATE TABLE app.purchases (store_id bigint NOT NULL REFERENCES app.stores, id bigint PRIMARY KEY,
    product_id bigint REFERENCES app.products (id));
CREATE TABLE public.products (id bigint PRIMARY KEY); -- an unrelated table of the same name
INSERT INTO app.stores VALUES (1); INSERT INTO app.products VALUES (1, 7); INSERT INTO app.purchases VALUES (1, 1, 7);
INSERT INTO public.products VALUES (7);
`)

func TestPlainFKDownSearchPath(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, plainFKSchemaTmpl)
	owner := db.OwnerConn(t)
	disc := db.OwnerConn(t)
	_, err := disc.Exec(t.Context(), "SET search_path = app")
	require.NoError(t, err)
	m, err := catalog.Discover(t.Context(), disc, catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores",
		Schemas: []string{"app"}})
	require.NoError(t, err)
	m.AppRole = pgtenancytest.AppRole
	// The one plain foreign key that a composite key replaces (the
	// model's Constraints before).
	var replaced []policy.Constraint
	for _, c := range mustExisting(t, disc, m).Constraints {
		if c.Type == policy.ConstraintForeignKey && c.Replaceable && c.RefTable != "stores" {
			replaced = append(replaced, c)
		}
	}
	require.Len(t, replaced, 1)
	assert.Equal(t, "products", replaced[0].RefTable)
	mig := mustPlan(t, disc, m)
	assert.Contains(t, mig.Up, `ALTER TABLE "app"."purchases" DROP CONSTRAINT "purchases_product_id_fkey";`)
	before := plainFKDef(t, owner, "app.purchases", "purchases_product_id_fkey")
	t.Logf("before: %s", before)
	execTx(t, owner, mig.Up)
	execTx(t, owner, mig.Down) // default search_path "$user", public
	after := plainFKDef(t, owner, "app.purchases", "purchases_product_id_fkey")
	t.Logf("after Down: %s", after)
	assert.Equal(t, before, after, "Down restores the key to the same referenced table")
}

// A plain key with ON UPDATE CASCADE (which the composite key would not
// carry) is kept, so the update still cascades.
var plainFKCascadeTmpl = ddlTemplate("plainfk_cascade", `
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE products (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY);
CREATE TABLE purchases (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY,
    product_id bigint REFERENCES products (id) ON UPDATE CASCADE DEFERRABLE INITIALLY DEFERRED);
INSERT INTO stores VALUES (1); INSERT INTO products VALUES (1, 7); INSERT INTO purchases VALUES (1, 1, 7);
`)

func TestPlainFKOnUpdateCascadeKept(t *testing.T) {
	t.Parallel()
	for _, drop := range []bool{false, true} {
		t.Run(map[bool]string{false: "declared", true: "resolved"}[drop], func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, plainFKCascadeTmpl)
			owner := db.OwnerConn(t)
			m := &policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{
				{Name: "stores", TenantColumn: "id", Root: true},
				{Name: "products", TenantColumn: "store_id"},
				{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products"}}},
			}}
			mig, err := policy.Generate(m)
			require.NoError(t, err)
			if drop {
				mig = mustPlan(t, owner, m)
			}
			execTx(t, owner, mig.Up)
			t.Logf("plain after Up: %q", plainFKDef(t, owner, "purchases", "purchases_product_id_fkey"))
			err = inTenant(t, owner, rls.DefaultSetting, "1", func(tx pgx.Tx) error {
				tag, err := tx.Exec(t.Context(), "UPDATE products SET id = 8 WHERE id = 7")
				t.Logf("rows updated: %d", tag.RowsAffected())
				return err
			})
			assert.NoError(t, err, "renumbering a product still cascades to purchases")
		})
	}
}

// A semicolon inside an identifier does not make Discover fail, nor
// planning from the catalog (Discover and Generate before).
var plainFKSemiTmpl = ddlTemplate("plainfk_semi", `
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE products (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY);
CREATE TABLE purchases (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY,
    "product;id" bigint REFERENCES products (id));
`)

func TestPlainFKDiscoverSemicolon(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, plainFKSemiTmpl)
	owner := db.OwnerConn(t)
	m, err := catalog.Discover(t.Context(), owner, catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores"})
	require.NoError(t, err)
	m.AppRole = pgtenancytest.AppRole
	_, err = catalog.Existing(t.Context(), owner, m)
	assert.NoError(t, err)
	mig, err := catalog.Plan(t.Context(), owner, m)
	require.NoError(t, err)
	assert.Contains(t, mig.Up, `DROP CONSTRAINT "purchases_product;id_fkey"`)
	execTx(t, owner, mig.Up)
	execTx(t, owner, mig.Down)
}

// A Definition with a second ALTER TABLE subcommand is never copied into
// Down.
func TestPlainFKDefinitionInjection(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	owner, app := db.OwnerConn(t), db.AppConn(t)
	m := storeModel(rls.BigInt, pgtenancytest.AppRole)
	mig, err := policy.Plan(m, &policy.Existing{Constraints: []policy.Constraint{{Table: "purchases", Name: "purchases_product_id_fkey", Type: policy.ConstraintForeignKey,
		Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}, Replaceable: true,
		Definition: "FOREIGN KEY (product_id) REFERENCES products(id), DROP COLUMN qty"}}})
	require.NoError(t, err)
	assert.NotContains(t, mig.Down, "DROP COLUMN")
	execTx(t, owner, mig.Up)
	execTx(t, owner, mig.Down)
	_ = app
	var n int
	require.NoError(t, owner.QueryRow(t.Context(), "SELECT count(*) FROM pg_attribute WHERE attrelid = 'purchases'::regclass AND attname = 'qty' AND NOT attisdropped").Scan(&n))
	assert.Equal(t, 1, n, "purchases.qty is still there")
}

// Two plain keys on the same column that the composite key would not
// replace as they are (NOT VALID; MATCH FULL with ON UPDATE): kept. Plan
// converges and Down restores everything.
var plainFKTwoTmpl = ddlTemplate("plainfk_two", `
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE products (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY, UNIQUE (store_id, id));
CREATE TABLE purchases (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY, product_id bigint,
    CONSTRAINT a_fk FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE NOT VALID,
    CONSTRAINT "B fk" FOREIGN KEY (product_id) REFERENCES products (id) MATCH FULL ON UPDATE SET NULL DEFERRABLE,
    CONSTRAINT comp FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id));
INSERT INTO stores VALUES (1); INSERT INTO products VALUES (1, 7); INSERT INTO purchases VALUES (1, 1, 7);
`)

func TestPlainFKPlanTwoPlainKeys(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, plainFKTwoTmpl)
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	m := &policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "products", TenantColumn: "store_id"},
		{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products"}}},
	}}
	before := snapshot(t, admin)
	plan := mustPlan(t, owner, m)
	execTx(t, owner, plan.Up)
	assert.NotEmpty(t, plainFKDef(t, owner, "purchases", "a_fk"))
	assert.NotEmpty(t, plainFKDef(t, owner, "purchases", "B fk"))
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, m))
	execTx(t, owner, plan.Down)
	assert.Equal(t, before, snapshot(t, admin))
	d, err := catalog.Discover(t.Context(), owner, catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores"})
	require.NoError(t, err)
	d.AppRole = pgtenancytest.AppRole
	g := mustPlan(t, owner, d)
	execTx(t, owner, g.Up)
	execTx(t, owner, g.Down)
	assert.Equal(t, before, snapshot(t, admin))
}
