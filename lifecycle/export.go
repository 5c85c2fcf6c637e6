package lifecycle

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ExportOptions configure [Export].
type ExportOptions struct {
	// Format is the format of the data files; [Binary] when empty.
	Format Format
	// Progress, when not nil, is called with the progress of each table:
	// when it starts, at most every 100 ms while its rows stream, and when
	// it is done. It runs on the goroutine of the export, which waits for
	// it.
	Progress func(Progress)
}

// Export writes every row of tenant t in the model's tables into dir, a new
// or empty directory: a data file per table, in foreign key order, then
// the manifest ([Manifest]) with each table's columns, row count, checksum
// and the SHA-256 of its file. It returns the manifest.
//
// It refuses, before reading a row, when a table outside the model holds
// tenant data ([*UncoveredError]: what verify reports as
// table_not_in_model, or a foreign key to a tenant table), when the tenant
// has no row in the root table ([ErrUnknownTenant]), when row level
// security does not apply to the connecting role ([*NoRLSError]), and on
// Citus ([ErrCitus]).
//
// Everything is read in one REPEATABLE READ, READ ONLY transaction with the
// tenant set as package pool sets it, so the files are one consistent
// snapshot and hold nothing the policies do not admit for the tenant; each
// table is read with COPY (SELECT ... WHERE tenant column = t) TO STDOUT.
// In the binary format the checksums are computed from the stream as it
// is written, at no cost on the server; in CSV, by one more query per
// table, on the server.
//
// db is borrowed, not closed. Its role needs SELECT on the tables and the
// TEMPORARY privilege (for verify's check); the tables' owner (with FORCE
// ROW LEVEL SECURITY) and the application role both do.
func Export(ctx context.Context, db *pgxpool.Pool, m *policy.Model, t rls.Tenant, dir string, opts ExportOptions) (*Manifest, error) {
	if err := checkTenant(m, t); err != nil {
		return nil, err
	}
	format := opts.Format
	if format == "" {
		format = Binary
	}
	if !format.valid() {
		return nil, fmt.Errorf("lifecycle: format %q: want binary or csv", format)
	}
	d, err := open(db, m.KeyType, m.Setting)
	if err != nil {
		return nil, err
	}
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	tx, err := d.begin(ctx, t, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	tables, err := prepare(ctx, d, tx, m, t)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	man := &Manifest{
		FormatVersion:     ManifestVersion,
		ExportID:          newID(),
		CreatedAt:         time.Now().UTC().Truncate(time.Second),
		Tenant:            t.String(),
		KeyType:           m.KeyType,
		Setting:           d.setting,
		Format:            format,
		ChecksumAlgorithm: ChecksumAlgorithm,
	}
	if man.Source, err = readSource(ctx, tx); err != nil {
		return nil, err
	}
	for i, tb := range tables {
		mt, err := exportTable(ctx, tx, tb, t, dir, fileName(i, tb.name(), format), format, opts.Progress)
		if err != nil {
			return nil, err
		}
		man.Tables = append(man.Tables, *mt)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("lifecycle: export: %w", err)
	}
	if err := writeManifest(dir, man); err != nil {
		return nil, fmt.Errorf("lifecycle: write manifest: %w", err)
	}
	return man, nil
}

// prepare reads the layout and runs the checks every operation on a source
// runs first: Citus, coverage, row level security, a known tenant.
func prepare(ctx context.Context, d *db, tx pgx.Tx, m *policy.Model, t rls.Tenant) ([]*table, error) {
	l, err := readLayout(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	tables := l.tables
	if err := checkCoverage(ctx, d.raw, m, l.uncovered); err != nil {
		return nil, err
	}
	if err := checkRLS(ctx, tx, tables); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(tables, func(tb *table) bool { return tb.root })
	root := tables[i]
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+root.sql()+" WHERE "+root.predicate(d.key), t.String()).Scan(&n); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: tenant %s has no row in %s", ErrUnknownTenant, t, root.name())
	}
	return tables, nil
}

// checkDir checks that dir is empty or does not exist.
func checkDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("lifecycle: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s", ErrDirNotEmpty, dir)
	}
	return nil
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// readSource describes the database.
func readSource(ctx context.Context, tx pgx.Tx) (Source, error) {
	var s Source
	var hasLibrary bool
	err := tx.QueryRow(ctx, `SELECT current_database()::text, current_setting('server_version'),
		pg_catalog.to_regclass('pgtenancy.schema_version') IS NOT NULL
		AND pg_catalog.has_table_privilege('pgtenancy.schema_version', 'SELECT')`).Scan(&s.Database, &s.ServerVersion, &hasLibrary)
	if err != nil {
		return s, fmt.Errorf("lifecycle: %w", err)
	}
	if hasLibrary {
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM pgtenancy.schema_version`).Scan(&s.LibraryVersion); err != nil {
			return s, fmt.Errorf("lifecycle: read pgtenancy.schema_version: %w", err)
		}
	}
	return s, nil
}

// exportTable copies the tenant's rows of one table into a file.
func exportTable(ctx context.Context, tx pgx.Tx, tb *table, t rls.Tenant, dir, file string, format Format, progress func(Progress)) (*ManifestTable, error) {
	mt := &ManifestTable{Name: tb.name(), TenantColumn: tb.column, Root: tb.root, File: file}
	for _, c := range tb.cols {
		mt.Columns = append(mt.Columns, Column{Name: c.Name, Type: c.Type, Text: c.Copy.Text})
	}
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	defer f.Close()
	sha := sha256.New()
	rep := newReporter(progress, "export", tb.name(), -1)
	var rows func() int64
	var sink io.Writer
	var hasher *binaryHasher
	var counter *csvCounter
	if format == Binary {
		hasher = &binaryHasher{ncols: len(tb.cols)}
		rows = func() int64 { return hasher.sum.Rows }
		sink = hasher
	} else {
		counter = &csvCounter{}
		rows = func() int64 { return max(counter.records-1, 0) } // less the header line
		sink = counter
	}
	// COPY writes a message per row: the buffer turns them into large
	// writes, which the file, the SHA-256 and the parser each take in one
	// call.
	w := &progressWriter{w: io.MultiWriter(f, sha, sink), tick: func() { rep.rows(rows()) }}
	buf := bufio.NewWriterSize(w, 1<<20)
	sql := fmt.Sprintf("COPY (SELECT %s FROM %s WHERE %s) TO STDOUT %s",
		tb.selectList(), tb.sql(), tb.literalPredicate(t), format.copyOptions(true))
	if _, err := tx.Conn().PgConn().CopyTo(ctx, buf, sql); err != nil {
		return nil, fmt.Errorf("lifecycle: export %s: %w", tb.name(), err)
	}
	if err := buf.Flush(); err != nil {
		return nil, fmt.Errorf("lifecycle: export %s: %w", tb.name(), err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("lifecycle: export %s: %w", tb.name(), err)
	}
	if format == Binary {
		if err := hasher.finish(); err != nil {
			return nil, fmt.Errorf("lifecycle: export %s: %w", tb.name(), err)
		}
		mt.Checksum = hasher.sum
	} else {
		sums, err := checksums(ctx, tx, []*table{tb}, t)
		if err != nil {
			return nil, err
		}
		mt.Checksum = sums[0]
		if mt.Checksum.Rows != rows() {
			return nil, fmt.Errorf("lifecycle: export %s: %d CSV records for %d rows", tb.name(), rows(), mt.Checksum.Rows)
		}
	}
	mt.Rows, mt.SHA256, mt.Bytes = mt.Checksum.Rows, hex.EncodeToString(sha.Sum(nil)), w.n
	rep.done(mt.Rows)
	return mt, nil
}

// progressWriter counts the bytes written and calls tick after each
// write.
type progressWriter struct {
	w    io.Writer
	n    int64
	tick func()
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.tick()
	return n, err
}
