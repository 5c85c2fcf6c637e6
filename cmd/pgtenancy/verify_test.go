package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isolatedStoreSchema is the store with the library installed and the
// generated isolation applied.
var isolatedStoreSchema = &pgtenancytest.Template{
	Name: "cli_isolated_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Isolated(ctx, conn, rls.BigInt, pgtenancytest.AppRole)
	},
}

func call(t *testing.T, fn func(context.Context, []string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := fn(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var discoverFlags = []string{"--tenant-column", "store_id", "--root", "stores", "--global", "currencies", "--app-role", pgtenancytest.AppRole}

func TestVerifyCommandClean(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStoreSchema)
	for _, args := range [][]string{
		discoverFlags,
		append([]string{"--app-role", pgtenancytest.AppRole}, declaredFlags...),
		{"--tenant-column", "store_id", "--app-role", pgtenancytest.AppRole},
	} {
		code, stdout, stderr := call(t, runVerify, append([]string{"--database-url", db.AppURL}, args...)...)
		assert.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stderr)
		assert.Contains(t, stdout, "3 tenant tables checked: 0 error(s), 3 warning(s)")
		assert.Contains(t, stdout, "\n  warning tenant_column_not_indexed: table public.purchases:")
		assert.Contains(t, stdout, `    fix: CREATE INDEX ON "public"."purchases" ("store_id");`)
		assert.NotContains(t, stdout, "\x1b[", "no colour when not on a terminal")
	}
}

func TestVerifyCommandErrorsAndJSON(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStoreSchema)
	admin := db.AdminConn(t)
	_, err := admin.Exec(t.Context(), `ALTER TABLE products NO FORCE ROW LEVEL SECURITY;
CREATE VIEW product_list AS SELECT * FROM products; GRANT SELECT ON product_list TO `+pgtenancytest.AppRole)
	require.NoError(t, err)

	code, stdout, stderr := call(t, runVerify, append([]string{"--database-url", db.OwnerURL}, discoverFlags...)...)
	assert.Equal(t, exitFindings, code, stderr)
	assert.Contains(t, stdout, "public.products\n  error   rls_not_forced: table public.products: row level security is not forced")
	assert.Contains(t, stdout, `    fix: ALTER TABLE "public"."products" FORCE ROW LEVEL SECURITY;`)
	assert.Contains(t, stdout, "other objects\n  error   view_not_security_invoker: view public.product_list:")
	assert.Contains(t, stdout, "3 tenant tables checked: 2 error(s), 3 warning(s)")
	assert.Less(t, strings.Index(stdout, "public.products\n"), strings.Index(stdout, "public.purchases\n"))
	assert.Less(t, strings.Index(stdout, "public.purchases\n"), strings.Index(stdout, "other objects\n"), "other objects last")

	code, stdout, stderr = call(t, runVerify, append([]string{"--database-url", db.OwnerURL, "--format", "json"}, discoverFlags...)...)
	assert.Equal(t, exitFindings, code, stderr)
	// The documented shape, field by field.
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	assert.ElementsMatch(t, []string{"ok", "errors", "warnings", "tables", "findings"}, keysOf(raw))
	var out struct {
		OK       bool                `json:"ok"`
		Errors   int                 `json:"errors"`
		Warnings int                 `json:"warnings"`
		Tables   []string            `json:"tables"`
		Findings []map[string]string `json:"findings"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.False(t, out.OK)
	assert.Equal(t, 2, out.Errors)
	assert.Equal(t, 3, out.Warnings)
	assert.Equal(t, []string{"public.products", "public.purchases", "public.stores"}, out.Tables)
	require.Len(t, out.Findings, 5)
	assert.Equal(t, map[string]string{
		"severity": "error",
		"code":     "rls_not_forced",
		"kind":     "table",
		"object":   "public.products",
		"table":    "public.products",
		"message":  "row level security is not forced: the table owner bypasses every policy",
		"fix":      `ALTER TABLE "public"."products" FORCE ROW LEVEL SECURITY;`,
	}, out.Findings[0])
	var order []string
	for _, f := range out.Findings {
		order = append(order, f["severity"]+" "+f["code"]+" "+f["object"])
	}
	assert.Equal(t, []string{
		"error rls_not_forced public.products",
		"error view_not_security_invoker public.product_list",
		"warning key_without_tenant products_pkey",
		"warning key_without_tenant purchases_pkey",
		"warning tenant_column_not_indexed public.purchases",
	}, order, "errors first, then by table")
	_, hasTable := findingJSON(t, stdout, "view_not_security_invoker")["table"]
	assert.False(t, hasTable, "no table field for objects outside a table")
}

func keysOf(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func findingJSON(t *testing.T, out, code string) map[string]any {
	t.Helper()
	var r struct{ Findings []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	for _, f := range r.Findings {
		if f["code"] == code {
			return f
		}
	}
	t.Fatalf("no finding %s in %s", code, out)
	return nil
}

func TestVerifyCommandCleanJSON(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	code, stdout, stderr := call(t, runVerify, "--database-url", db.OwnerURL, "--format", "json", "--app-role", pgtenancytest.AppRole)
	assert.Equal(t, exitOK, code, stderr)
	assert.JSONEq(t, `{"ok": true, "errors": 0, "warnings": 1, "tables": [], "findings": [{
		"severity": "warning", "code": "library_missing", "kind": "function", "object": "pgtenancy.set_tenant(text)",
		"message": "the library function is not installed (run pgtenancy install, or apply migrations.LibrarySQL); the pool sets the tenant with set_config on plain PostgreSQL, so this matters for Citus and for code that calls it"}]}`, stdout)
}

func TestVerifyCommandData(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	owner := db.OwnerConn(t)
	_, err := owner.Exec(t.Context(), "INSERT INTO purchases (store_id, id, product_id, quantity) VALUES (1, 1999, 201, 1)")
	require.NoError(t, err)
	code, stdout, stderr := call(t, runVerify, append([]string{"--database-url", db.OwnerURL, "--data", "--format", "json"}, discoverFlags...)...)
	assert.Equal(t, exitFindings, code, stderr)
	f := findingJSON(t, stdout, "cross_tenant_reference")
	assert.Equal(t, "public.purchases", f["object"])
	assert.Contains(t, f["message"], "1 row(s)")
	assert.Contains(t, f["message"], "(1,201) -> 2")

	// The data check needs foreign keys, hence a model.
	code, _, stderr = call(t, runVerify, "--database-url", db.OwnerURL, "--data", "--tenant-column", "store_id")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "--data needs a model")
}

func TestVerifyCommandCannotRun(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	path := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"Tabels": []}`), 0o644))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad format", []string{"--database-url", db.OwnerURL, "--format", "xml"}, "--format"},
		{"unreachable", []string{"--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"}, "127.0.0.1"},
		{"bad model file", []string{"--database-url", db.OwnerURL, "--model", path}, "Tabels"},
		{"bad app role", []string{"--database-url", db.OwnerURL, "--app-role", "pg_monitor"}, "pg_monitor"},
		{"discovery without tenant column", []string{"--database-url", db.OwnerURL, "--root", "stores"}, "TenantColumn"},
		{"stray argument", []string{"--database-url", db.OwnerURL, "extra"}, "extra"},
	}
	for _, tt := range tests {
		code, stdout, stderr := call(t, runVerify, tt.args...)
		assert.Equal(t, exitError, code, tt.name)
		assert.Empty(t, stdout, tt.name)
		assert.Contains(t, stderr, tt.want, tt.name)
	}
	code, _, _ := call(t, runVerify, "-h")
	assert.Equal(t, exitOK, code)
}

func TestPlanCommand(t *testing.T) {
	t.Parallel()
	fresh := pgtenancytest.NewDB(t, storeSchema)
	want, err := catalog.Plan(t.Context(), fresh.OwnerConn(t), testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)
	// On a database without any of it, the plan is everything Generate
	// writes, and the drop of the plain foreign key a composite one
	// replaces; the sequences it finds (none here: identity columns) in
	// plain GRANTs instead of Generate's DO block.
	gen, err := policy.Generate(testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)
	genUp, _, _ := strings.Cut(gen.Up, "-- Sequences owned by tenant table columns.")
	for _, line := range strings.Split(genUp, "\n") {
		assert.Contains(t, want.Up, line)
	}
	assert.Contains(t, want.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`)

	code, stdout, stderr := call(t, runPlan, append([]string{"--database-url", fresh.OwnerURL}, discoverFlags...)...)
	assert.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want.Up, stdout)
	code, stdout, stderr = call(t, runPlan, append([]string{"--database-url", fresh.OwnerURL, "--down"}, declaredFlags...)...)
	assert.Equal(t, exitOK, code, stderr)
	assert.Equal(t, want.Down, stdout)

	done := pgtenancytest.NewDB(t, isolatedStoreSchema)
	code, stdout, stderr = call(t, runPlan, append([]string{"--database-url", done.OwnerURL}, discoverFlags...)...)
	assert.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "nothing to do")

	code, _, stderr = call(t, runPlan, "--database-url", done.OwnerURL, "--tenant-column", "store_id")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "no model")
}

// TestVerifyNoDatabase is not parallel: it clears DATABASE_URL.
func TestVerifyNoDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, fn := range []func(context.Context, []string, io.Writer, io.Writer) int{runVerify, runPlan} {
		code, _, stderr := call(t, fn)
		assert.Equal(t, exitError, code)
		assert.Contains(t, stderr, "DATABASE_URL")
	}
}

// TestColorful is not parallel: it sets NO_COLOR.
func TestColorful(t *testing.T) {
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device, as a terminal is
	require.NoError(t, err)
	defer tty.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	defer file.Close()

	t.Setenv("NO_COLOR", "")
	assert.True(t, colorful(tty))
	assert.False(t, colorful(file))
	assert.False(t, colorful(&bytes.Buffer{}))
	t.Setenv("NO_COLOR", "1")
	assert.False(t, colorful(tty))

	var b bytes.Buffer
	r := &verify.Report{Tables: []string{"public.t"}, Findings: []verify.Finding{
		{Severity: verify.SeverityError, Code: verify.CodeRLSDisabled, Kind: "table", Object: "public.t", Table: "public.t", Message: "m", Fix: "A;\nB;"},
	}}
	require.NoError(t, writeTextReport(&b, r, true))
	assert.Equal(t, "\x1b[1mpublic.t\x1b[0m\n  \x1b[31merror  \x1b[0m rls_disabled: table public.t: m\n    fix: A;\n         B;\n\n\x1b[31m1 tenant table checked: 1 error(s), 0 warning(s)\x1b[0m\n", b.String())
}
