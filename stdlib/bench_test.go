package stdlib_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgtenancy/pgtenancy/internal/benchkit"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// BenchmarkSQL measures database/sql through pgtenancy (a point query on a
// table under RLS, the tenant set by the connector) against raw
// database/sql on pgx's driver with the tenant filter written by hand, on
// loopback and with 1 ms of round-trip latency, and prints RATIO lines.
// Run it once (make bench-sql):
//
//	go test -run '^$' -bench '^BenchmarkSQL$' -benchtime 1x ./stdlib/
func BenchmarkSQL(b *testing.B) {
	ctx := context.Background()
	db := pgtenancytest.NewDB(b, nil)
	owner := db.OwnerConn(b)
	if _, err := owner.Exec(ctx, benchkit.Schema(pgtenancytest.AppRole)+testschema.RLS("items_rls")); err != nil {
		b.Fatal(err)
	}
	if err := migrations.Install(ctx, owner, migrations.Options{}); err != nil {
		b.Fatal(err)
	}
	var version string
	if err := owner.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("machine: %d CPUs, GOMAXPROCS %d, PostgreSQL %s; %d goroutines on %d connections\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), version, benchkit.Goroutines, benchkit.Conns)
	benchkit.Report("sql-baseline", "", sqlVariants(b, db.AppURL))
	proxy := benchkit.StartDelayProxy(b, db.AppURL, 500*time.Microsecond)
	benchkit.Report("sql-baseline", "-latency1ms", sqlVariants(b, proxy))
}

func sqlVariants(b *testing.B, url string) map[string]float64 {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	raw := pgxstdlib.OpenDB(*cc)
	cfg, err := stdlib.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	tenancy, err := stdlib.OpenDB(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, db := range []*sql.DB{raw, tenancy} {
		db.SetMaxOpenConns(benchkit.Conns)
		db.SetMaxIdleConns(benchkit.Conns)
	}
	defer raw.Close()
	defer tenancy.Close()
	scan := func(row *sql.Row) error {
		var name string
		var price int64
		return row.Scan(&name, &price)
	}
	return benchkit.Run(b, []benchkit.Variant{
		{Name: "sql-baseline", Query: func(ctx context.Context, tenant, id int64) error {
			return scan(raw.QueryRowContext(ctx, "SELECT name, price FROM items_plain WHERE tenant_id = $1 AND id = $2", tenant, id))
		}},
		{Name: "sql", Query: func(ctx context.Context, _, id int64) error {
			return scan(tenancy.QueryRowContext(ctx, "SELECT name, price FROM items_rls WHERE id = $1", id))
		}},
	})
}
