// Package gormtenancy opens a [gorm.DB] whose statements and transactions
// run with the tenant of their context, through pgtenancy's database/sql
// connector (package stdlib) and gorm.io/driver/postgres.
//
// Pass the request's context to every chain with WithContext: GORM runs
// the statements of a chain with that context, and its default
// transaction around writes begins with it too. A chain without a tenant
// in its context fails with rls.ErrNoTenant, before any I/O.
package gormtenancy

import (
	"context"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/pgtenancy/pgtenancy/stdlib"
)

// Open returns a gorm.DB over stdlib.OpenDB(ctx, cfg). gcfg may be nil.
func Open(ctx context.Context, cfg *stdlib.Config, gcfg *gorm.Config) (*gorm.DB, error) {
	db, err := stdlib.OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if gcfg == nil {
		gcfg = &gorm.Config{}
	}
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), gcfg)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return g, nil
}
