package pool_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

type traceKey struct{}

// traceRecorder is a pgx query and batch tracer that records what it
// sees, and checks that each end gets the context of its start.
type traceRecorder struct {
	mu      sync.Mutex
	queries []string
	ends    []pgx.TraceQueryEndData
	batches int
	bad     int
}

func (r *traceRecorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, d.SQL)
	return context.WithValue(ctx, traceKey{}, d.SQL)
}

func (r *traceRecorder) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ctx.Value(traceKey{}) == nil {
		r.bad++
	}
	r.ends = append(r.ends, d)
}

func (r *traceRecorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	r.batches++
	r.mu.Unlock()
	return ctx
}
func (r *traceRecorder) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *traceRecorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestTracerKeepsDirectPath: a configured pgx QueryTracer sees each
// statement of Exec, Query and QueryRow, start and end, and the unit stays
// on the direct path (no pgx batch).
func TestTracerKeepsDirectPath(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	rec := &traceRecorder{}
	p := newPool(t, db, poolOpts{tune: func(c *pgxpool.Config) { c.ConnConfig.Tracer = rec }})
	ctx := ctxFor(tenantA)
	var n int
	// Warm the connection (its first use prepares).
	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
	rec.mu.Lock()
	rec.queries, rec.ends, rec.batches = nil, nil, 0
	rec.mu.Unlock()

	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 3, n)
	tag, err := p.Exec(ctx, "UPDATE products SET price_cents = price_cents WHERE id > $1", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(3), tag.RowsAffected())
	rows, err := p.Query(ctx, "SELECT id FROM products ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	assert.Equal(t, []int64{101, 102, 103}, ids)
	_, err = p.Exec(ctx, "SELECT 1/0")
	require.Error(t, err)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []string{
		"SELECT count(*) FROM products",
		"UPDATE products SET price_cents = price_cents WHERE id > $1",
		"SELECT id FROM products ORDER BY id",
		"SELECT 1/0",
	}, rec.queries)
	require.Len(t, rec.ends, 4)
	assert.Equal(t, "UPDATE 3", rec.ends[1].CommandTag.String())
	assert.Equal(t, "SELECT 3", rec.ends[2].CommandTag.String())
	assert.Error(t, rec.ends[3].Err)
	assert.Zero(t, rec.bad, "every end gets its start's context")
	assert.Zero(t, rec.batches, "the units stayed on the direct path")
}
