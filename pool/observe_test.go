package pool_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/observe"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// recorder is an Observer that keeps every unit.
type recorder struct {
	mu    sync.Mutex
	units []observe.Unit
}

func (r *recorder) ObserveUnit(ctx context.Context, u observe.Unit) {
	// The unit's context is the one the work ran with.
	if tn, ok := rls.FromContext(ctx); ok && tn != u.Tenant {
		panic("the observer got another context than the unit's")
	}
	r.mu.Lock()
	r.units = append(r.units, u)
	r.mu.Unlock()
}

func (r *recorder) take() []observe.Unit {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.units
	r.units = nil
	return u
}

// TestObserver: each unit of work is reported once when it ends, with its
// tenant, kind, rows and error, on every exec mode.
func TestObserver(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		rec := &recorder{}
		metrics := observe.NewMetrics(observe.GuardOptions{})
		p := newPool(t, db, poolOpts{mode: mode})
		p, err := pool.Wrap(p.Unwrap(), pool.Config{Observer: observe.Observers(rec, metrics, nil)})
		require.NoError(t, err)
		ctx := ctxFor(tenantA)
		check := func(kind observe.Kind, rows int64, failed bool) {
			t.Helper()
			units := rec.take()
			require.Len(t, units, 1, "one report per unit")
			u := units[0]
			assert.Equal(t, kind, u.Kind)
			assert.Equal(t, tenantA, u.Tenant)
			assert.Equal(t, rows, u.Rows)
			assert.Equal(t, failed, u.Err != nil, "%v", u.Err)
			assert.Positive(t, u.Duration)
			assert.False(t, u.Start.IsZero())
		}

		_, err = p.Exec(ctx, "UPDATE products SET price_cents = price_cents")
		require.NoError(t, err)
		check(observe.Exec, 3, false)

		rows, err := p.Query(ctx, "SELECT id FROM products")
		require.NoError(t, err)
		assert.Empty(t, rec.take(), "reported when the rows close")
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		assert.Len(t, ids, 3)
		check(observe.Query, 3, false)

		var n int
		require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
		check(observe.Query, 1, false)

		_, err = p.Exec(ctx, "SELECT 1/0")
		require.Error(t, err)
		check(observe.Exec, 0, true)

		require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "SELECT 1")
			return err
		}))
		check(observe.Tx, 0, false)

		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.Queue("SELECT 2")
		require.NoError(t, p.SendBatch(ctx, b).Close())
		check(observe.Batch, 0, false)

		require.NoError(t, p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return nil }))
		check(observe.AcquireFunc, 0, false)

		_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"store_id", "name", "price_cents", "currency"},
			pgx.CopyFromRows([][]any{{int64(1), "x", 1, "EUR"}, {int64(1), "y", 2, "EUR"}}))
		require.NoError(t, err)
		check(observe.Copy, 2, false)

		// Without a tenant: reported, with the zero tenant.
		_, err = p.Exec(context.Background(), "SELECT 1")
		require.ErrorIs(t, err, rls.ErrNoTenant)
		units := rec.take()
		require.Len(t, units, 1)
		assert.True(t, units[0].Tenant.IsZero())
		assert.ErrorIs(t, units[0].Err, rls.ErrNoTenant)

		var total, errs int64
		for _, s := range metrics.Snapshot() {
			total += s.Units
			errs += s.Errors
			if s.Tenant == tenantA.String() {
				assert.Equal(t, int64(8), s.Units)
				assert.Equal(t, int64(1), s.Errors)
				assert.Equal(t, int64(3+3+1+2), s.Rows)
			}
		}
		assert.Equal(t, int64(9), total)
		assert.Equal(t, int64(2), errs)
	})
}
