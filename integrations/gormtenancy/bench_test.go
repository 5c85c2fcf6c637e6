package gormtenancy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pgtenancy/pgtenancy/integrations/gormtenancy"
	"github.com/pgtenancy/pgtenancy/internal/benchkit"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

type item struct {
	Name  string
	Price int64
}

// BenchmarkGORM measures GORM through pgtenancy (a point query on a table
// under RLS) against plain GORM on pgx's driver with the tenant filter
// written by hand, on loopback and with 1 ms of round-trip latency, and
// prints RATIO lines. Run it once (make bench-sql):
//
//	cd integrations && go test -run '^$' -bench '^BenchmarkGORM$' -benchtime 1x ./gormtenancy/
func BenchmarkGORM(b *testing.B) {
	ctx := context.Background()
	db := pgtenancytest.NewDB(b, nil)
	owner := db.OwnerConn(b)
	if _, err := owner.Exec(ctx, benchkit.Schema(pgtenancytest.AppRole)+testschema.RLS("items_rls")); err != nil {
		b.Fatal(err)
	}
	if err := migrations.Install(ctx, owner, migrations.Options{}); err != nil {
		b.Fatal(err)
	}
	benchkit.Report("gorm-baseline", "", gormVariants(b, db.AppURL))
	proxy := benchkit.StartDelayProxy(b, db.AppURL, 500*time.Microsecond)
	benchkit.Report("gorm-baseline", "-latency1ms", gormVariants(b, proxy))
}

func gormVariants(b *testing.B, url string) map[string]float64 {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	gcfg := &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true}
	rawDB := pgxstdlib.OpenDB(*cc)
	plain, err := gorm.Open(postgres.New(postgres.Config{Conn: rawDB}), gcfg)
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := stdlib.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	tenancy, err := gormtenancy.Open(context.Background(), cfg, gcfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, g := range []*gorm.DB{plain, tenancy} {
		sqlDB, err := g.DB()
		if err != nil {
			b.Fatal(err)
		}
		sqlDB.SetMaxOpenConns(benchkit.Conns)
		sqlDB.SetMaxIdleConns(benchkit.Conns)
		defer sqlDB.Close()
	}
	found := func(res *gorm.DB) error {
		if res.Error == nil && res.RowsAffected != 1 {
			return fmt.Errorf("%d rows", res.RowsAffected)
		}
		return res.Error
	}
	return benchkit.Run(b, []benchkit.Variant{
		{Name: "gorm-baseline", Query: func(ctx context.Context, tenant, id int64) error {
			var it item
			return found(plain.WithContext(ctx).Table("items_plain").Where("tenant_id = ? AND id = ?", tenant, id).Take(&it))
		}},
		{Name: "gorm", Query: func(ctx context.Context, _, id int64) error {
			var it item
			return found(tenancy.WithContext(ctx).Table("items_rls").Where("id = ?", id).Take(&it))
		}},
	})
}
