// Package benchkit is the shared machinery of the database/sql benchmarks
// (make bench-sql) and of pool's BenchmarkPool: a point query by primary key over many tenants, run
// by variants from concurrent goroutines in alternating rounds, reported
// as RATIO lines against a baseline measured in the same run, on loopback
// and behind a proxy that adds latency.
package benchkit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Shape of the benchmark: Tenants x Rows rows, Goroutines goroutines
// sharing Conns connections.
const (
	Tenants    = 2000
	Rows       = 50
	Goroutines = 16
	Conns      = 8
	rounds     = 5
)

// Schema creates items_plain (for the baseline, filtered by hand) and
// items_rls (isolated by policies), with the same rows, readable by the
// app role. RLS on items_rls is the caller's (testschema.RLS).
func Schema(appRole string) string {
	return fmt.Sprintf(`
CREATE TABLE items_plain (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, price bigint NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE TABLE items_rls (LIKE items_plain INCLUDING ALL);
INSERT INTO items_plain SELECT t, (t - 1) * %[2]d + i, 'item ' || t || '/' || i, i
    FROM generate_series(1, %[1]d) t, generate_series(1, %[2]d) i;
INSERT INTO items_rls SELECT * FROM items_plain;
ANALYZE items_plain, items_rls;
GRANT SELECT ON items_plain, items_rls TO %[3]s;
`, Tenants, Rows, appRole)
}

// Variant is one way to run the point query: it reads row id of tenant
// (the context carries the tenant too).
type Variant struct {
	Name  string
	Query func(ctx context.Context, tenant, id int64) error
}

// Duration is how long each variant runs per round
// (PGTENANCY_BENCH_DURATION, default 1s).
func Duration() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("PGTENANCY_BENCH_DURATION")); err == nil && d > 0 {
		return d
	}
	return time.Second
}

// Shape is the size of a benchmark: Tenants x Rows rows (ids numbered
// from 1, Rows per tenant in order), read by Goroutines goroutines, each
// variant for Round per round.
type Shape struct {
	Tenants, Rows int64
	Goroutines    int
	Round         time.Duration
}

// SQL is the shape of the database/sql benchmarks, which [Schema] creates.
var SQL = Shape{Tenants: Tenants, Rows: Rows, Goroutines: Goroutines}

// Run measures each variant's throughput in queries per second in the
// shape of the database/sql benchmarks (SQL, each round [Duration]).
func Run(b testing.TB, variants []Variant) map[string]float64 {
	b.Helper()
	return SQL.Run(b, variants)
}

// Run measures each variant's throughput in queries per second: a warm-up,
// then rounds that alternate the variants so that drift hits them alike.
// A zero Round is [Duration].
func (s Shape) Run(b testing.TB, variants []Variant) map[string]float64 {
	b.Helper()
	round := s.Round
	if round == 0 {
		round = Duration()
	}
	for _, v := range variants {
		s.measure(b, v, 300*time.Millisecond) // warm up: statement caches
	}
	ops := map[string]int64{}
	elapsed := map[string]time.Duration{}
	for range rounds {
		for _, v := range variants {
			n, d := s.measure(b, v, round)
			ops[v.Name] += n
			elapsed[v.Name] += d
		}
	}
	qps := map[string]float64{}
	for _, v := range variants {
		qps[v.Name] = float64(ops[v.Name]) / elapsed[v.Name].Seconds()
	}
	return qps
}

// measure runs v from s.Goroutines goroutines for d and returns the
// number of queries and the time taken. Every query must succeed.
func (s Shape) measure(b testing.TB, v Variant, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for g := range s.Goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(begin.UnixNano())))
			for time.Now().Before(deadline) {
				tenant := rng.Int64N(s.Tenants) + 1
				id := (tenant-1)*s.Rows + rng.Int64N(s.Rows) + 1
				ctx := rls.WithTenant(context.Background(), rls.Int64(tenant))
				if err := v.Query(ctx, tenant, id); err != nil {
					err = fmt.Errorf("%s: tenant %d id %d: %w", v.Name, tenant, id, err)
					failed.Store(&err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return n.Load(), time.Since(begin)
}

// Report prints one RATIO line per variant but the baseline:
// RATIO <name><suffix> <throughput / baseline's>.
func Report(baseline, suffix string, qps map[string]float64) {
	names := make([]string, 0, len(qps))
	for name := range qps {
		names = append(names, name)
	}
	sort.Strings(names)
	base := qps[baseline]
	fmt.Printf("%s%s: %.0f queries/s\n", baseline, suffix, base)
	for _, name := range names {
		if name != baseline {
			fmt.Printf("RATIO %s%s %.3f (%.0f queries/s)\n", name, suffix, qps[name]/base, qps[name])
		}
	}
}

// StartDelayProxy starts a TCP proxy on loopback in front of the server of
// serverURL that delays each direction by delay (a round trip: twice
// delay), and returns serverURL pointing at it. Close every connection
// through it before the test ends: its cleanup waits for them.
func StartDelayProxy(b testing.TB, serverURL string, delay time.Duration) string {
	b.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		b.Fatal(err)
	}
	upstream := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var conns sync.WaitGroup
	b.Cleanup(func() {
		_ = l.Close()
		conns.Wait()
	})
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = client.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); delayPipe(server, client, delay) }()
			go func() { defer conns.Done(); delayPipe(client, server, delay) }()
		}
	}()
	u.Host = l.Addr().String()
	return u.String()
}

// delayPipe copies src to dst, each chunk delivered delay after it was read.
func delayPipe(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		data []byte
		due  time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	for range ch {
	}
}
