package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

const verifySynopsis = `[flags]

Audits a live database, whether pgtenancy built its row level security or
not, for every table that leaks tenant data and every hole that makes row
level security inert; docs/verify.md lists the checks and their codes.

With no flag but the database, everything is inferred: the tenant settings
and columns from the policies there (any policy comparing a column with
current_setting), the tenant tables from those (a tenant column, a foreign
key to a tenant table, a partition or child of one, in any schema), and the
policies are judged by what they do, whatever they are called. Name the
role the application connects as with --app-role for an exact judgment, and
the tables all tenants share with --global. A declared model (--model, or
--table flags) or discovery (--root with --tenant-column) checks
pgtenancy's own setup by name as well.

Exits 0 when it found no error (warnings allowed), 1 when it found errors,
and 2 when it could not run. With --baseline, the findings the baseline
file accepts are set apart and do not fail: only new ones count.

Examples:
  pgtenancy verify --database-url $DATABASE_URL --app-role app
  pgtenancy verify --app-role app --global currencies --format json
  pgtenancy verify --database-url $DATABASE_URL --app-role app --model model.json
  pgtenancy verify --app-role app --tenant-column store_id --root stores --format json
  pgtenancy verify --app-role app --write-baseline verify-baseline.json
  pgtenancy verify --app-role app --baseline verify-baseline.json --format sarif > verify.sarif`

// addModelFlags registers the flags that say where the schema model comes
// from, shared by generate, verify and plan; dbUsage describes
// --database-url for the command.
func addModelFlags(fs *flag.FlagSet, f *generateFlags, dbUsage string) {
	fs.StringVar(&f.url, "database-url", "", dbUsage)
	fs.StringVar(&f.modelFile, "model", "", "JSON file holding a policy.Model")
	fs.StringVar(&f.key, "key", "", "tenant key type: bigint, uuid, text, integer or smallint (inferred from the root key column with a database)")
	fs.Var(tenantColumnFlag{f}, "tenant-column", "tenant column of the tenant tables, such as store_id; table:column for a table whose column has another name (repeatable)")
	fs.StringVar(&f.root, "root", "", "root tenant table, such as stores: with --tenant-column, discovers the model")
	fs.StringVar(&f.rootColumn, "root-column", "id", "key column of the root table")
	fs.Var(&f.tables, "table", "tenant table, as name or name:tenant_column (repeatable)")
	fs.Var(&f.fks, "fk", "foreign key between tenant tables, as table.col[+col]=reftable.col[+col] (repeatable)")
	fs.Var(&f.globals, "global", "global table, shared by all tenants, read-only to the application (repeatable)")
	fs.Var(&f.writableGlobals, "writable-global", "global table that the application may write too, such as users (repeatable)")
	fs.Var(&f.shared, "shared", "tenant table whose rows with a NULL tenant every tenant reads and none writes (repeatable)")
	fs.Var(&f.include, "include", "discover only these tables (repeatable, comma-separated)")
	fs.Var(&f.exclude, "exclude", "leave these tables out of discovery (repeatable, comma-separated)")
	fs.StringVar(&f.schema, "schema", "", "schema of unqualified names (default public)")
	fs.StringVar(&f.setting, "setting", "", "setting that holds the tenant (default app.current_tenant)")
	fs.StringVar(&f.appRole, "app-role", "", "role the application connects as (generate grants it table privileges)")
	fs.BoolVar(&f.signed, "signed", false, "signed mode: policies admit only a tenant whose signature pgtenancy.tenant() verifies (docs/security.md)")
}

// connectFor connects to the flag's database or DATABASE_URL.
func connectFor(ctx context.Context, f *generateFlags) (*pgx.Conn, error) {
	dsn := databaseURL(f.url)
	if dsn == "" {
		return nil, errors.New("no database: pass --database-url or set DATABASE_URL")
	}
	return pgx.Connect(ctx, dsn)
}

// liveModel returns the declared model, the discovered one (with --root),
// or nil when there is neither.
func liveModel(ctx context.Context, conn *pgx.Conn, f *generateFlags) (*policy.Model, error) {
	if f.modelFile != "" || len(f.tables) > 0 {
		m, err := declaredModel(f)
		if err != nil {
			return nil, err
		}
		// What the declaration leaves out: the key type, the foreign keys.
		return catalog.Complete(ctx, conn, m)
	}
	if f.root == "" {
		return nil, nil
	}
	opts := f.discoverOptions()
	if f.key != "" {
		var err error
		if opts.KeyType, err = rls.ParseKeyType(f.key); err != nil {
			return nil, err
		}
	}
	m, err := catalog.Discover(ctx, conn, opts)
	if err != nil {
		return nil, err
	}
	m.Setting, m.AppRole, m.Signed = f.setting, f.appRole, f.signed
	return m, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", stderr, verifySynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database to inspect (default $DATABASE_URL)")
	format := fs.String("format", "text", "output format: text (for people), json (stable, for CI) or sarif (SARIF 2.1.0, for code scanning)")
	baselineFile := fs.String("baseline", "", "JSON file of accepted findings (from --write-baseline): only findings not in it are reported and fail")
	writeBaseline := fs.String("write-baseline", "", "write every finding of this run to this file as a baseline")
	sarifFile := fs.String("sarif-file", "", "with --format sarif, the repository file (relative path, such as db/structure.sql) that every result points at: GitHub code scanning needs one")
	adminRole := fs.String("admin-role", "", "role for cross-tenant work (package admin): check that it bypasses row level security and that the application role cannot become it")
	data := fs.Bool("data", false, "also look for rows whose foreign keys already cross tenants (needs a model, and a role that bypasses row level security)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *format != "text" && *format != "json" && *format != "sarif" {
		return fail(stderr, "verify", fmt.Errorf("--format %q: want text, json or sarif", *format))
	}
	sarifURI, err := sarifArtifact(*sarifFile, *format)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	var baseline *verify.Baseline
	if *baselineFile != "" {
		b, err := readBaselineFile(*baselineFile)
		if err != nil {
			return fail(stderr, "verify", err)
		}
		baseline = b
	}
	conn, err := connectFor(ctx, &f)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	model, err := liveModel(ctx, conn, &f)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	opts := verify.Options{Model: model, AppRole: f.appRole, TenantColumn: f.tenantColumn, Setting: f.setting, AdminRole: *adminRole}
	if model == nil {
		opts.Global = f.globals
	}
	if f.schema != "" {
		opts.Schemas = []string{f.schema}
	}
	report, err := verify.Run(ctx, conn, opts)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	if *data {
		if model == nil {
			return fail(stderr, "verify", errors.New("--data needs a model: --model, --table flags, or --root with --tenant-column"))
		}
		refs, err := verify.CheckData(ctx, conn, model)
		if err != nil {
			return fail(stderr, "verify", err)
		}
		for _, r := range refs {
			report.Add(r.Finding())
		}
	}

	if *writeBaseline != "" {
		if err := writeBaselineFile(*writeBaseline, verify.NewBaseline(report)); err != nil {
			return fail(stderr, "verify", err)
		}
	}
	// With a baseline, the report holds the new findings only; the
	// accepted ones are counted (and in SARIF and JSON, listed apart).
	var accepted []verify.Finding
	var stale []verify.BaselineEntry
	if baseline != nil {
		var fresh []verify.Finding
		fresh, accepted, stale = baseline.Split(report)
		report = &verify.Report{Findings: fresh, Tables: report.Tables}
	}

	switch *format {
	case "json":
		err = writeJSONReport(stdout, report, accepted, baseline != nil)
	case "sarif":
		err = writeSARIF(stdout, report.Findings, accepted, *baselineFile, sarifURI)
	default:
		err = writeTextReport(stdout, report, colorful(stdout))
		if err == nil && baseline != nil {
			_, err = fmt.Fprintf(stdout, "%d known finding(s) accepted by the baseline %s; %d of its entries no longer found\n", len(accepted), *baselineFile, len(stale))
		}
	}
	if err != nil {
		return fail(stderr, "verify", err)
	}
	if report.HasErrors() {
		return exitFindings
	}
	return exitOK
}

func readBaselineFile(path string) (*verify.Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--baseline: %w", err)
	}
	defer f.Close()
	b, err := verify.ReadBaseline(f)
	if err != nil {
		return nil, fmt.Errorf("--baseline %s: %w", path, err)
	}
	return b, nil
}

// writeBaselineFile writes b to path through a temporary file in the same
// directory, so that a failed write leaves no half file.
func writeBaselineFile(path string, b *verify.Baseline) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".baseline-*")
	if err != nil {
		return fmt.Errorf("--write-baseline: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := b.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("--write-baseline: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--write-baseline: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("--write-baseline: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--write-baseline: %w", err)
	}
	return nil
}

// jsonReport is the JSON output of pgtenancy verify; docs/verify.md documents
// it. Findings are sorted: errors first, then by table, kind, object, code.
type jsonReport struct {
	OK       bool             `json:"ok"`
	Errors   int              `json:"errors"`
	Warnings int              `json:"warnings"`
	Tables   []string         `json:"tables"`
	Findings []verify.Finding `json:"findings"`
	// Accepted are, with --baseline only, the findings the baseline
	// accepts; they are not counted in ok, errors and warnings.
	Accepted []verify.Finding `json:"accepted,omitempty"`
}

func writeJSONReport(w io.Writer, r *verify.Report, accepted []verify.Finding, withBaseline bool) error {
	out := jsonReport{Tables: r.Tables, Findings: r.Findings, Accepted: accepted}
	if withBaseline && out.Accepted == nil {
		out.Accepted = []verify.Finding{}
	}
	if out.Tables == nil {
		out.Tables = []string{}
	}
	if out.Findings == nil {
		out.Findings = []verify.Finding{}
	}
	for _, f := range r.Findings {
		if f.Severity == verify.SeverityError {
			out.Errors++
		} else {
			out.Warnings++
		}
	}
	out.OK = out.Errors == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// colorful reports whether w is a terminal and NO_COLOR is unset.
func colorful(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeTextReport prints the findings grouped by table, the others last.
func writeTextReport(w io.Writer, r *verify.Report, color bool) error {
	paint := func(code, s string) string {
		if !color {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	var groups []string
	byGroup := map[string][]verify.Finding{}
	errs, warns := 0, 0
	for _, f := range r.Findings {
		if _, ok := byGroup[f.Table]; !ok {
			groups = append(groups, f.Table)
		}
		byGroup[f.Table] = append(byGroup[f.Table], f)
		if f.Severity == verify.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	slices.SortFunc(groups, compareGroups)
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintln(&b, paint("1", cmp.Or(g, "other objects")))
		for _, f := range byGroup[g] {
			sev := paint("33", "warning")
			if f.Severity == verify.SeverityError {
				sev = paint("31", "error  ")
			}
			if f.Object == "" {
				fmt.Fprintf(&b, "  %s %s: %s: %s\n", sev, f.Code, f.Kind, f.Message)
			} else {
				fmt.Fprintf(&b, "  %s %s: %s %s: %s\n", sev, f.Code, f.Kind, f.Object, f.Message)
			}
			if f.Fix != "" {
				fmt.Fprintf(&b, "    fix: %s\n", strings.ReplaceAll(f.Fix, "\n", "\n         "))
			}
		}
		b.WriteByte('\n')
	}
	tables := "tables"
	if len(r.Tables) == 1 {
		tables = "table"
	}
	summary := fmt.Sprintf("%d tenant %s checked: %d error(s), %d warning(s)", len(r.Tables), tables, errs, warns)
	switch {
	case errs > 0:
		summary = paint("31", summary)
	case warns == 0:
		summary = paint("32", summary)
	}
	fmt.Fprintln(&b, summary)
	_, err := io.WriteString(w, b.String())
	return err
}

// compareGroups orders table names, with "" (other objects) last.
func compareGroups(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	return strings.Compare(a, b)
}
