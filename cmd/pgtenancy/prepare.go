package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/rls"
)

const prepareSynopsis = `[flags]

Plans the migrations that make a schema ready for generate without long
locks: each table that references a tenant table but has no tenant column
gets it (added nullable, filled from the parent row in batches, NOT NULL
through a CHECK validated apart), every tenant table the column's default
from the tenant setting and an index on it, and every reference between
tenant tables its composite foreign key (NOT VALID, then validated). See
docs/adopting.md.

Only declared foreign keys are references, and those given with
--reference. --infer-references prints, one per line, the --reference and
--polymorphic flags that the <name>_id and <name>_type conventions suggest,
for you to review and pass; it writes nothing.

Prints the migrations' up SQL, or writes them as tern migrations into --out
(the index builds and the backfill with tern's disable-tx comment). What it
does to each table goes to stderr. Run it again once they are applied: it
has nothing to do (it says so, writes no file and exits 0).

Examples:
  pgtenancy prepare --tenant-column account_id --root accounts --global users --infer-references
  pgtenancy prepare --tenant-column account_id --root accounts --global users \
      --reference messages.conversation_id=conversations.id \
      --polymorphic taggings.taggable_type+taggable_id=Contact:contacts,Conversation:conversations --out db/migrations`

// repeatFlag is a repeatable flag whose values are not split on commas.
type repeatFlag []string

func (r *repeatFlag) String() string { return strings.Join(*r, " ") }

func (r *repeatFlag) Set(s string) error {
	*r = append(*r, s)
	return nil
}

func runPrepare(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("prepare", stderr, prepareSynopsis)
	var f generateFlags
	var refs, polys repeatFlag
	fs.StringVar(&f.url, "database-url", "", "database to read (default $DATABASE_URL)")
	fs.StringVar(&f.key, "key", "", "tenant key type: bigint, uuid, text, integer or smallint (inferred from the root key column)")
	fs.Var(tenantColumnFlag{&f}, "tenant-column", "tenant column, such as account_id; table:column for a table whose column has another name (repeatable)")
	fs.StringVar(&f.root, "root", "", "root tenant table, such as accounts")
	fs.StringVar(&f.rootColumn, "root-column", "id", "key column of the root table")
	fs.Var(&f.globals, "global", "global table, shared by all tenants (repeatable)")
	fs.Var(&f.writableGlobals, "writable-global", "global table that the application may write too (repeatable)")
	fs.Var(&f.shared, "shared", "tenant table whose rows may keep a NULL tenant, shared by every tenant: no NOT NULL (repeatable)")
	fs.Var(&f.include, "include", "consider only these tables (repeatable, comma-separated)")
	fs.Var(&f.exclude, "exclude", "leave these tables out (repeatable, comma-separated)")
	fs.StringVar(&f.schema, "schema", "", "schema of unqualified names (default public)")
	fs.StringVar(&f.setting, "setting", "", "setting that holds the tenant (default app.current_tenant)")
	fs.Var(&refs, "reference", "an undeclared reference to treat as a foreign key, as table.col[+col]=reftable.col[+col] (repeatable)")
	fs.Var(&polys, "polymorphic", "a polymorphic reference, as table.type_column+id_column=Type:table[,Type:table] (repeatable)")
	infer := fs.Bool("infer-references", false, "print the --reference and --polymorphic flags that naming conventions suggest, and write nothing")
	batch := fs.Int("batch-size", 1000, "rows the backfill updates per transaction")
	timeout := fs.Duration("lock-timeout", 5*time.Second, "how long a statement that changes a table waits for its lock")
	fs.StringVar(&f.out, "out", "", "write tern migrations into this directory instead of printing SQL")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	opts := catalog.PrepareOptions{DiscoverOptions: f.discoverOptions(), Setting: f.setting,
		InferReferences: *infer, BatchSize: *batch, LockTimeout: *timeout}
	if f.key != "" {
		k, err := rls.ParseKeyType(f.key)
		if err != nil {
			return fail(stderr, "prepare", err)
		}
		opts.KeyType = k
	}
	for _, r := range refs {
		ref, err := parseReference(r)
		if err != nil {
			return fail(stderr, "prepare", err)
		}
		opts.References = append(opts.References, ref)
	}
	for _, p := range polys {
		poly, err := parsePolymorphic(p)
		if err != nil {
			return fail(stderr, "prepare", err)
		}
		opts.Polymorphic = append(opts.Polymorphic, poly)
	}
	conn, err := connectFor(ctx, &f)
	if err != nil {
		return fail(stderr, "prepare", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	prep, err := catalog.Prepare(ctx, conn, opts)
	if err != nil {
		return fail(stderr, "prepare", err)
	}
	for _, n := range prep.Notes {
		fmt.Fprintf(stderr, "pgtenancy prepare: note: %s\n", n)
	}
	if *infer {
		fmt.Fprintln(stdout, "# References that naming conventions suggest and the catalog does not declare.")
		fmt.Fprintln(stdout, "# Review them; pass those you confirm to pgtenancy prepare.")
		for _, r := range prep.Proposed {
			fmt.Fprintf(stdout, "--reference %s\n", r)
		}
		for _, p := range prep.ProposedPolymorphic {
			fmt.Fprintf(stdout, "--polymorphic %s\n", p)
		}
		return exitOK
	}
	for _, t := range prep.Tables {
		fmt.Fprintf(stderr, "pgtenancy prepare: %s\n", t)
	}
	if prep.IsEmpty() {
		fmt.Fprintln(stderr, "pgtenancy prepare: every tenant table has its tenant column, NOT NULL, indexed, and composite keys; nothing to do")
		return exitOK
	}
	for _, m := range prep.Migrations {
		if f.out != "" {
			path, err := migrations.WriteTernFile(f.out, m.Name, &m.Migration)
			if err != nil {
				return fail(stderr, "prepare", err)
			}
			fmt.Fprintln(stdout, path)
			continue
		}
		tx := "in a transaction"
		if m.NoTransaction {
			tx = "outside a transaction, one statement at a time"
		}
		fmt.Fprintf(stdout, "-- Migration %s (%s)\n%s\n", m.Name, tx, m.Up)
	}
	return exitOK
}

// parseReference parses table.col[+col]=reftable.col[+col].
func parseReference(s string) (catalog.Reference, error) {
	bad := fmt.Errorf("--reference %q: want table.col[+col]=reftable.col[+col]", s)
	from, to, ok := strings.Cut(s, "=")
	if !ok {
		return catalog.Reference{}, bad
	}
	table, cols, ok1 := splitColumns(from)
	ref, refCols, ok2 := splitColumns(to)
	if !ok1 || !ok2 || len(cols) != len(refCols) {
		return catalog.Reference{}, bad
	}
	return catalog.Reference{Table: table, Columns: cols, RefTable: ref, RefColumns: refCols}, nil
}

// parsePolymorphic parses table.type_column+id_column=Type:table[,...].
func parsePolymorphic(s string) (catalog.Polymorphic, error) {
	bad := fmt.Errorf("--polymorphic %q: want table.type_column+id_column=Type:table[,Type:table]", s)
	from, to, ok := strings.Cut(s, "=")
	if !ok {
		return catalog.Polymorphic{}, bad
	}
	table, cols, ok := splitColumns(from)
	if !ok || len(cols) != 2 {
		return catalog.Polymorphic{}, bad
	}
	p := catalog.Polymorphic{Table: table, TypeColumn: cols[0], IDColumn: cols[1], Types: map[string]string{}}
	for _, pair := range strings.Split(to, ",") {
		// The last colon: Rails types may hold "::" (Integrations::Hook).
		i := strings.LastIndexByte(pair, ':')
		if i <= 0 || i == len(pair)-1 {
			return catalog.Polymorphic{}, bad
		}
		p.Types[pair[:i]] = pair[i+1:]
	}
	return p, nil
}

// splitColumns splits table.col[+col] at its last dot.
func splitColumns(s string) (string, []string, bool) {
	i := strings.LastIndexByte(s, '.')
	if i <= 0 || i == len(s)-1 {
		return "", nil, false
	}
	return s[:i], strings.Split(s[i+1:], "+"), true
}
