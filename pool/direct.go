package pool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/rls"
)

// The direct path (internal/unit). In pgx's default exec mode
// (cache_statement), Exec, Query and QueryRow skip pgx's batch machinery:
// the unit of work goes to the wire as one pgconn batch of two prepared
// statements, [set tenant, statement], and one Sync, with the statements
// in a per-connection cache of the unit package. Everything else takes
// the pgx batch path. A configured pgx.QueryTracer sees the unit's
// statement on the direct path as on a plain pgxpool.

// execDirect is Exec on the direct path; ok false means: take the batch
// path.
func (p *Pool) execDirect(ctx context.Context, c *pgxpool.Conn, t rls.Tenant, sql string, args []any) (tag pgconn.CommandTag, ok bool, err error) {
	conn := c.Conn()
	sc := p.t.Direct(conn, sql, args)
	if sc == nil {
		return tag, false, nil
	}
	mrr, ok, err := sc.Send(ctx, conn, p.t.SetSQL, p.t.Value(t), sql, args, nil)
	if !ok || err != nil {
		return tag, ok, err
	}
	tag, err = mrr.ResultReader().Close()
	if closeErr := mrr.Close(); err == nil {
		err = closeErr
	}
	sc.TraceEnd(conn, tag, err)
	if err != nil {
		sc.Failed(sql, err)
		return pgconn.CommandTag{}, true, err
	}
	return tag, true, nil
}

// queryDirect is query on the direct path; ok false means: take the batch
// path.
func (p *Pool) queryDirect(ctx context.Context, r *poolRows, c *pgxpool.Conn, t rls.Tenant, sql string, args []any) (ok bool, err error) {
	conn := c.Conn()
	sc := p.t.Direct(conn, sql, args)
	if sc == nil {
		return false, nil
	}
	mrr, ok, err := sc.Send(ctx, conn, p.t.SetSQL, p.t.Value(t), sql, args, nil)
	if !ok || err != nil {
		return ok, err
	}
	*r = poolRows{ctx: ctx, r: pgx.RowsFromResultReader(conn.TypeMap(), mrr.ResultReader()), mrr: mrr, sc: sc, sql: sql, conn: conn, c: c}
	return true, nil
}
