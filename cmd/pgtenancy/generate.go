package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

const generateSynopsis = `[flags]

Builds the schema model from --model, from --table/--fk flags, or (with
--database-url, --root and --tenant-column) by discovery: every table with
--tenant-column is a tenant table (--tenant-column table:column names
another column for one table). With a database, a declared model takes
its key type (without --key) and the foreign keys it does not list from
the catalog, the model is checked against it, and the SQL holds only what
is missing there, as plan prints it: run it again after applying and it
has nothing to do (it says so, writes no file and exits 0). Prints the up
SQL (or --down) on stdout, or writes the next tern migration into --out.

Examples:
  pgtenancy generate --database-url $DATABASE_URL --tenant-column store_id --root stores --app-role app --out db/migrations
  pgtenancy generate --key bigint --root stores --tenant-column store_id --table products --table purchases \
      --fk purchases.product_id=products.id --global currencies --app-role app`

type generateFlags struct {
	url, modelFile, key, tenantColumn, root, rootColumn, schema, setting, appRole, out, name string
	tables, fks, globals, writableGlobals, shared, include, exclude                          listFlag
	// tenantColumns are the --tenant-column table:column overrides.
	tenantColumns map[string]string
	down, signed  bool
}

// tenantColumnFlag is --tenant-column: a column name, the default tenant
// column, or table:column for a table whose tenant column has another name
// (repeatable).
type tenantColumnFlag struct{ f *generateFlags }

func (t tenantColumnFlag) String() string {
	if t.f == nil {
		return ""
	}
	return t.f.tenantColumn
}

func (t tenantColumnFlag) Set(s string) error {
	table, col, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		if t.f.tenantColumn != "" && t.f.tenantColumn != s {
			return fmt.Errorf("two tenant columns (%s and %s): name other tables' columns as table:column", t.f.tenantColumn, s)
		}
		t.f.tenantColumn = s
	case table == "" || col == "":
		return fmt.Errorf("%q: want column, or table:column", s)
	default:
		if t.f.tenantColumns == nil {
			t.f.tenantColumns = map[string]string{}
		}
		t.f.tenantColumns[table] = col
	}
	return nil
}

func runGenerate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("generate", stderr, generateSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database to discover from or check against (default $DATABASE_URL when discovering)")
	fs.StringVar(&f.out, "out", "", "write a tern migration into this directory instead of printing SQL")
	fs.StringVar(&f.name, "name", "tenant_isolation", "migration name, with --out")
	fs.BoolVar(&f.down, "down", false, "print the down SQL instead of the up SQL")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	m, err := generate(ctx, &f)
	if err != nil {
		return fail(stderr, "generate", err)
	}
	if m.IsEmpty() {
		fmt.Fprintln(stderr, "pgtenancy generate: the database matches the model; nothing to do")
		return exitOK
	}
	if f.out != "" {
		path, err := migrations.WriteTernFile(f.out, f.name, m)
		if err != nil {
			return fail(stderr, "generate", err)
		}
		fmt.Fprintln(stdout, path)
		return exitOK
	}
	if f.down {
		io.WriteString(stdout, m.Down)
	} else {
		io.WriteString(stdout, m.Up)
	}
	return exitOK
}

// generate reads, declares or discovers the model and returns its SQL:
// for the database when there is one (only what is missing there), else
// for a database that has none of it.
func generate(ctx context.Context, f *generateFlags) (*policy.Migration, error) {
	declared := f.modelFile != "" || len(f.tables) > 0
	url := f.url
	if !declared {
		url = databaseURL(url)
	}
	if !declared && url == "" {
		return nil, errors.New("nothing to generate from: pass --model, --table flags, or --database-url (or DATABASE_URL) to discover")
	}
	if declared && url == "" {
		model, err := declaredModel(f)
		if err != nil {
			return nil, err
		}
		if model.KeyType == 0 {
			return nil, errors.New("no key type: pass --key (bigint, uuid, text, integer or smallint), or --database-url to read it from the root table")
		}
		return policy.Generate(model)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	model, err := liveModel(ctx, conn, f)
	if err != nil {
		return nil, err
	}
	if model == nil {
		return nil, errors.New("nothing to generate from: pass --model, --table flags, or --root with --tenant-column to discover")
	}
	return catalog.Plan(ctx, conn, model)
}

func declaredModel(f *generateFlags) (*policy.Model, error) {
	var m policy.Model
	if f.modelFile != "" {
		b, err := os.ReadFile(f.modelFile)
		if err != nil {
			return nil, err
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: %w", f.modelFile, err)
		}
	}
	if f.key != "" {
		k, err := rls.ParseKeyType(f.key)
		if err != nil {
			return nil, err
		}
		m.KeyType = k
	}
	if f.schema != "" {
		m.Schema = f.schema
	}
	if f.setting != "" {
		m.Setting = f.setting
	}
	if f.appRole != "" {
		m.AppRole = f.appRole
	}
	if f.root != "" {
		m.Tables = append(m.Tables, policy.Table{Name: f.root, TenantColumn: f.rootColumn, Root: true})
	}
	for _, t := range f.tables {
		name, col, ok := strings.Cut(t, ":")
		if !ok {
			col = cmp.Or(f.tenantColumns[name], f.tenantColumn)
		}
		if col == "" {
			return nil, fmt.Errorf("--table %s: no tenant column (use name:column or --tenant-column)", t)
		}
		m.Tables = append(m.Tables, policy.Table{Name: name, TenantColumn: col})
	}
	for _, spec := range f.fks {
		if err := addFK(&m, spec); err != nil {
			return nil, err
		}
	}
	m.Global = append(m.Global, f.globals...)
	m.WritableGlobal = append(m.WritableGlobal, f.writableGlobals...)
	for _, name := range f.shared {
		i := slices.IndexFunc(m.Tables, func(t policy.Table) bool { return t.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("--shared %s: not a declared tenant table (add --table %s)", name, name)
		}
		m.Tables[i].SharedRows = true
	}
	if f.signed {
		m.Signed = true
	}
	return &m, nil
}

// addFK parses table.col[+col]=reftable.col[+col] and adds it to its table.
func addFK(m *policy.Model, spec string) error {
	from, to, ok := strings.Cut(spec, "=")
	bad := fmt.Errorf("--fk %q: want table.col[+col]=reftable.col[+col]", spec)
	if !ok {
		return bad
	}
	split := func(s string) (string, []string, bool) {
		i := strings.LastIndexByte(s, '.')
		if i <= 0 || i == len(s)-1 {
			return "", nil, false
		}
		return s[:i], strings.Split(s[i+1:], "+"), true
	}
	table, cols, ok1 := split(from)
	ref, refCols, ok2 := split(to)
	if !ok1 || !ok2 {
		return bad
	}
	for i := range m.Tables {
		if m.Tables[i].Name == table {
			m.Tables[i].ForeignKeys = append(m.Tables[i].ForeignKeys, policy.ForeignKey{Columns: cols, RefTable: ref, RefColumns: refCols})
			return nil
		}
	}
	return fmt.Errorf("--fk %q: table %q is not a declared tenant table (add --table %s)", spec, table, table)
}

// discoverOptions are the discovery options the flags give.
func (f *generateFlags) discoverOptions() catalog.DiscoverOptions {
	opts := catalog.DiscoverOptions{
		TenantColumn:   f.tenantColumn,
		TenantColumns:  f.tenantColumns,
		Root:           f.root,
		RootColumn:     f.rootColumn,
		Include:        f.include,
		Exclude:        f.exclude,
		Global:         f.globals,
		WritableGlobal: f.writableGlobals,
		Shared:         f.shared,
	}
	if f.schema != "" {
		opts.Schemas = []string{f.schema}
	}
	return opts
}
