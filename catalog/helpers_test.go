package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

func ddlTemplate(name, ddl string) *pgtenancytest.Template {
	return &pgtenancytest.Template{Name: name, Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, ddl)
		return err
	}}
}

var storeTemplates = map[rls.KeyType]*pgtenancytest.Template{
	rls.BigInt:  ddlTemplate("policy_store_bigint", storeDDL(rls.BigInt)),
	rls.UUID:    ddlTemplate("policy_store_uuid", storeDDL(rls.UUID)),
	rls.Text:    ddlTemplate("policy_store_text", storeDDL(rls.Text)),
	rls.Integer: ddlTemplate("policy_store_integer", storeDDL(rls.Integer)),
}

var quotingTemplate = ddlTemplate("policy_quoting", quotingDDL+`GRANT USAGE ON SCHEMA "Sales Data" TO `+pgtenancytest.AppRole+`;`)

var keyTypes = []rls.KeyType{rls.BigInt, rls.UUID, rls.Text, rls.Integer}

// isolatedStore is the test store as a user would set it up: the schema
// and its rows, the library objects, and the planned isolation applied.
var isolatedStore = &pgtenancytest.Template{
	Name: "verify_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return setupIsolated(ctx, conn, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt), testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	},
}

// setupIsolated creates a schema, installs the library and applies what
// catalog.Plan writes for the model (Resolve and Generate before), in one
// transaction.
func setupIsolated(ctx context.Context, conn *pgx.Conn, ddl string, model *policy.Model) error {
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if err := migrations.Install(ctx, conn, migrations.Options{Setting: model.Setting}); err != nil {
		return err
	}
	plan, err := catalog.Plan(ctx, conn, model)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, plan.Up)
		return err
	})
}

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

// setTenantSQL sets the tenant setting $1 to $2 for the current
// transaction, and its companion $3 ([rls.XactSetting]) to the
// transaction's stamp, as the pool and pgtenancy.set_tenant do: the
// generated policies admit the tenant only then.
const setTenantSQL = `SELECT pg_catalog.set_config($1, $2, true), pg_catalog.set_config($3, ` + rls.XactStamp + `, true)`

// inTenant runs fn in a transaction of conn with the tenant setting set
// locally (to nothing when id is empty), with its companion stamp.
func inTenant(t *testing.T, conn *pgx.Conn, setting, id string, fn func(tx pgx.Tx) error) error {
	t.Helper()
	return pgx.BeginFunc(t.Context(), conn, func(tx pgx.Tx) error {
		if id != "" {
			if _, err := tx.Exec(t.Context(), setTenantSQL, setting, id, rls.XactSetting(setting)); err != nil {
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

func mustExec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	_, err := conn.Exec(t.Context(), sql)
	require.NoError(t, err, sql)
}

func mustPlan(t *testing.T, conn catalog.Conn, m *policy.Model) *policy.Migration {
	t.Helper()
	plan, err := catalog.Plan(t.Context(), conn, m)
	require.NoError(t, err)
	return plan
}

func mustExisting(t *testing.T, conn catalog.Conn, m *policy.Model) *policy.Existing {
	t.Helper()
	e, err := catalog.Existing(t.Context(), conn, m)
	require.NoError(t, err)
	return e
}

// generateResolved is what Generate wrote for a model that Resolve had
// completed from the catalog: the SQL for the model with the catalog's
// facts (keys, composite and plain foreign keys, Citus's constraints)
// applied, and nothing left out for being in place already.
func generateResolved(t *testing.T, conn catalog.Conn, m *policy.Model) *policy.Migration {
	t.Helper()
	e := mustExisting(t, conn, m)
	mig, err := policy.Plan(m, &policy.Existing{Constraints: e.Constraints,
		SerialSequences: e.SerialSequences, SequencesWithoutUsage: e.SequencesWithoutUsage})
	require.NoError(t, err)
	return mig
}

// constraintsOf returns the constraints of e on a table, of a type.
func constraintsOf(e *policy.Existing, table, typ string) []policy.Constraint {
	var out []policy.Constraint
	for _, c := range e.Constraints {
		if c.Table == table && c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

func mustVerify(t *testing.T, conn catalog.Conn, opts verify.Options) *verify.Report {
	t.Helper()
	r, err := verify.Run(t.Context(), conn, opts)
	require.NoError(t, err)
	return r
}
