package pool_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/benchkit"
	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
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
var benchDuration = envDuration("PGTENANCY_BENCH_DURATION", 1200*time.Millisecond)

const benchRounds = 5

// benchShape is the shape of BenchmarkPool's point queries.
var benchShape = benchkit.Shape{Tenants: benchTenants, Rows: benchRows, Goroutines: benchGoroutines, Round: benchDuration}

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
CREATE TABLE items_nostamp (LIKE items_plain INCLUDING ALL);
CREATE TABLE items_signed (LIKE items_plain INCLUDING ALL);
INSERT INTO items_plain SELECT t, (t - 1) * %[2]d + i, 'item ' || t || '/' || i, i
    FROM generate_series(1, %[1]d) t, generate_series(1, %[2]d) i;
INSERT INTO items_rls SELECT * FROM items_plain;
INSERT INTO items_nostamp SELECT * FROM items_plain;
INSERT INTO items_signed SELECT * FROM items_plain;
ALTER TABLE items_nostamp ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
-- The policy form before the transaction stamp, which admits a tenant set at
-- session level: what the tx-nostamp and naive-hook variants need.
-- Both policies, as on items_rls, so that only the stamp differs.
CREATE POLICY nostamp ON items_nostamp USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')::bigint));
CREATE POLICY nostamp_guard ON items_nostamp AS RESTRICTIVE USING (tenant_id = (SELECT NULLIF(current_setting('app.current_tenant', true), '')::bigint));
CREATE TABLE copy_plain (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, price bigint NOT NULL);
CREATE TABLE copy_rls (LIKE copy_plain);
GRANT SELECT, INSERT ON items_plain, items_rls, items_nostamp, items_signed, copy_plain, copy_rls TO %[3]s;
`

// BenchmarkPool measures pgtenancy against raw pgxpool in one database and one
// run, and prints one line per variant: RATIO <variant> <throughput /
// baseline>. Run it once:
//
//	go test -run '^$' -bench '^BenchmarkPool$' -benchtime 1x ./pool/
func BenchmarkPool(b *testing.B) {
	ctx := context.Background()
	start := time.Now()
	db := benchDB(b)
	owner := db.OwnerConn(b)
	if _, err := owner.Exec(ctx, fmt.Sprintf(benchSchema, benchTenants, benchRows, pgtenancytest.AppRole)+
		testschema.RLS("items_rls")+testschema.RLS("copy_rls")); err != nil {
		b.Fatal(err)
	}
	if err := migrations.Install(ctx, owner, migrations.Options{}); err != nil {
		b.Fatal(err)
	}
	// items_signed: signed mode's policies (the library is installed now).
	signedExpr := policy.SignedPolicyExpr("tenant_id", rls.BigInt)
	if _, err := owner.Exec(ctx, fmt.Sprintf(`ALTER TABLE items_signed ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY %[1]s ON items_signed USING (%[3]s) WITH CHECK (%[3]s);
CREATE POLICY %[2]s ON items_signed AS RESTRICTIVE USING (%[3]s) WITH CHECK (%[3]s);`,
		policy.IsolationPolicy, policy.GuardPolicy, signedExpr)); err != nil {
		b.Fatal(err)
	}
	if err := signing.AddKey(ctx, owner, benchKey); err != nil {
		b.Fatal(err)
	}
	for _, table := range []string{"items_plain", "items_rls", "items_nostamp", "items_signed"} {
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

	// PGTENANCY_BENCH_VARIANTS=copyfrom runs the copy alone; a list without
	// copyfrom skips it.
	only := os.Getenv("PGTENANCY_BENCH_VARIANTS")
	if only == "" || strings.Trim(strings.ReplaceAll(","+only+",", ",copyfrom,", ","), ",") != "" {
		direct := runVariants(b, db.AppURL)
		report("", direct)

		proxy := benchkit.StartDelayProxy(b, db.AppURL, 500*time.Microsecond)
		delayed := runVariants(b, proxy)
		report("-latency1ms", delayed)
	}
	if only == "" || strings.Contains(","+only+",", ",copyfrom,") {
		benchCopy(b, db, owner)
	}
	b.Logf("total: %v", time.Since(start).Round(time.Millisecond))
}

// benchKey signs the tenants of the tx-signed variant.
var benchKey = signing.Key{ID: "bench", Secret: []byte("0123456789abcdef0123456789abcdef")}

// benchSharedBuffers is the shared_buffers of the benchmark's own server:
// enough for both 1M-row tables (about 95 MB each with their indexes), so
// that no variant pays for reading pages from the OS cache.
const benchSharedBuffers = "512MB"

// benchDB returns an empty database owned by pgtenancytest.OwnerRole. It starts
// a throwaway server of its own with benchSharedBuffers (pgtenancytest's server
// has 64MB), unless DATABASE_URL names a server: then pgtenancytest's.
func benchDB(b *testing.B) *pgtenancytest.DB {
	b.Helper()
	if os.Getenv("DATABASE_URL") != "" {
		return pgtenancytest.NewDB(b, nil)
	}
	ctx := context.Background()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: map[string]string{"shared_buffers": benchSharedBuffers}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop() })
	admin, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	const name = "pgtenancy_bench"
	for _, sql := range []string{
		"CREATE ROLE " + pgtenancytest.OwnerRole + " LOGIN NOSUPERUSER NOBYPASSRLS",
		"CREATE ROLE " + pgtenancytest.AppRole + " LOGIN NOSUPERUSER NOBYPASSRLS",
		"CREATE DATABASE " + name + " OWNER " + pgtenancytest.OwnerRole,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			b.Fatal(err)
		}
	}
	as := func(role string) string {
		u, err := url.Parse(c.URL(name))
		if err != nil {
			b.Fatal(err)
		}
		u.User = url.User(role)
		return u.String()
	}
	var sb string
	if err := admin.QueryRow(ctx, "SHOW shared_buffers").Scan(&sb); err != nil {
		b.Fatal(err)
	}
	b.Logf("benchmark server: shared_buffers %s", sb)
	return &pgtenancytest.DB{Name: name, AdminURL: c.URL(name), OwnerURL: as(pgtenancytest.OwnerRole), AppURL: as(pgtenancytest.AppRole)}
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
	const noStampQuery = "SELECT name, price FROM items_nostamp WHERE id = $1"

	raw := newRaw(newCfg())
	newPgtenancy := func(citus bool) *pool.Pool {
		p, err := pool.Wrap(newRaw(newCfg()), pool.Config{Citus: citus})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	// Every unit of work removes all session state (Config.ResetSession).
	resetPool := func() *pool.Pool {
		p, err := pool.Wrap(newRaw(newCfg()), pool.Config{ResetSession: true})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	txPool := newPgtenancy(false)
	txFunc := newPgtenancy(false)
	pool.SetTenantSQL(txFunc, "SELECT pgtenancy.set_tenant($1)")
	citus := newPgtenancy(true)
	reset := resetPool()
	// The set statement before the transaction stamp, on the table with the
	// policy form before it: what the stamp costs.
	noStamp := newPgtenancy(false)
	pool.SetTenantSQL(noStamp, "SELECT pg_catalog.set_config('app.current_tenant', $1, true)")
	// Signed mode (Config.Signer) on the table with signed policies: the
	// same work as tx, plus signing and pgtenancy.tenant() once per
	// statement.
	signer, err := signing.NewSigner(benchKey, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	signed, err := pool.Wrap(newRaw(newCfg()), pool.Config{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	const signedQuery = "SELECT name, price FROM items_signed WHERE id = $1"
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
	// A no-op pgx tracer (every tracer interface): what tracing costs the
	// pool, against a raw pgxpool with the same tracer.
	tracerCfg := newCfg()
	tracerCfg.ConnConfig.Tracer = noopTracer{}
	rawTracer := newRaw(tracerCfg)
	tracerCfg = newCfg()
	tracerCfg.ConnConfig.Tracer = noopTracer{}
	traced, err := pool.Wrap(newRaw(tracerCfg), pool.Config{})
	if err != nil {
		b.Fatal(err)
	}

	variants := []variant{
		{"baseline", func(ctx context.Context, tenant, id int64) error {
			return scanOne(raw.QueryRow(ctx, "SELECT name, price FROM items_plain WHERE tenant_id = $1 AND id = $2", tenant, id))
		}, raw.Close},
		{"tx", func(ctx context.Context, _, id int64) error { return scanOne(txPool.QueryRow(ctx, rlsQuery, id)) }, closeWrapped(txPool)},
		{"tx-signed", func(ctx context.Context, _, id int64) error { return scanOne(signed.QueryRow(ctx, signedQuery, id)) }, closeWrapped(signed)},
		{"tx-set_tenant", func(ctx context.Context, _, id int64) error { return scanOne(txFunc.QueryRow(ctx, rlsQuery, id)) }, closeWrapped(txFunc)},
		{"tx-citus", func(ctx context.Context, _, id int64) error { return scanOne(citus.QueryRow(ctx, rlsQuery, id)) }, closeWrapped(citus)},
		{"tx-resetsession", func(ctx context.Context, _, id int64) error { return scanOne(reset.QueryRow(ctx, rlsQuery, id)) }, closeWrapped(reset)},
		{"tx-nostamp", func(ctx context.Context, _, id int64) error { return scanOne(noStamp.QueryRow(ctx, noStampQuery, id)) }, closeWrapped(noStamp)},
		{"naive-hook", func(ctx context.Context, _, id int64) error { return scanOne(naive.QueryRow(ctx, noStampQuery, id)) }, naive.Close},
		{"baseline-tracer", func(ctx context.Context, tenant, id int64) error {
			return scanOne(rawTracer.QueryRow(ctx, "SELECT name, price FROM items_plain WHERE tenant_id = $1 AND id = $2", tenant, id))
		}, rawTracer.Close},
		{"tx-tracer", func(ctx context.Context, _, id int64) error { return scanOne(traced.QueryRow(ctx, rlsQuery, id)) }, closeWrapped(traced)},
	}
	if only := os.Getenv("PGTENANCY_BENCH_VARIANTS"); only != "" {
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
	kit := make([]benchkit.Variant, len(variants))
	for i, v := range variants {
		kit[i] = benchkit.Variant{Name: v.name, Query: v.query}
	}
	qps := benchShape.Run(b, kit)
	for _, v := range variants {
		v.close()
	}
	return qps
}

// report prints the RATIO lines of a run, and signed mode's against the
// same pool unsigned.
func report(suffix string, qps map[string]float64) {
	benchkit.Report("baseline", suffix, qps)
	if qps["tx"] > 0 && qps["tx-signed"] > 0 {
		// Signed mode against the same pool unsigned (goal: >= 0.95).
		fmt.Printf("RATIO tx-signed-vs-tx%s %.3f\n", suffix, qps["tx-signed"]/qps["tx"])
	}
}

// benchCopy compares pgtenancy CopyFrom into a table under RLS with raw COPY
// into the same table without RLS.
func benchCopy(b *testing.B, db *pgtenancytest.DB, owner *pgx.Conn) {
	b.Helper()
	ctx := context.Background()
	const tenant = 7
	rows := make([][]any, benchCopyRows)
	for i := range rows {
		rows[i] = []any{int64(tenant), int64(i), fmt.Sprintf("copied %d", i), int64(i)}
	}
	cols := []string{"tenant_id", "id", "name", "price"}
	raw := db.AppPool(b)
	p, err := pool.Wrap(db.AppPool(b), pool.Config{})
	if err != nil {
		b.Fatal(err)
	}
	tctx := rls.WithTenant(ctx, rls.Int64(tenant))
	// The temporary table path, which CopyFrom takes for array and domain
	// columns, for comparison.
	temp := func(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
		return pool.CopyFromTempTable(ctx, p, table, cols, src)
	}
	// Interleaved runs, compared by their medians: a copy takes a tenth of
	// a second, and one hiccup of a loaded machine would swing a mean.
	var rawTimes, rlsTimes, tempTimes []time.Duration
	const runs = 9
	for range runs {
		for _, m := range []struct {
			d    *[]time.Duration
			ctx  context.Context
			tbl  string
			copy func(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
		}{{&rawTimes, ctx, "copy_plain", raw.CopyFrom}, {&rlsTimes, tctx, "copy_rls", p.CopyFrom}, {&tempTimes, tctx, "copy_rls", temp}} {
			if _, err := owner.Exec(ctx, "TRUNCATE copy_plain, copy_rls"); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			n, err := m.copy(m.ctx, pgx.Identifier{m.tbl}, cols, pgx.CopyFromRows(rows))
			*m.d = append(*m.d, time.Since(t0))
			if err != nil || n != benchCopyRows {
				b.Fatalf("copy into %s: %d rows, %v", m.tbl, n, err)
			}
		}
	}
	rawTime, rlsTime, tempTime := median(rawTimes), median(rlsTimes), median(tempTimes)
	fmt.Printf("copy %d rows: raw COPY %v, pgtenancy CopyFrom %v, through a temporary table %v (medians of %d)\n",
		benchCopyRows, rawTime.Round(time.Microsecond), rlsTime.Round(time.Microsecond), tempTime.Round(time.Microsecond), runs)
	fmt.Printf("RATIO copyfrom %.3f\n", rawTime.Seconds()/rlsTime.Seconds())
	fmt.Printf("RATIO copyfrom-temptable %.3f\n", rawTime.Seconds()/tempTime.Seconds())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPgBouncerReset measures, behind PgBouncer in transaction
// pooling mode (the PgBouncer tests' setup: the store schema, 4 server
// connections, 16 goroutines on a pgtenancy pool in the exec mode), what
// resetting every server session costs: PgBouncer's server_reset_query
// (DISCARD ALL) with server_reset_query_always = 1, and the pool's
// Config.ResetSession, against neither. It prints RATIO lines. Run it
// once:
//
//	go test -run '^$' -bench '^BenchmarkPgBouncerReset$' -benchtime 1x ./pool/
func BenchmarkPgBouncerReset(b *testing.B) {
	db := pgtenancytest.NewDB(b, storeTemplate)
	plain := startPgBouncerWith(b, db, 4, nil)
	always := startPgBouncerWith(b, db, 4, map[string]string{"server_reset_query": "DISCARD ALL", "server_reset_query_always": "1"})
	newP := func(url string, reset bool) *pool.Pool {
		cfg, err := pool.ParseConfig(url)
		if err != nil {
			b.Fatal(err)
		}
		cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		cfg.PoolConfig.MaxConns, cfg.PoolConfig.MinConns = benchGoroutines, benchGoroutines
		cfg.ResetSession = reset
		p, err := pool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	const q = "SELECT name, price_cents FROM products WHERE id = $1"
	pointQuery := func(name string, p *pool.Pool) variant {
		return variant{name, func(ctx context.Context, _, _ int64) error {
			var name string
			var price int64
			return p.QueryRow(ctx, q, 101).Scan(&name, &price)
		}, p.Close}
	}
	variants := []variant{
		pointQuery("pgbouncer", newP(plain, false)),
		pointQuery("pgbouncer-reset-always", newP(always, false)),
		pointQuery("pgbouncer-resetsession", newP(plain, true)),
	}
	qps := map[string]float64{}
	for _, v := range variants {
		pgbouncerMeasure(b, v, 300*time.Millisecond)
	}
	for range benchRounds {
		for _, v := range variants {
			qps[v.name] += pgbouncerMeasure(b, v, benchDuration)
		}
	}
	for _, v := range variants {
		v.close()
	}
	base := qps["pgbouncer"]
	fmt.Printf("pgbouncer (transaction pooling): %.0f queries/s\n", base/benchRounds)
	for _, v := range variants[1:] {
		fmt.Printf("RATIO %s %.3f (%.0f queries/s)\n", v.name, qps[v.name]/base, qps[v.name]/benchRounds)
	}
}

// pgbouncerMeasure runs v as tenant A (store 1, whose product 101 every
// query reads) and returns its queries per second.
func pgbouncerMeasure(b *testing.B, v variant, d time.Duration) float64 {
	var n atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	ctx := ctxFor(tenantA)
	for range benchGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := v.query(ctx, 1, 101); err != nil {
					failed.Store(&err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("%s: %v", v.name, *err)
	}
	return float64(n.Load()) / time.Since(begin).Seconds()
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

// closeWrapped closes p and the pgxpool it borrowed (Wrap): otherwise the
// connections through the delay proxy stay open and its cleanup waits for
// them forever.
func closeWrapped(p *pool.Pool) func() {
	return func() {
		p.Close()
		p.Unwrap().Close()
	}
}

// noopTracer implements every pgx tracer interface and does nothing.
type noopTracer struct{}

func (noopTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (noopTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (noopTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (noopTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (noopTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
func (noopTracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}
func (noopTracer) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}
