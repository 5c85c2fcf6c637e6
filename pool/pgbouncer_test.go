package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/ci"
	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// startPgBouncer starts pgbouncer in transaction pooling mode in front of
// the test server, knowing the app role, and returns the URL of db through
// it.
func startPgBouncer(t testing.TB, db *pgtenancytest.DB, poolSize int) string {
	t.Helper()
	return startPgBouncerWith(t, db, poolSize, nil)
}

// startPgBouncerWith is startPgBouncer with extra pgbouncer settings.
func startPgBouncerWith(t testing.TB, db *pgtenancytest.DB, poolSize int, settings map[string]string) string {
	t.Helper()
	server, err := url.Parse(pgtenancytest.ServerURL(t))
	require.NoError(t, err)
	host, portStr, err := net.SplitHostPort(server.Host)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	app, err := url.Parse(db.AppURL)
	require.NoError(t, err)
	password, _ := app.User.Password()
	b, err := pgcluster.StartPgBouncer(context.Background(), host, port, pgcluster.PgBouncerOptions{
		PoolSize: poolSize,
		Users:    map[string]string{pgtenancytest.AppRole: password},
		Settings: settings,
	})
	if errors.Is(err, pgcluster.ErrNoPgBouncer) {
		if ci.On() {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v; install it to run the PgBouncer tests", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Stop()) })
	u, err := b.URL(db.AppURL)
	require.NoError(t, err)
	return u
}

// manyTenants are the stores the PgBouncer test adds, 200 of them.
const firstTenant, numTenants = 1000, 200

func seedManyTenants(t *testing.T, db *pgtenancytest.DB) {
	t.Helper()
	_, err := db.AdminConn(t).Exec(context.Background(), fmt.Sprintf(`
		INSERT INTO stores (id, name) SELECT g, 'store ' || g FROM generate_series(%[1]d, %[2]d) g;
		INSERT INTO products (store_id, name, price_cents, currency)
			SELECT g, 'seed ' || g || ' ' || i, 1, 'EUR' FROM generate_series(%[1]d, %[2]d) g, generate_series(1, 2) i;`,
		firstTenant, firstTenant+numTenants-1))
	require.NoError(t, err)
}

// TestPgBouncer runs 32 goroutines across 200 tenants reading and writing
// through a pgtenancy pool behind pgbouncer in transaction pooling mode, with
// 4 server connections: no row is ever seen or written by the wrong
// tenant.
//
// pgbouncer 1.18 forwards no named prepared statements in transaction
// mode, so the cache_statement mode fails there (see
// TestPgBouncerCacheStatement); the other modes work.
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{
		pgx.QueryExecModeExec,
		pgx.QueryExecModeSimpleProtocol,
		pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec,
	} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplate)
			seedManyTenants(t, db)
			url := startPgBouncer(t, db, 4)
			p := newPool(t, db, poolOpts{mode: mode, maxConns: 32, url: url})
			inserted := make([]atomic.Int64, numTenants)
			var ops atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for g := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for i := range 60 {
						k := rng.IntN(numTenants)
						if err := pgbouncerOp(p, rls.Int64(int64(firstTenant+k)), i%4, &inserted[k]); err != nil {
							errs <- fmt.Errorf("goroutine %d op %d tenant %d: %w", g, i, firstTenant+k, err)
							return
						}
						ops.Add(1)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			require.EqualValues(t, 32*60, ops.Load())
			// Every insert landed with its own tenant.
			rows, err := db.AdminConn(t).Query(context.Background(),
				"SELECT store_id, count(*) FILTER (WHERE name LIKE 'bounced %') FROM products WHERE store_id >= $1 GROUP BY store_id", firstTenant)
			require.NoError(t, err)
			got := map[int64]int64{}
			for rows.Next() {
				var store, n int64
				require.NoError(t, rows.Scan(&store, &n))
				got[store] = n
			}
			require.NoError(t, rows.Err())
			for k := range inserted {
				require.Equal(t, inserted[k].Load(), got[int64(firstTenant+k)], "inserts of tenant %d", firstTenant+k)
			}
		})
	}
}

// pgbouncerOp runs one kind of unit of work for tenant and checks that it
// saw only tenant's rows.
func pgbouncerOp(p interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	BeginFunc(context.Context, func(pgx.Tx) error) error
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, tenant rls.Tenant, kind int, inserted *atomic.Int64) error {
	ctx := rls.WithTenant(context.Background(), tenant)
	want := tenant.String()
	checkStores := func(rows pgx.Rows) error {
		stores, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if len(stores) < 2 {
			return fmt.Errorf("saw %d products, want at least 2", len(stores))
		}
		for _, s := range stores {
			if strconv.FormatInt(s, 10) != want {
				return fmt.Errorf("saw a product of store %d", s)
			}
		}
		return nil
	}
	switch kind {
	case 0:
		rows, err := p.Query(ctx, "SELECT store_id FROM products")
		if err != nil {
			return err
		}
		return checkStores(rows)
	case 1:
		var setting string
		var n, stores int
		err := p.QueryRow(ctx, "SELECT current_setting('app.current_tenant'), count(*), count(DISTINCT store_id) FROM products").Scan(&setting, &n, &stores)
		if err != nil {
			return err
		}
		if setting != want || stores != 1 {
			return fmt.Errorf("setting %q, %d stores", setting, stores)
		}
		return nil
	case 2:
		if _, err := p.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'bounced exec', 1, 'EUR')", tenant.String()); err != nil {
			return err
		}
		inserted.Add(1)
		return nil
	default:
		err := p.BeginFunc(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'bounced tx', 1, 'EUR')", tenant.String()); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, "SELECT store_id FROM products")
			if err != nil {
				return err
			}
			return checkStores(rows)
		})
		if err != nil {
			return err
		}
		inserted.Add(1)
		b := &pgx.Batch{}
		b.Queue("SELECT store_id FROM products")
		br := p.SendBatch(ctx, b)
		rows, err := br.Query()
		if err == nil {
			err = checkStores(rows)
		}
		if closeErr := br.Close(); err == nil {
			err = closeErr
		}
		return err
	}
}

// TestPgBouncerCacheStatement documents that the named prepared statements
// of the cache_statement mode do not survive pgbouncer 1.18's transaction
// pooling: a statement prepared on one server connection is missing on the
// next. Another client holding a transaction open pushes the pool onto the
// other server connection; the other modes pass the same dance.
func TestPgBouncerCacheStatement(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	url := startPgBouncer(t, db, 2)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	blocker, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer blocker.Close(ctx)
	dance := func(mode pgx.QueryExecMode) error {
		p := newPool(t, db, poolOpts{mode: mode, maxConns: 1, url: url})
		defer p.Close()
		for range 10 {
			var n int
			if err := p.QueryRow(ctxFor(tenantA), "SELECT count(*) FROM products").Scan(&n); err != nil {
				return err
			}
			if _, err := blocker.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
				return err
			}
			if err := p.QueryRow(ctxFor(tenantA), "SELECT count(*) FROM products").Scan(&n); err != nil {
				_, _ = blocker.Exec(ctx, "COMMIT")
				return err
			}
			if _, err := blocker.Exec(ctx, "COMMIT"); err != nil {
				return err
			}
		}
		return nil
	}
	err = dance(pgx.QueryExecModeCacheStatement)
	require.Error(t, err, "cache_statement through pgbouncer 1.18 worked: check the documentation")
	t.Logf("cache_statement through pgbouncer: %v", err)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec} {
		require.NoError(t, dance(mode), mode.String())
	}
}

// leaveSessionTenant is SQL that leaves tenant at session level, tenant
// setting and stamp alike, as application code, a library or injected SQL
// could (set_config(..., false), like a naive acquire hook).
func leaveSessionTenant(tenant rls.Tenant) string {
	return "SELECT set_config('app.current_tenant', '" + tenant.String() + "', false), " +
		"set_config('app.current_tenant_xact', extract(epoch FROM now())::text, false)"
}

// hiddenSessionTenant installs, in db, a function that leaves a tenant at
// session level as leaveSessionTenant does, and returns the SQL that calls
// it: the pool cannot see what a function does, so it does not reset it.
func hiddenSessionTenant(t *testing.T, db *pgtenancytest.DB) func(rls.Tenant) string {
	t.Helper()
	_, err := db.OwnerConn(t).Exec(context.Background(), `
		CREATE FUNCTION leave_session_tenant(tenant text) RETURNS void LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM set_config('app.current_tenant', tenant, false),
				set_config('app.current_tenant_xact', extract(epoch FROM now())::text, false);
		END $$`)
	require.NoError(t, err)
	return func(tenant rls.Tenant) string {
		return "SELECT leave_session_tenant('" + tenant.String() + "')"
	}
}

// TestPgBouncerSessionTenantInert: a tenant set at session level (as a
// naive acquire hook, or SQL of a unit, does) stays on pgbouncer's server
// connection, where another client that set no tenant reads it; the
// generated policies admit no row through it, since it was not set in the
// transaction reading. The same two clients through pgtenancy leak nothing.
func TestPgBouncerSessionTenantInert(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	url := startPgBouncer(t, db, 1) // one server connection, shared
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	naive, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer naive.Close(ctx)
	other, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer other.Close(ctx)

	_, err = naive.Exec(ctx, leaveSessionTenant(tenantA))
	require.NoError(t, err)
	// The other client never set a tenant: the setting reaches it (the two
	// share the server connection), A's products do not.
	var got string
	require.NoError(t, other.QueryRow(ctx, "SELECT current_setting('app.current_tenant')").Scan(&got))
	require.Equal(t, tenantA.String(), got, "the clients do not share pgbouncer's server connection")
	require.Empty(t, productIDs(t, ctx, other), "a session-level tenant admitted rows")

	// Through pgtenancy, on the same server connection: A's rows for A,
	// and still none for the other client after it.
	p := newPool(t, db, poolOpts{mode: pgx.QueryExecModeSimpleProtocol, url: url})
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
	require.Empty(t, productIDs(t, ctx, other), "pgtenancy leaked the tenant")

	// A unit of tenant B that leaves A at session level, where the pool
	// cannot see it: later units of B still see B; the other client sees
	// nothing.
	_, err = p.Exec(ctxFor(tenantB), hiddenSessionTenant(t, db)(tenantA))
	require.NoError(t, err)
	require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
	require.Empty(t, productIDs(t, ctx, other), "a tenant left by a unit admitted rows")
}
