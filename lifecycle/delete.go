package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// DeleteOptions configure [Delete].
type DeleteOptions struct {
	// DryRun counts the rows Delete would delete, per table, and deletes
	// nothing.
	DryRun bool
	// BatchTime is how long each batch should take; Delete sizes the
	// batches to it as it goes. 200 ms when 0.
	BatchTime time.Duration
	// MaxBatchRows caps the rows of a batch; 200,000 when 0. The first
	// batch has 1,000 rows, or MaxBatchRows if fewer.
	MaxBatchRows int
	// LockTimeout is the lock_timeout of each batch: a batch that waits
	// longer for a lock (a row that another transaction holds) is retried,
	// smaller, up to 10 times. 1 s when 0.
	LockTimeout time.Duration
	// Progress, when not nil, is called with the progress of each table
	// (see [ExportOptions.Progress]).
	Progress func(Progress)
}

// DeleteResult is what [Delete] did, or, for a dry run, would do.
type DeleteResult struct {
	Tenant string
	DryRun bool
	// Tables are the tables in the order of deletion (reverse foreign key
	// order), with their rows: deleted, or to delete in a dry run.
	Tables []DeletedTable
	// Longest is the longest batch transaction, from BEGIN to the end of
	// COMMIT as the client saw it: no lock that Delete took was held
	// longer.
	Longest time.Duration
	// Warnings name what makes the delete slow: foreign keys without an
	// index on their columns, which make every deleted row scan the
	// referencing table.
	Warnings []string
	Elapsed  time.Duration
}

// DeletedTable is one table of a [DeleteResult].
type DeletedTable struct {
	Table   string
	Rows    int64
	Batches int
	// Longest is the table's longest batch transaction.
	Longest time.Duration
	// Unbatched is set for a table that references itself whose rows
	// Delete could not delete in batches: rows that reference each other
	// in a cycle, deleted in one statement. (A table that references itself
	// is deleted leaves first: each batch deletes rows that no row
	// references.)
	Unbatched bool
}

// Delete deletes every row of tenant t from the model's tables, in reverse
// foreign key order (every table before the tables it references, the
// root table last), in batches of short transactions, so that no lock is
// held long, and reports the longest batch.
//
// Each batch is a transaction with the tenant set (as package pool sets it)
// and lock_timeout, deleting DELETE ... WHERE ctid = ANY (ARRAY(SELECT
// ctid FROM t WHERE tenant column = t LIMIT n)) AND tenant column = t: the
// policies and the predicate both limit it to the tenant's rows, and row
// level security must apply to the connecting role ([*NoRLSError]), so
// other tenants' rows are never touched. Batches are sized to take
// [DeleteOptions.BatchTime]. When the last batch is done, Delete counts
// again and deletes rows the application wrote meanwhile, or fails if it
// keeps writing.
//
// It refuses when a table outside the model holds tenant data
// ([*UncoveredError]): those rows would stay, or block the delete with
// their foreign keys; when the tenant has no row in any table
// ([ErrUnknownTenant]); and on Citus ([ErrCitus]). A foreign key from a row
// outside the model, or from another tenant's row through a plain foreign
// key, stops the delete at its batch with the server's error: the batches
// before it stay deleted, and Delete can run again.
//
// db is borrowed, not closed. Its role needs SELECT and DELETE on the
// tables and the TEMPORARY privilege (for verify's check): the application
// role, or the tables' owner with FORCE ROW LEVEL SECURITY.
func Delete(ctx context.Context, db *pgxpool.Pool, m *policy.Model, t rls.Tenant, opts DeleteOptions) (*DeleteResult, error) {
	start := time.Now()
	if err := checkTenant(m, t); err != nil {
		return nil, err
	}
	d, err := open(db, m.KeyType, m.Setting)
	if err != nil {
		return nil, err
	}
	batchTime := cmpOr(opts.BatchTime, 200*time.Millisecond)
	lockTimeout := cmpOr(opts.LockTimeout, time.Second)
	maxRows := int64(maxBatch)
	if opts.MaxBatchRows > 0 {
		maxRows = int64(opts.MaxBatchRows)
	}

	tx, err := d.begin(ctx, t, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	tables, counts, warnings, err := deletePlan(ctx, d, tx, m, t)
	_ = tx.Rollback(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	res := &DeleteResult{Tenant: t.String(), DryRun: opts.DryRun, Warnings: warnings}
	slices.Reverse(tables)
	slices.Reverse(counts)
	for i, tb := range tables {
		dt := DeletedTable{Table: tb.name(), Rows: counts[i]}
		if !opts.DryRun {
			if err := deleteTable(ctx, d, tb, t, counts[i], batchTime, lockTimeout, maxRows, &dt, opts.Progress); err != nil {
				return nil, err
			}
			res.Longest = max(res.Longest, dt.Longest)
		}
		res.Tables = append(res.Tables, dt)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// deletePlan runs the checks and counts the rows to delete.
func deletePlan(ctx context.Context, d *db, tx pgx.Tx, m *policy.Model, t rls.Tenant) ([]*table, []int64, []string, error) {
	l, err := readLayout(ctx, tx, m)
	if err != nil {
		return nil, nil, nil, err
	}
	tables := l.tables
	if err := checkCoverage(ctx, d.raw, m, l.uncovered); err != nil {
		return nil, nil, nil, err
	}
	if err := checkRLS(ctx, tx, tables); err != nil {
		return nil, nil, nil, err
	}
	counts, err := countRows(ctx, tx, tables, d.key, t)
	if err != nil {
		return nil, nil, nil, err
	}
	if !slices.ContainsFunc(counts, func(n int64) bool { return n > 0 }) {
		return nil, nil, nil, fmt.Errorf("%w: tenant %s has no rows in the model's tables", ErrUnknownTenant, t)
	}
	return tables, counts, unindexedForeignKeys(tables), nil
}

// unindexedForeignKeys names the foreign keys between the tables whose
// columns no index of the referencing table leads with (in any order, not
// partial): deleting a referenced row then scans the referencing table.
func unindexedForeignKeys(tables []*table) []string {
	var out []string
	for _, tb := range tables {
		for _, f := range tb.Constraints {
			if f.Type != 'f' || !slices.ContainsFunc(tables, func(r *table) bool { return r.OID == f.Ref }) {
				continue
			}
			if !slices.ContainsFunc(tb.Indexes, func(ix snapshot.Index) bool { return leadsWith(ix, f.Columns) }) {
				out = append(out, fmt.Sprintf("%s: no index leads with the columns of foreign key %s, so deleting each referenced row scans %s",
					tb.name(), f.Name, tb.name()))
			}
		}
	}
	slices.Sort(out)
	return out
}

// leadsWith reports whether the first key columns of an index that is not
// partial are cols, in any order.
func leadsWith(ix snapshot.Index, cols []string) bool {
	if ix.Partial || len(ix.Columns) < len(cols) {
		return false
	}
	lead := slices.Sorted(slices.Values(ix.Columns[:len(cols)]))
	return slices.Equal(lead, slices.Sorted(slices.Values(cols)))
}

const (
	firstBatch = 1000
	maxBatch   = 200_000
	maxRetries = 10
)

// deleteTable deletes the tenant's rows of one table in batches.
func deleteTable(ctx context.Context, d *db, tb *table, t rls.Tenant, total int64, batchTime, lockTimeout time.Duration, maxRows int64, dt *DeletedTable, progress func(Progress)) error {
	rep := newReporter(progress, "delete", tb.name(), total)
	dt.Rows = 0
	// On a partitioned table a ctid names a row in each partition: the
	// tenant predicate keeps the delete to the tenant's rows, a batch may
	// only be a little larger.
	pred := tb.predicate(d.key)
	leaves := ""
	for _, r := range tb.selfRefs {
		// Leaves first: rows that no row references, so that no batch
		// deletes a row that a row of a later batch references.
		conds := make([]string, len(r.Columns))
		for i := range r.Columns {
			conds[i] = "c." + sqlquote.Ident(r.Columns[i]) + " = x." + sqlquote.Ident(r.RefCols[i])
		}
		leaves += fmt.Sprintf(" AND NOT EXISTS (SELECT FROM %s c WHERE %s)", tb.sql(), strings.Join(conds, " AND "))
	}
	sql := fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = ANY (ARRAY(SELECT x.ctid FROM %[1]s x WHERE x.%[2]s%[3]s LIMIT $2)) AND %[2]s",
		tb.sql(), pred, leaves)
	timeout := strconv.FormatInt(lockTimeout.Milliseconds(), 10) + "ms"
	n := min(int64(firstBatch), maxRows)
	retries, recounts := 0, 0
	for {
		args := []any{t.String(), n}
		if dt.Unbatched {
			args = args[:1]
		}
		begun := time.Now()
		deleted, err := deleteBatch(ctx, d, t, sql, timeout, args)
		took := time.Since(begun)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" && retries < maxRetries {
			// lock_timeout: another transaction holds some of the rows.
			retries++
			n = max(n/2, 1)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(retries) * 50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("lifecycle: delete from %s (after %d of its rows): %w", tb.name(), dt.Rows, err)
		}
		retries = 0
		dt.Batches++
		dt.Rows += deleted
		dt.Longest = max(dt.Longest, took)
		rep.rows(dt.Rows)
		if deleted < n {
			left, err := countLeft(ctx, d, tb, t)
			if err != nil {
				return err
			}
			if left == 0 {
				break
			}
			if len(tb.selfRefs) > 0 && deleted == 0 {
				// No leaf left: rows that reference each other in a cycle.
				sql, dt.Unbatched = "DELETE FROM "+tb.sql()+" WHERE "+pred, true
				continue
			}
			if len(tb.selfRefs) > 0 {
				continue // the leaves of the next level
			}
			if recounts++; recounts > 3 {
				return fmt.Errorf("lifecycle: delete from %s: rows of the tenant keep arriving (%d now): stop the application's writes for the tenant first", tb.name(), left)
			}
			continue
		}
		// Size the next batch to take batchTime, from the rate of the
		// last one: it may shrink at once, and grow at most twice.
		next := int64(float64(n) * float64(batchTime) / float64(max(took, time.Millisecond)))
		n = min(max(next, 1), n*2, maxRows)
	}
	rep.done(dt.Rows)
	return nil
}

// deleteBatch runs one batch in a transaction of its own: BEGIN with the
// tenant, then lock_timeout and the DELETE together, then COMMIT.
func deleteBatch(ctx context.Context, d *db, t rls.Tenant, sql, lockTimeout string, args []any) (int64, error) {
	tx, err := d.p.Begin(rls.WithTenant(ctx, t))
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	b := &pgx.Batch{}
	b.Queue("SELECT pg_catalog.set_config('lock_timeout', $1, true)", lockTimeout)
	del := b.Queue(sql, args...)
	var deleted int64
	del.Exec(func(tag pgconn.CommandTag) error {
		deleted = tag.RowsAffected()
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return deleted, tx.Commit(ctx)
}

// countLeft counts the tenant's rows left in a table.
func countLeft(ctx context.Context, d *db, tb *table, t rls.Tenant) (int64, error) {
	var n int64
	err := d.p.QueryRow(rls.WithTenant(ctx, t), "SELECT count(*) FROM "+tb.sql()+" WHERE "+tb.predicate(d.key), t.String()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("lifecycle: count %s: %w", tb.name(), err)
	}
	return n, nil
}
