package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ImportOptions configure [Import].
type ImportOptions struct {
	// BatchRows, when above 0, imports in batches of that many rows per
	// table, each batch in a transaction of its own that also records the
	// progress in the table pgtenancy.import_progress of the target (which
	// Import creates, with the schema pgtenancy when missing). An import
	// that stopped, killed or failed, continues where it stopped when run
	// again with the same export; one that finished does nothing more. A
	// table that references itself is imported in one batch, since a batch
	// could hold rows that reference rows of a later one. A conflict
	// ([*ConflictError]) fails its batch with nothing of it applied; the
	// batches before it stay, recorded, and a run after the conflict is
	// resolved continues.
	//
	// Without it, Import runs in one transaction: all or nothing.
	BatchRows int
	// Progress, when not nil, is called with the progress of each table
	// (see [ExportOptions.Progress]).
	Progress func(Progress)
}

// ImportResult is what [Import] did.
type ImportResult struct {
	Manifest *Manifest
	// Tables are the tables in the order imported, with the rows each
	// received in this run.
	Tables []ImportedTable
	// Resumed is set when an import in batches continued an earlier run;
	// AlreadyDone when an earlier run had finished it.
	Resumed, AlreadyDone bool
	Elapsed              time.Duration
}

// ImportedTable is one table of an [ImportResult].
type ImportedTable struct {
	Table   string
	Rows    int64
	Elapsed time.Duration
}

// Import loads the export in dir into db, a database with the same schema
// (the same tables, columns and types; the application's migrations at the
// same version), keeping every key as it is.
//
// It refuses, with nothing changed, an export whose manifest or files are
// bad ([ErrManifest]: a file whose SHA-256 differs), a target whose tables
// differ from the export's ([*SchemaMismatchError]), a target that holds
// rows of the tenant already ([*TargetNotEmptyError]), a role that row
// level security does not apply to ([*NoRLSError]), and Citus
// ([ErrCitus]).
//
// In one transaction with the tenant set (as package pool sets it), table
// after table in the target's foreign key order, it copies the file into a
// temporary table (COPY FROM is refused on tables under row level
// security; temporary tables have none) and inserts its rows with INSERT
// ... SELECT, so the policies check every row: a row of another tenant in
// a file fails the import. Identity columns keep their values (OVERRIDING
// SYSTEM VALUE), and the sequences that fill the columns (serial,
// identity, or a default's nextval) are advanced past the largest value
// imported, never back. A row the target refuses (a key that another
// tenant's row holds, a reference to a global row the target lacks) fails
// the import with a [*ConflictError] that says which table, constraint and
// key, and how many of the table's rows collide. Before committing, Import
// computes the checksum of every table on the target and compares it with
// the manifest's ([*ChecksumError]).
//
// Killed at any point, a single-transaction import leaves nothing behind
// but the values its sequences took (sequences are not transactional). See
// [ImportOptions.BatchRows] for imports in resumable batches.
//
// db is borrowed, not closed. Its role needs INSERT on the tables, UPDATE
// on their sequences (setval) and the TEMPORARY privilege on the
// database: the tables' owner, with FORCE ROW LEVEL SECURITY. In batches,
// also CREATE on the schema pgtenancy (the owner that installed it).
func Import(ctx context.Context, db *pgxpool.Pool, dir string, opts ImportOptions) (*ImportResult, error) {
	start := time.Now()
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	t, err := man.tenant()
	if err != nil {
		return nil, err
	}
	d, err := open(db, man.KeyType, man.Setting)
	if err != nil {
		return nil, err
	}
	var res *ImportResult
	if opts.BatchRows > 0 {
		res, err = importBatches(ctx, d, man, t, dir, opts)
	} else {
		res, err = importAll(ctx, d, man, t, dir, opts)
	}
	if err != nil {
		return nil, err
	}
	res.Manifest, res.Elapsed = man, time.Since(start)
	return res, nil
}

// importTable is a table of the target with its columns in the order of
// the export's file.
type importTable struct {
	*table
	mt *ManifestTable
}

// targetTables reads the target's tables and matches them with the
// manifest's, in the target's foreign key order.
func targetTables(ctx context.Context, tx pgx.Tx, man *Manifest) ([]importTable, error) {
	l, err := readLayout(ctx, tx, man.model())
	if err != nil {
		return nil, err
	}
	tables := l.tables
	var problems []string
	out := make([]importTable, 0, len(tables))
	for _, tb := range tables {
		i := slices.IndexFunc(man.Tables, func(mt ManifestTable) bool { return mt.Name == tb.name() })
		mt := &man.Tables[i]
		byName := map[string]snapshot.Column{}
		for _, c := range tb.cols {
			byName[c.Name] = c
		}
		cols := make([]snapshot.Column, 0, len(mt.Columns))
		for _, mc := range mt.Columns {
			c, ok := byName[mc.Name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: no column %q (%s) in the target", mt.Name, mc.Name, mc.Type))
				continue
			case c.Type != mc.Type || c.Copy.Text != mc.Text:
				problems = append(problems, fmt.Sprintf("%s: column %q is %s in the target, %s in the export", mt.Name, mc.Name, c.Type, mc.Type))
			}
			delete(byName, mc.Name)
			cols = append(cols, c)
		}
		for _, c := range tb.cols {
			if _, extra := byName[c.Name]; extra {
				problems = append(problems, fmt.Sprintf("%s: the target has column %q (%s), which the export lacks", mt.Name, c.Name, c.Type))
			}
		}
		tb.cols = cols
		out = append(out, importTable{table: tb, mt: mt})
	}
	if len(problems) > 0 {
		return nil, &SchemaMismatchError{Problems: problems}
	}
	return out, nil
}

func plainTables(its []importTable) []*table {
	out := make([]*table, len(its))
	for i, it := range its {
		out[i] = it.table
	}
	return out
}

// checkEmpty returns a [*TargetNotEmptyError] when the target holds rows
// of the tenant; want, when not nil, are the counts a resumed import
// expects instead.
func checkEmpty(ctx context.Context, tx pgx.Tx, its []importTable, t rls.Tenant, want map[string]int64) error {
	counts, err := countRows(ctx, tx, plainTables(its), t.Key(), t)
	if err != nil {
		return err
	}
	e := &TargetNotEmptyError{Tenant: t.String(), Rows: map[string]int64{}}
	var changed []string
	for i, it := range its {
		switch w := want[it.mt.Name]; {
		case want != nil && counts[i] != w:
			changed = append(changed, fmt.Sprintf("%s holds %d rows of the tenant, the journal says %d", it.mt.Name, counts[i], w))
		case want == nil && counts[i] > 0:
			e.Rows[it.mt.Name] = counts[i]
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w: the target changed since the import stopped: %s", ErrTargetNotEmpty, strings.Join(changed, "; "))
	}
	if len(e.Rows) > 0 {
		return e
	}
	return nil
}

func importAll(ctx context.Context, d *db, man *Manifest, t rls.Tenant, dir string, opts ImportOptions) (*ImportResult, error) {
	tx, err := d.begin(ctx, t, pgx.TxOptions{})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	its, err := targetTables(ctx, tx, man)
	if err != nil {
		return nil, err
	}
	if err := checkRLS(ctx, tx, plainTables(its)); err != nil {
		return nil, err
	}
	if err := checkEmpty(ctx, tx, its, t, nil); err != nil {
		return nil, err
	}
	res := &ImportResult{}
	for _, it := range its {
		start := time.Now()
		n, err := importFile(ctx, tx, it, dir, man.Format, opts.Progress)
		if err != nil {
			return nil, err
		}
		res.Tables = append(res.Tables, ImportedTable{Table: it.mt.Name, Rows: n, Elapsed: time.Since(start)})
	}
	if err := compareSums(ctx, tx, its, t); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("lifecycle: import: commit: %w", err)
	}
	return res, nil
}

// importFile loads a whole data file in tx, checking its SHA-256 and its
// row count against the manifest's.
func importFile(ctx context.Context, tx pgx.Tx, it importTable, dir string, format Format, progress func(Progress)) (int64, error) {
	f, err := os.Open(filepath.Join(dir, it.mt.File))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	defer f.Close()
	sha := sha256.New()
	rr, err := newRecordReader(io.TeeReader(f, sha), format, len(it.cols))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrManifest, it.mt.File, err)
	}
	rep := newReporter(progress, "import", it.mt.Name, it.mt.Rows)
	n, err := loadChunk(ctx, tx, it, &chunk{rr: rr}, rep, 0)
	if err != nil {
		return 0, err
	}
	if err := checkFileEnd(it.mt, sha, n); err != nil {
		return 0, err
	}
	rep.done(n)
	return n, nil
}

func checkFileEnd(mt *ManifestTable, sha hash.Hash, n int64) error {
	if got := hex.EncodeToString(sha.Sum(nil)); got != mt.SHA256 {
		return fmt.Errorf("%w: table %s: %s has SHA-256 %s, the manifest says %s (the file changed)", ErrManifest, mt.Name, mt.File, got, mt.SHA256)
	}
	if n != mt.Rows {
		return fmt.Errorf("%w: table %s: %s holds %d rows, the manifest says %d", ErrManifest, mt.Name, mt.File, n, mt.Rows)
	}
	return nil
}

const stage = "pg_temp.pgtenancy_import"

// loadChunk copies the records of ch into a temporary table, advances the
// sequences past them, and inserts them into the table. base is the
// number of the table's rows loaded before, for progress.
func loadChunk(ctx context.Context, tx pgx.Tx, it importTable, ch *chunk, rep *reporter, base int64) (int64, error) {
	name := it.mt.Name
	create := fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TEMPORARY TABLE pgtenancy_import ON COMMIT DROP AS SELECT %s FROM %s WITH NO DATA",
		stage, it.selectList(), it.sql())
	if _, err := tx.Exec(ctx, create); err != nil {
		return 0, fmt.Errorf("lifecycle: import %s: staging table: %w", name, err)
	}
	ch.tick = func() { rep.rows(base + ch.rows) }
	copySQL := fmt.Sprintf("COPY %s (%s) FROM STDIN %s", stage, it.columnList(), ch.rr.format.copyOptions(false))
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, ch, copySQL); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return 0, fmt.Errorf("%w: table %s: %s does not load: %w", ErrManifest, name, it.mt.File, err)
		}
		return 0, fmt.Errorf("lifecycle: import %s: %w", name, err)
	}
	for _, s := range it.seqs() {
		seq := sqlquote.Literal(s.name) + "::regclass"
		sql := fmt.Sprintf(`SELECT pg_catalog.setval(%[1]s, GREATEST(x.m, pg_catalog.nextval(%[1]s)))
FROM (SELECT max(%[2]s)::bigint AS m FROM %[3]s) x
WHERE x.m IS NOT NULL`,
			seq, sqlquote.Ident(s.column), stage)
		if _, err := tx.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("lifecycle: import %s: advance sequence %s (the role needs UPDATE on it): %w", name, s.name, err)
		}
	}
	if ch.limit <= 0 {
		rep.stage("insert", base+ch.rows)
	}
	casts := make([]string, len(it.cols))
	for i, c := range it.cols {
		casts[i] = sqlquote.Ident(c.Name)
		if c.Copy.Text {
			casts[i] += "::" + c.Type
		}
	}
	insert := fmt.Sprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
		it.sql(), it.columnList(), strings.Join(casts, ", "), stage)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: import %s: %w", name, err)
	}
	tag, err := sp.Exec(ctx, insert)
	if err != nil {
		_ = sp.Rollback(ctx)
		return 0, conflict(ctx, tx, it, insert, ch.rows, err)
	}
	if err := sp.Commit(ctx); err != nil {
		return 0, fmt.Errorf("lifecycle: import %s: %w", name, err)
	}
	if tag.RowsAffected() != ch.rows {
		return 0, fmt.Errorf("lifecycle: import %s: inserted %d of %d rows", name, tag.RowsAffected(), ch.rows)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+stage); err != nil {
		return 0, fmt.Errorf("lifecycle: import %s: %w", name, err)
	}
	if err := analyzeIfStale(ctx, tx, it, base+ch.rows); err != nil {
		return 0, err
	}
	return ch.rows, nil
}

// analyzeMin is the fewest rows of a table an import analyzes it for.
const analyzeMin = 1000

// analyzeIfStale analyzes a table that other tenant tables reference once
// its statistics count fewer than half the rows imported into it: the
// foreign key checks of the tables inserted next are planned from them,
// and a table that was analyzed empty (or small) makes each check scan it
// whole, which turns an import of minutes into one of hours. ANALYZE in
// the import's transaction counts its rows; it takes no lock that blocks
// reads or writes, and only the owner may run it (another role gets a
// warning).
func analyzeIfStale(ctx context.Context, tx pgx.Tx, it importTable, rows int64) error {
	if !it.referenced || rows < analyzeMin {
		return nil
	}
	var reltuples float64
	if err := tx.QueryRow(ctx, "SELECT reltuples FROM pg_catalog.pg_class WHERE oid = $1", it.OID).Scan(&reltuples); err != nil {
		return fmt.Errorf("lifecycle: import %s: %w", it.mt.Name, err)
	}
	if reltuples >= float64(rows)/2 {
		return nil
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+it.sql()); err != nil {
		return fmt.Errorf("lifecycle: import %s: analyze: %w", it.mt.Name, err)
	}
	return nil
}

// conflict turns the error of an insert into a [*ConflictError] when the
// target refused rows. For a key that collides, it counts the staged rows
// that collide and shows some of their keys (the server does not, under
// row level security): it runs the insert again, skipping them, in a
// savepoint that it rolls back.
func conflict(ctx context.Context, tx pgx.Tx, it importTable, insert string, staged int64, err error) error {
	name := it.mt.Name
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("lifecycle: import %s: %w", name, err)
	}
	e := &ConflictError{Table: name, Constraint: pgErr.ConstraintName, Detail: pgErr.Detail, err: err}
	switch {
	case pool.IsRLSViolation(err):
		e.Detail = "the policies refuse the file's rows for the tenant: rows of another tenant, or policies that read another setting than " +
			"the export's"
		return e
	case !strings.HasPrefix(pgErr.Code, "23"):
		return fmt.Errorf("lifecycle: import %s: %w", name, err)
	case pgErr.Code != "23505":
		return e
	}
	sp, spErr := tx.Begin(ctx)
	if spErr != nil {
		return e
	}
	defer sp.Rollback(ctx) //nolint:errcheck // diagnosis only
	// The key columns of the index, from the snapshot the import read:
	// none for an index of a partition or with an expression, which then
	// gets a count only.
	var keys []string
	if i := slices.IndexFunc(it.Indexes, func(ix snapshot.Index) bool { return ix.Name == pgErr.ConstraintName }); i >= 0 {
		keys = it.Indexes[i].Columns
	}
	var staged2 []string
	for _, k := range keys {
		if c := slices.IndexFunc(it.cols, func(c snapshot.Column) bool { return c.Name == k }); c >= 0 {
			staged2 = append(staged2, stagedValue(it.cols[c]))
		}
	}
	if len(keys) == 0 || len(staged2) != len(keys) {
		var inserted int64
		if sp.QueryRow(ctx, "WITH i AS ("+insert+" ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM i").Scan(&inserted) == nil {
			e.Conflicting = staged - inserted
		}
		return e
	}
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = "i." + sqlquote.Ident(k)
	}
	label := "(" + strings.Join(keys, ", ") + ")=("
	sql := fmt.Sprintf(`WITH i AS (%s ON CONFLICT DO NOTHING RETURNING %s)
SELECT (SELECT count(*) FROM i), ARRAY(
    SELECT %s || concat_ws(', ', %s) || ')' FROM %s s
    WHERE NOT EXISTS (SELECT FROM i WHERE (%s) IS NOT DISTINCT FROM (%s))
    LIMIT 5)`,
		insert, strings.Join(quotedIdents(keys), ", "), sqlquote.Literal(label), strings.Join(staged2, ", "), stage,
		strings.Join(quoted, ", "), strings.Join(staged2, ", "))
	var inserted int64
	if sp.QueryRow(ctx, sql).Scan(&inserted, &e.Keys) == nil {
		e.Conflicting = staged - inserted
	}
	return e
}

// stagedValue is a column of the staging table as the table's type.
func stagedValue(c snapshot.Column) string {
	v := "s." + sqlquote.Ident(c.Name)
	if c.Copy.Text {
		v += "::" + c.Type
	}
	return v
}

func quotedIdents(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = sqlquote.Ident(n)
	}
	return out
}

// compareSums compares the checksums of the tenant's rows in tx with the
// manifest's.
func compareSums(ctx context.Context, tx pgx.Tx, its []importTable, t rls.Tenant) error {
	sums, err := checksums(ctx, tx, plainTables(its), t)
	if err != nil {
		return err
	}
	for i, it := range its {
		if sums[i] != it.mt.Checksum {
			return &ChecksumError{Table: it.mt.Name, Where: "target", Want: it.mt.Checksum, Got: sums[i]}
		}
	}
	return nil
}

// The journal of imports in batches.
const journalDDL = `CREATE TABLE IF NOT EXISTS pgtenancy.import_progress (
    export_id  text NOT NULL,
    table_name text NOT NULL,
    tenant     text NOT NULL,
    rows_done  bigint NOT NULL,
    finished   boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (export_id, table_name)
)`

type journalEntry struct {
	rows     int64
	finished bool
}

func readJournal(ctx context.Context, d *db, exportID string) (map[string]journalEntry, error) {
	var hasSchema bool
	if err := d.raw.QueryRow(ctx, `SELECT pg_catalog.to_regnamespace('pgtenancy') IS NOT NULL`).Scan(&hasSchema); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if !hasSchema {
		if _, err := d.raw.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS pgtenancy"); err != nil {
			return nil, fmt.Errorf("lifecycle: create schema pgtenancy for the import journal: %w", err)
		}
	}
	if _, err := d.raw.Exec(ctx, journalDDL); err != nil {
		return nil, fmt.Errorf("lifecycle: create pgtenancy.import_progress: %w", err)
	}
	rows, err := d.raw.Query(ctx, `SELECT table_name, rows_done, finished FROM pgtenancy.import_progress WHERE export_id = $1`, exportID)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: read pgtenancy.import_progress: %w", err)
	}
	defer rows.Close()
	j := map[string]journalEntry{}
	for rows.Next() {
		var name string
		var e journalEntry
		if err := rows.Scan(&name, &e.rows, &e.finished); err != nil {
			return nil, err
		}
		j[name] = e
	}
	return j, rows.Err()
}

func importBatches(ctx context.Context, d *db, man *Manifest, t rls.Tenant, dir string, opts ImportOptions) (*ImportResult, error) {
	journal, err := readJournal(ctx, d, man.ExportID)
	if err != nil {
		return nil, err
	}
	res := &ImportResult{Resumed: len(journal) > 0}
	tx, err := d.begin(ctx, t, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	its, err := targetTables(ctx, tx, man)
	if err == nil {
		err = checkRLS(ctx, tx, plainTables(its))
	}
	if err == nil {
		var want map[string]int64
		if len(journal) > 0 {
			want = map[string]int64{}
			for name, e := range journal {
				want[name] = e.rows
			}
		}
		err = checkEmpty(ctx, tx, its, t, want)
	}
	_ = tx.Rollback(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	if len(journal) == len(its) && !slices.ContainsFunc(its, func(it importTable) bool { return !journal[it.mt.Name].finished }) {
		res.AlreadyDone = true
		return res, verifyTarget(ctx, d, its, t)
	}
	if err := CheckFiles(dir, man); err != nil {
		return nil, err
	}
	for _, it := range its {
		e := journal[it.mt.Name]
		if e.finished {
			continue
		}
		start := time.Now()
		n, err := importTableBatches(ctx, d, man, it, t, dir, e.rows, opts)
		if err != nil {
			return nil, err
		}
		res.Tables = append(res.Tables, ImportedTable{Table: it.mt.Name, Rows: n, Elapsed: time.Since(start)})
	}
	return res, verifyTarget(ctx, d, its, t)
}

// importTableBatches imports a table's file from record done on, in
// batches, and returns the rows it imported.
func importTableBatches(ctx context.Context, d *db, man *Manifest, it importTable, t rls.Tenant, dir string, done int64, opts ImportOptions) (int64, error) {
	f, err := os.Open(filepath.Join(dir, it.mt.File))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	defer f.Close()
	rr, err := newRecordReader(f, man.Format, len(it.cols))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrManifest, it.mt.File, err)
	}
	for i := int64(0); i < done; i++ {
		if _, err := rr.next(); err != nil {
			return 0, fmt.Errorf("%w: %s: record %d of the %d the journal says are imported: %w", ErrManifest, it.mt.File, i+1, done, err)
		}
	}
	limit := int64(opts.BatchRows)
	if len(it.selfRefs) > 0 {
		limit = 0
	}
	rep := newReporter(opts.Progress, "import", it.mt.Name, it.mt.Rows)
	var imported int64
	for {
		tx, err := d.begin(ctx, t, pgx.TxOptions{})
		if err != nil {
			return imported, err
		}
		ch := &chunk{rr: rr, limit: limit}
		n, err := loadChunk(ctx, tx, it, ch, rep, done)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO pgtenancy.import_progress (export_id, table_name, tenant, rows_done, finished)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (export_id, table_name) DO UPDATE SET rows_done = EXCLUDED.rows_done, finished = EXCLUDED.finished, updated_at = now()`,
				man.ExportID, it.mt.Name, t.String(), done+n, rr.done)
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return imported, err
		}
		done += n
		imported += n
		if rr.done {
			break
		}
	}
	if done != it.mt.Rows {
		return imported, fmt.Errorf("%w: table %s: %s holds %d rows, the manifest says %d", ErrManifest, it.mt.Name, it.mt.File, done, it.mt.Rows)
	}
	rep.done(done)
	return imported, nil
}

// verifyTarget compares the target's checksums with the manifest's, in a
// transaction of its own.
func verifyTarget(ctx context.Context, d *db, its []importTable, t rls.Tenant) error {
	tx, err := d.begin(ctx, t, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	return compareSums(ctx, tx, its, t)
}
