package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
	"github.com/pgtenancy/pgtenancy/internal/unit"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Pool is a pgxpool that runs every unit of work with the tenant of its
// context. It has the query methods of [pgxpool.Pool], so code written
// against *pgxpool.Pool, pgx.Tx or sqlc's DBTX works unchanged. A Pool is
// safe for concurrent use.
type Pool struct {
	p     *pgxpool.Pool
	t     *unit.Tenancy
	owned bool // Close closes p
}

// New creates a Pool from a connection string with the default options. See
// [ParseConfig].
func New(ctx context.Context, connString string) (*Pool, error) {
	cfg, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return NewWithConfig(ctx, cfg)
}

// NewWithConfig creates a Pool from cfg. Like [pgxpool.NewWithConfig] it
// does not connect until a connection is needed, unless
// PoolConfig.MinConns > 0 or [Config.Audit] is set.
func NewWithConfig(ctx context.Context, cfg *Config) (*Pool, error) {
	if cfg == nil || cfg.PoolConfig == nil {
		return nil, fmt.Errorf("%w: Config.PoolConfig is nil (create the Config with ParseConfig)", ErrConfig)
	}
	t, err := newTenancy(cfg)
	if err != nil {
		return nil, err
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg.PoolConfig)
	if err != nil {
		return nil, err
	}
	if cfg.Audit != nil {
		if err := cfg.Audit(ctx, p); err != nil {
			p.Close()
			return nil, err
		}
	}
	return &Pool{p: p, t: t, owned: true}, nil
}

// Wrap returns a Pool that runs its work on p, which it borrows: [Pool.Close]
// leaves p open for its owner to close, and work run directly on p does
// not get the tenant. cfg's PoolConfig and Audit must be nil: p exists
// already (run verify's audit on it yourself if you want one).
func Wrap(p *pgxpool.Pool, cfg Config) (*Pool, error) {
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w: nil *pgxpool.Pool", ErrConfig)
	case cfg.PoolConfig != nil:
		return nil, fmt.Errorf("%w: Wrap borrows a pgxpool: Config.PoolConfig must be nil", ErrConfig)
	case cfg.Audit != nil:
		return nil, fmt.Errorf("%w: Wrap does not audit: Config.Audit must be nil", ErrConfig)
	}
	t, err := newTenancy(&cfg)
	if err != nil {
		return nil, err
	}
	return &Pool{p: p, t: t}, nil
}

// Close closes the underlying pgxpool when the Pool made it ([New],
// [NewWithConfig]); see [pgxpool.Pool.Close]. A Pool from [Wrap] leaves the
// pgxpool it borrowed open.
func (p *Pool) Close() {
	if p.owned {
		p.p.Close()
	}
}

// Unwrap returns the underlying pgxpool. Work run on it directly does not
// get the tenant, so RLS shows it no tenant rows: use it for statistics,
// Ping and health checks. Cross-tenant work belongs on a separate pool
// that connects as a separate role.
func (p *Pool) Unwrap() *pgxpool.Pool { return p.p }

// Stat returns the statistics of the underlying pgxpool.
func (p *Pool) Stat() *pgxpool.Stat { return p.p.Stat() }

// Ping checks that the database answers. It needs no tenant.
func (p *Pool) Ping(ctx context.Context) error { return p.p.Ping(ctx) }

// hasQueryOption reports whether args start with a pgx option that a batch
// cannot carry (a QueryExecMode or result format).
func hasQueryOption(args []any) bool {
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			return true
		case pgx.QueryRewriter:
		default:
			return false
		}
	}
	return false
}

// Exec runs sql with the context's tenant set for its transaction, in one
// round trip. It returns [rls.ErrNoTenant] before any I/O when the context
// has no tenant.
//
// A statement runs in the implicit transaction of its batch: sql must not
// be a statement that cannot run in a transaction block (VACUUM, CREATE
// INDEX CONCURRENTLY); those are maintenance work for another role anyway.
// When sql creates session state (a temporary table, LISTEN, ... see the
// package doc), the unit runs as an explicit transaction whose COMMIT
// removes it, still in one round trip.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	if hasQueryOption(args) {
		return p.execInTx(ctx, sql, args)
	}
	r := p.t.Resets(sql)
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer release(ctx, c, r)
	if r == nil {
		if tag, ok, err := p.execDirect(ctx, c, t, sql, args); ok {
			return tag, err
		}
	}
	b, lead := p.t.Batch(t, sql, args, r)
	br := c.Conn().SendBatch(ctx, b)
	for range lead {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return pgconn.CommandTag{}, err
		}
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tag, nil
}

// execInTx runs sql, whose arguments hold per-query pgx options, in a
// transaction: three round trips.
func (p *Pool) execInTx(ctx context.Context, sql string, args []any) (tag pgconn.CommandTag, err error) {
	err = pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
		tag, err = tx.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// Query runs sql with the context's tenant set for its transaction, in one
// round trip, and returns its rows. Close the rows (or read them to the
// end) to return the connection to the pool. It returns [rls.ErrNoTenant]
// before any I/O when the context has no tenant.
//
// The pgx options [pgx.QueryExecMode], [pgx.QueryResultFormats] and
// [pgx.QueryResultFormatsByOID] among the first arguments cannot travel in a
// batch: such a query runs in a transaction (three round trips).
// [pgx.NamedArgs] and other [pgx.QueryRewriter]s need no fallback.
//
// The byte slices of [pgx.Rows.RawValues] and of a scan into
// *pgtype.DriverBytes are the connection's read buffer, valid until the
// next call to Next: do not keep them past the rows loop (copy them), since
// the next reader of that buffer may be another tenant's unit of work.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r := &poolRows{}
	if err := p.query(ctx, r, sql, args); err != nil {
		return errRows{err: err}, err
	}
	return r, nil
}

// query starts sql and fills r.
func (p *Pool) query(ctx context.Context, r *poolRows, sql string, args []any) error {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return err
	}
	if hasQueryOption(args) {
		tx, err := p.Begin(ctx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		*r = poolRows{ctx: ctx, r: rows, tx: tx}
		return nil
	}
	rs := p.t.Resets(sql)
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return err
	}
	if rs == nil {
		if ok, err := p.queryDirect(ctx, r, c, t, sql, args); ok {
			if err != nil {
				release(ctx, c, nil)
			}
			return err
		}
	}
	b, lead := p.t.Batch(t, sql, args, rs)
	br := c.Conn().SendBatch(ctx, b)
	for range lead {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			release(ctx, c, rs)
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		release(ctx, c, rs)
		return err
	}
	*r = poolRows{ctx: ctx, r: rows, br: br, c: c, resets: rs}
	return nil
}

// QueryRow runs sql like [Pool.Query] and returns a row whose Scan reads the
// first row and returns the connection to the pool. Scan returns
// [pgx.ErrNoRows] when there is no row and [rls.ErrNoTenant] when the
// context has no tenant (no I/O happens then).
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	r := &poolRow{}
	r.err = p.query(ctx, &r.rows, sql, args)
	return r
}

// SendBatch sends b with the context's tenant set for its transaction,
// in one round trip. Without [pgx.Batch.BeginTx], the batch runs as one
// implicit transaction (with Citus, an explicit one). With BeginTx, the
// tenant holds for the whole transaction returned by [pgx.BatchResults.Tx],
// a [*Tx] that returns the connection to the pool when it ends; otherwise
// the connection returns to the pool when the results are closed.
//
// The tenant statements are added to b's queue while it is in flight and
// removed by Close; their results are hidden, so b's own results read as
// usual. Without a tenant in the context, every result returns
// [rls.ErrNoTenant] and no I/O happens.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	return p.sendBatch(ctx, c, t, b)
}

// errProbe is only used to ask pgx whether a batch begins a transaction.
var errProbe = errors.New("probe")

func (p *Pool) sendBatch(ctx context.Context, c *pgxpool.Conn, t rls.Tenant, b *pgx.Batch) pgx.BatchResults {
	orig := b.QueuedQueries
	beginsTx := pgx.FailedBatchResults(b, errProbe).Tx() != nil
	st := p.batchState(orig)
	var r *resets
	if !beginsTx {
		r = resetsFor(st)
	}
	set := p.t.Set(t)
	qqs := make([]*pgx.QueuedQuery, 0, len(orig)+3)
	var hideFrom, hideTo int
	switch {
	case beginsTx && len(orig) > 0:
		// After the batch's own BEGIN: the tenant holds for the whole
		// transaction, and the Tx removes the state when it ends.
		qqs = append(qqs, orig[0], set)
		qqs = append(qqs, orig[1:]...)
		hideFrom, hideTo = 1, 2
	case p.t.Citus || r != nil:
		// An explicit transaction, as for a statement (newUnit).
		qqs = append(qqs, &pgx.QueuedQuery{SQL: "begin"}, set)
		qqs = append(qqs, orig...)
		if r != nil {
			for _, sql := range r.Before {
				qqs = append(qqs, &pgx.QueuedQuery{SQL: sql})
			}
		}
		qqs = append(qqs, &pgx.QueuedQuery{SQL: "commit"})
		hideFrom, hideTo = 0, 2
	default:
		qqs = append(qqs, set)
		qqs = append(qqs, orig...)
		hideFrom, hideTo = 0, 1
	}
	b.QueuedQueries = qqs
	br := &batchResults{
		ctx: ctx, br: c.Conn().SendBatch(ctx, b), b: b, orig: orig,
		hideFrom: hideFrom, hideTo: hideTo, c: c, resets: r,
	}
	if tx := br.br.Tx(); tx != nil {
		br.tx = &Tx{tx: tx, c: c, citus: p.t.Citus, t: p.t, state: st}
		br.c = nil
	}
	return br
}

// batchState returns the session state that the queued queries may leave.
func (p *Pool) batchState(qqs []*pgx.QueuedQuery) sessionsql.State {
	var st sessionsql.State
	for _, qq := range qqs {
		st = st.Union(p.t.State(qq.SQL))
	}
	return st
}

// Begin starts a transaction with the context's tenant set for its whole
// length: BEGIN and the tenant travel together in one round trip (a pgx
// batch begun with [pgx.Batch.BeginTx]). Commit or Rollback return the
// connection to the pool. It returns [rls.ErrNoTenant] before any I/O when
// the context has no tenant.
//
// The tenant is fixed when the transaction begins: the contexts passed to
// the transaction's methods are not consulted.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is [Pool.Begin] with transaction options.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	tx, err := p.beginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

func (p *Pool) beginTx(ctx context.Context, opts pgx.TxOptions) (*Tx, error) {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return nil, err
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := p.beginOn(ctx, c.Conn(), t, opts)
	if err != nil {
		release(ctx, c, nil)
		return nil, err
	}
	tr := &Tx{tx: tx, c: c, citus: p.t.Citus, t: p.t}
	if p.t.Reset {
		tr.state = allState
	}
	return tr, nil
}

// beginOn begins a transaction on conn and sets the tenant, in one round
// trip.
func (p *Pool) beginOn(ctx context.Context, conn *pgx.Conn, t rls.Tenant, opts pgx.TxOptions) (pgx.Tx, error) {
	return p.t.Begin(ctx, conn, t, opts)
}

// BeginFunc runs fn in a transaction begun by [Pool.Begin]: it commits when
// fn returns nil and rolls back when fn returns an error or panics.
func (p *Pool) BeginFunc(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, p, pgx.TxOptions{}, fn)
}

// BeginTxFunc is [Pool.BeginFunc] with transaction options.
func (p *Pool) BeginTxFunc(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, p, opts, fn)
}

// AcquireFunc acquires a connection and calls f with it inside a
// transaction that holds the context's tenant (begun in one round trip).
// It commits when f returns nil and rolls back when f returns an error or
// panics, then returns the connection to the pool. It returns
// [rls.ErrNoTenant] before any I/O when the context has no tenant.
//
// f gets the whole pgx API of the connection (Prepare, LargeObjects,
// PgConn, ...). It must not end the transaction nor release the
// connection. Statements that f runs after ending the transaction itself
// would see no tenant, and so no tenant rows. If f releases the connection,
// its work is lost with the transaction and AcquireFunc returns
// [ErrConnReleased].
//
// The pool does not see what f runs, so it always removes all the session
// state that f may have created, as [Config.ResetSession] does, in the
// round trip of the COMMIT (or right after the ROLLBACK). Settings return
// to the connection's defaults. Statements that f prepares stay prepared.
func (p *Pool) AcquireFunc(ctx context.Context, f func(*pgxpool.Conn) error) (err error) {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return err
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if !released(c) {
			release(ctx, c, fullResets)
		}
	}()
	if _, err := p.beginOn(ctx, c.Conn(), t, pgx.TxOptions{}); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			if !released(c) {
				_ = endTx(context.WithoutCancel(ctx), c.Conn(), fullResets, false)
			}
			panic(r)
		}
	}()
	err = f(c)
	if released(c) {
		// pgxpool destroys a connection released inside a transaction, so
		// the transaction ended with it.
		return errors.Join(err, ErrConnReleased)
	}
	if err != nil {
		_ = endTx(ctx, c.Conn(), fullResets, false)
		return err
	}
	return endTx(ctx, c.Conn(), fullResets, true)
}

// ErrConnReleased is returned by [Pool.AcquireFunc] when its callback
// released the connection: its transaction ended with it, uncommitted.
var ErrConnReleased = errors.New("pool: the AcquireFunc callback released its connection; its work was not committed")

// released reports whether c was returned to the pool: pgxpool's Conn
// panics on use after Release and has no other way to tell.
func released(c *pgxpool.Conn) (yes bool) {
	defer func() {
		if recover() != nil {
			yes = true
		}
	}()
	return c.Conn() == nil
}
