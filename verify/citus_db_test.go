package verify_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// citusStore creates the store schema of internal/testschema, seeded, on a
// fresh Citus database, installs the library, and applies the Citus
// migration that catalog.Plan writes, as the tables' owner (not a
// superuser) and in one Exec, as tern runs a migration. (As in the catalog
// package's tests.)
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
	mig, err := catalog.Plan(ctx, owner, m)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, mig.Up)
		return err
	}))
	return db, m, mig
}

// citusFindings lists the findings of r as "severity code object", Citus
// ones and errors only, sorted.
func citusFindings(r *verify.Report) []string {
	var out []string
	for _, f := range r.Findings {
		if strings.HasPrefix(string(f.Code), "citus_") || f.Severity == verify.SeverityError {
			out = append(out, fmt.Sprintf("%s %s %s", f.Severity, f.Code, f.Object))
		}
	}
	slices.Sort(out)
	return out
}

// TestVerifyCitus runs verify's Citus checks against a real cluster
// (CITUS_URL): a database set up by the Citus migration gives no error, and
// each bad state gives its finding.
func TestVerifyCitus(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db, model, _ := citusStore(t, rls.BigInt)
	ctx := t.Context()
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	run := func(conn *pgx.Conn, sql string) {
		t.Helper()
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	verifyModel := func(m *policy.Model) *verify.Report {
		t.Helper()
		// As the application role: verify needs no privilege beyond it.
		r, err := verify.Run(ctx, db.AppConn(t), verify.Options{Model: m, AppRole: pgtenancytest.AppRole})
		require.NoError(t, err)
		return r
	}
	setPropagate := func(value string) {
		run(admin, fmt.Sprintf("ALTER ROLE %s IN DATABASE %s SET citus.propagate_set_commands = %s",
			pgtenancytest.AppRole, sqlquote.Ident(db.Name), sqlquote.Literal(value)))
	}

	// Citus 13.2 creates the policies on the shards without AS
	// RESTRICTIVE: verify warns about the guard on every tenant table.
	flipped := func(tables ...string) []string {
		var out []string
		for _, table := range tables {
			out = append(out, "warning citus_shard_unprotected public."+table)
		}
		return out
	}
	guards := flipped("products", "purchases", "stores")
	with := func(extra ...string) []string {
		out := append(slices.Clone(guards), extra...)
		slices.Sort(out)
		return out
	}

	setPropagate("local")
	r := verifyModel(model)
	assert.Equal(t, guards, citusFindings(r), "%v", r.Findings)
	assert.NoError(t, r.Err())

	// Without a model, as a first run with default flags: the same tenant
	// tables inferred from the policies, the same findings, and nothing
	// from Citus's own objects.
	r, err := verify.Run(ctx, db.AppConn(t), verify.Options{AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"public.products", "public.purchases", "public.stores"}, r.Tables)
	assert.Equal(t, guards, citusFindings(r), "%v", r.Findings)
	assert.NoError(t, r.Err())

	t.Run("another permissive policy", func(t *testing.T) {
		// On the coordinator the restrictive guard keeps it to the tenant's
		// rows; on the shards, where the guard is permissive, it is not.
		run(owner, "CREATE POLICY everything ON products FOR SELECT USING (true)")
		defer run(owner, "DROP POLICY everything ON products")
		app := db.AppConn(t)
		tx, err := app.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(context.WithoutCancel(ctx))
		_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant('1') FROM set_config('citus.propagate_set_commands', 'local', true)")
		require.NoError(t, err)
		var n int
		require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
		assert.Equal(t, 6, n, "measured: the permissive guard on the shards lets the extra policy through")
		require.NoError(t, tx.Rollback(ctx))

		r := verifyModel(model)
		got := citusFindings(r)
		assert.Contains(t, got, "error citus_shard_unprotected public.products")
		assert.Error(t, r.Err())
	})

	t.Run("propagate_set_commands not local", func(t *testing.T) {
		setPropagate("none")
		defer setPropagate("local")
		assert.Equal(t, with("warning citus_propagate_set_commands citus.propagate_set_commands"), citusFindings(verifyModel(model)))
	})

	t.Run("a shard without its policy", func(t *testing.T) {
		var shard int64
		var host string
		var port int
		require.NoError(t, admin.QueryRow(ctx, `SELECT shardid, nodename, nodeport FROM citus_shards
			WHERE table_name = 'products'::regclass ORDER BY shardid LIMIT 1`).Scan(&shard, &host, &port))
		var node pgtenancytest.CitusNode
		for _, w := range db.Workers {
			if w.Host == host && w.Port == port {
				node = w
			}
		}
		require.NotZero(t, node.Port, "shard %d on %s:%d", shard, host, port)
		worker, err := pgx.Connect(ctx, db.NodeAdminURL(node))
		require.NoError(t, err)
		defer worker.Close(context.WithoutCancel(ctx))
		shardTable := fmt.Sprintf("public.products_%d", shard)
		run(worker, "SET citus.enable_manual_changes_to_shards = on; DROP POLICY "+policy.GuardPolicy+" ON "+shardTable)
		r := verifyModel(model)
		assert.Equal(t, with("error citus_shard_unprotected public.products"), citusFindings(r))
		for _, f := range r.Findings {
			if f.Code == verify.CodeCitusShard && f.Severity == verify.SeverityError {
				assert.Contains(t, f.Message, fmt.Sprint(shard))
			}
		}
		expr := policy.CitusPolicyExpr("store_id", rls.BigInt, rls.DefaultSetting)
		run(worker, "SET citus.enable_manual_changes_to_shards = on; CREATE POLICY "+policy.GuardPolicy+" ON "+shardTable+
			" AS RESTRICTIVE USING ("+expr+") WITH CHECK ("+expr+")")
		assert.Equal(t, guards, citusFindings(verifyModel(model)), "the shard's guard is restrictive again")

		run(worker, "SET citus.enable_manual_changes_to_shards = on; ALTER TABLE "+shardTable+" NO FORCE ROW LEVEL SECURITY")
		assert.Equal(t, with("error citus_shard_unprotected public.products"), citusFindings(verifyModel(model)))
		run(worker, "SET citus.enable_manual_changes_to_shards = on; ALTER TABLE "+shardTable+" FORCE ROW LEVEL SECURITY")
		assert.Equal(t, guards, citusFindings(verifyModel(model)))
	})

	t.Run("bad distribution", func(t *testing.T) {
		// refunds: distributed by another column, in a co-location group of
		// its own, its RLS created with DDL propagation off (no shard has
		// it); notes: left on the coordinator; gifts: a reference table.
		expr := policy.CitusPolicyExpr("store_id", rls.BigInt, rls.DefaultSetting)
		run(owner, `
CREATE TABLE refunds (store_id bigint NOT NULL, id bigint NOT NULL);
SELECT create_distributed_table('refunds', 'id', colocate_with => 'none');
CREATE TABLE notes (store_id bigint NOT NULL);
CREATE TABLE gifts (store_id bigint NOT NULL);
SELECT create_reference_table('gifts');
CREATE TABLE audits (store_id bigint NOT NULL);
SELECT create_distributed_table('audits', 'store_id', colocate_with => 'none');`)
		for _, table := range []string{"refunds", "notes", "gifts", "audits"} {
			ddl := "SET citus.enable_ddl_propagation = off; "
			if table == "notes" || table == "audits" {
				ddl = ""
			}
			// One statement at a time: Citus propagates ALTER TABLE with
			// the whole query string.
			for _, sql := range []string{
				ddl + "ALTER TABLE " + table + " ENABLE ROW LEVEL SECURITY",
				ddl + "ALTER TABLE " + table + " FORCE ROW LEVEL SECURITY",
				ddl + "CREATE POLICY pgtenancy_tenant_isolation ON " + table + " USING (" + expr + ") WITH CHECK (" + expr + ")",
				ddl + "CREATE POLICY pgtenancy_tenant_guard ON " + table + " AS RESTRICTIVE USING (" + expr + ") WITH CHECK (" + expr + ")",
			} {
				run(owner, sql)
			}
			run(owner, "RESET citus.enable_ddl_propagation")
		}
		m := *model
		m.Tables = slices.Clone(model.Tables)
		for _, table := range []string{"refunds", "notes", "gifts", "audits"} {
			m.Tables = append(m.Tables, policy.Table{Name: table, TenantColumn: "store_id"})
		}
		assert.Equal(t, with(
			"error citus_distribution_column public.refunds",
			"error citus_not_colocated public.audits",
			"error citus_not_colocated public.refunds",
			"error citus_not_distributed public.gifts",
			"error citus_not_distributed public.notes",
			"error citus_shard_unprotected public.refunds",
			"warning citus_shard_unprotected public.audits",
		), citusFindings(verifyModel(&m)))
	})
}
