package catalog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childTables has tables that hold tenant data without the tenant column:
// order_items belongs to a store only through orders, notes points at
// stores under another column name. audit_log references nothing.
var childTables = &pgtenancytest.Template{
	Name: "discover_children",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE orders (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY);
CREATE TABLE order_items (order_id bigint NOT NULL REFERENCES orders (id), sku text NOT NULL);
CREATE TABLE notes (store_id_fk bigint NOT NULL REFERENCES stores (id), body text);
CREATE TABLE currencies (code text PRIMARY KEY);
CREATE TABLE audit_log (at timestamptz, what text);`)
		return err
	},
}

// TestDiscoverRefusesUnprotectedChildTables: a table that references tenant
// data but has no tenant column would be readable by every tenant; discovery
// refuses it instead of guessing, and only tables named in Global are
// granted to the application role.
func TestDiscoverRefusesUnprotectedChildTables(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, childTables)
	conn := db.OwnerConn(t)
	opts := catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"}}

	_, err := catalog.Discover(t.Context(), conn, opts)
	require.ErrorIs(t, err, catalog.ErrSchemaMismatch)
	var tables []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *catalog.SchemaError
		require.True(t, errors.As(e, &se), "%v", e)
		tables = append(tables, se.Table)
	}
	assert.ElementsMatch(t, []string{"order_items", "notes"}, tables)
	assert.ErrorContains(t, err, `references tenant table "orders"`)
	assert.ErrorContains(t, err, `references tenant table "stores"`)

	// Excluded, they are left alone; audit_log is neither tenant nor global.
	opts.Exclude = []string{"order_items", "notes"}
	m, err := catalog.Discover(t.Context(), conn, opts)
	require.NoError(t, err)
	m.AppRole = pgtenancytest.AppRole
	assert.Equal(t, []string{"currencies"}, m.Global)
	var names []string
	for _, tb := range m.Tables {
		names = append(names, tb.Name)
	}
	assert.ElementsMatch(t, []string{"stores", "orders"}, names)

	gen, err := policy.Generate(m)
	require.NoError(t, err)
	_, err = conn.Exec(t.Context(), gen.Up)
	require.NoError(t, err)
	app := db.AppConn(t)
	for table, want := range map[string]bool{"currencies": true, "orders": true, "audit_log": false, "order_items": false, "notes": false} {
		var has bool
		require.NoError(t, app.QueryRow(t.Context(), "SELECT has_table_privilege(current_user, $1, 'SELECT')", table).Scan(&has))
		assert.Equal(t, want, has, "SELECT on %s", table)
	}
}

// TestCheckRefusesGlobalTenantData: a table declared Global is granted to the
// application role without a policy, so Check refuses one that has the
// tenant column or references a tenant table.
func TestCheckRefusesGlobalTenantData(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, childTables)
	conn := db.OwnerConn(t)
	_, err := conn.Exec(t.Context(), "CREATE TABLE invoices (store_id bigint, id bigint)")
	require.NoError(t, err)
	m := &policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "orders", TenantColumn: "store_id"},
	}, Global: []string{"currencies", "invoices", "order_items"}}
	err = catalog.Check(t.Context(), conn, m)
	require.ErrorIs(t, err, catalog.ErrSchemaMismatch)
	assert.ErrorContains(t, err, `table "invoices" column "store_id": global table has the tenant column`)
	assert.ErrorContains(t, err, `table "order_items" column "order_id": global table references tenant table "public.orders"`)
	assert.NotContains(t, err.Error(), `"currencies"`)
	_, err = catalog.Plan(t.Context(), conn, m)
	require.ErrorIs(t, err, catalog.ErrSchemaMismatch, "Plan checks the same")

	m.Global = []string{"currencies"}
	require.NoError(t, catalog.Check(t.Context(), conn, m))
}
