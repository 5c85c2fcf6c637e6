package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

const tenantUsage = `Usage: pgtenancy tenant <verb> [flags]

Exports, imports, deletes and moves one tenant's data, every tenant table of
the model in foreign key order, through row level security with the tenant
set (docs/lifecycle.md).

Verbs:
  export     write a tenant's rows into a directory: a file per table and a manifest
  import     load an export into a database with the same schema, keeping every key
  delete     delete a tenant's rows in short batches (--dry-run counts them)
  move       export, import, compare checksums, then delete from the source
  checksum   print the checksums of a tenant's rows, or compare them with an export

Run 'pgtenancy tenant <verb> -h' for a verb's flags.`

func runTenant(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, tenantUsage)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	verbs := map[string]func(context.Context, []string, io.Writer, io.Writer) int{
		"export":   runTenantExport,
		"import":   runTenantImport,
		"delete":   runTenantDelete,
		"move":     runTenantMove,
		"checksum": runTenantChecksum,
	}
	run, ok := verbs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pgtenancy tenant: unknown verb %q\n\n%s\n", args[0], tenantUsage)
		return exitError
	}
	return run(ctx, args[1:], stdout, stderr)
}

const tenantExportSynopsis = `--tenant ID --out DIR [flags]

Writes every row of the tenant in the model's tables into DIR (new or
empty): a file per table in foreign key order, in PostgreSQL's binary COPY
format or CSV with a header line, and manifest.json with each table's
columns, row count, checksum and the file's SHA-256. Everything is read in
one snapshot, with the tenant set as the pool sets it. Refuses when a table
outside the model holds tenant data, when the tenant has no row in the root
table, and when row level security does not apply to the role (a superuser,
BYPASSRLS, or the owner of a table without FORCE). The model comes from
--model or --table flags, or from discovery (--root with --tenant-column).

Examples:
  pgtenancy tenant export --database-url $DATABASE_URL --tenant-column store_id --root stores --global currencies \
      --tenant 42 --out export-42
  pgtenancy tenant export --model model.json --tenant 42 --out export-42 --format csv`

func runTenantExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tenant export"
	fs := newFlagSet(cmd, stderr, tenantExportSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database to export from (default $DATABASE_URL)")
	tenant := fs.String("tenant", "", "the tenant's key (required)")
	out := fs.String("out", "", "directory to write, new or empty (required)")
	format := fs.String("format", "binary", "data file format: binary or csv")
	asJSON := fs.Bool("json", false, "print the manifest as JSON instead of a table")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *out == "" {
		return fail(stderr, cmd, errors.New("--out is required"))
	}
	db, m, t, err := tenantSetup(ctx, &f, *tenant)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer db.Close()
	man, err := lifecycle.Export(ctx, db, m, t, *out, lifecycle.ExportOptions{
		Format: lifecycle.Format(*format), Progress: newProgress(stderr).report,
	})
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		return writeJSON(stdout, stderr, cmd, man)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM\tFILE")
	for _, mt := range man.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", mt.Name, mt.Rows, mt.Checksum, mt.File)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "exported tenant %s into %s (manifest %s)\n", man.Tenant, *out, lifecycle.ManifestFile)
	return exitOK
}

const tenantImportSynopsis = `--dir DIR [flags]

Loads the export in DIR into the database, which must have the same tables,
columns and types, in one transaction: all or nothing. Keeps every key,
advances the sequences past the imported values, and compares the target's
checksums with the export's before it commits. Refuses a target that holds
rows of the tenant already, a file whose SHA-256 changed, and a role that
row level security does not apply to; a row the target refuses (a key that
another tenant holds) is reported with its table, constraint and keys.
Connect as the tables' owner (it advances their sequences).

With --batch-rows N, imports N rows per transaction and records the
progress in pgtenancy.import_progress: run it again to continue an import
that stopped.

Examples:
  pgtenancy tenant import --database-url $TARGET_DATABASE_URL --dir export-42
  pgtenancy tenant import --dir export-42 --batch-rows 50000`

func runTenantImport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tenant import"
	fs := newFlagSet(cmd, stderr, tenantImportSynopsis)
	url := fs.String("database-url", "", "database to import into, as the tables' owner (default $DATABASE_URL)")
	dir := fs.String("dir", "", "the export's directory (required)")
	batch := fs.Int("batch-rows", 0, "import in resumable batches of this many rows per table (default: one transaction)")
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *dir == "" {
		return fail(stderr, cmd, errors.New("--dir is required"))
	}
	db, err := newPool(ctx, *url)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer db.Close()
	res, err := lifecycle.Import(ctx, db, *dir, lifecycle.ImportOptions{BatchRows: *batch, Progress: newProgress(stderr).report})
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		return writeJSON(stdout, stderr, cmd, res)
	}
	if res.AlreadyDone {
		fmt.Fprintf(stdout, "tenant %s: an earlier run imported %s; the target's checksums equal the export's\n", res.Manifest.Tenant, *dir)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tTIME")
	for _, it := range res.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%v\n", it.Table, it.Rows, it.Elapsed.Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "imported tenant %s; the target's checksums equal the export's\n", res.Manifest.Tenant)
	return exitOK
}

const tenantDeleteSynopsis = `--tenant ID (--dry-run | --yes) [flags]

Deletes every row of the tenant from the model's tables, in reverse foreign
key order, in batches of short transactions sized to --batch-time, with the
tenant set as the pool sets it, so no other tenant's row can be touched.
Prints the rows per table and the longest batch (no lock was held longer).
--dry-run prints the counts and deletes nothing; without it, --yes is
required. Refuses when a table outside the model holds tenant data. Stop the
application's writes for the tenant first.

Examples:
  pgtenancy tenant delete --database-url $DATABASE_URL --tenant-column store_id --root stores --global currencies \
      --tenant 42 --dry-run
  pgtenancy tenant delete --model model.json --tenant 42 --yes`

func addDeleteFlags(fs *flag.FlagSet, o *lifecycle.DeleteOptions) {
	fs.DurationVar(&o.BatchTime, "batch-time", 200*time.Millisecond, "time each delete batch should take")
	fs.DurationVar(&o.LockTimeout, "lock-timeout", time.Second, "lock_timeout of each delete batch (it is retried, smaller)")
	fs.IntVar(&o.MaxBatchRows, "max-batch-rows", 0, "most rows a delete batch may delete (default 200000)")
}

func runTenantDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tenant delete"
	fs := newFlagSet(cmd, stderr, tenantDeleteSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database to delete from (default $DATABASE_URL)")
	tenant := fs.String("tenant", "", "the tenant's key (required)")
	var opts lifecycle.DeleteOptions
	fs.BoolVar(&opts.DryRun, "dry-run", false, "count the rows per table and delete nothing")
	yes := fs.Bool("yes", false, "delete (required without --dry-run)")
	addDeleteFlags(fs, &opts)
	asJSON := fs.Bool("json", false, "print the result as JSON instead of a table")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if !opts.DryRun && !*yes {
		return fail(stderr, cmd, errors.New("deleting a tenant cannot be undone: pass --dry-run to count its rows, or --yes to delete them"))
	}
	db, m, t, err := tenantSetup(ctx, &f, *tenant)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer db.Close()
	opts.Progress = newProgress(stderr).report
	res, err := lifecycle.Delete(ctx, db, m, t, opts)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		return writeJSON(stdout, stderr, cmd, res)
	}
	writeDelete(stdout, res)
	return exitOK
}

func writeDelete(w io.Writer, res *lifecycle.DeleteResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if res.DryRun {
		fmt.Fprintln(tw, "TABLE\tROWS TO DELETE")
		for _, dt := range res.Tables {
			fmt.Fprintf(tw, "%s\t%d\n", dt.Table, dt.Rows)
		}
	} else {
		fmt.Fprintln(tw, "TABLE\tROWS DELETED\tBATCHES\tLONGEST BATCH")
		for _, dt := range res.Tables {
			batches := fmt.Sprint(dt.Batches)
			if dt.Unbatched {
				batches += " (rows referencing each other in a cycle: one statement)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%v\n", dt.Table, dt.Rows, batches, dt.Longest.Round(time.Millisecond))
		}
	}
	tw.Flush()
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if res.DryRun {
		fmt.Fprintf(w, "dry run: nothing deleted; run with --yes to delete tenant %s\n", res.Tenant)
		return
	}
	fmt.Fprintf(w, "deleted tenant %s in %v; the longest batch took %v (no lock was held longer)\n",
		res.Tenant, res.Elapsed.Round(time.Millisecond), res.Longest.Round(time.Millisecond))
}

const tenantMoveSynopsis = `--tenant ID --to URL --dir DIR --yes [flags]

Moves the tenant from the source (--database-url) to the target (--to), a
database with the same schema: exports it into DIR, imports it into the
target, compares the target's and the source's checksums with the export's,
then deletes it from the source. Each step is recorded in DIR/move.json:
run the same command again to continue a move that stopped. Stop the
application's writes for the tenant first: if the source changed since the
export, nothing is deleted. Connect to the target as its tables' owner.

On Citus, to give a large tenant shards of its own, use citus-isolate.

Examples:
  pgtenancy tenant move --database-url $DATABASE_URL --to $TARGET_DATABASE_URL --model model.json \
      --tenant 42 --dir move-42 --yes`

func runTenantMove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tenant move"
	fs := newFlagSet(cmd, stderr, tenantMoveSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "source database (default $DATABASE_URL)")
	tenant := fs.String("tenant", "", "the tenant's key (required)")
	to := fs.String("to", "", "target database, as its tables' owner (required)")
	dir := fs.String("dir", "", "directory of the export and of the move's journal (required)")
	yes := fs.Bool("yes", false, "move: the tenant is deleted from the source at the end (required)")
	var opts lifecycle.MoveOptions
	format := fs.String("format", "binary", "data file format: binary or csv")
	fs.IntVar(&opts.BatchRows, "batch-rows", 0, "import in resumable batches of this many rows per table (default: one transaction)")
	addDeleteFlags(fs, &opts.Delete)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch {
	case *to == "":
		return fail(stderr, cmd, errors.New("--to is required"))
	case *dir == "":
		return fail(stderr, cmd, errors.New("--dir is required"))
	case !*yes:
		return fail(stderr, cmd, errors.New("a move deletes the tenant from the source at the end: pass --yes"))
	}
	src, m, t, err := tenantSetup(ctx, &f, *tenant)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer src.Close()
	dst, err := newPool(ctx, *to)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	defer dst.Close()
	opts.Format = lifecycle.Format(*format)
	opts.Progress = newProgress(stderr).report
	opts.Step = func(s string) { fmt.Fprintf(stderr, "== %s\n", s) }
	res, err := lifecycle.Move(ctx, src, dst, m, t, *dir, opts)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		return writeJSON(stdout, stderr, cmd, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM")
	for _, c := range res.Target {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Table, c.Checksum.Rows, c.Checksum)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "moved tenant %s in %v: the target's checksums equal the export's, and the source holds none of its rows\n",
		t, res.Elapsed.Round(time.Millisecond))
	return exitOK
}

const tenantChecksumSynopsis = `(--tenant ID [model flags] | --against DIR) [flags]

Prints the row count and checksum of the tenant's rows in each table,
computed on the server (no row leaves it). With --against DIR, the tenant
and the tables are the export's, and the command compares the checksums
with the export's: exit 1 when one differs.

Examples:
  pgtenancy tenant checksum --database-url $DATABASE_URL --model model.json --tenant 42
  pgtenancy tenant checksum --database-url $TARGET_DATABASE_URL --against export-42`

func runTenantChecksum(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tenant checksum"
	fs := newFlagSet(cmd, stderr, tenantChecksumSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database (default $DATABASE_URL)")
	tenant := fs.String("tenant", "", "the tenant's key")
	against := fs.String("against", "", "an export's directory to compare with")
	asJSON := fs.Bool("json", false, "print the checksums as JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var sums []lifecycle.TableChecksum
	var mismatch error
	if *against != "" {
		db, err := newPool(ctx, f.url)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		defer db.Close()
		sums, err = lifecycle.CompareManifest(ctx, db, *against, "database")
		if err != nil && !errors.Is(err, lifecycle.ErrChecksumMismatch) {
			return fail(stderr, cmd, err)
		}
		mismatch = err
	} else {
		db, m, t, err := tenantSetup(ctx, &f, *tenant)
		if err != nil {
			return fail(stderr, cmd, err)
		}
		defer db.Close()
		if sums, err = lifecycle.Checksums(ctx, db, m, t); err != nil {
			return fail(stderr, cmd, err)
		}
	}
	if *asJSON {
		if code := writeJSON(stdout, stderr, cmd, sums); code != exitOK {
			return code
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TABLE\tROWS\tCHECKSUM")
		for _, c := range sums {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", c.Table, c.Checksum.Rows, c.Checksum)
		}
		tw.Flush()
	}
	if mismatch != nil {
		fmt.Fprintf(stderr, "pgtenancy %s: %v\n", cmd, mismatch)
		return exitFindings
	}
	if *against != "" && !*asJSON {
		fmt.Fprintf(stdout, "the checksums equal the export's in %s\n", *against)
	}
	return exitOK
}

// newPool opens a pgxpool on the URL, or DATABASE_URL.
func newPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	dsn := databaseURL(url)
	if dsn == "" {
		return nil, errors.New("no database: pass --database-url or set DATABASE_URL")
	}
	db, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// tenantSetup connects, builds the model from the flags and parses the
// tenant with its key type.
func tenantSetup(ctx context.Context, f *generateFlags, tenant string) (*pgxpool.Pool, *policy.Model, rls.Tenant, error) {
	if tenant == "" {
		return nil, nil, rls.Tenant{}, errors.New("--tenant is required")
	}
	db, err := newPool(ctx, f.url)
	if err != nil {
		return nil, nil, rls.Tenant{}, err
	}
	var m *policy.Model
	err = db.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		var err error
		m, err = liveModel(ctx, c.Conn(), f)
		return err
	})
	if err == nil && m == nil {
		err = errors.New("no model: pass --model, --table flags, or --root with --tenant-column to discover")
	}
	var t rls.Tenant
	if err == nil {
		t, err = rls.Parse(m.KeyType, tenant)
	}
	if err != nil {
		db.Close()
		return nil, nil, rls.Tenant{}, err
	}
	return db, m, t, nil
}

func writeJSON(stdout, stderr io.Writer, cmd string, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fail(stderr, cmd, err)
	}
	return exitOK
}

// progress draws the progress of each table: a bar redrawn in place on a
// terminal, plain lines otherwise (a line when a table is done, and one
// every 10 s while it runs).
type progress struct {
	w     io.Writer
	tty   bool
	width int
	last  time.Time // of the last plain line
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, width: 80}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	if c, err := fmt.Sscan(os.Getenv("COLUMNS"), &p.width); c != 1 || err != nil || p.width < 40 {
		p.width = 80
	}
	return p
}

func (p *progress) report(pr lifecycle.Progress) {
	rate := ""
	if s := pr.Elapsed.Seconds(); s > 0 && pr.Rows > 0 {
		rate = fmt.Sprintf(", %s rows/s", thousands(int64(float64(pr.Rows)/s)))
	}
	if p.tty && !pr.Done && rate != "" {
		rate = " " + rate[2:]
	}
	done := fmt.Sprintf("%s %s: %s in %v%s", pr.Op, pr.Table, rows(pr.Rows), pr.Elapsed.Round(time.Millisecond), rate)
	if !p.tty {
		switch {
		case pr.Done:
			fmt.Fprintln(p.w, done)
		case pr.Rows > 0 && time.Since(p.last) >= 10*time.Second:
			p.last = time.Now()
			fmt.Fprintf(p.w, "%s %s: %s%s\n", pr.Op, pr.Table, counted(pr), rate)
		case pr.Rows == 0:
			p.last = time.Now()
		}
		return
	}
	if pr.Done {
		// The bar gives way to the table's summary.
		fmt.Fprintf(p.w, "\r\x1b[K%s\n", done)
		return
	}
	if pr.Stage == "insert" {
		fmt.Fprintf(p.w, "\r\x1b[K%s %s: inserting %s (the policies and keys check each)", pr.Op, pr.Table, rows(pr.Rows))
		return
	}
	line := fmt.Sprintf("%s %s %s%s", pr.Op, pr.Table, rows(pr.Rows), rate)
	if pr.Total > 0 {
		const barWidth = 20
		filled := int(float64(barWidth) * float64(pr.Rows) / float64(pr.Total))
		filled = min(max(filled, 0), barWidth)
		line = fmt.Sprintf("%s %s [%s%s] %d%%%s (%s/%s)", pr.Op, pr.Table, repeat('#', filled), repeat('.', barWidth-filled),
			pr.Rows*100/pr.Total, rate, thousands(pr.Rows), thousands(pr.Total))
	}
	if len(line) > p.width-1 {
		line = line[:p.width-1]
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

// counted is "450,000/1,000,000 rows (45%)", or "450,000 rows" without a
// total.
func counted(pr lifecycle.Progress) string {
	if pr.Total <= 0 {
		return rows(pr.Rows)
	}
	return fmt.Sprintf("%s/%s rows (%d%%)", thousands(pr.Rows), thousands(pr.Total), pr.Rows*100/pr.Total)
}

// rows is "1 row" or "1,000 rows".
func rows(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return thousands(n) + " rows"
}

func repeat(c byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return string(b)
}

// thousands formats n with commas: 1,234,567.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
