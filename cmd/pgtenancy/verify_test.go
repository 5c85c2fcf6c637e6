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
		{"--tenant-column", "store_id", "--app-role", pgtenancytest.AppRole, "--global", "currencies"},
		{"--app-role", pgtenancytest.AppRole, "--global", "currencies"},
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
	// An empty database uses no part of pgtenancy: since issue 16, verify
	// no longer reports its library missing there (it did, a false alarm
	// on every hand-written setup).
	assert.JSONEq(t, `{"ok": true, "errors": 0, "warnings": 0, "tables": [], "findings": []}`, stdout)
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

// TestVerifyCommandNewTable is the first case of issue 16: after generate
// and install, a later migration adds a table with the tenant column, grants
// it to the application role and forgets row level security. verify with
// only the role given used to pass it ("4 tenant tables checked: 0
// error(s)"); it infers the table from its tenant column and its foreign key
// to stores, and fails.
func TestVerifyCommandNewTable(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStoreSchema)
	_, err := db.AdminConn(t).Exec(t.Context(), `
CREATE TABLE reviews (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY,
    product_id bigint REFERENCES products, body text);
GRANT SELECT, INSERT, UPDATE, DELETE ON reviews TO `+pgtenancytest.AppRole)
	require.NoError(t, err)
	code, stdout, stderr := call(t, runVerify, "--database-url", db.OwnerURL, "--app-role", pgtenancytest.AppRole)
	assert.Equal(t, exitFindings, code, stderr)
	assert.Contains(t, stdout, "public.reviews\n  error   rls_disabled: table public.reviews: row level security is not enabled, so every tenant's rows are open: the application role can SELECT, INSERT, UPDATE, DELETE. It holds tenant data: it has the tenant column store_id, and it references public.stores.")
	// On a database pgtenancy set up, the fix is pgtenancy's forced pair of
	// stamped policies.
	assert.Contains(t, stdout, `ALTER TABLE "public"."reviews" ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`)
	assert.Contains(t, stdout, `CREATE POLICY "pgtenancy_tenant_isolation" ON "public"."reviews" AS PERMISSIVE`)
	assert.Contains(t, stdout, `CREATE POLICY "pgtenancy_tenant_guard" ON "public"."reviews" AS RESTRICTIVE`)
	assert.Contains(t, stdout, "4 tenant tables checked: 1 error(s)")
}

// flawedStore returns the isolated store with two errors (products not
// forced, a view without security_invoker) and three warnings.
func flawedStore(t *testing.T) *pgtenancytest.DB {
	t.Helper()
	db := pgtenancytest.NewDB(t, isolatedStoreSchema)
	_, err := db.AdminConn(t).Exec(t.Context(), `ALTER TABLE products NO FORCE ROW LEVEL SECURITY;
CREATE VIEW product_list AS SELECT * FROM products; GRANT SELECT ON product_list TO `+pgtenancytest.AppRole)
	require.NoError(t, err)
	return db
}

func TestVerifyCommandSARIF(t *testing.T) {
	t.Parallel()
	db := flawedStore(t)
	args := append([]string{"--database-url", db.OwnerURL}, discoverFlags...)
	code, jsonOut, stderr := call(t, runVerify, append(args, "--format", "json")...)
	require.Equal(t, exitFindings, code, stderr)
	var report struct{ Findings []verify.Finding }
	require.NoError(t, json.Unmarshal([]byte(jsonOut), &report))

	code, stdout, stderr := call(t, runVerify, append(args, "--format", "sarif")...)
	assert.Equal(t, exitFindings, code, "exit codes do not depend on the format: %s", stderr)
	log := checkSARIF(t, stdout)
	run := log.Runs[0]
	assert.Equal(t, "pgtenancy verify", run.Tool.Driver.Name)
	require.Len(t, run.Results, len(report.Findings))
	var ids []string
	for _, r := range run.Tool.Driver.Rules {
		ids = append(ids, r.ID)
		assert.NotEmpty(t, r.ShortDescription.Text)
		assert.Equal(t, verify.Code(r.ID).Summary(), r.ShortDescription.Text)
	}
	assert.Equal(t, []string{"key_without_tenant", "rls_not_forced", "tenant_column_not_indexed", "view_not_security_invoker"}, ids,
		"one rule per code reported, sorted")
	prints := map[string]bool{}
	for i, f := range report.Findings {
		r := run.Results[i]
		assert.Equal(t, string(f.Code), r.RuleID, "ruleId is the stable code")
		assert.Equal(t, map[verify.Severity]string{verify.SeverityError: "error", verify.SeverityWarning: "warning"}[f.Severity], r.Level)
		assert.Equal(t, f.Message, r.Message.Text)
		require.Len(t, r.Locations, 1)
		loc := r.Locations[0].LogicalLocations[0]
		assert.Equal(t, f.Object, loc.Name, "the object is the location")
		if f.Kind == "table" || f.Table == "" {
			assert.Equal(t, f.Kind+":"+f.Object, loc.FullyQualifiedName)
		} else {
			assert.Equal(t, f.Kind+":"+f.Table+"/"+f.Object, loc.FullyQualifiedName, "names of policies and keys are per table")
		}
		assert.Empty(t, r.BaselineState, "no baseline, no baseline state")
		assert.Empty(t, r.Suppressions)
		fp := r.PartialFingerprints["pgtenancyFinding/v1"]
		assert.Len(t, fp, 32)
		assert.False(t, prints[fp], "fingerprints are unique")
		prints[fp] = true
		assert.Equal(t, f.Fix, r.Properties["fix"])
	}
	assert.Equal(t, "table", run.Results[0].Locations[0].LogicalLocations[0].Kind)
	assert.Nil(t, run.Results[0].Locations[0].PhysicalLocation, "no file unless one is named")

	// --sarif-file: every result points at that file too, as GitHub code
	// scanning requires.
	code, stdout, stderr = call(t, runVerify, append(args, "--format", "sarif", "--sarif-file", "db/structure.sql")...)
	assert.Equal(t, exitFindings, code, stderr)
	run = checkSARIF(t, stdout).Runs[0]
	require.Len(t, run.Results, len(report.Findings))
	for _, r := range run.Results {
		require.NotNil(t, r.Locations[0].PhysicalLocation)
		assert.Equal(t, "db/structure.sql", r.Locations[0].PhysicalLocation.ArtifactLocation.URI)
		assert.NotEmpty(t, r.Locations[0].LogicalLocations)
	}

	// Clean: no result, exit 0.
	clean := pgtenancytest.NewDB(t, nil)
	code, stdout, stderr = call(t, runVerify, "--database-url", clean.OwnerURL, "--app-role", pgtenancytest.AppRole, "--format", "sarif")
	assert.Equal(t, exitOK, code, stderr)
	assert.Empty(t, checkSARIF(t, stdout).Runs[0].Results)
}

// sarifLog is what the test reads of a SARIF log.
type sarifTestLog struct {
	Schema  string `json:"$schema"`
	Version string `json:"version"`
	Runs    []struct {
		Tool struct {
			Driver struct {
				Name  string `json:"name"`
				Rules []struct {
					ID               string `json:"id"`
					ShortDescription struct {
						Text string `json:"text"`
					} `json:"shortDescription"`
				} `json:"rules"`
			} `json:"driver"`
		} `json:"tool"`
		Results []struct {
			RuleID    string `json:"ruleId"`
			RuleIndex int    `json:"ruleIndex"`
			Level     string `json:"level"`
			Message   struct {
				Text string `json:"text"`
			} `json:"message"`
			Locations []struct {
				PhysicalLocation *struct {
					ArtifactLocation struct {
						URI string `json:"uri"`
					} `json:"artifactLocation"`
				} `json:"physicalLocation"`
				LogicalLocations []struct {
					Name               string `json:"name"`
					FullyQualifiedName string `json:"fullyQualifiedName"`
					Kind               string `json:"kind"`
				} `json:"logicalLocations"`
			} `json:"locations"`
			PartialFingerprints map[string]string `json:"partialFingerprints"`
			BaselineState       string            `json:"baselineState"`
			Suppressions        []struct {
				Kind          string `json:"kind"`
				Justification string `json:"justification"`
			} `json:"suppressions"`
			Properties map[string]string `json:"properties"`
		} `json:"results"`
	} `json:"runs"`
}

// checkSARIF checks the structure of a SARIF 2.1.0 log against the rules
// of the specification that apply to what verify writes (required
// properties, enumerations, ruleIndex pointing at its rule, no property
// outside the specification's objects), and returns it.
func checkSARIF(t *testing.T, out string) sarifTestLog {
	t.Helper()
	// Every property name must be one the specification defines for its
	// object (SARIF objects allow no others; extra data goes in
	// "properties" bags).
	allowed := map[string][]string{
		"":                 {"$schema", "version", "runs"},
		"runs":             {"tool", "results"},
		"tool":             {"driver"},
		"driver":           {"name", "informationUri", "rules"},
		"rules":            {"id", "shortDescription", "helpUri"},
		"shortDescription": {"text"},
		"results":          {"ruleId", "ruleIndex", "level", "message", "locations", "partialFingerprints", "baselineState", "suppressions", "properties"},
		"message":          {"text"},
		"locations":        {"physicalLocation", "logicalLocations"},
		"physicalLocation": {"artifactLocation"},
		"artifactLocation": {"uri"},
		"logicalLocations": {"name", "fullyQualifiedName", "kind"},
		"suppressions":     {"kind", "justification"},
	}
	var walk func(parent string, v any)
	walk = func(parent string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if parent == "partialFingerprints" || parent == "properties" {
					continue
				}
				assert.Contains(t, allowed[parent], k, "property %q of %q", k, parent)
				walk(k, child)
			}
		case []any:
			for _, child := range v {
				walk(parent, child)
			}
		}
	}
	var raw any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	walk("", raw)

	var log sarifTestLog
	require.NoError(t, json.Unmarshal([]byte(out), &log))
	assert.Equal(t, "2.1.0", log.Version)
	assert.Equal(t, "https://json.schemastore.org/sarif-2.1.0.json", log.Schema)
	require.Len(t, log.Runs, 1)
	run := log.Runs[0]
	require.NotEmpty(t, run.Tool.Driver.Name, "tool.driver.name is required")
	require.NotNil(t, run.Results)
	seen := map[string]bool{}
	for _, r := range run.Tool.Driver.Rules {
		assert.NotEmpty(t, r.ID, "reportingDescriptor.id is required")
		assert.False(t, seen[r.ID], "rule ids are unique")
		seen[r.ID] = true
	}
	for _, r := range run.Results {
		assert.NotEmpty(t, r.Message.Text, "result.message is required")
		require.Less(t, r.RuleIndex, len(run.Tool.Driver.Rules))
		assert.Equal(t, run.Tool.Driver.Rules[r.RuleIndex].ID, r.RuleID, "ruleIndex points at the rule")
		assert.Contains(t, []string{"none", "note", "warning", "error"}, r.Level)
		if r.BaselineState != "" {
			assert.Contains(t, []string{"new", "unchanged", "updated", "absent"}, r.BaselineState)
		}
		for _, s := range r.Suppressions {
			assert.Contains(t, []string{"inSource", "external"}, s.Kind)
		}
		require.NotEmpty(t, r.Locations)
		for _, l := range r.Locations {
			require.NotEmpty(t, l.LogicalLocations)
		}
	}
	return log
}

func TestVerifyCommandBaseline(t *testing.T) {
	t.Parallel()
	db := flawedStore(t)
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.json"), filepath.Join(dir, "second.json")
	// Inferred, as a first run in CI: the new table is found without a model.
	args := []string{"--database-url", db.OwnerURL, "--app-role", pgtenancytest.AppRole, "--global", "currencies"}

	// Writing a baseline does not change the exit code, and the file is
	// the same from one run to the next.
	code, _, stderr := call(t, runVerify, append(args, "--write-baseline", first)...)
	assert.Equal(t, exitFindings, code, stderr)
	code, _, stderr = call(t, runVerify, append(args, "--write-baseline", second, "--format", "json")...)
	assert.Equal(t, exitFindings, code, stderr)
	a, err := os.ReadFile(first)
	require.NoError(t, err)
	b, err := os.ReadFile(second)
	require.NoError(t, err)
	assert.Equal(t, string(a), string(b), "a baseline is stable across runs")
	// The documented format.
	assert.Equal(t, `{
  "version": 1,
  "findings": [
    {"code":"view_not_security_invoker","kind":"view","object":"public.product_list","severity":"error"},
    {"code":"key_without_tenant","kind":"constraint","object":"products_pkey","table":"public.products","severity":"warning"},
    {"code":"rls_not_forced","kind":"table","object":"public.products","table":"public.products","severity":"error"},
    {"code":"key_without_tenant","kind":"constraint","object":"purchases_pkey","table":"public.purchases","severity":"warning"},
    {"code":"tenant_column_not_indexed","kind":"table","object":"public.purchases","table":"public.purchases","severity":"warning"}
  ]
}
`, string(a))

	// Only the known findings: exit 0.
	code, stdout, stderr := call(t, runVerify, append(args, "--baseline", first)...)
	assert.Equal(t, exitOK, code, stderr)
	assert.Contains(t, stdout, "3 tenant tables checked: 0 error(s), 0 warning(s)")
	assert.Contains(t, stdout, "5 known finding(s) accepted by the baseline "+first+"; 0 of its entries no longer found")

	// A new hole fails, and only it is reported.
	_, err = db.AdminConn(t).Exec(t.Context(), `CREATE TABLE reviews (store_id bigint NOT NULL REFERENCES stores, id bigint PRIMARY KEY, body text);
CREATE INDEX ON reviews (store_id);
GRANT SELECT, INSERT ON reviews TO `+pgtenancytest.AppRole+`;
ALTER TABLE products FORCE ROW LEVEL SECURITY`)
	require.NoError(t, err)
	code, stdout, stderr = call(t, runVerify, append(args, "--baseline", first, "--format", "json")...)
	assert.Equal(t, exitFindings, code, stderr)
	var out struct {
		OK       bool
		Errors   int
		Findings []verify.Finding
		Accepted []verify.Finding
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &out))
	assert.False(t, out.OK)
	assert.Equal(t, 1, out.Errors)
	var fresh []string
	for _, f := range out.Findings {
		fresh = append(fresh, string(f.Code)+" "+f.Object)
	}
	assert.ElementsMatch(t, []string{"rls_disabled public.reviews", "key_without_tenant reviews_pkey"}, fresh)
	assert.Len(t, out.Accepted, 4, "the fixed rls_not_forced is gone")

	code, stdout, stderr = call(t, runVerify, append(args, "--baseline", first, "--format", "sarif")...)
	assert.Equal(t, exitFindings, code, stderr)
	log := checkSARIF(t, stdout)
	states := map[string]int{}
	for _, r := range log.Runs[0].Results {
		states[r.BaselineState]++
		if r.BaselineState == "unchanged" {
			require.Len(t, r.Suppressions, 1)
			assert.Equal(t, "external", r.Suppressions[0].Kind)
		} else {
			assert.Empty(t, r.Suppressions)
		}
	}
	assert.Equal(t, map[string]int{"new": 2, "unchanged": 4}, states)

	// A baseline that is not one: exit 2.
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"version": 2, "findings": []}`), 0o644))
	code, stdout, stderr = call(t, runVerify, append(args, "--baseline", bad)...)
	assert.Equal(t, exitError, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "version 2")
	code, _, stderr = call(t, runVerify, append(args, "--baseline", filepath.Join(dir, "missing.json"))...)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "missing.json")
}

// TestSARIFArtifact: --sarif-file is a path inside the repository, made a
// relative URI; anything else, or the flag without --format sarif, is a
// usage error.
func TestSARIFArtifact(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"db/structure.sql":        "db/structure.sql",
		"./db/../db/schema.sql":   "db/schema.sql",
		"migrations/001 init.sql": "migrations/001%20init.sql",
		"db/100%.sql":             "db/100%25.sql",
	} {
		got, err := sarifArtifact(in, "sarif")
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"/etc/passwd", "../outside.sql", "..", ".", "a/../../b.sql", "C:/x.sql", "https://example.com/x"} {
		_, err := sarifArtifact(in, "sarif")
		assert.Error(t, err, in)
	}
	_, err := sarifArtifact("db/structure.sql", "json")
	assert.ErrorContains(t, err, "--format sarif")
	got, err := sarifArtifact("", "text")
	require.NoError(t, err)
	assert.Empty(t, got)
}
