package catalog_test

import (
	"strings"
	"testing"

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

// TestPlanFreshEqualsGenerate: on a database without any of the isolation,
// the plan is exactly what Generate wrote for the resolved model (the SQL
// with the catalog's facts applied and nothing left out); applied, verify
// finds no error and the next plan is empty.
func TestPlanFreshEqualsGenerate(t *testing.T) {
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
			owner := db.OwnerConn(t)
			want := generateResolved(t, owner, c.model)
			plan := mustPlan(t, owner, c.model)
			assert.Equal(t, want.Up, plan.Up)
			assert.Equal(t, want.Down, plan.Down)

			require.NoError(t, migrations.Install(t.Context(), owner, migrations.Options{Setting: c.model.Setting}))
			execTx(t, owner, plan.Up)
			r := mustVerify(t, db.AppConn(t), verify.Options{Model: c.model})
			assert.NoError(t, r.Err())
			assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, c.model), "nothing left to do")
		})
	}
}

func TestPlanMatchingDatabaseIsEmpty(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	for _, conn := range []catalog.Conn{db.OwnerConn(t), db.AppPool(t)} {
		plan := mustPlan(t, conn, testschema.Model(rls.BigInt, pgtenancytest.AppRole))
		assert.Empty(t, plan.Up)
		assert.Empty(t, plan.Down)
	}
}

// TestPlanRepairsDrift breaks parts of the isolation and checks that the
// plan restates exactly those, that applying it repairs them, and that its
// Down puts the broken state back.
func TestPlanRepairsDrift(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	model := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	mustExec(t, admin, `
ALTER TABLE products DISABLE ROW LEVEL SECURITY;
ALTER TABLE stores NO FORCE ROW LEVEL SECURITY;
ALTER POLICY pgtenancy_tenant_isolation ON purchases TO `+pgtenancytest.AppRole+` USING (true);
DROP POLICY pgtenancy_tenant_guard ON stores;
ALTER TABLE purchases DROP CONSTRAINT purchases_store_id_product_id_pgtenancy_fkey;`)
	broken := snapshot(t, admin)

	plan := mustPlan(t, owner, model)
	expr := policy.PolicyExpr("store_id", rls.BigInt, rls.DefaultSetting)
	for _, s := range []string{
		`ALTER TABLE "public"."purchases" ADD CONSTRAINT "purchases_store_id_product_id_pgtenancy_fkey" FOREIGN KEY ("store_id", "product_id") REFERENCES "public"."products" ("store_id", "id");`,
		`ALTER TABLE "public"."products" ENABLE ROW LEVEL SECURITY;`,
		`ALTER TABLE "public"."stores" FORCE ROW LEVEL SECURITY;`,
		`DROP POLICY "pgtenancy_tenant_isolation" ON "public"."purchases";` + "\n" +
			`CREATE POLICY "pgtenancy_tenant_isolation" ON "public"."purchases" AS PERMISSIVE FOR ALL TO PUBLIC` + "\n    USING (" + expr + ")",
		`CREATE POLICY "pgtenancy_tenant_guard" ON "public"."stores" AS RESTRICTIVE`,
	} {
		assert.Contains(t, plan.Up, s)
	}
	assert.Equal(t, 2, strings.Count(plan.Up, "CREATE POLICY"), "only the broken policies")
	for _, s := range []string{"UNIQUE", "GRANT", `"products" FORCE`, `"stores" ENABLE`, `ON "public"."products"`} {
		assert.NotContains(t, plan.Up, s)
	}
	assert.Contains(t, plan.Down, `CREATE POLICY "pgtenancy_tenant_isolation" ON "public"."purchases" AS PERMISSIVE FOR ALL TO "`+pgtenancytest.AppRole+`"`+"\n    USING (true)")

	execTx(t, owner, plan.Up)
	r := mustVerify(t, db.AppConn(t), verify.Options{Model: model})
	assert.NoError(t, r.Err())
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, model))

	execTx(t, owner, plan.Down)
	assert.Equal(t, broken, snapshot(t, admin), "Down restores the state before the plan")
}

func TestPlanPrivileges(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	model := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	mustExec(t, admin, "REVOKE DELETE ON products FROM "+pgtenancytest.AppRole+"; GRANT TRUNCATE ON stores TO PUBLIC")
	plan := mustPlan(t, owner, model)
	for _, s := range []string{
		// Only what the role lacks.
		`GRANT DELETE ON TABLE "public"."products" TO "pgtenancy_test_app";`,
		`REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLE "public"."stores" FROM "pgtenancy_test_app", PUBLIC;`,
	} {
		assert.Contains(t, plan.Up, s)
	}
	assert.NotContains(t, plan.Up, `ON TABLE "public"."purchases"`)
	assert.NotContains(t, plan.Up, `SELECT, INSERT`)
	assert.NotContains(t, plan.Up, "POLICY")
	assert.NotContains(t, plan.Up, "SEQUENCE", "identity columns need no sequence privilege")
	assert.Contains(t, plan.Down, `REVOKE DELETE ON TABLE "public"."products" FROM "pgtenancy_test_app";`)
	privileges := func() []string {
		var got []string
		for _, priv := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
			var ok bool
			require.NoError(t, admin.QueryRow(t.Context(), "SELECT has_table_privilege($1, 'products', $2)", pgtenancytest.AppRole, priv).Scan(&ok))
			if ok {
				got = append(got, priv)
			}
		}
		return got
	}
	execTx(t, owner, plan.Up)
	assert.Equal(t, []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, privileges())
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, model))
	// Down takes back what Up granted, and only that.
	execTx(t, owner, plan.Down)
	assert.Equal(t, []string{"SELECT", "INSERT", "UPDATE"}, privileges())
	execTx(t, owner, plan.Up)

	// Identity columns need no privilege on their sequence; a serial
	// column's default needs USAGE.
	mustExec(t, admin, "REVOKE USAGE ON SEQUENCE purchases_id_seq FROM "+pgtenancytest.AppRole)
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, model))
	mustExec(t, owner, "ALTER TABLE purchases ADD COLUMN line serial")
	plan = mustPlan(t, owner, model)
	assert.Contains(t, plan.Up, "GRANT USAGE ON SEQUENCE")
	assert.NotContains(t, plan.Up, "ON TABLE")
	execTx(t, owner, plan.Up)
	var usage bool
	require.NoError(t, admin.QueryRow(t.Context(), "SELECT has_sequence_privilege($1, 'purchases_line_seq', 'USAGE')", pgtenancytest.AppRole).Scan(&usage))
	assert.True(t, usage)
}

func TestPlanErrors(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	owner := db.OwnerConn(t)
	_, err := catalog.Plan(t.Context(), owner, &policy.Model{})
	assert.ErrorIs(t, err, policy.ErrInvalidModel)
	m := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	m.Tables = append(m.Tables, policy.Table{Name: "ghosts", TenantColumn: "store_id"})
	_, err = catalog.Plan(t.Context(), owner, m)
	assert.ErrorIs(t, err, catalog.ErrSchemaMismatch)
}

// TestPlanSequencePrivileges: Plan grants USAGE only on the serial
// columns' sequences the role lacks, and Down revokes only those.
func TestPlanSequencePrivileges(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	mustExec(t, owner, "ALTER TABLE purchases ADD COLUMN line serial")
	mustExec(t, admin, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO `+pgtenancytest.AppRole+`;
		GRANT USAGE ON SEQUENCE purchases_id_seq TO `+pgtenancytest.AppRole+`;
		REVOKE DELETE ON products FROM `+pgtenancytest.AppRole)
	usage := func(seq string) bool {
		var ok bool
		require.NoError(t, admin.QueryRow(t.Context(), "SELECT has_sequence_privilege($1, $2, 'USAGE')", pgtenancytest.AppRole, seq).Scan(&ok))
		return ok
	}
	require.True(t, usage("purchases_id_seq"))
	require.False(t, usage("purchases_line_seq"))
	m := storeModel(rls.BigInt, pgtenancytest.AppRole)
	plan := mustPlan(t, owner, m)
	assert.Contains(t, plan.Up, `GRANT USAGE ON SEQUENCE public.purchases_line_seq TO "pgtenancy_test_app";`)
	assert.NotContains(t, plan.Up, "purchases_id_seq")
	execTx(t, owner, plan.Up)
	assert.True(t, usage("purchases_line_seq"))
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, m))
	execTx(t, owner, plan.Down)
	assert.True(t, usage("purchases_id_seq"), "Down keeps the USAGE the role held before")
	assert.False(t, usage("purchases_line_seq"), "Down takes back what Up granted")
}

// TestPlanSigned: with the library installed, a signed model's plan is
// Generate's (signed policies, signed tenant column defaults); applied,
// verify finds no error under the signed model and the next plan is empty;
// the same plan for the unsigned model replaces the signed policies.
func TestPlanSigned(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplates[rls.BigInt])
	owner := db.OwnerConn(t)
	require.NoError(t, migrations.Install(t.Context(), owner, migrations.Options{}))
	m := storeModel(rls.BigInt, pgtenancytest.AppRole)
	m.Signed = true
	want := generateResolved(t, owner, m)
	plan := mustPlan(t, owner, m)
	assert.Equal(t, want.Up, plan.Up)
	assert.Contains(t, plan.Up, policy.SignedTenantDefaultExpr(rls.BigInt))
	assert.NotContains(t, plan.Up, "current_setting")
	execTx(t, owner, plan.Up)
	r := mustVerify(t, db.AppConn(t), verify.Options{Model: m})
	assert.NoError(t, r.Err())
	assert.Equal(t, &policy.Migration{}, mustPlan(t, owner, m), "nothing left to do")
	unsigned := mustPlan(t, owner, storeModel(rls.BigInt, pgtenancytest.AppRole))
	assert.Contains(t, unsigned.Up, "DROP POLICY")
	assert.Contains(t, unsigned.Up, "current_setting")
}
