package stdlib

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgtenancy/pgtenancy/internal/unit"
	"github.com/pgtenancy/pgtenancy/rls"
)

// conn is one database/sql connection. database/sql uses a connection
// from one goroutine at a time, so conn needs no lock.
type conn struct {
	c  *pgxstdlib.Conn
	t  *unit.Tenancy
	tx *tx // the open transaction, or nil
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

// resultFormats are the result formats by type that pgx's database/sql
// driver asks for: binary for these, text for the rest, so that values
// reach database/sql as they would through pgx's driver.
var resultFormats = pgx.QueryResultFormatsByOID{
	pgtype.BoolOID:        1,
	pgtype.ByteaOID:       1,
	pgtype.CIDOID:         1,
	pgtype.DateOID:        1,
	pgtype.Float4OID:      1,
	pgtype.Float8OID:      1,
	pgtype.Int2OID:        1,
	pgtype.Int4OID:        1,
	pgtype.Int8OID:        1,
	pgtype.OIDOID:         1,
	pgtype.TimestampOID:   1,
	pgtype.TimestamptzOID: 1,
	pgtype.XIDOID:         1,
}

func (c *conn) pgx() *pgx.Conn { return c.c.Conn() }

// Prepare returns a statement; see [conn.PrepareContext].
func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext returns a statement that runs query, with the tenant of
// the context of each call. It does no I/O: the statement is prepared on
// the server on first use (in the caches of the exec mode), once per
// connection, and reused for every tenant.
func (c *conn) PrepareContext(_ context.Context, query string) (driver.Stmt, error) {
	if c.pgx().IsClosed() {
		return nil, driver.ErrBadConn
	}
	return &stmt{c: c, sql: query}, nil
}

// Close closes the connection.
func (c *conn) Close() error { return c.c.Close() }

// Begin begins a transaction; see [conn.BeginTx].
func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// BeginTx begins a transaction and sets the context's tenant for its
// whole length, in one round trip. Without a tenant it fails before any
// I/O.
func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tn, err := c.t.Tenant(ctx)
	if err != nil {
		return nil, err
	}
	var o pgx.TxOptions
	switch sql.IsolationLevel(opts.Isolation) {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		o.IsoLevel = pgx.ReadUncommitted
	case sql.LevelReadCommitted:
		o.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead, sql.LevelSnapshot:
		o.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		o.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("stdlib: unsupported isolation level %v", sql.IsolationLevel(opts.Isolation))
	}
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	pc := c.pgx()
	if pc.IsClosed() || c.tx != nil {
		return nil, driver.ErrBadConn
	}
	if _, err := c.t.Begin(ctx, pc, tn, o); err != nil {
		unit.Rollback(ctx, pc.PgConn(), nil)
		return nil, badConn(err)
	}
	c.tx = &tx{c: c, ctx: ctx}
	if c.t.Reset {
		c.tx.state = unit.AllState
	}
	return c.tx, nil
}

// badConn returns driver.ErrBadConn for an error that happened before
// anything was sent, so database/sql retries on another connection.
func badConn(err error) error {
	if pgconn.SafeToRetry(err) {
		return driver.ErrBadConn
	}
	return err
}

// args converts database/sql's arguments for pgx, which takes
// sql.Scanner and driver.Valuer values as they are.
func args(nv []driver.NamedValue) []any {
	a := make([]any, len(nv))
	for i, v := range nv {
		a[i] = v.Value
	}
	return a
}

// rewriteInTx returns query and nv as Config.Rewriter rewrites them for the
// transaction's tenant (set by BeginTx), the tenant appended as the last
// argument; unchanged without a Rewriter or a rewrite.
func (c *conn) rewriteInTx(query string, nv []driver.NamedValue) (string, []driver.NamedValue) {
	if c.t.Rewriter == nil {
		return query, nv
	}
	tn, err := c.t.Tenant(c.tx.ctx)
	if err != nil {
		return query, nv
	}
	q, a := c.t.Rewrite(tn, query, args(nv))
	if len(a) == len(nv) {
		return query, nv
	}
	return q, append(slices.Clone(nv), driver.NamedValue{Ordinal: len(nv) + 1, Value: a[len(a)-1]})
}

// hasQueryOption reports whether args start with a pgx option that a
// batch cannot carry.
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

// ExecContext runs query with the context's tenant set for its
// transaction: outside a transaction in the same round trip as the
// statement, in a transaction the one set by BeginTx. Without a tenant it
// fails before any I/O.
func (c *conn) ExecContext(ctx context.Context, query string, nv []driver.NamedValue) (driver.Result, error) {
	if c.tx != nil {
		c.tx.note(query)
		query, nv = c.rewriteInTx(query, nv)
		return c.c.ExecContext(ctx, query, nv)
	}
	tn, err := c.t.Tenant(ctx)
	if err != nil {
		return nil, err
	}
	pc := c.pgx()
	if pc.IsClosed() {
		return nil, driver.ErrBadConn
	}
	a := args(nv)
	query, a = c.t.Rewrite(tn, query, a)
	if hasQueryOption(a) {
		return c.execInTx(ctx, tn, query, a)
	}
	r := c.t.Resets(query)
	defer unit.Rollback(ctx, pc.PgConn(), r)
	if r == nil {
		if sc := c.t.Direct(pc, query, a); sc != nil {
			mrr, ok, err := sc.Send(ctx, pc, c.t.SetSQL, c.t.Value(tn), query, a, nil)
			if ok {
				if err != nil {
					return nil, badConn(err)
				}
				tag, err := mrr.ResultReader().Close()
				if closeErr := mrr.Close(); err == nil {
					err = closeErr
				}
				if err != nil {
					sc.Failed(query, err)
					return nil, err
				}
				return driver.RowsAffected(tag.RowsAffected()), nil
			}
		}
	}
	b, lead := c.t.Batch(tn, query, a, r)
	br := pc.SendBatch(ctx, b)
	for range lead {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, badConn(err)
		}
	}
	tag, err := br.Exec()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// execInTx runs query, whose arguments start with per-query pgx options,
// in a transaction of its own: three round trips.
func (c *conn) execInTx(ctx context.Context, tn rls.Tenant, query string, a []any) (driver.Result, error) {
	pc := c.pgx()
	r := c.t.Resets(query)
	defer unit.Rollback(ctx, pc.PgConn(), r)
	if _, err := c.t.Begin(ctx, pc, tn, pgx.TxOptions{}); err != nil {
		return nil, badConn(err)
	}
	tag, err := pc.Exec(ctx, query, a...)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &unit.Resets{}
	}
	if err := unit.EndTx(ctx, pc, r, true); err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

// QueryContext runs query like [conn.ExecContext] and returns its rows.
// The unit of work ends when the rows are read to the end or closed: its
// connection goes back to database/sql's pool only then.
func (c *conn) QueryContext(ctx context.Context, query string, nv []driver.NamedValue) (driver.Rows, error) {
	if c.tx != nil {
		c.tx.note(query)
		query, nv = c.rewriteInTx(query, nv)
		return c.c.QueryContext(ctx, query, nv)
	}
	tn, err := c.t.Tenant(ctx)
	if err != nil {
		return nil, err
	}
	pc := c.pgx()
	if pc.IsClosed() {
		return nil, driver.ErrBadConn
	}
	a := args(nv)
	query, a = c.t.Rewrite(tn, query, a)
	if hasQueryOption(a) {
		return c.queryInTx(ctx, tn, query, a)
	}
	r := c.t.Resets(query)
	if r == nil {
		if sc := c.t.Direct(pc, query, a); sc != nil {
			mrr, ok, err := sc.Send(ctx, pc, c.t.SetSQL, c.t.Value(tn), query, a, resultFormats)
			if ok {
				if err != nil {
					unit.Rollback(ctx, pc.PgConn(), nil)
					return nil, badConn(err)
				}
				rs := pgx.RowsFromResultReader(pc.TypeMap(), mrr.ResultReader())
				return newRows(pc, rs, func(err error) error {
					if closeErr := mrr.Close(); err == nil {
						err = closeErr
					}
					if err != nil {
						sc.Failed(query, err)
					}
					unit.Rollback(ctx, pc.PgConn(), nil)
					return err
				})
			}
		}
	}
	b, lead := c.t.Batch(tn, query, a, r)
	br := pc.SendBatch(ctx, b)
	for range lead {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			unit.Rollback(ctx, pc.PgConn(), r)
			return nil, badConn(err)
		}
	}
	rs, err := br.Query()
	if err != nil {
		_ = br.Close()
		unit.Rollback(ctx, pc.PgConn(), r)
		return nil, err
	}
	return newRows(pc, rs, func(err error) error {
		// Close reads the rest: with Citus or resets, the COMMIT.
		if closeErr := br.Close(); err == nil {
			err = closeErr
		}
		unit.Rollback(ctx, pc.PgConn(), r)
		return err
	})
}

// queryInTx runs query, whose arguments start with per-query pgx options,
// in a transaction of its own that ends with its rows.
func (c *conn) queryInTx(ctx context.Context, tn rls.Tenant, query string, a []any) (driver.Rows, error) {
	pc := c.pgx()
	r := c.t.Resets(query)
	if r == nil {
		r = &unit.Resets{}
	}
	if _, err := c.t.Begin(ctx, pc, tn, pgx.TxOptions{}); err != nil {
		unit.Rollback(ctx, pc.PgConn(), r)
		return nil, badConn(err)
	}
	rs, err := pc.Query(ctx, query, a...)
	if err != nil {
		unit.Rollback(ctx, pc.PgConn(), r)
		return nil, err
	}
	return newRows(pc, rs, func(err error) error {
		if err == nil {
			err = unit.EndTx(ctx, pc, r, true)
		}
		unit.Rollback(ctx, pc.PgConn(), r)
		return err
	})
}

// Ping checks that the database answers. It needs no tenant.
func (c *conn) Ping(ctx context.Context) error { return c.c.Ping(ctx) }

// CheckNamedValue passes every argument to pgx as it is, as pgx's driver
// does: pgx takes sql.Scanner and driver.Valuer values natively.
func (c *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

// ResetSession is called by database/sql before it reuses the
// connection: a connection inside a transaction (left by a unit of work
// that could not be ended) is discarded, and pgx's driver's checks
// (liveness, OptionResetSession) run.
func (c *conn) ResetSession(ctx context.Context) error {
	if c.tx != nil || c.pgx().PgConn().TxStatus() != 'I' {
		return driver.ErrBadConn
	}
	return c.c.ResetSession(ctx)
}

// IsValid reports whether the connection may go back to database/sql's
// pool: open, and outside any transaction.
func (c *conn) IsValid() bool {
	pc := c.pgx().PgConn()
	return c.tx == nil && !pc.IsClosed() && pc.TxStatus() == 'I'
}

// stmt is a prepared statement: the SQL, run with the tenant of each
// call's context.
type stmt struct {
	c   *conn
	sql string
}

var (
	_ driver.StmtExecContext  = (*stmt)(nil)
	_ driver.StmtQueryContext = (*stmt)(nil)
)

// Close does nothing: the statement stays in the connection's cache.
func (s *stmt) Close() error { return nil }

// NumInput returns -1: the server checks the number of arguments.
func (s *stmt) NumInput() int { return -1 }

// Exec is not used by database/sql, which calls ExecContext.
func (s *stmt) Exec(a []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), valuesToNamed(a))
}

// Query is not used by database/sql, which calls QueryContext.
func (s *stmt) Query(a []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), valuesToNamed(a))
}

// ExecContext runs the statement with the tenant of ctx.
func (s *stmt) ExecContext(ctx context.Context, nv []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.sql, nv)
}

// QueryContext runs the statement with the tenant of ctx.
func (s *stmt) QueryContext(ctx context.Context, nv []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.sql, nv)
}

func valuesToNamed(a []driver.Value) []driver.NamedValue {
	nv := make([]driver.NamedValue, len(a))
	for i, v := range a {
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv
}
