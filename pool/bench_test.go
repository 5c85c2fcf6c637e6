package pool_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgrls/pgrls/migrations"
	"github.com/pgrls/pgrls/pgrlstest"
	"github.com/pgrls/pgrls/pool"
	"github.com/pgrls/pgrls/rls"
)

// Benchmark shape: a point query by primary key over 10k tenants x 100 rows,
// 16 goroutines sharing a pool of 8 connections.
const (
	benchTenants    = 10000
	benchRows       = 100
	benchGoroutines = 16
	benchConns      = 8
	benchCopyRows   = 100000
)

// benchDuration is how long each variant is measured per round; rounds
// alternate the variants so that drift hits them all alike.
var benchDuration = envDuration("PGRLS_BENCH_DURATION", 1200*time.Millisecond)

const benchRounds = 5

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

const benchSchema = `
CREATE TABLE items_plain (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, price bigint NOT NULL,
    PRIMARY KEY (tenant_id, id));
CREATE TABLE items_rls (LIKE items_plain INCLUDING ALL);
INSERT INTO items_plain SELECT t, (t - 1) * %[2]d + i, 'item ' || t || '/' || i, i
    FROM generate_series(1, %[1]d) t, generate_series(1, %[2]d) i;
INSERT INTO items_rls SELECT * FROM items_plain;
CREATE TABLE copy_plain (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, price bigint NOT NULL);
CREATE TABLE copy_rls (LIKE copy_plain);
GRANT SELECT, INSERT ON items_plain, items_rls, copy_plain, copy_rls TO %[3]s;
`

// The policies as pgrls generates them for a bigint tenant column.
const benchPolicies = `
ALTER TABLE %[1]s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY pgrls_tenant_isolation ON %[1]s AS PERMISSIVE FOR ALL TO PUBLIC
    USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);
CREATE POLICY pgrls_tenant_guard ON %[1]s AS RESTRICTIVE FOR ALL TO PUBLIC
    USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);
`

// BenchmarkPool measures pgrls against raw pgxpool in one database and one
// run, and prints one line per variant: RATIO <variant> <throughput /
// baseline>. Run it once:
//
//	go test -run '^$' -bench '^BenchmarkPool$' -benchtime 1x ./pool/
func BenchmarkPool(b *testing.B) {
	ctx := context.Background()
	start := time.Now()
	db := pgrlstest.NewDB(b, nil)
	owner := db.OwnerConn(b)
	if _, err := owner.Exec(ctx, fmt.Sprintf(benchSchema, benchTenants, benchRows, pgrlstest.AppRole)+
		fmt.Sprintf(benchPolicies, "items_rls")+fmt.Sprintf(benchPolicies, "copy_rls")); err != nil {
		b.Fatal(err)
	}
	if err := migrations.Install(ctx, owner, migrations.Options{}); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"items_plain", "items_rls"} {
		if _, err := owner.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %v", time.Since(start).Round(time.Millisecond))

	var version string
	if err := owner.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("machine: %d CPUs (%s), GOMAXPROCS %d, PostgreSQL %s, pgx 5.12\n",
		runtime.NumCPU(), cpuModel(), runtime.GOMAXPROCS(0), version)

	direct := runVariants(b, db.AppURL)
	report("", direct)

	proxy := startDelayProxy(b, db.AppURL, 500*time.Microsecond)
	delayed := runVariants(b, proxy)
	report("-latency1ms", delayed)

	benchCopy(b, db, owner)
	b.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

// variant is one way to run the point query.
type variant struct {
	name  string
	query func(ctx context.Context, tenant, id int64) error
	close func()
}

// runVariants measures each variant's throughput (queries per second)
// against the database at appURL.
func runVariants(b *testing.B, appURL string) map[string]float64 {
	b.Helper()
	ctx := context.Background()
	newCfg := func() *pgxpool.Config {
		cfg, err := pgxpool.ParseConfig(appURL)
		if err != nil {
			b.Fatal(err)
		}
		cfg.MaxConns, cfg.MinConns = benchConns, benchConns
		return cfg
	}
	newRaw := func(cfg *pgxpool.Config) *pgxpool.Pool {
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	scanOne := func(row pgx.Row) error {
		var name string
		var price int64
		return row.Scan(&name, &price)
	}
	const rlsQuery = "SELECT name, price FROM items_rls WHERE id = $1"

	raw := newRaw(newCfg())
	newPgrls := func(citus bool) *pool.Pool {
		p, err := pool.Wrap(newRaw(newCfg()), pool.Options{Citus: citus})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	txPool := newPgrls(false)
	txFunc := newPgrls(false)
	pool.SetTenantSQL(txFunc, "SELECT pgrls.set_tenant($1)")
	citus := newPgrls(true)
	sessCfg := newCfg()
	if err := pool.ConfigureSession(sessCfg, ""); err != nil {
		b.Fatal(err)
	}
	session := newRaw(sessCfg)
	naiveCfg := newCfg()
	naiveCfg.PrepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		t, err := rls.Require(ctx)
		if err != nil {
			return false, err
		}
		_, err = conn.Exec(ctx, "SELECT set_config('app.current_tenant', $1, false)", t.String())
		return err == nil, err
	}
	naive := newRaw(naiveCfg)

	variants := []variant{
		{"baseline", func(ctx context.Context, tenant, id int64) error {
			return scanOne(raw.QueryRow(ctx, "SELECT name, price FROM items_plain WHERE tenant_id = $1 AND id = $2", tenant, id))
		}, raw.Close},
		{"tx", func(ctx context.Context, _, id int64) error { return scanOne(txPool.QueryRow(ctx, rlsQuery, id)) }, txPool.Close},
		{"tx-set_tenant", func(ctx context.Context, _, id int64) error { return scanOne(txFunc.QueryRow(ctx, rlsQuery, id)) }, txFunc.Close},
		{"tx-citus", func(ctx context.Context, _, id int64) error { return scanOne(citus.QueryRow(ctx, rlsQuery, id)) }, citus.Close},
		{"session", func(ctx context.Context, _, id int64) error { return scanOne(session.QueryRow(ctx, rlsQuery, id)) }, session.Close},
		{"naive-hook", func(ctx context.Context, _, id int64) error { return scanOne(naive.QueryRow(ctx, rlsQuery, id)) }, naive.Close},
	}
	if only := os.Getenv("PGRLS_BENCH_VARIANTS"); only != "" {
		keep := variants[:1] // the baseline
		for _, v := range variants[1:] {
			if strings.Contains(","+only+",", ","+v.name+",") {
				keep = append(keep, v)
			} else {
				v.close()
			}
		}
		variants = keep
	}
	ops := map[string]int64{}
	elapsed := map[string]time.Duration{}
	for _, v := range variants {
		measure(b, v, 300*time.Millisecond) // warm up: statement caches
	}
	for range benchRounds {
		for _, v := range variants {
			n, d := measure(b, v, benchDuration)
			ops[v.name] += n
			elapsed[v.name] += d
		}
	}
	qps := map[string]float64{}
	for _, v := range variants {
		qps[v.name] = float64(ops[v.name]) / elapsed[v.name].Seconds()
		v.close()
	}
	return qps
}

// measure runs v from benchGoroutines goroutines for d and returns the
// number of queries and the time taken. Every query must find its row.
func measure(b *testing.B, v variant, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for g := range benchGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(begin.UnixNano())))
			for time.Now().Before(deadline) {
				tenant := rng.Int64N(benchTenants) + 1
				id := (tenant-1)*benchRows + rng.Int64N(benchRows) + 1
				ctx := rls.WithTenant(context.Background(), rls.Int64(tenant))
				if err := v.query(ctx, tenant, id); err != nil {
					err = fmt.Errorf("%s: tenant %d id %d: %w", v.name, tenant, id, err)
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

func report(suffix string, qps map[string]float64) {
	names := make([]string, 0, len(qps))
	for name := range qps {
		names = append(names, name)
	}
	sort.Strings(names)
	base := qps["baseline"]
	fmt.Printf("baseline%s: %.0f queries/s\n", suffix, base)
	for _, name := range names {
		if name == "baseline" {
			continue
		}
		fmt.Printf("RATIO %s%s %.3f (%.0f queries/s)\n", name, suffix, qps[name]/base, qps[name])
	}
}

// benchCopy compares pgrls CopyFrom into a table under RLS with raw COPY
// into the same table without RLS.
func benchCopy(b *testing.B, db *pgrlstest.DB, owner *pgx.Conn) {
	b.Helper()
	ctx := context.Background()
	const tenant = 7
	rows := make([][]any, benchCopyRows)
	for i := range rows {
		rows[i] = []any{int64(tenant), int64(i), fmt.Sprintf("copied %d", i), int64(i)}
	}
	cols := []string{"tenant_id", "id", "name", "price"}
	raw := db.AppPool(b)
	p, err := pool.Wrap(db.AppPool(b), pool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tctx := rls.WithTenant(ctx, rls.Int64(tenant))
	var rawTime, rlsTime time.Duration
	for range 3 {
		if _, err := owner.Exec(ctx, "TRUNCATE copy_plain, copy_rls"); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		n, err := raw.CopyFrom(ctx, pgx.Identifier{"copy_plain"}, cols, pgx.CopyFromRows(rows))
		if err != nil || n != benchCopyRows {
			b.Fatalf("raw COPY: %d rows, %v", n, err)
		}
		t1 := time.Now()
		n, err = p.CopyFrom(tctx, pgx.Identifier{"copy_rls"}, cols, pgx.CopyFromRows(rows))
		if err != nil || n != benchCopyRows {
			b.Fatalf("pgrls CopyFrom: %d rows, %v", n, err)
		}
		rawTime += t1.Sub(t0)
		rlsTime += time.Since(t1)
	}
	fmt.Printf("copy %d rows: raw COPY %v, pgrls CopyFrom %v (means of 3)\n", benchCopyRows, rawTime/3, rlsTime/3)
	fmt.Printf("RATIO copyfrom %.3f\n", rawTime.Seconds()/rlsTime.Seconds())
}

// startDelayProxy starts a TCP proxy on loopback in front of the server of
// serverURL that delays each direction by delay, and returns serverURL
// pointing at it.
func startDelayProxy(b *testing.B, serverURL string, delay time.Duration) string {
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
	for range ch { // let the reader finish
	}
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return "unknown CPU"
}
