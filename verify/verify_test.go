package verify_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// isolatedStore is the test store as a user would set it up: the schema
// and its rows, the library objects, and the planned isolation applied.
var isolatedStore = &pgtenancytest.Template{
	Name: "verify_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return setupIsolated(ctx, conn, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt), testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	},
}

// cleanDDL is a store schema with nothing for Verify to warn about: keys
// and foreign keys that start with the tenant column.
const cleanDDL = `
CREATE TABLE currencies (code text PRIMARY KEY);
CREATE TABLE stores (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (
    store_id bigint NOT NULL REFERENCES stores (id),
    id bigint NOT NULL,
    currency text REFERENCES currencies (code),
    PRIMARY KEY (store_id, id)
);
CREATE TABLE purchases (
    store_id bigint NOT NULL REFERENCES stores (id),
    id bigint GENERATED ALWAYS AS IDENTITY,
    product_id bigint NOT NULL,
    PRIMARY KEY (store_id, id),
    FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id)
);
INSERT INTO currencies VALUES ('EUR');
INSERT INTO stores VALUES (1, 'one'), (2, 'two');
INSERT INTO products VALUES (1, 10, 'EUR'), (2, 20, 'EUR');
`

var cleanStore = &pgtenancytest.Template{
	Name: "verify_clean",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return setupIsolated(ctx, conn, cleanDDL, testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	},
}

func setupIsolated(ctx context.Context, conn *pgx.Conn, ddl string, model *policy.Model) error {
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := migrations.Install(ctx, conn, migrations.Options{Setting: model.Setting}); err != nil {
		return err
	}
	gen, err := catalog.Plan(ctx, conn, model)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, gen.Up)
		return err
	})
}

func mustVerify(t *testing.T, conn catalog.Conn, opts verify.Options) *verify.Report {
	t.Helper()
	r, err := verify.Run(t.Context(), conn, opts)
	require.NoError(t, err)
	return r
}

func storeOpts() verify.Options {
	return verify.Options{Model: testschema.Model(rls.BigInt, pgtenancytest.AppRole)}
}

// findingKey identifies a finding in assertions.
type findingKey struct {
	sev    verify.Severity
	code   verify.Code
	object string
}

func findingKeys(r *verify.Report) []findingKey {
	var ks []findingKey
	for _, f := range r.Findings {
		ks = append(ks, findingKey{f.Severity, f.Code, f.Object})
	}
	return ks
}

// storeWarnings are what Verify rightly warns about in the test store even
// with isolation applied: its single-column primary keys, and purchases has
// no index leading with store_id. (catalog.Plan, as Generate from the
// resolved model before, drops the plain foreign key that the composite one
// replaces.)
var storeWarnings = []findingKey{
	{verify.SeverityWarning, verify.CodeKeyWithoutTenant, "products_pkey"},
	{verify.SeverityWarning, verify.CodeKeyWithoutTenant, "purchases_pkey"},
	{verify.SeverityWarning, verify.CodeTenantNotIndexed, "public.purchases"},
}

func TestVerifyIsolatedStore(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	for _, conn := range []struct {
		name string
		conn catalog.Conn
	}{
		{"as owner", db.OwnerConn(t)},
		{"as app role", db.AppConn(t)},
		{"through a pool", db.AppPool(t)},
	} {
		t.Run(conn.name, func(t *testing.T) {
			r := mustVerify(t, conn.conn, storeOpts())
			assert.ElementsMatch(t, storeWarnings, findingKeys(r), "%v", r.Findings)
			assert.False(t, r.HasErrors())
			assert.NoError(t, r.Err())
		})
	}
}

// TestVerifyAcceptsCitusForm: policies with the expression without the
// subquery (CitusPolicyExpr, what Generate wrote for PostgreSQL too before
// 2026-11-26) are as right as PolicyExpr's; a third form is drift.
func TestVerifyAcceptsCitusForm(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, cleanStore)
	admin := db.AdminConn(t)
	var sql strings.Builder
	for _, tbl := range []struct{ name, col string }{{"stores", "id"}, {"products", "store_id"}, {"purchases", "store_id"}} {
		expr := policy.CitusPolicyExpr(tbl.col, rls.BigInt, rls.DefaultSetting)
		for _, pol := range []string{policy.IsolationPolicy, policy.GuardPolicy} {
			fmt.Fprintf(&sql, "ALTER POLICY %s ON %s USING (%s) WITH CHECK (%s);\n", pol, tbl.name, expr, expr)
		}
	}
	mustExec(t, admin, sql.String())
	// Accepted on plain PostgreSQL, but the older form lacks the
	// transaction stamp: a warning per policy, to regenerate them. With a
	// model and without one alike.
	var unstamped []findingKey
	for range 3 {
		for _, pol := range []string{policy.GuardPolicy, policy.IsolationPolicy} {
			unstamped = append(unstamped, findingKey{verify.SeverityWarning, verify.CodePolicyUnstamped, pol})
		}
	}
	r := mustVerify(t, db.OwnerConn(t), storeOpts())
	assert.ElementsMatch(t, unstamped, findingKeys(r))
	assert.False(t, r.HasErrors())
	inferred := mustVerify(t, db.OwnerConn(t), verify.Options{AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}})
	assert.ElementsMatch(t, unstamped, findingKeys(inferred))
	// Its fix gives the stamped form, which is clean.
	var fixes strings.Builder
	for _, f := range r.Findings {
		assert.Contains(t, f.Message, "app.current_tenant_xact")
		fixes.WriteString(f.Fix + "\n")
	}
	tx, err := admin.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), fixes.String())
	require.NoError(t, err)
	fixed, err := verify.Run(t.Context(), tx, storeOpts())
	require.NoError(t, err)
	assert.Empty(t, fixed.Findings)
	require.NoError(t, tx.Rollback(t.Context()))

	// Not just anything goes: the setting read twice is drift.
	mustExec(t, admin, `ALTER POLICY pgtenancy_tenant_guard ON stores
    USING (id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')::bigint) AND id = NULLIF(current_setting('app.current_tenant', true), '')::bigint)`)
	r = mustVerify(t, db.OwnerConn(t), storeOpts())
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodePolicyDrift, policy.GuardPolicy})
	for _, f := range r.Findings {
		assert.False(t, f.Code == verify.CodePolicyUnstamped && f.Table == "public.stores" && f.Object == policy.GuardPolicy,
			"a drifted policy is drift, not also unstamped")
	}
}

func TestVerifyCleanDatabaseHasNoFindings(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, cleanStore)
	r := mustVerify(t, db.OwnerConn(t), storeOpts())
	assert.Empty(t, r.Findings)

	// Without a model, from the tenant column: the same tables, inferred.
	// Since issue 16, a table the application role can read and that holds
	// no tenant data is a warning unless it is declared global.
	global := []string{"currencies"}
	r = mustVerify(t, db.OwnerConn(t), verify.Options{TenantColumn: "store_id", AppRole: pgtenancytest.AppRole, Global: global})
	assert.Empty(t, r.Findings)
	// And from the policies alone.
	r = mustVerify(t, db.OwnerConn(t), verify.Options{AppRole: pgtenancytest.AppRole, Global: global})
	assert.Empty(t, r.Findings)
	assert.Equal(t, []string{"public.products", "public.purchases", "public.stores"}, r.Tables)
	r = mustVerify(t, db.OwnerConn(t), verify.Options{AppRole: pgtenancytest.AppRole})
	assert.Equal(t, []findingKey{{verify.SeverityWarning, verify.CodeTableUnclassified, "public.currencies"}}, findingKeys(r))
}

// newRole creates a role for one test (roles are shared by the server's
// databases) and drops it when the test ends.
func newRole(t *testing.T, db *pgtenancytest.DB, attrs string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "pgtenancy_verify_" + hex.EncodeToString(b)
	admin := db.AdminConn(t)
	_, err := admin.Exec(t.Context(), "CREATE ROLE "+name+" "+attrs)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		_, err := admin.Exec(ctx, "REASSIGN OWNED BY "+name+" TO "+pgtenancytest.OwnerRole+"; DROP OWNED BY "+name+"; DROP ROLE "+name)
		assert.NoError(t, err)
	})
	return name
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	_, err := conn.Exec(t.Context(), sql)
	require.NoError(t, err, sql)
}

// TestVerifyFindsHoles builds each bad state in a copy of the isolated
// store and checks that Verify reports it, and nothing else (beyond the
// store's usual warnings) when exact.
func TestVerifyFindsHoles(t *testing.T) {
	t.Parallel()
	const app = pgtenancytest.AppRole
	E, W := verify.SeverityError, verify.SeverityWarning
	tests := []struct {
		name string
		sql  string // run as the admin role
		// prep may change the options and return SQL to run, for cases that
		// need a role of their own.
		prep    func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string
		want    []findingKey
		partial bool         // want is a subset of the findings, not all of them beyond storeWarnings
		gone    []findingKey // storeWarnings the bad state makes go away
	}{
		{
			name: "superuser",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.AppRole = newRole(t, db, "SUPERUSER")
				return ""
			},
			want:    []findingKey{{E, verify.CodeAppRoleSuperuser, ""}},
			partial: true,
		},
		{
			name: "bypassrls",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.AppRole = newRole(t, db, "BYPASSRLS")
				return ""
			},
			want: []findingKey{{E, verify.CodeAppRoleBypassRLS, ""}},
		},
		{
			name: "member of a bypassrls role",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				admin := newRole(t, db, "BYPASSRLS NOLOGIN")
				opts.AppRole = newRole(t, db, "LOGIN IN ROLE "+admin)
				return ""
			},
			want: []findingKey{{E, verify.CodeAppRoleBypassRLS, ""}},
		},
		{
			name: "owns a tenant table",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.AppRole = newRole(t, db, "LOGIN")
				return "ALTER TABLE products OWNER TO " + opts.AppRole
			},
			// REFERENCES is a warning since issue 16 when the role can
			// create no table to declare a foreign key in.
			want: []findingKey{
				{E, verify.CodeAppRoleOwnsTable, "public.products"},
				{E, verify.CodeTruncateGranted, "public.products"},
				{W, verify.CodeReferencesGranted, "public.products"},
				{W, verify.CodeTriggerGranted, "public.products"},
			},
		},
		{
			name: "member of the owner",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.AppRole = newRole(t, db, "LOGIN NOINHERIT IN ROLE "+pgtenancytest.OwnerRole)
				return ""
			},
			want: []findingKey{
				{E, verify.CodeAppRoleOwnsTable, "public.products"},
				{E, verify.CodeAppRoleOwnsTable, "public.purchases"},
				{E, verify.CodeAppRoleOwnsTable, "public.stores"},
			},
		},
		{
			name: "app role missing",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.AppRole = "pgtenancy_verify_no_such_role"
				return ""
			},
			want: []findingKey{{E, verify.CodeAppRoleMissing, "pgtenancy_verify_no_such_role"}},
		},
		{
			name: "no app role",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.Model.AppRole = ""
				return ""
			},
			want: []findingKey{{W, verify.CodeNoAppRole, ""}},
		},
		{
			name: "rls disabled",
			sql:  "ALTER TABLE products DISABLE ROW LEVEL SECURITY",
			want: []findingKey{{E, verify.CodeRLSDisabled, "public.products"}},
		},
		{
			name: "rls not forced",
			sql:  "ALTER TABLE purchases NO FORCE ROW LEVEL SECURITY",
			want: []findingKey{{E, verify.CodeRLSNotForced, "public.purchases"}},
		},
		{
			name: "policy missing",
			sql:  "DROP POLICY pgtenancy_tenant_isolation ON products",
			want: []findingKey{{E, verify.CodePolicyMissing, policy.IsolationPolicy}},
		},
		{
			name: "guard missing",
			sql:  "DROP POLICY pgtenancy_tenant_guard ON products",
			want: []findingKey{{W, verify.CodeGuardMissing, policy.GuardPolicy}},
		},
		{
			name: "policy expression drifted",
			sql:  "ALTER POLICY pgtenancy_tenant_isolation ON products USING (true)",
			want: []findingKey{{E, verify.CodePolicyDrift, policy.IsolationPolicy}},
		},
		{
			name: "policy roles drifted",
			sql:  "ALTER POLICY pgtenancy_tenant_guard ON purchases TO " + app,
			want: []findingKey{{E, verify.CodePolicyDrift, policy.GuardPolicy}},
		},
		{
			name: "policy reads another setting",
			sql: `DROP POLICY pgtenancy_tenant_isolation ON stores;
CREATE POLICY pgtenancy_tenant_isolation ON stores USING (id = NULLIF(current_setting('app.other', true), '')::bigint)`,
			want: []findingKey{{E, verify.CodePolicyDrift, policy.IsolationPolicy}},
		},
		{
			name: "policy made restrictive",
			sql: `DROP POLICY pgtenancy_tenant_isolation ON stores;
CREATE POLICY pgtenancy_tenant_isolation ON stores AS RESTRICTIVE
    USING (id = NULLIF(current_setting('app.current_tenant', true), '')::bigint)`,
			want: []findingKey{{E, verify.CodePolicyDrift, policy.IsolationPolicy}},
		},
		{
			name: "policy for SELECT only",
			sql: `DROP POLICY pgtenancy_tenant_isolation ON stores;
CREATE POLICY pgtenancy_tenant_isolation ON stores FOR SELECT
    USING (id = NULLIF(current_setting('app.current_tenant', true), '')::bigint)`,
			want: []findingKey{{E, verify.CodePolicyDrift, policy.IsolationPolicy}},
		},
		{
			name: "extra permissive policy under the guard",
			sql:  "CREATE POLICY open ON products USING (true)",
			want: []findingKey{{W, verify.CodePermissivePolicy, "open"}},
		},
		{
			name: "extra permissive policy without the guard",
			sql:  "CREATE POLICY open ON products FOR SELECT TO " + app + " USING (true); DROP POLICY pgtenancy_tenant_guard ON products",
			want: []findingKey{{E, verify.CodePermissivePolicy, "open"}, {W, verify.CodeGuardMissing, policy.GuardPolicy}},
		},
		{
			name: "tenant table not in the model",
			sql:  "CREATE TABLE coupons (store_id bigint NOT NULL, code text PRIMARY KEY)",
			want: []findingKey{{E, verify.CodeTableNotInModel, "public.coupons"}},
		},
		{
			name: "table not in the model with its own rls",
			sql:  "CREATE TABLE coupons (store_id bigint NOT NULL); ALTER TABLE coupons ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY",
			want: []findingKey{{W, verify.CodeTableNotInModel, "public.coupons"}},
		},
		{
			name: "foreign key without the tenant column",
			sql: `ALTER TABLE purchases DROP CONSTRAINT purchases_store_id_product_id_pgtenancy_fkey;
ALTER TABLE purchases ADD CONSTRAINT purchases_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id)`,
			want: []findingKey{{E, verify.CodeFKWithoutTenant, "purchases_product_id_fkey"}},
		},
		{
			name: "plain foreign key beside the composite one",
			sql:  "ALTER TABLE purchases ADD CONSTRAINT purchases_product_id_fkey FOREIGN KEY (product_id) REFERENCES products (id)",
			want: []findingKey{{W, verify.CodeFKBesideComposite, "purchases_product_id_fkey"}},
		},
		{
			name: "unique index without the tenant column",
			sql:  "CREATE UNIQUE INDEX products_name_idx ON products (name)",
			want: []findingKey{{W, verify.CodeKeyWithoutTenant, "products_name_idx"}},
		},
		{
			name: "privileges rls does not cover",
			sql: "GRANT TRUNCATE ON products TO PUBLIC; GRANT REFERENCES (id) ON purchases TO " + app +
				"; GRANT TRIGGER ON stores TO " + app,
			want: []findingKey{
				{E, verify.CodeTruncateGranted, "public.products"},
				{W, verify.CodeReferencesGranted, "public.purchases"},
				{W, verify.CodeTriggerGranted, "public.stores"},
			},
		},
		{
			name: "references granted to a role that can create tables",
			sql:  "GRANT REFERENCES (id) ON purchases TO " + app + "; GRANT CREATE ON SCHEMA public TO " + app,
			want: []findingKey{{E, verify.CodeReferencesGranted, "public.purchases"}},
		},
		{
			name: "view owned by a role held to the policies",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				return `CREATE VIEW product_list AS SELECT * FROM products;
ALTER VIEW product_list OWNER TO ` + pgtenancytest.OwnerRole + `;
GRANT SELECT ON product_list TO ` + app
			},
			want: []findingKey{{W, verify.CodeViewNotInvoker, "public.product_list"}},
		},
		{
			name: "views",
			sql: `
CREATE VIEW product_list AS SELECT * FROM products;
GRANT SELECT ON product_list TO ` + app + `;
CREATE VIEW safe_list WITH (security_invoker) AS SELECT * FROM products;
GRANT SELECT ON safe_list TO ` + app + `;
CREATE VIEW inner_v AS SELECT * FROM purchases;
CREATE VIEW outer_v WITH (security_invoker = on) AS SELECT * FROM inner_v;
GRANT SELECT ON outer_v TO ` + app + `;
CREATE VIEW inner_i WITH (security_invoker = true) AS SELECT * FROM stores;
CREATE VIEW outer_d AS SELECT * FROM inner_i;
GRANT SELECT ON outer_d TO ` + app + `;
CREATE VIEW currency_list AS SELECT * FROM currencies;
GRANT SELECT ON currency_list TO ` + app,
			want: []findingKey{
				{E, verify.CodeViewNotInvoker, "public.product_list"},
				{W, verify.CodeViewNotInvoker, "public.inner_v"},
				{E, verify.CodeViewNotInvoker, "public.outer_d"},
			},
		},
		{
			name: "materialized views",
			sql: `
CREATE MATERIALIZED VIEW sales AS SELECT store_id, count(*) FROM purchases GROUP BY 1;
GRANT SELECT ON sales TO ` + app + `;
CREATE MATERIALIZED VIEW private_sales AS SELECT store_id, count(*) FROM purchases GROUP BY 1`,
			want: []findingKey{{E, verify.CodeMatviewReadable, "public.sales"}},
		},
		{
			name: "security definer functions",
			sql: `
CREATE FUNCTION count_products() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$SELECT count(*) FROM public.products$$;
CREATE FUNCTION count_purchases() RETURNS bigint LANGUAGE sql SECURITY DEFINER BEGIN ATOMIC SELECT count(*) FROM purchases; END;
CREATE FUNCTION utc_now() RETURNS timestamptz LANGUAGE sql SECURITY DEFINER AS $$SELECT now()$$;
CREATE FUNCTION hidden() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$SELECT count(*) FROM stores$$;
REVOKE EXECUTE ON FUNCTION hidden() FROM PUBLIC;
CREATE FUNCTION invoker() RETURNS bigint LANGUAGE sql AS $$SELECT count(*) FROM stores$$`,
			want: []findingKey{
				{E, verify.CodeSecurityDefiner, "public.count_products()"},
				{E, verify.CodeSecurityDefiner, "public.count_purchases()"},
				{W, verify.CodeSecurityDefiner, "public.utc_now()"},
				{W, verify.CodeSecurityDefinerPath, "public.count_products()"},
				{W, verify.CodeSecurityDefinerPath, "public.count_purchases()"},
				{W, verify.CodeSecurityDefinerPath, "public.utc_now()"},
			},
		},
		{
			name: "library missing",
			sql:  "DROP FUNCTION pgtenancy.set_tenant(text)",
			want: []findingKey{{W, verify.CodeLibraryMissing, "pgtenancy.set_tenant(text)"}},
		},
		{
			name: "library altered",
			sql: `CREATE OR REPLACE FUNCTION pgtenancy.set_tenant(tenant text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('app.current_tenant', '1', true);
END$$`,
			want: []findingKey{{E, verify.CodeLibraryAltered, "pgtenancy.set_tenant(text)"}},
		},
		{
			name: "library made security definer",
			sql:  "ALTER FUNCTION pgtenancy.set_tenant(text) SECURITY DEFINER",
			want: []findingKey{
				{E, verify.CodeLibraryAltered, "pgtenancy.set_tenant(text)"},
				{W, verify.CodeSecurityDefiner, "pgtenancy.set_tenant(text)"},
				{W, verify.CodeSecurityDefinerPath, "pgtenancy.set_tenant(text)"},
			},
		},
		{
			name: "library not executable",
			sql:  "REVOKE EXECUTE ON FUNCTION pgtenancy.set_tenant(text) FROM PUBLIC",
			want: []findingKey{{W, verify.CodeLibraryNotExec, "pgtenancy.set_tenant(text)"}},
		},
		{
			name: "partition reachable directly",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.Model.Tables = append(opts.Model.Tables, policy.Table{Name: "events", TenantColumn: "store_id"})
				expr := policy.PolicyExpr("store_id", rls.BigInt, rls.DefaultSetting)
				return `
CREATE TABLE events (store_id bigint NOT NULL, at timestamptz) PARTITION BY HASH (store_id);
CREATE INDEX ON events (store_id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1);
ALTER TABLE events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY pgtenancy_tenant_isolation ON events USING (` + expr + `) WITH CHECK (` + expr + `);
CREATE POLICY pgtenancy_tenant_guard ON events AS RESTRICTIVE USING (` + expr + `) WITH CHECK (` + expr + `);
GRANT SELECT ON events TO ` + app + `;
GRANT SELECT ON events_1 TO ` + app
			},
			want: []findingKey{{E, verify.CodePartitionExposed, "public.events_1"}},
		},
		{
			name: "model tables missing or mistyped",
			prep: func(t *testing.T, db *pgtenancytest.DB, opts *verify.Options) string {
				opts.Model.Tables = append(opts.Model.Tables,
					policy.Table{Name: "ghosts", TenantColumn: "store_id"},
					policy.Table{Name: "notes", TenantColumn: "store_id"},
					policy.Table{Name: "tags", TenantColumn: "store_id"})
				return "CREATE TABLE notes (shop bigint); CREATE TABLE tags (store_id text)"
			},
			want: []findingKey{
				{E, verify.CodeTableMissing, "public.ghosts"},
				{E, verify.CodeTenantColumn, "public.notes.store_id"},
				{E, verify.CodeTenantColumnType, "public.tags.store_id"},
			},
			partial: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, isolatedStore)
			opts := storeOpts()
			sql := tt.sql
			if tt.prep != nil {
				sql = tt.prep(t, db, &opts)
			}
			if sql != "" {
				mustExec(t, db.AdminConn(t), sql)
			}
			r := mustVerify(t, db.OwnerConn(t), opts)
			got := findingKeys(r)
			for i := range got {
				if got[i].code == verify.CodeAppRoleSuperuser || got[i].code == verify.CodeAppRoleBypassRLS {
					got[i].object = "" // a random role name
				}
			}
			if tt.partial {
				for _, w := range tt.want {
					assert.Contains(t, got, w)
				}
			} else {
				base := slices.DeleteFunc(slices.Clone(storeWarnings), func(k findingKey) bool { return slices.Contains(tt.gone, k) })
				assert.ElementsMatch(t, append(base, tt.want...), got, "%v", r.Findings)
			}
			for _, f := range r.Findings {
				assert.NotEmpty(t, f.Message)
				assert.NotEmpty(t, f.Kind)
			}
			assert.Equal(t, slices.ContainsFunc(tt.want, func(k findingKey) bool { return k.sev == E }), r.HasErrors())
		})
	}
}

// TestVerifyLibrarySetting: with the library installed for one setting,
// verify finds nothing when the policies read that setting, and an altered
// library when they read another; the fix it proposes is the function the
// library installs for the right one. (The old test also compared verify's
// idea of pgtenancy.set_tenant with what the migrations package installs:
// that comparison belongs to migrations now, and policy's TestSetTenantBody
// compares policy.SetTenantBody with policy.LibrarySQL.)
func TestVerifyLibrarySetting(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	owner := db.OwnerConn(t)
	require.NoError(t, migrations.Install(t.Context(), owner, migrations.Options{Setting: "tenancy.shop"}))
	opts := verify.Options{AppRole: pgtenancytest.AppRole, Setting: "tenancy.shop"}
	r := mustVerify(t, owner, opts)
	assert.Empty(t, r.Findings, "an empty database with the library installed")

	// Without --setting, the library's own setting is the one its
	// functions name.
	opts.Setting = ""
	assert.Empty(t, mustVerify(t, owner, opts).Findings, "the library as installed for tenancy.shop")

	// Policies that read another setting: the library sets the wrong one.
	mustExec(t, db.AdminConn(t), `
CREATE TABLE notes (tenant_id bigint NOT NULL, id bigint, PRIMARY KEY (tenant_id, id));
ALTER TABLE notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_tenant ON notes USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);
GRANT SELECT ON notes TO `+pgtenancytest.AppRole)
	r = mustVerify(t, owner, opts)
	altered := func(r *verify.Report) *verify.Finding {
		for i, f := range r.Findings {
			if f.Code == verify.CodeLibraryAltered {
				return &r.Findings[i]
			}
		}
		return nil
	}
	f := altered(r)
	require.NotNil(t, f, "the function sets another setting than the policies read: %v", r.Findings)
	assert.Contains(t, f.Fix, "SET LOCAL app.current_tenant = %L")
	body, err := policy.SetTenantBody("")
	require.NoError(t, err)
	assert.Contains(t, f.Fix, "AS $pgtenancy$"+body+"$pgtenancy$;")

	// The fix it proposes is the function the library installs.
	mustExec(t, db.AdminConn(t), f.Fix)
	assert.Nil(t, altered(mustVerify(t, owner, opts)))
}

func TestVerifyReportErr(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	mustExec(t, db.AdminConn(t), "ALTER TABLE products NO FORCE ROW LEVEL SECURITY; ALTER TABLE stores DISABLE ROW LEVEL SECURITY")
	r := mustVerify(t, db.AppConn(t), storeOpts())
	require.True(t, r.HasErrors())
	err := r.Err()
	require.ErrorIs(t, err, verify.ErrFailed)
	var verr *verify.FailedError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Findings, 2)
	assert.Equal(t, r.Errors(), verr.Findings)
	assert.Equal(t, verify.CodeRLSNotForced, verr.Findings[0].Code)
	assert.Equal(t, "public.products", verr.Findings[0].Table)
	assert.Equal(t, verify.CodeRLSDisabled, verr.Findings[1].Code)
	assert.Contains(t, err.Error(), "rls_not_forced public.products")
	// Errors come first, in table order.
	assert.Equal(t, verr.Findings, r.Findings[:2])

	// Each fix, applied, clears its finding.
	admin := db.AdminConn(t)
	for _, f := range verr.Findings {
		mustExec(t, admin, f.Fix)
	}
	assert.NoError(t, mustVerify(t, db.AppConn(t), storeOpts()).Err())
}

func TestVerifyBadOptions(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	conn := db.OwnerConn(t)
	// All were *ModelErrors (ErrInvalidModel) before: a bad model still
	// is, bad options are *OptionsErrors.
	_, err := verify.Run(t.Context(), conn, verify.Options{Model: &policy.Model{}})
	assert.ErrorIs(t, err, policy.ErrInvalidModel)
	var me *policy.ModelError
	assert.ErrorAs(t, err, &me)
	for field, opts := range map[string]verify.Options{
		"TenantColumn": {TenantColumn: strings.Repeat("x", 64)},
		"AppRole":      {AppRole: "pg_monitor"},
		"Setting":      {Setting: "Bad Setting"},
		"Schemas":      {Schemas: []string{""}},
	} {
		_, err := verify.Run(t.Context(), conn, opts)
		assert.ErrorIs(t, err, verify.ErrInvalidOptions, "%+v", opts)
		var oe *verify.OptionsError
		if assert.ErrorAs(t, err, &oe, "%+v", opts) {
			assert.Equal(t, field, oe.Field)
		}
		assert.NotErrorIs(t, err, policy.ErrInvalidModel)
	}
}

// TestVerifyFixesClearFindings applies the Fix of every finding of a badly
// broken store and checks that Verify then finds no error.
func TestVerifyFixesClearFindings(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	admin := db.AdminConn(t)
	mustExec(t, admin, `
ALTER TABLE products DISABLE ROW LEVEL SECURITY, NO FORCE ROW LEVEL SECURITY;
DROP POLICY pgtenancy_tenant_isolation ON purchases;
ALTER POLICY pgtenancy_tenant_guard ON stores USING (true);
CREATE POLICY open ON stores USING (true);
ALTER TABLE purchases DROP CONSTRAINT purchases_store_id_product_id_pgtenancy_fkey;
GRANT TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public TO PUBLIC;
CREATE VIEW product_list AS SELECT * FROM products;
GRANT SELECT ON product_list TO `+pgtenancytest.AppRole+`;
CREATE MATERIALIZED VIEW sales AS SELECT store_id, count(*) FROM purchases GROUP BY 1;
GRANT SELECT ON sales TO `+pgtenancytest.AppRole+`;
CREATE FUNCTION count_products() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$SELECT count(*) FROM products$$;
`)
	r := mustVerify(t, db.AppConn(t), storeOpts())
	require.True(t, r.HasErrors())
	for _, f := range r.Findings {
		if f.Severity == verify.SeverityError {
			require.NotEmpty(t, f.Fix, "%v", f)
			mustExec(t, admin, f.Fix)
		}
	}
	r = mustVerify(t, db.AppConn(t), storeOpts())
	assert.NoError(t, r.Err())
}

// TestCodesDocumented: every code in report.go has its row in
// docs/verify.md, since codes are a contract with the tools that match
// them.
func TestCodesDocumented(t *testing.T) {
	src, err := os.ReadFile("report.go")
	require.NoError(t, err)
	doc, err := os.ReadFile("../docs/verify.md")
	require.NoError(t, err)
	codes := regexp.MustCompile(`Code = "([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	require.Greater(t, len(codes), 40)
	for _, c := range codes {
		assert.Contains(t, string(doc), "| `"+c[1]+"` |", "docs/verify.md has no row for %s", c[1])
	}
}
