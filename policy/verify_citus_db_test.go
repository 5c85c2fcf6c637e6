package policy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgrls/pgrls/policy"
	"github.com/pgrls/pgrls/rls"
)

// TestVerifyCitus runs the Citus checks against a real cluster. It needs
// CITUS_URL: the URL of a Citus coordinator, as a role that can create a
// schema and distribute tables. It works in a schema of its own, which it
// drops at the end.
func TestVerifyCitus(t *testing.T) {
	url := os.Getenv("CITUS_URL")
	if url == "" {
		t.Skip("CITUS_URL is not set: the Citus checks of Verify were not run against a cluster. " +
			"To run them, point CITUS_URL at a Citus coordinator: " +
			"CITUS_URL=postgres://user:pass@host:5432/db go test ./policy -run TestVerifyCitus")
	}
	t.Parallel()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	schema := "pgrls_verify_" + hex.EncodeToString(b)
	run := func(sql string) {
		t.Helper()
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	run("CREATE SCHEMA " + schema)
	t.Cleanup(func() {
		_, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		assert.NoError(t, err)
	})
	run(strings.ReplaceAll(`
SET search_path = @;
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE products (store_id bigint NOT NULL, id bigint NOT NULL, PRIMARY KEY (store_id, id));
CREATE TABLE purchases (store_id bigint NOT NULL, id bigint NOT NULL, product_id bigint, PRIMARY KEY (store_id, id));
SELECT create_distributed_table('@.stores', 'id');
SELECT create_distributed_table('@.products', 'store_id', colocate_with => '@.stores');
SELECT create_distributed_table('@.purchases', 'store_id', colocate_with => '@.stores');
ALTER TABLE purchases ADD FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id);
RESET search_path;`, "@", schema))
	model := &policy.Model{KeyType: rls.BigInt, Schema: schema, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "products", TenantColumn: "store_id"},
		{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"product_id"}, RefTable: "products"}}},
	}}
	plan, err := policy.Plan(ctx, conn, model)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\n"+plan.Up)
		return err
	}))

	citusErrors := func(r *policy.Report) []string {
		var out []string
		for _, f := range r.Findings {
			if strings.HasPrefix(string(f.Code), "citus_") && f.Severity == policy.SeverityError {
				out = append(out, string(f.Code)+" "+f.Object)
			}
		}
		return out
	}
	r, err := policy.Verify(ctx, conn, policy.VerifyOptions{Model: model})
	require.NoError(t, err)
	assert.Empty(t, citusErrors(r), "%v", r.Findings)

	// A table distributed by another column in a group of its own, RLS
	// created with DDL propagation off (the shards have none), and a table
	// left on the coordinator.
	expr := policy.PolicyExpr("store_id", rls.BigInt, policy.DefaultSetting)
	run(strings.ReplaceAll(`
CREATE TABLE @.refunds (store_id bigint NOT NULL, id bigint NOT NULL);
SELECT create_distributed_table('@.refunds', 'id', colocate_with => 'none');
CREATE TABLE @.notes (store_id bigint NOT NULL);
SET citus.enable_ddl_propagation = off;
ALTER TABLE @.refunds ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY pgrls_tenant_isolation ON @.refunds USING (`+expr+`) WITH CHECK (`+expr+`);
CREATE POLICY pgrls_tenant_guard ON @.refunds AS RESTRICTIVE USING (`+expr+`) WITH CHECK (`+expr+`);
RESET citus.enable_ddl_propagation;`, "@", schema))
	model.Tables = append(model.Tables, policy.Table{Name: "refunds", TenantColumn: "store_id"}, policy.Table{Name: "notes", TenantColumn: "store_id"})
	r, err = policy.Verify(ctx, conn, policy.VerifyOptions{Model: model})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"citus_not_distributed " + schema + ".notes",
		"citus_distribution_column " + schema + ".refunds",
		"citus_not_colocated " + schema + ".refunds",
		"citus_shard_unprotected " + schema + ".refunds",
	}, citusErrors(r), "%v", r.Findings)
}
