package pool

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/rls"
)

// The direct path. In pgx's default exec mode (cache_statement), Exec, Query
// and QueryRow skip pgx's batch machinery (a pipeline, with its
// bookkeeping): the unit of work goes to the wire as one pgconn batch of two
// prepared statements, [set tenant, statement], and one Sync, which
// PostgreSQL runs as one implicit transaction. This is what a pgx batch
// sends, with less work on the client: on a CPU-bound machine it is about
// 10% more throughput (docs/benchmarks.md).
//
// Each connection keeps its own cache of prepared statements
// (stmtCache, in the connection's pgconn.PgConn.CustomData), bounded by the
// connection's StatementCacheCapacity. A statement's name is derived from
// its SQL ("pgtenancy_" and a SHA-256 prefix), as pgx names its own: a name
// never stands for two statements, not even behind a pooler that shares
// server connections between clients.
//
// Everything else (other exec modes, per-query options, query rewriters
// such as pgx.NamedArgs, a configured tracer, Citus, SQL that may name a
// statement prepared with pgx.Conn.Prepare) takes the pgx batch path. SQL
// "may name" a prepared statement when it has no white space, or when it
// fails to parse; a name with white space that parses as SQL ("table t")
// runs as that SQL, so such names are not supported.

// customDataKey is the key of a connection's stmtCache in
// pgconn.PgConn.CustomData.
const customDataKey = "github.com/pgtenancy/pgtenancy/pool.stmtCache"

// stmtCache is one connection's direct-path state. It is used only by the
// holder of the connection, so it needs no lock.
type stmtCache struct {
	ok       bool // the connection's configuration allows the direct path
	capacity int
	sets     []setStmt                // the prepared set statements, one per Pool setting
	entries  map[string]*list.Element // by SQL; values are *stmtEntry
	lru      list.List                // most recently used first
	stale    []string                 // names to deallocate before the next prepare
	eqb      pgx.ExtendedQueryBuilder
	tenant   [1][]byte
}

// setStmt is a prepared set statement. Two Pools that wrap one pgxpool
// with different settings share a connection's cache but not this.
type setStmt struct {
	sql string
	sd  *pgconn.StatementDescription
}

// set returns the prepared set statement of sql, or nil.
func (sc *stmtCache) set(sql string) *pgconn.StatementDescription {
	for _, s := range sc.sets {
		if s.sql == sql {
			return s.sd
		}
	}
	return nil
}

type stmtEntry struct {
	sql string
	sd  *pgconn.StatementDescription
}

// directCache returns the direct-path state of conn, or nil when the unit
// of work must take the batch path.
func (p *Pool) directCache(conn *pgx.Conn, sql string, args []any) *stmtCache {
	if p.t.citus || !strings.ContainsAny(sql, " \t\n\r\f") {
		// Citus needs BEGIN and COMMIT around the tenant. SQL without
		// white space may be the name of a statement prepared with
		// pgx.Conn.Prepare, which pgx looks up first.
		return nil
	}
	if len(args) > 0 {
		// Exec and query sent pgx's per-query options elsewhere already
		// (hasQueryOption); a rewriter is pgx's to apply.
		if _, ok := args[0].(pgx.QueryRewriter); ok {
			return nil
		}
	}
	data := conn.PgConn().CustomData()
	sc, _ := data[customDataKey].(*stmtCache)
	if sc == nil {
		cfg := conn.Config()
		sc = &stmtCache{
			ok: cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement &&
				cfg.StatementCacheCapacity > 0 && cfg.Tracer == nil,
			capacity: cfg.StatementCacheCapacity,
			entries:  map[string]*list.Element{},
		}
		data[customDataKey] = sc
	}
	if !sc.ok {
		return nil
	}
	return sc
}

// prepare returns the prepared set statement of setSQL and the statement
// description of sql, preparing them on first use. A nil sd with a nil
// error means that sql cannot be prepared as SQL: the caller takes the
// batch path.
func (sc *stmtCache) prepare(ctx context.Context, pc *pgconn.PgConn, setSQL, sql string) (set, sd *pgconn.StatementDescription, err error) {
	set = sc.set(setSQL)
	if set != nil {
		if e, ok := sc.entries[sql]; ok {
			sc.lru.MoveToFront(e)
			return set, e.Value.(*stmtEntry).sd, nil
		}
	}
	if len(sc.stale) > 0 {
		// One round trip for all of them. Closing a statement that does
		// not exist is no error.
		pl := pc.StartPipeline(ctx)
		for _, name := range sc.stale {
			pl.SendDeallocate(name)
		}
		err := pl.Sync()
		if closeErr := pl.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			return nil, nil, err
		}
		sc.stale = sc.stale[:0]
	}
	if set == nil {
		if set, err = pc.Prepare(ctx, stmtName(setSQL), setSQL, nil); err != nil {
			return nil, nil, err
		}
		sc.sets = append(sc.sets, setStmt{setSQL, set})
	}
	if e, ok := sc.entries[sql]; ok {
		sc.lru.MoveToFront(e)
		return set, e.Value.(*stmtEntry).sd, nil
	}
	sd, err = pc.Prepare(ctx, stmtName(sql), sql, nil)
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return nil, nil, err
		}
		if pgErr.Code != "42601" {
			// Let the batch path report it (or succeed, if the database
			// changed in between).
			return set, nil, nil
		}
		// A syntax error: sql may be the name of a statement prepared
		// with pgx.Conn.Prepare. Remember to leave it to pgx.
		sd = nil
	}
	sc.entries[sql] = sc.lru.PushFront(&stmtEntry{sql: sql, sd: sd})
	for sc.lru.Len() > sc.capacity {
		sc.drop(sc.lru.Back())
	}
	return set, sd, nil
}

// stmtName is the name of the prepared statement of sql.
func stmtName(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return "pgtenancy_" + hex.EncodeToString(sum[:24])
}

// drop removes an entry; its statement is deallocated before the next
// prepare.
func (sc *stmtCache) drop(e *list.Element) {
	se := sc.lru.Remove(e).(*stmtEntry)
	delete(sc.entries, se.sql)
	if se.sd != nil {
		sc.stale = append(sc.stale, se.sd.Name)
	}
}

// failed updates the cache after a unit of work that ran sql failed with
// err. A server error about the data or the moment (class 21 cardinality,
// 22 data, 23 integrity, 25 transaction state, 40 rollback, 55 object
// state such as NOWAIT, 57 operator intervention, P0 RAISE, and 42501, a
// policy's WITH CHECK) keeps the statement. When a prepared statement was
// gone (26000: DEALLOCATE ran on the connection), the whole cache is
// prepared again. Any other error drops the statement, as pgx does for its
// own cache, since it may no longer match the schema: it is prepared again
// on next use.
func (sc *stmtCache) failed(sql string, err error) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "21", "22", "23", "25", "40", "55", "57", "P0":
			return
		case "26": // invalid_sql_statement_name
			sc.reset()
			return
		}
		if pgErr.Code == "42501" {
			return
		}
	}
	if e, ok := sc.entries[sql]; ok {
		sc.drop(e)
	}
}

// reset forgets every statement, the set statement included.
func (sc *stmtCache) reset() {
	for sc.lru.Len() > 0 {
		sc.drop(sc.lru.Back())
	}
	for _, set := range sc.sets {
		sc.stale = append(sc.stale, set.sd.Name)
	}
	sc.sets = nil
}

// sendDirect prepares what is needed and sends [set tenant, sql]. It
// returns a reader positioned on the result of sql, or ok false when sql
// must take the batch path (nothing was sent then).
func (p *Pool) sendDirect(ctx context.Context, sc *stmtCache, conn *pgx.Conn, t rls.Tenant, sql string, args []any) (mrr *pgconn.MultiResultReader, ok bool, err error) {
	pc := conn.PgConn()
	set, sd, err := sc.prepare(ctx, pc, p.t.setSQL, sql)
	if err != nil {
		return nil, true, err
	}
	if sd == nil {
		return nil, false, nil
	}
	if len(sd.ParamOIDs) != len(args) {
		return nil, true, fmt.Errorf("expected %d arguments, got %d", len(sd.ParamOIDs), len(args))
	}
	if err := sc.eqb.Build(conn.TypeMap(), sd, args); err != nil {
		return nil, true, err
	}
	var b pgconn.Batch
	sc.tenant[0] = append(sc.tenant[0][:0], t.String()...)
	b.ExecStatement(set, sc.tenant[:], nil, nil)
	b.ExecStatement(sd, sc.eqb.ParamValues, sc.eqb.ParamFormats, sc.eqb.ResultFormats)
	// The batch holds its own copy of the arguments now. Let large ones go
	// rather than keep them on an idle connection (the batch keeps the
	// result formats it needs).
	size := 0
	for _, v := range sc.eqb.ParamValues {
		size += len(v)
	}
	if size > 64<<10 {
		sc.eqb = pgx.ExtendedQueryBuilder{}
	}
	mrr = pc.ExecBatch(ctx, &b)
	if mrr.NextResult() {
		_, err = mrr.ResultReader().Close()
		if err == nil && mrr.NextResult() {
			return mrr, true, nil
		}
	}
	if closeErr := mrr.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = errors.New("pool: the server sent no result for the statement")
	}
	sc.failed(sql, err)
	return nil, true, err
}

// execDirect is Exec on the direct path; ok false means: take the batch
// path.
func (p *Pool) execDirect(ctx context.Context, c *pgxpool.Conn, t rls.Tenant, sql string, args []any) (tag pgconn.CommandTag, ok bool, err error) {
	conn := c.Conn()
	sc := p.directCache(conn, sql, args)
	if sc == nil {
		return tag, false, nil
	}
	mrr, ok, err := p.sendDirect(ctx, sc, conn, t, sql, args)
	if !ok || err != nil {
		return tag, ok, err
	}
	tag, err = mrr.ResultReader().Close()
	if closeErr := mrr.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		sc.failed(sql, err)
		return pgconn.CommandTag{}, true, err
	}
	return tag, true, nil
}

// queryDirect is query on the direct path; ok false means: take the batch
// path.
func (p *Pool) queryDirect(ctx context.Context, r *poolRows, c *pgxpool.Conn, t rls.Tenant, sql string, args []any) (ok bool, err error) {
	conn := c.Conn()
	sc := p.directCache(conn, sql, args)
	if sc == nil {
		return false, nil
	}
	mrr, ok, err := p.sendDirect(ctx, sc, conn, t, sql, args)
	if !ok || err != nil {
		return ok, err
	}
	*r = poolRows{ctx: ctx, r: pgx.RowsFromResultReader(conn.TypeMap(), mrr.ResultReader()), mrr: mrr, sc: sc, sql: sql, conn: conn, c: c}
	return true, nil
}
