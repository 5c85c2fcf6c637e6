// Package enttenancy returns an ent SQL driver whose statements and
// transactions run with the tenant of their context, through pgtenancy's
// database/sql connector (package stdlib). Hand it to a generated client:
//
//	drv, err := enttenancy.Open(ctx, cfg)
//	...
//	client := ent.NewClient(ent.Driver(drv))
//
// ent runs each query with the context passed to it (Only, All, Save,
// Exec, ...), and client.Tx begins the transaction with its context. Work
// without a tenant in its context fails with rls.ErrNoTenant, before any
// I/O. Run ent's schema migrations (client.Schema.Create) as the tables'
// owner on a separate client, not through this driver.
package enttenancy

import (
	"context"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/pgtenancy/pgtenancy/stdlib"
)

// Open returns an ent driver (dialect postgres) over stdlib.OpenDB(ctx,
// cfg).
func Open(ctx context.Context, cfg *stdlib.Config) (*entsql.Driver, error) {
	db, err := stdlib.OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return entsql.OpenDB(dialect.Postgres, db), nil
}
