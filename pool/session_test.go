package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
)

func sessionPool(t *testing.T, db *pgtenancytest.DB, mode pgx.QueryExecMode, counter *tripCounter, edit func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	configure(cfg, poolOpts{mode: mode, maxConns: 1, counter: counter})
	if edit != nil {
		edit(cfg)
	}
	require.NoError(t, pool.ConfigureSession(cfg, ""))
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// TestSession checks the acquire hook: each acquired connection holds
// exactly the context's tenant, or none; nothing leaks from one acquire to
// the next.
func TestSession(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		var hookTenants []string
		counter := &tripCounter{}
		p := sessionPool(t, db, mode, counter, func(cfg *pgxpool.Config) {
			// An existing hook still runs, and after the tenant is set.
			cfg.PrepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
				var s string
				err := conn.QueryRow(ctx, "SELECT current_setting('app.current_tenant')", pgx.QueryExecModeSimpleProtocol).Scan(&s)
				hookTenants = append(hookTenants, s)
				return true, err
			}
		})
		bg := context.Background()

		require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
		// Same connection (MaxConns 1), no tenant in the context: nothing.
		require.Empty(t, productIDs(t, bg, p), "rows visible without a tenant after A")
		var setting string
		require.NoError(t, p.QueryRow(bg, "SELECT current_setting('app.current_tenant')").Scan(&setting))
		require.Empty(t, setting)
		require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
		require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
		// A transaction sees the tenant too.
		require.NoError(t, pgx.BeginFunc(ctxFor(tenantC), p, func(tx pgx.Tx) error {
			require.Equal(t, seedProducts[tenantC], productIDs(t, ctxFor(tenantC), tx))
			return nil
		}))
		require.Empty(t, productIDs(t, bg, p), "rows visible without a tenant after C")
		require.Equal(t, []string{"1", "", "", "2", "1", "3", ""}, hookTenants)

		// The hook skips the round trip when the connection holds the
		// tenant already: acquire+query for A again is one trip, switching
		// to B two.
		ctx := ctxFor(tenantA)
		productIDs(t, ctx, p)
		productIDs(t, ctx, p) // warm the statement caches
		trips := func(ctx context.Context) int {
			before, _ := counter.snapshot()
			var n int
			require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products", pgx.QueryExecModeSimpleProtocol).Scan(&n))
			after, _ := counter.snapshot()
			return after - before
		}
		// The chained hook above costs one trip per acquire: count it.
		require.Equal(t, 1+1, trips(ctx), "same tenant again")
		set := 1 // set_config
		if mode == pgx.QueryExecModeDescribeExec {
			set = 2 // describe, then execute
		}
		require.Equal(t, 1+set+1, trips(ctxFor(tenantB)), "tenant switch")
	})
}

func TestSessionConfigErrors(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, pool.ConfigureSession(nil, ""), pool.ErrConfig)
	cfg, err := pgxpool.ParseConfig("postgres://localhost/x")
	require.NoError(t, err)
	require.ErrorIs(t, pool.ConfigureSession(cfg, "Bad Name"), pool.ErrConfig)
	require.Nil(t, cfg.PrepareConn, "a failed ConfigureSession changed the config")
}

// TestConfigErrors checks the constructors' validation.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pool.ParseConfig("postgres://localhost/x")
	require.NoError(t, err)
	require.Equal(t, "app.current_tenant", cfg.Setting)
	cfg.Setting = "no_dot"
	_, err = pool.NewWithConfig(ctx, cfg)
	require.ErrorIs(t, err, pool.ErrConfig)
	_, err = pool.NewWithConfig(ctx, &pool.Config{})
	require.ErrorIs(t, err, pool.ErrConfig)
	_, err = pool.Wrap(nil, pool.Options{})
	require.ErrorIs(t, err, pool.ErrConfig)
	_, err = pool.ParseConfig("postgres://localhost/x?pool_max_conns=nope")
	require.Error(t, err)
	_, err = pool.New(ctx, "not a url ://")
	require.Error(t, err)
}

// TestWrapAndSetting wraps an existing pgxpool, with a custom setting name.
func TestWrapAndSetting(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	ctx := context.Background()
	owner := db.OwnerConn(t)
	_, err := owner.Exec(ctx, `
		CREATE TABLE notes (tenant_id bigint NOT NULL, body text);
		INSERT INTO notes VALUES (1, 'one'), (2, 'two');
		ALTER TABLE notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
		CREATE POLICY t ON notes USING (tenant_id = NULLIF(current_setting('acme.tenant', true), '')::bigint);
		GRANT SELECT ON notes TO `+pgtenancytest.AppRole)
	require.NoError(t, err)
	raw := db.AppPool(t)
	p, err := pool.Wrap(raw, pool.Options{Setting: "acme.tenant"})
	require.NoError(t, err)
	require.Same(t, raw, p.Unwrap())
	var body string
	require.NoError(t, p.QueryRow(ctxFor(tenantB), "SELECT body FROM notes").Scan(&body))
	require.Equal(t, "two", body)
	require.NoError(t, p.Ping(ctx))
	requireClean(t, raw, "acme.tenant")
}

// TestSessionKeepsBeforeAcquire checks that a deprecated BeforeAcquire hook
// keeps running after ConfigureSession, which sets PrepareConn.
func TestSessionKeepsBeforeAcquire(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	calls := 0
	p := sessionPool(t, db, pgx.QueryExecModeCacheStatement, nil, func(cfg *pgxpool.Config) {
		//lint:ignore SA1019 testing the deprecated hook on purpose
		cfg.BeforeAcquire = func(context.Context, *pgx.Conn) bool { calls++; return true }
	})
	require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
	require.Equal(t, 1, calls)
}
