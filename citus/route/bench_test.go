package route_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
)

// BenchmarkCitusRoute measures, on the Citus cluster of CITUS_URL (32
// shards), a point query by id through a Citus-mode pool as the
// application role, 8 goroutines:
//
//   - rewrite: "WHERE id = $1" with the rewriter on;
//   - handwritten: "WHERE store_id = $2 AND id = $1", no rewriter;
//   - fanout: "WHERE id = $1", no rewriter (every shard).
//
// Rounds alternate the variants. It prints RATIO rewrite/handwritten
// (goal >= 0.95) and RATIO fanout/rewrite (what the fan-out costs). Run it
// with make bench-citus.
func BenchmarkCitusRoute(b *testing.B) {
	pgtenancytest.CitusURL(b)
	db := citusStoreDB(b)
	routed, _ := routedPool(b, db, pgx.QueryExecModeCacheStatement)
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(b, err)
	cfg.Citus = true
	plain, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(b, err)
	defer plain.Close()
	ctx := ctxFor(tenantA)
	tenant := tenantA.String()

	type variant struct {
		name string
		run  func() error
	}
	// Each call scans into its own variables (the workers run at once).
	scan := func(r pgx.Row) error {
		var name string
		var price int64
		return r.Scan(&name, &price)
	}
	variants := []variant{
		{"rewrite", func() error {
			return scan(routed.QueryRow(ctx, "SELECT name, price_cents FROM products WHERE id = $1", int64(101)))
		}},
		{"handwritten", func() error {
			return scan(plain.QueryRow(ctx, "SELECT name, price_cents FROM products WHERE store_id = $2 AND id = $1", int64(101), tenant))
		}},
		{"fanout", func() error {
			return scan(plain.QueryRow(ctx, "SELECT name, price_cents FROM products WHERE id = $1", int64(101)))
		}},
	}
	dur := time.Second
	if s := os.Getenv("PGTENANCY_BENCH_DURATION"); s != "" {
		dur, err = time.ParseDuration(s)
		require.NoError(b, err)
	}
	const workers, rounds = 8, 3
	qps := map[string]float64{}
	for range b.N {
		for round := 0; round < rounds; round++ {
			for _, v := range variants {
				// Warm up (statement caches, connections), then measure.
				for range 20 {
					require.NoError(b, v.run())
				}
				var n atomic.Int64
				var failed atomic.Value
				deadline := time.Now().Add(dur)
				var wg sync.WaitGroup
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for time.Now().Before(deadline) {
							if err := v.run(); err != nil {
								failed.Store(err)
								return
							}
							n.Add(1)
						}
					}()
				}
				wg.Wait()
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(v.name, err)
				}
				qps[v.name] += float64(n.Load()) / dur.Seconds() / rounds
			}
		}
	}
	for _, v := range variants {
		fmt.Printf("%s: %.0f queries/s\n", v.name, qps[v.name])
	}
	fmt.Printf("RATIO rewrite/handwritten %.3f\n", qps["rewrite"]/qps["handwritten"])
	fmt.Printf("RATIO fanout/rewrite %.3f\n", qps["fanout"]/qps["rewrite"])
}
