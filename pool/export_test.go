package pool

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// SetTenantSQL replaces the statement that sets the tenant (its one
// parameter), so that benchmarks can compare alternatives.
func SetTenantSQL(p *Pool, sql string) {
	t := *p.t
	t.SetSQL = sql
	p.t = &t
}

// CopyFromTempTable copies src as CopyFrom does for the columns it cannot
// send as arrays: through a temporary table.
func CopyFromTempTable(ctx context.Context, p *Pool, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return p.copyFrom(ctx, table, columns, src, true)
}
