package pool

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/rls"
)

// SetTenantSQL replaces the statement that sets the tenant (its one
// parameter), so that benchmarks can compare alternatives.
func SetTenantSQL(p *Pool, sql string) {
	t := *p.t
	t.setSQL = sql
	p.t = &t
}

// CopyFromTempTable copies src as CopyFrom does for the columns it cannot
// send as arrays: through a temporary table.
func CopyFromTempTable(ctx context.Context, p *Pool, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	t, err := rls.Require(ctx)
	if err != nil {
		return 0, err
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer release(ctx, c)
	b := &pgx.Batch{}
	b.Queue("begin")
	b.QueuedQueries = append(b.QueuedQueries, p.t.set(t))
	b.Queue(createCopyTable(table, columns))
	if err := c.Conn().SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return copyVia(ctx, c.Conn(), table, columns, src, true)
}
