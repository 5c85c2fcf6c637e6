package pool_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// fairPool returns a pool of maxConns connections with a per-tenant limit.
func fairPool(t *testing.T, db *pgtenancytest.DB, maxConns, perTenant int32) *pool.Pool {
	t.Helper()
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	configure(cfg.PoolConfig, poolOpts{maxConns: maxConns})
	cfg.PoolConfig.MinConns = maxConns
	cfg.MaxConnsPerTenant = perTenant
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// noisyNeighbour floods the pool with tenant A's slow statements (32
// goroutines, 100 ms each) while tenants B and C run quick ones, and
// returns the median and p99 latency of B's and C's statements.
func noisyNeighbour(t *testing.T, p *pool.Pool) (p50, p99 time.Duration, n int) {
	t.Helper()
	// Warm every connection (prepared statements, the first round trip).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := p.Exec(ctxFor(tenantB), "SELECT count(*) FROM products")
			assert.NoError(t, err)
		})
	}
	wg.Wait()

	ctx, stop := context.WithCancel(ctxFor(tenantA))
	var floods atomic.Int64
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := p.Exec(ctx, "SELECT pg_sleep(0.1)"); err == nil {
					floods.Add(1)
				} else if ctx.Err() == nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // the flood holds the pool
	var mu sync.Mutex
	var lat []time.Duration
	var others sync.WaitGroup
	for _, tn := range []rls.Tenant{tenantB, tenantC} {
		for range 2 {
			others.Go(func() {
				for range 25 {
					start := time.Now()
					var n int
					err := p.QueryRow(ctxFor(tn), "SELECT count(*) FROM products").Scan(&n)
					d := time.Since(start)
					if !assert.NoError(t, err) {
						return
					}
					assert.Equal(t, len(seedProducts[tn]), n)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
	}
	others.Wait()
	stop()
	wg.Wait()
	require.NotZero(t, floods.Load(), "the flood ran")
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], len(lat)
}

// TestMaxConnsPerTenant: one tenant floods an 8-connection pool; with a
// limit of 2 connections per tenant, the others keep their latency.
func TestMaxConnsPerTenant(t *testing.T) {
	if testing.Short() {
		t.Skip("a latency measurement")
	}
	db := pgtenancytest.NewDB(t, storeTemplate)
	without50, without99, n := noisyNeighbour(t, fairPool(t, db, 8, 0))
	with50, with99, _ := noisyNeighbour(t, fairPool(t, db, 8, 2))
	t.Logf("the other tenants' statements (%d in all) while one tenant floods an 8-connection pool: "+
		"without a limit p50 %v p99 %v; with MaxConnsPerTenant 2: p50 %v p99 %v",
		n, without50.Round(100*time.Microsecond), without99.Round(100*time.Microsecond), with50.Round(100*time.Microsecond), with99.Round(100*time.Microsecond))
	// Without a limit, the others queue behind about 32/8 of the flood's
	// 100 ms statements; with it, six connections are always free. The
	// median is compared (a busy machine's scheduling noise is in the
	// tail).
	assert.Greater(t, without50, 200*time.Millisecond, "the flood delays the others without the limit")
	assert.Less(t, with50, without50/2, "with the limit, the others do not wait for the flood")
}

// TestMaxConnsPerTenantHolds: a tenant holds at most its limit of
// connections through every kind of unit, a unit that waits ends with its
// context, and every slot comes back.
func TestMaxConnsPerTenantHolds(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := fairPool(t, db, 6, 2)
	ctx := ctxFor(tenantA)

	// Two transactions hold tenant A's two slots.
	tx1, err := p.Begin(ctx)
	require.NoError(t, err)
	rows, err := p.Query(ctx, "SELECT id FROM products")
	require.NoError(t, err)

	// A third unit of A waits, and ends with its context.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = p.Exec(short, "SELECT 1")
	cancel()
	assert.ErrorIs(t, err, pool.ErrTenantWait)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = p.AcquireFunc(short, func(*pgxpool.Conn) error { return nil })
	assert.ErrorIs(t, err, pool.ErrTenantWait)
	br := p.SendBatch(short, &pgx.Batch{QueuedQueries: []*pgx.QueuedQuery{{SQL: "SELECT 1"}}})
	_, err = br.Exec()
	assert.ErrorIs(t, err, pool.ErrTenantWait)
	_ = br.Close()

	// Other tenants are not held back.
	for _, tn := range []rls.Tenant{tenantB, tenantC} {
		var n int
		require.NoError(t, p.QueryRow(ctxFor(tn), "SELECT count(*) FROM products").Scan(&n))
	}

	// A waiter gets the slot that comes back.
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(ctx, "SELECT 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a third unit of the tenant ran: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	rows.Close()
	require.NoError(t, <-done)
	require.NoError(t, tx1.Rollback(ctx))

	// Every path gives its slot back: two at a time, many times.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			var err error
			switch i % 5 {
			case 0:
				_, err = p.Exec(ctx, "SELECT 1")
			case 1:
				var n int
				err = p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n)
			case 2:
				err = p.BeginFunc(ctx, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, "SELECT 1"); return err })
			case 3:
				err = p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { _, err := c.Exec(ctx, "SELECT 1"); return err })
			case 4:
				b := &pgx.Batch{}
				b.Queue("SELECT 1")
				err = p.SendBatch(ctx, b).Close()
			}
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	// Failed units give theirs back too.
	for range 4 {
		_, err := p.Exec(ctx, "SELECT 1/0")
		require.Error(t, err)
	}
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	tx, err = p.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	// All slots are free: two units of A can hold connections at once.
	c1, c2 := make(chan struct{}), make(chan error, 2)
	for range 2 {
		go func() {
			c2 <- p.AcquireFunc(ctx, func(*pgxpool.Conn) error { <-c1; return nil })
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(c1)
	for range 2 {
		require.NoError(t, <-c2)
	}
}

func TestMaxConnsPerTenantConfig(t *testing.T) {
	t.Parallel()
	cfg, err := pool.ParseConfig("postgres://u@127.0.0.1:1/x")
	require.NoError(t, err)
	cfg.MaxConnsPerTenant = -1
	_, err = pool.NewWithConfig(context.Background(), cfg)
	assert.True(t, errors.Is(err, pool.ErrConfig), "%v", err)
}
