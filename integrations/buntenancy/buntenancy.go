// Package buntenancy opens a [bun.DB] (PostgreSQL dialect over
// database/sql) whose statements and transactions run with the tenant of
// their context, through pgtenancy's database/sql connector (package
// stdlib).
//
// bun's query builders take the context at Exec or Scan; RunInTx and
// BeginTx begin the transaction with theirs. Work without a tenant in its
// context fails with rls.ErrNoTenant, before any I/O.
package buntenancy

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/pgtenancy/pgtenancy/stdlib"
)

// Open returns a bun.DB over stdlib.OpenDB(ctx, cfg) with the PostgreSQL
// dialect.
func Open(ctx context.Context, cfg *stdlib.Config, opts ...bun.DBOption) (*bun.DB, error) {
	db, err := stdlib.OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return bun.NewDB(db, pgdialect.New(), opts...), nil
}
