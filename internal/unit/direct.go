package unit

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
)

// The direct path. In pgx's default exec mode (cache_statement), a unit of
// work skips pgx's batch machinery (a pipeline, with its bookkeeping): it
// goes to the wire as one pgconn batch of two prepared statements, [set
// tenant, statement], and one Sync, which PostgreSQL runs as one implicit
// transaction. This is what a pgx batch sends, with less work on the
// client: on a CPU-bound machine it is about 10% more throughput
// (docs/benchmarks.md).
//
// Each connection keeps its own cache of prepared statements
// (StmtCache, in the connection's pgconn.PgConn.CustomData), bounded by the
// connection's StatementCacheCapacity. A statement's name is derived from
// its SQL ("pgtenancy_" and a SHA-256 prefix), as pgx names its own: a name
// never stands for two statements, not even behind a pooler that shares
// server connections between clients.
//
// A configured pgx tracer keeps the direct path: Send calls its
// TraceQueryStart for the unit's statement (not for the set statement), as
// pgx.Conn.Query and Exec do on a plain pgxpool, and the caller ends the
// trace with [StmtCache.TraceEnd] once it has read the result. The direct
// path prepares through pgconn, so a pgx.PrepareTracer does not see its
// prepares, and a pgx.BatchTracer sees no batch.
//
// Everything else (other exec modes, per-query options, query rewriters
// such as pgx.NamedArgs, Citus, SQL that may name a statement prepared
// with pgx.Conn.Prepare) takes another path. SQL "may
// name" a prepared statement when it has no white space, or when it fails
// to parse; a name with white space that parses as SQL ("table t") runs as
// that SQL, so such names are not supported.

// customDataKey is the key of a connection's StmtCache in
// pgconn.PgConn.CustomData.
const customDataKey = "github.com/pgtenancy/pgtenancy/internal/unit.StmtCache"

// StmtCache is one connection's direct-path state. It is used only by the
// holder of the connection, so it needs no lock.
type StmtCache struct {
	ok       bool // the connection's configuration allows the direct path
	capacity int
	sets     []setStmt                // the prepared set statements, one per Tenancy setting
	entries  map[string]*list.Element // by SQL; values are *stmtEntry
	lru      list.List                // most recently used first
	stale    []string                 // names to deallocate before the next prepare
	eqb      pgx.ExtendedQueryBuilder
	tenant   [1][]byte
	tracer   pgx.QueryTracer // the connection's tracer, or nil
	tctx     context.Context // the context of the trace in progress, or nil
}

// setStmt is a prepared set statement. Two Tenancies on one connection
// (two Pools that wrap one pgxpool with different settings) share a
// connection's cache but not this.
type setStmt struct {
	sql string
	sd  *pgconn.StatementDescription
}

// set returns the prepared set statement of sql, or nil.
func (sc *StmtCache) set(sql string) *pgconn.StatementDescription {
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
	// rf are the result formats of sd's fields under the formats by OID
	// that its connection's user passes (the database/sql driver's), once
	// computed.
	rf []int16
}

// Direct returns the direct-path state of conn, or nil when the unit of
// work must take another path.
func (t *Tenancy) Direct(conn *pgx.Conn, sql string, args []any) *StmtCache {
	if t.Citus || !strings.ContainsAny(sql, " \t\n\r\f") {
		// Citus needs BEGIN and COMMIT around the tenant. SQL without
		// white space may be the name of a statement prepared with
		// pgx.Conn.Prepare, which pgx looks up first.
		return nil
	}
	if len(args) > 0 {
		// A rewriter is pgx's to apply.
		if _, ok := args[0].(pgx.QueryRewriter); ok {
			return nil
		}
	}
	data := conn.PgConn().CustomData()
	sc, _ := data[customDataKey].(*StmtCache)
	if sc == nil {
		cfg := conn.Config()
		sc = &StmtCache{
			ok: cfg.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement &&
				cfg.StatementCacheCapacity > 0,
			capacity: cfg.StatementCacheCapacity,
			entries:  map[string]*list.Element{},
			tracer:   cfg.Tracer,
		}
		data[customDataKey] = sc
	}
	if !sc.ok {
		return nil
	}
	return sc
}

// prepare returns the prepared set statement of setSQL and the entry of
// sql, preparing them on first use. An entry whose sd is nil, with a nil
// error, means that sql cannot be prepared as SQL; a nil entry with a nil
// error, that another path should report the error. The caller takes
// another path then.
func (sc *StmtCache) prepare(ctx context.Context, pc *pgconn.PgConn, setSQL, sql string) (set *pgconn.StatementDescription, se *stmtEntry, err error) {
	set = sc.set(setSQL)
	if set != nil {
		if e, ok := sc.entries[sql]; ok {
			sc.lru.MoveToFront(e)
			return set, e.Value.(*stmtEntry), nil
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
		return set, e.Value.(*stmtEntry), nil
	}
	sd, err := pc.Prepare(ctx, stmtName(sql), sql, nil)
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			return nil, nil, err
		}
		if pgErr.Code != "42601" {
			// Let another path report it (or succeed, if the database
			// changed in between).
			return set, nil, nil
		}
		// A syntax error: sql may be the name of a statement prepared
		// with pgx.Conn.Prepare. Remember to leave it to pgx.
		sd = nil
	}
	se = &stmtEntry{sql: sql, sd: sd}
	sc.entries[sql] = sc.lru.PushFront(se)
	for sc.lru.Len() > sc.capacity {
		sc.drop(sc.lru.Back())
	}
	return set, se, nil
}

// stmtName is the name of the prepared statement of sql.
func stmtName(sql string) string {
	sum := sha256.Sum256([]byte(sql))
	return "pgtenancy_" + hex.EncodeToString(sum[:24])
}

// drop removes an entry; its statement is deallocated before the next
// prepare.
func (sc *StmtCache) drop(e *list.Element) {
	se := sc.lru.Remove(e).(*stmtEntry)
	delete(sc.entries, se.sql)
	if se.sd != nil {
		sc.stale = append(sc.stale, se.sd.Name)
	}
}

// Failed updates the cache after a unit of work that ran sql failed with
// err. A server error about the data or the moment (class 21 cardinality,
// 22 data, 23 integrity, 25 transaction state, 40 rollback, 55 object
// state such as NOWAIT, 57 operator intervention, P0 RAISE, and 42501, a
// policy's WITH CHECK) keeps the statement. When a prepared statement was
// gone (26000: DEALLOCATE ran on the connection), the whole cache is
// prepared again. Any other error drops the statement, as pgx does for its
// own cache, since it may no longer match the schema: it is prepared again
// on next use.
func (sc *StmtCache) Failed(sql string, err error) {
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
func (sc *StmtCache) reset() {
	for sc.lru.Len() > 0 {
		sc.drop(sc.lru.Back())
	}
	for _, set := range sc.sets {
		sc.stale = append(sc.stale, set.sd.Name)
	}
	sc.sets = nil
}

// Send prepares what is needed and sends [set tenant, sql] on conn, the
// tenant's value being value ([Tenancy.Value]). It returns a reader positioned on the result of sql, or ok false when sql
// must take another path (nothing was sent then). formats, when not nil,
// chooses the result format of each column by its type (the database/sql
// driver's); nil lets pgx choose, as pgx.Conn.Query does.
func (sc *StmtCache) Send(ctx context.Context, conn *pgx.Conn, setSQL, value string, sql string, args []any, formats pgx.QueryResultFormatsByOID) (mrr *pgconn.MultiResultReader, ok bool, err error) {
	pc := conn.PgConn()
	set, se, err := sc.prepare(ctx, pc, setSQL, sql)
	if err != nil {
		return nil, true, err
	}
	if se == nil || se.sd == nil {
		return nil, false, nil
	}
	sd := se.sd
	if sc.tracer != nil {
		ctx = sc.tracer.TraceQueryStart(ctx, conn, pgx.TraceQueryStartData{SQL: sql, Args: args})
		sc.tctx = ctx
		defer func() {
			if err != nil {
				sc.TraceEnd(conn, pgconn.CommandTag{}, err)
			}
		}()
	}
	if len(sd.ParamOIDs) != len(args) {
		return nil, true, fmt.Errorf("expected %d arguments, got %d", len(sd.ParamOIDs), len(args))
	}
	if err := sc.eqb.Build(conn.TypeMap(), sd, args); err != nil {
		return nil, true, err
	}
	resultFormats := sc.eqb.ResultFormats
	if formats != nil {
		if se.rf == nil {
			se.rf = make([]int16, len(sd.Fields))
			for i, f := range sd.Fields {
				se.rf[i] = formats[f.DataTypeOID]
			}
		}
		resultFormats = se.rf
	}
	var b pgconn.Batch
	sc.tenant[0] = append(sc.tenant[0][:0], value...)
	b.ExecStatement(set, sc.tenant[:], nil, nil)
	b.ExecStatement(sd, sc.eqb.ParamValues, sc.eqb.ParamFormats, resultFormats)
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
		err = errors.New("pgtenancy: the server sent no result for the statement")
	}
	sc.Failed(sql, err)
	return nil, true, err
}

// TraceEnd ends the trace that Send began, if any, with the statement's
// command tag and error: the caller calls it once it has read the result
// of a unit that Send sent (Send ends the trace itself when it fails).
func (sc *StmtCache) TraceEnd(conn *pgx.Conn, tag pgconn.CommandTag, err error) {
	if sc == nil || sc.tctx == nil {
		return
	}
	ctx := sc.tctx
	sc.tctx = nil
	sc.tracer.TraceQueryEnd(ctx, conn, pgx.TraceQueryEndData{CommandTag: tag, Err: err})
}
