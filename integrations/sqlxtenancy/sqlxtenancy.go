// Package sqlxtenancy opens a [sqlx.DB] whose statements and transactions
// run with the tenant of their context, through pgtenancy's database/sql
// connector (package stdlib). Use the Context methods of sqlx
// (GetContext, SelectContext, NamedExecContext, BeginTxx, ...): the
// others run without a tenant and fail with rls.ErrNoTenant.
package sqlxtenancy

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/pgtenancy/pgtenancy/stdlib"
)

// Open returns a sqlx.DB over stdlib.OpenDB(ctx, cfg), with the "pgx"
// driver name, so that sqlx binds $1-style parameters.
func Open(ctx context.Context, cfg *stdlib.Config) (*sqlx.DB, error) {
	db, err := stdlib.OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return sqlx.NewDb(db, "pgx"), nil
}
