package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Shape of the scale benchmark.
const (
	rowsPerTenant       = 100 // products
	categoriesPerTenant = 10  // each with 10 products
	goroutines          = 16
	poolConns           = 8
	genChunk            = 10000 // tenants generated per INSERT
)

// scaleSettings are the server settings of the scale benchmark's cluster:
// shared_buffers holds the 100k-tenant data set (about 1.5 GB with its
// indexes), WAL and checkpoints stay out of the way of the bulk load.
var scaleSettings = map[string]string{
	"shared_buffers":                   "2GB",
	"effective_cache_size":             "8GB",
	"work_mem":                         "32MB",
	"maintenance_work_mem":             "512MB",
	"max_parallel_maintenance_workers": "2",
	"wal_level":                        "minimal",
	"max_wal_senders":                  "0",
	"max_wal_size":                     "8GB",
	"min_wal_size":                     "1GB",
	"checkpoint_timeout":               "30min",
	"checkpoint_completion_target":     "0.9",
	"autovacuum":                       "off",
}

// opResult is the measurement of one operation by one variant.
type opResult struct {
	qps      float64
	p50, p99 time.Duration
	ops      int64
}

// scaleResult is everything measured at one tenant count.
type scaleResult struct {
	tenants       int
	build         time.Duration
	sizeMB        float64
	ops           map[string]opResult // "point/raw", "point/pgtenancy", "join/...", "insert/..."
	copyRaw       float64             // rows/s
	copyPgtenancy float64
	migrate       time.Duration // shared tables: add a column and an index, once
}

func runScale(ctx context.Context, o options, prog *progress, res *results) error {
	srv, err := openServer(ctx, scaleSettings)
	if err != nil {
		return err
	}
	defer srv.close(context.WithoutCancel(ctx))
	res.machine.pgVersion = srv.version
	admin, err := srv.connect(ctx, "", "")
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	for _, sb := range []string{"shared_buffers", "max_wal_size", "wal_level", "autovacuum"} {
		var v string
		if err := admin.QueryRow(ctx, "SELECT current_setting($1)", sb).Scan(&v); err != nil {
			return err
		}
		res.scaleSettings = append(res.scaleSettings, sb+" "+v)
	}
	prog.linef("scale: PostgreSQL %s, %v", srv.version, res.scaleSettings)

	for _, n := range o.scales {
		r, err := runOneScale(ctx, o, prog, srv, admin, n)
		if err != nil {
			return fmt.Errorf("%s tenants: %w", short(n), err)
		}
		res.scale = append(res.scale, r)
	}
	return nil
}

func runOneScale(ctx context.Context, o options, prog *progress, srv *server, admin *pgx.Conn, n int) (*scaleResult, error) {
	r := &scaleResult{tenants: n, ops: map[string]opResult{}}
	label := short(n) + " tenants"
	db := "pgtenancy_bench_" + short(n)
	if err := srv.createDB(ctx, admin, db, ""); err != nil {
		return nil, err
	}
	defer func() { _ = srv.dropDB(context.WithoutCancel(ctx), admin, db) }()

	begin := time.Now()
	if err := buildScale(ctx, prog, srv, db, n, label); err != nil {
		return nil, err
	}
	r.build = time.Since(begin)
	owner, err := srv.connect(ctx, db, ownerRole)
	if err != nil {
		return nil, err
	}
	defer owner.Close(context.WithoutCancel(ctx))
	var bytes int64
	if err := owner.QueryRow(ctx, "SELECT pg_total_relation_size('products') + pg_total_relation_size('categories')").Scan(&bytes); err != nil {
		return nil, err
	}
	r.sizeMB = float64(bytes) / (1 << 20)
	prog.linef("%s: built in %v, %.0f MB (tables and indexes)", label, r.build.Round(time.Second), r.sizeMB)

	// The two variants.
	newPool := func(role string) (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(srv.url(db, role))
		if err != nil {
			return nil, err
		}
		cfg.MaxConns, cfg.MinConns = poolConns, poolConns
		return pgxpool.NewWithConfig(ctx, cfg)
	}
	raw, err := newPool(rawRole)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	appPool, err := newPool(appRole)
	if err != nil {
		return nil, err
	}
	p, err := pool.Wrap(appPool, pool.Config{})
	if err != nil {
		appPool.Close()
		return nil, err
	}
	defer p.Close()

	var nextID atomic.Int64
	nextID.Store(1_000_000) // ids of inserted rows, above the generated ones
	ops := []struct {
		name string
		raw  queryFunc
		rls  queryFunc
	}{
		{"point", func(ctx context.Context, rng *rand.Rand, t int64) error {
			return checkPoint(raw.QueryRow(ctx, "SELECT tenant_id, name, price FROM products WHERE tenant_id = $1 AND id = $2",
				t, rng.Int64N(rowsPerTenant)+1), t)
		}, func(ctx context.Context, rng *rand.Rand, t int64) error {
			return checkPoint(p.QueryRow(ctx, "SELECT tenant_id, name, price FROM products WHERE id = $1",
				rng.Int64N(rowsPerTenant)+1), t)
		}},
		{"join", func(ctx context.Context, rng *rand.Rand, t int64) error {
			rows, err := raw.Query(ctx, `SELECT p.tenant_id, p.name, p.price, c.name FROM categories c
				JOIN products p ON p.tenant_id = c.tenant_id AND p.category_id = c.id
				WHERE c.tenant_id = $1 AND c.id = $2`, t, rng.Int64N(categoriesPerTenant)+1)
			return checkJoin(rows, err, t)
		}, func(ctx context.Context, rng *rand.Rand, t int64) error {
			rows, err := p.Query(ctx, `SELECT p.tenant_id, p.name, p.price, c.name FROM categories c
				JOIN products p ON p.category_id = c.id
				WHERE c.id = $1`, rng.Int64N(categoriesPerTenant)+1)
			return checkJoin(rows, err, t)
		}},
		{"insert", func(ctx context.Context, rng *rand.Rand, t int64) error {
			_, err := raw.Exec(ctx, "INSERT INTO products (tenant_id, id, category_id, name, price) VALUES ($1, $2, $3, $4, $5)",
				t, nextID.Add(1), rng.Int64N(categoriesPerTenant)+1, "new product", int64(990))
			return err
		}, func(ctx context.Context, rng *rand.Rand, t int64) error {
			_, err := p.Exec(ctx, "INSERT INTO products (tenant_id, id, category_id, name, price) VALUES ($1, $2, $3, $4, $5)",
				t, nextID.Add(1), rng.Int64N(categoriesPerTenant)+1, "new product", int64(990))
			return err
		}},
	}
	for _, op := range ops {
		variants := []struct {
			name string
			f    queryFunc
		}{{"raw", op.raw}, {"pgtenancy", op.rls}}
		total := len(variants) * (1 + o.rounds)
		bar := prog.step(fmt.Sprintf("%s: %s", label, op.name), total)
		for _, v := range variants { // warm-up: statement caches, buffers
			if _, _, _, err := measure(ctx, v.f, n, o.warmup); err != nil {
				return nil, fmt.Errorf("%s %s: %w", op.name, v.name, err)
			}
		}
		step := len(variants)
		bar.set(step)
		counts := make([]int64, len(variants))
		elapsed := make([]time.Duration, len(variants))
		lats := make([][]time.Duration, len(variants))
		for range o.rounds {
			for i, v := range variants {
				c, d, l, err := measure(ctx, v.f, n, o.duration)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", op.name, v.name, err)
				}
				counts[i] += c
				elapsed[i] += d
				lats[i] = append(lats[i], l...)
				step++
				bar.set(step)
			}
		}
		note := ""
		for i, v := range variants {
			slices.Sort(lats[i])
			or := opResult{
				qps: float64(counts[i]) / elapsed[i].Seconds(),
				p50: lats[i][len(lats[i])/2],
				p99: lats[i][len(lats[i])*99/100],
				ops: counts[i],
			}
			r.ops[op.name+"/"+v.name] = or
			note += fmt.Sprintf("%s %.0f/s p50 %v p99 %v; ", v.name, or.qps, roundLat(or.p50), roundLat(or.p99))
		}
		bar.done(note[:len(note)-2])
	}

	// CopyFrom: one tenant's rows per copy, the variants alternating.
	cols := []string{"tenant_id", "id", "category_id", "name", "price"}
	bar := prog.step(fmt.Sprintf("%s: copyfrom %d rows x %d", label, o.copyRows, o.copyReps), 2*o.copyReps)
	var rawTime, rlsTime time.Duration
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	for i := range o.copyReps {
		for j, v := range []struct {
			d    *time.Duration
			copy func(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
		}{{&rawTime, raw.CopyFrom}, {&rlsTime, p.CopyFrom}} {
			t := rng.Int64N(int64(n)) + 1
			rows := make([][]any, o.copyRows)
			for k := range rows {
				rows[k] = []any{t, nextID.Add(1), int64(k%categoriesPerTenant + 1), "copied product", int64(k)}
			}
			tctx := rls.WithTenant(ctx, rls.Int64(t))
			t0 := time.Now()
			c, err := v.copy(tctx, pgx.Identifier{"products"}, cols, pgx.CopyFromRows(rows))
			*v.d += time.Since(t0)
			if err != nil || c != int64(o.copyRows) {
				return nil, fmt.Errorf("copyfrom: %d rows, %v", c, err)
			}
			bar.set(2*i + j + 1)
		}
	}
	r.copyRaw = float64(o.copyRows*o.copyReps) / rawTime.Seconds()
	r.copyPgtenancy = float64(o.copyRows*o.copyReps) / rlsTime.Seconds()
	bar.done(fmt.Sprintf("raw %.0f rows/s, pgtenancy %.0f rows/s", r.copyRaw, r.copyPgtenancy))

	// The migration of the shared-table architecture at this size.
	bar = prog.step(label+": add a column and an index to products", 1)
	t0 := time.Now()
	if _, err := owner.Exec(ctx, "ALTER TABLE products ADD COLUMN sku text; CREATE INDEX products_sku ON products (tenant_id, sku)"); err != nil {
		return nil, err
	}
	r.migrate = time.Since(t0)
	bar.done("")
	return r, nil
}

// buildScale creates the tables of n tenants in db and fills them.
func buildScale(ctx context.Context, prog *progress, srv *server, db string, n int, label string) error {
	owner, err := srv.connect(ctx, db, ownerRole)
	if err != nil {
		return err
	}
	defer owner.Close(context.WithoutCancel(ctx))
	// One transaction from CREATE TABLE to the last row: with wal_level
	// minimal the rows skip the WAL.
	chunks := (n + genChunk - 1) / genChunk
	bar := prog.step(fmt.Sprintf("%s: generate %d rows", label, n*(rowsPerTenant+categoriesPerTenant)), chunks)
	tx, err := owner.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `
		CREATE TABLE categories (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL);
		CREATE TABLE products (tenant_id bigint NOT NULL, id bigint NOT NULL, category_id bigint NOT NULL,
			name text NOT NULL, price bigint NOT NULL)`); err != nil {
		return err
	}
	for c := range chunks {
		lo, hi := c*genChunk+1, min((c+1)*genChunk, n)
		if _, err := tx.Exec(ctx, fmt.Sprintf(`
			INSERT INTO categories SELECT t, c, 'category ' || c FROM generate_series(%[1]d, %[2]d) t, generate_series(1, %[4]d) c;
			INSERT INTO products SELECT t, i, (i - 1) %% %[4]d + 1, 'product ' || t || '/' || i, i * 100
				FROM generate_series(%[1]d, %[2]d) t, generate_series(1, %[3]d) i`,
			lo, hi, rowsPerTenant, categoriesPerTenant)); err != nil {
			return err
		}
		bar.set(c + 1)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	bar.done("")

	bar = prog.step(label+": primary keys, index, policies", 3)
	for i, sql := range []string{
		"ALTER TABLE products ADD PRIMARY KEY (tenant_id, id)",
		"CREATE INDEX products_category ON products (tenant_id, category_id); ALTER TABLE categories ADD PRIMARY KEY (tenant_id, id)",
		testschema.RLS("products") + testschema.RLS("categories") +
			fmt.Sprintf("GRANT SELECT, INSERT ON products, categories TO %s, %s", appRole, rawRole),
	} {
		if _, err := owner.Exec(ctx, sql); err != nil {
			return err
		}
		bar.set(i + 1)
	}
	bar.done("")

	bar = prog.step(label+": VACUUM ANALYZE", 2)
	for i, t := range []string{"products", "categories"} {
		if _, err := owner.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
			return err
		}
		bar.set(i + 1)
	}
	bar.done("")

	// Load the tables into shared_buffers so that every variant starts warm.
	admin, err := srv.connect(ctx, db, "")
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	bar = prog.step(label+": pg_prewarm", 1)
	if _, err := admin.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm;
		SELECT pg_prewarm(c.oid) FROM pg_class c WHERE c.relname IN
			('products', 'categories', 'products_pkey', 'products_category', 'categories_pkey')`); err != nil {
		bar.done("skipped: " + err.Error())
		return nil
	}
	bar.done("")
	return nil
}

// queryFunc runs one operation for tenant t, whose id is in ctx.
type queryFunc func(ctx context.Context, rng *rand.Rand, t int64) error

// measure runs f from goroutines goroutines for d against random tenants
// out of n and returns the number of operations, the time taken and the
// latency of each operation. Every operation must succeed.
func measure(ctx context.Context, f queryFunc, n int, d time.Duration) (int64, time.Duration, []time.Duration, error) {
	var count atomic.Int64
	var mu sync.Mutex
	var firstErr error
	var all []time.Duration
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), uint64(begin.UnixNano())))
			lats := make([]time.Duration, 0, 4096)
			for {
				t0 := time.Now()
				if !t0.Before(deadline) || ctx.Err() != nil {
					break
				}
				t := rng.Int64N(int64(n)) + 1
				if err := f(rls.WithTenant(ctx, rls.Int64(t)), rng, t); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("tenant %d: %w", t, err)
					}
					mu.Unlock()
					return
				}
				lats = append(lats, time.Since(t0))
				count.Add(1)
			}
			mu.Lock()
			all = append(all, lats...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil && count.Load() == 0 {
		firstErr = errors.New("no operation completed")
	}
	return count.Load(), time.Since(begin), all, firstErr
}

// checkPoint scans a point query's row and checks that it is tenant t's.
func checkPoint(row pgx.Row, t int64) error {
	var tenant, price int64
	var name string
	if err := row.Scan(&tenant, &name, &price); err != nil {
		return err
	}
	if tenant != t {
		return fmt.Errorf("got a row of tenant %d", tenant)
	}
	return nil
}

// checkJoin reads the join's rows: the category's products, all tenant t's.
func checkJoin(rows pgx.Rows, err error, t int64) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	var tenant, price int64
	var name, category string
	n := 0
	for rows.Next() {
		if err := rows.Scan(&tenant, &name, &price, &category); err != nil {
			return err
		}
		if tenant != t {
			return fmt.Errorf("got a row of tenant %d", tenant)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n < rowsPerTenant/categoriesPerTenant {
		return fmt.Errorf("join returned %d rows, want at least %d", n, rowsPerTenant/categoriesPerTenant)
	}
	return nil
}

// short spells a tenant count as 1k, 10k, 100k.
func short(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dm", n/1000000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func roundLat(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
