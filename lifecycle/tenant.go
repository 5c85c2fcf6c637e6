package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// db is one database an operation works on: the pgxpool it was given
// (borrowed, never closed here) and a pool.Pool on it that sets the tenant
// for each transaction, as the application's pool does.
type db struct {
	raw     *pgxpool.Pool
	p       *pool.Pool
	key     rls.KeyType
	setting string
}

func open(raw *pgxpool.Pool, key rls.KeyType, setting string) (*db, error) {
	if raw == nil {
		return nil, errors.New("lifecycle: nil *pgxpool.Pool")
	}
	setting, err := rls.Setting(setting)
	if err != nil {
		return nil, err
	}
	p, err := pool.Wrap(raw, pool.Config{Setting: setting, KeyType: key})
	if err != nil {
		return nil, err
	}
	return &db{raw: raw, p: p, key: key, setting: setting}, nil
}

// pinSQL fixes, for the transaction, the settings that the text of values
// depends on (in CSV files and in the hashes of the columns that travel as
// text), and a search_path under which nothing of the application's can
// stand in for what the statements name: they qualify every name.
const pinSQL = `SELECT pg_catalog.set_config('TimeZone', 'UTC', true),
	pg_catalog.set_config('DateStyle', 'ISO, MDY', true),
	pg_catalog.set_config('IntervalStyle', 'postgres', true),
	pg_catalog.set_config('extra_float_digits', '1', true),
	pg_catalog.set_config('bytea_output', 'hex', true),
	pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)`

// begin begins a transaction with the tenant set as the pool sets it (the
// setting and its companion stamp, transaction-local) and the settings of
// pinSQL.
func (d *db) begin(ctx context.Context, t rls.Tenant, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := d.p.BeginTx(rls.WithTenant(ctx, t), opts)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: begin: %w", err)
	}
	if _, err := tx.Exec(ctx, pinSQL); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lifecycle: begin: %w", err)
	}
	return tx, nil
}

// checkRLS returns a [*NoRLSError] unless row level security applies to
// the connecting role on every table, so that the tenant setting limits
// what the transaction reads, writes and deletes: a superuser, a BYPASSRLS
// role or the owner of a table without FORCE would see every tenant.
func checkRLS(ctx context.Context, tx pgx.Tx, tables []*table) error {
	oids := make([]uint32, len(tables))
	for i, t := range tables {
		oids[i] = t.OID
	}
	rows, err := tx.Query(ctx, `SELECT c::regclass::text, current_user::text
		FROM unnest($1::oid[]) WITH ORDINALITY AS u(c, ord)
		WHERE NOT pg_catalog.row_security_active(c) ORDER BY ord`, oids)
	if err != nil {
		return fmt.Errorf("lifecycle: check row level security: %w", err)
	}
	e := &NoRLSError{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name, &e.Role); err != nil {
			return err
		}
		e.Tables = append(e.Tables, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lifecycle: check row level security: %w", err)
	}
	if len(e.Tables) > 0 {
		return e
	}
	return nil
}

// uncoveredCodes are the codes of verify's findings that name a table
// outside the model holding tenant data.
var uncoveredCodes = []verify.Code{verify.CodeTableNotInModel}

// checkCoverage returns an [*UncoveredError] when a table outside the
// model holds tenant data: what verify reports under uncoveredCodes (a
// table with a tenant column), and the tables of any schema whose foreign
// keys reference a tenant table (fk, from the layout's snapshot).
func checkCoverage(ctx context.Context, raw *pgxpool.Pool, m *policy.Model, fk []UncoveredTable) error {
	report, err := verify.Run(ctx, raw, verify.Options{Model: m})
	if err != nil {
		return fmt.Errorf("lifecycle: verify: %w", err)
	}
	found := slices.Clone(fk)
	for _, f := range report.Findings {
		if slices.Contains(uncoveredCodes, f.Code) {
			found = append(found, UncoveredTable{Table: f.Object, Reason: f.Message})
		}
	}
	if len(found) == 0 {
		return nil
	}
	// One entry per table, its reasons joined.
	slices.SortStableFunc(found, func(a, b UncoveredTable) int { return strings.Compare(a.Table, b.Table) })
	e := &UncoveredError{}
	for _, u := range found {
		if n := len(e.Tables); n > 0 && e.Tables[n-1].Table == u.Table {
			e.Tables[n-1].Reason += "; " + u.Reason
			continue
		}
		e.Tables = append(e.Tables, u)
	}
	return e
}

// tenantModel returns the model with its key type checked against the
// tenant's.
func checkTenant(m *policy.Model, t rls.Tenant) error {
	if m == nil {
		return errors.New("lifecycle: nil model")
	}
	if t.IsZero() {
		return rls.ErrNoTenant
	}
	if t.Key() != m.KeyType {
		return fmt.Errorf("lifecycle: a %s tenant for a model of %s keys", t.Key(), m.KeyType)
	}
	return nil
}

// countRows counts the tenant's rows of each table, in one statement.
func countRows(ctx context.Context, tx pgx.Tx, tables []*table, key rls.KeyType, t rls.Tenant) ([]int64, error) {
	parts := make([]string, len(tables))
	for i, tb := range tables {
		parts[i] = fmt.Sprintf("(SELECT count(*) FROM %s WHERE %s)", tb.sql(), tb.predicate(key))
	}
	counts := make([]int64, len(tables))
	dest := make([]any, len(tables))
	for i := range counts {
		dest[i] = &counts[i]
	}
	if err := tx.QueryRow(ctx, "SELECT "+strings.Join(parts, ", "), t.String()).Scan(dest...); err != nil {
		return nil, fmt.Errorf("lifecycle: count rows: %w", err)
	}
	return counts, nil
}

// Progress reports how an operation advances through a table, for
// progress bars; see [Options.Progress] of each operation.
type Progress struct {
	// Op is "export", "import" or "delete".
	Op string
	// Table is the table, as schema.name.
	Table string
	// Rows is how many of the table's rows are done.
	Rows int64
	// Total is how many there are, or -1 while an export does not know.
	Total int64
	// Elapsed is the time since the table started.
	Elapsed time.Duration
	// Stage is "insert" while an import in one transaction inserts a
	// table's rows, all sent (Rows is Total then): one statement, whose
	// progress the server does not report. It is "" otherwise.
	Stage string
	// Done is set on the last report of the table.
	Done bool
}

// reporter calls a progress function at most every 100 ms per table, and
// at the start and the end of each.
type reporter struct {
	fn    func(Progress)
	p     Progress
	start time.Time
	last  time.Time
}

func newReporter(fn func(Progress), op, table string, total int64) *reporter {
	r := &reporter{fn: fn, p: Progress{Op: op, Table: table, Total: total}, start: time.Now()}
	r.last = r.start
	if fn != nil {
		fn(r.p)
	}
	return r
}

// rows reports n rows done, if 100 ms passed since the last report.
func (r *reporter) rows(n int64) {
	if r.fn == nil {
		return
	}
	if now := time.Now(); now.Sub(r.last) >= 100*time.Millisecond {
		r.last = now
		r.p.Rows, r.p.Elapsed = n, now.Sub(r.start)
		r.fn(r.p)
	}
}

// stage reports a stage of the table, with n rows done.
func (r *reporter) stage(s string, n int64) {
	if r.fn == nil {
		return
	}
	r.last = time.Now()
	r.p.Rows, r.p.Elapsed, r.p.Stage = n, r.last.Sub(r.start), s
	r.fn(r.p)
}

// done reports the table finished with n rows.
func (r *reporter) done(n int64) {
	if r.fn == nil {
		return
	}
	r.p.Rows, r.p.Elapsed, r.p.Done, r.p.Stage = n, time.Since(r.start), true, ""
	if r.p.Total < 0 {
		r.p.Total = n
	}
	r.fn(r.p)
}
