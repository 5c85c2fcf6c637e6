package pool_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
)

// pgtenancyStatements returns the statements the pool prepared on p's only
// connection.
func pgtenancyStatements(t *testing.T, p *pool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, p.Unwrap().AcquireFunc(context.Background(), func(c *pgxpool.Conn) error {
		return c.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pgtenancy\_%'`).Scan(&n)
	}))
	return n
}

// TestDirectStatementCache runs more distinct statements than the
// connection's statement cache holds: every result is right, and the
// prepared statements on the server stay bounded by the capacity.
func TestDirectStatementCache(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	const capacity = 3
	p := newPool(t, db, poolOpts{maxConns: 1, tune: func(c *pgxpool.Config) {
		c.ConnConfig.StatementCacheCapacity = capacity
	}})
	for round := range 3 {
		for i := range 2 * capacity {
			// Distinct SQL texts; each counts A's products above an id.
			sql := fmt.Sprintf("SELECT count(*) FROM products WHERE id > $1 + %d", i)
			var n int
			require.NoError(t, p.QueryRow(ctxFor(tenantA), sql, 100).Scan(&n))
			want := 0
			for _, id := range seedProducts[tenantA] {
				if id > int64(100+i) {
					want++
				}
			}
			require.Equal(t, want, n, "round %d, statement %d", round, i)
			tag, err := p.Exec(ctxFor(tenantB), fmt.Sprintf("UPDATE products SET price_cents = price_cents WHERE id > $1 + %d", i), 0)
			require.NoError(t, err)
			require.EqualValues(t, len(seedProducts[tenantB]), tag.RowsAffected())
		}
	}
	// The cache, the set statement, and the statement evicted last, which
	// is closed before the next prepare.
	got := pgtenancyStatements(t, p)
	assert.LessOrEqual(t, got, capacity+2)
	assert.Positive(t, got)
}

// TestDirectDeallocateAll: statements deallocated behind the pool's back
// cost at most one failed unit of work, then the pool prepares them again.
func TestDirectDeallocateAll(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 1})
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
	require.NoError(t, p.Unwrap().AcquireFunc(context.Background(), func(c *pgxpool.Conn) error {
		_, err := c.Exec(context.Background(), "DEALLOCATE ALL")
		return err
	}))
	rows, err := p.Query(ctxFor(tenantA), "SELECT id FROM products ORDER BY id")
	if err == nil {
		_, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	var pgErr *pgconn.PgError
	if err != nil {
		require.True(t, errors.As(err, &pgErr), "%v", err)
		require.Equal(t, "26000", pgErr.Code)
	}
	require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
	require.Equal(t, 1, requireClean(t, p.Unwrap(), ""))
}

// TestDirectSchemaChange: a cached statement whose result type changed
// fails once, as with pgx's own cache, and is prepared again.
func TestDirectSchemaChange(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 1})
	const sql = "SELECT * FROM products WHERE id = $1"
	columns := func() (int, error) {
		rows, err := p.Query(ctxFor(tenantA), sql, 101)
		if err != nil {
			return 0, err
		}
		vals, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) ([]any, error) { return r.Values() })
		return len(vals), err
	}
	n, err := columns()
	require.NoError(t, err)
	require.Equal(t, 5, n)
	owner := db.OwnerConn(t)
	_, err = owner.Exec(context.Background(), "ALTER TABLE products ADD COLUMN sku text")
	require.NoError(t, err)
	if _, err := columns(); err != nil {
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%v", err)
		require.Equal(t, "0A000", pgErr.Code, "%v", err) // cached plan must not change result type
	}
	n, err = columns()
	require.NoError(t, err)
	require.Equal(t, 6, n)
}

// TestDirectPreparedByName: SQL that names a statement prepared with
// pgx.Conn.Prepare (in AfterConnect, as pgx documents) still reaches it,
// white space in the name or not.
func TestDirectPreparedByName(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 1, tune: func(c *pgxpool.Config) {
		c.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
			for _, name := range []string{"product_name", "product name"} {
				if _, err := conn.Prepare(ctx, name, "SELECT name FROM products WHERE id = $1"); err != nil {
					return err
				}
			}
			return nil
		}
	}})
	for range 2 {
		for _, name := range []string{"product_name", "product name"} {
			var got string
			require.NoError(t, p.QueryRow(ctxFor(tenantA), name, 101).Scan(&got), name)
			require.NotEmpty(t, got)
			// Another tenant's row stays invisible.
			require.ErrorIs(t, p.QueryRow(ctxFor(tenantB), name, 101).Scan(&got), pgx.ErrNoRows, name)
		}
	}
}

// TestDirectTracer: with a pgx tracer configured, units of work keep the
// direct path (no pgx batch), and isolation holds; TestTracerKeepsDirectPath
// checks what the tracer sees.
func TestDirectTracer(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	tr := &batchTracer{}
	p := newPool(t, db, poolOpts{maxConns: 1, tune: func(c *pgxpool.Config) { c.ConnConfig.Tracer = tr }})
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
	require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
	require.Zero(t, tr.batches)
}

type batchTracer struct{ batches int }

func (b *batchTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}
func (b *batchTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (b *batchTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	b.batches++
	return ctx
}
func (b *batchTracer) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (b *batchTracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestDirectTwoPoolsOneConnection: two Pools wrapping one pgxpool with
// different settings share its connections, and each sets its own setting
// only.
func TestDirectTwoPoolsOneConnection(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		cfg, err := pgxpool.ParseConfig(db.AppURL)
		require.NoError(t, err)
		cfg.MaxConns = 1
		cfg.ConnConfig.DefaultQueryExecMode = mode
		raw, err := pgxpool.NewWithConfig(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(raw.Close)
		pa, err := pool.Wrap(raw, pool.Config{}) // app.current_tenant
		require.NoError(t, err)
		pb, err := pool.Wrap(raw, pool.Config{Setting: "app.other_tenant"})
		require.NoError(t, err)

		const q = `SELECT coalesce(current_setting('app.current_tenant', true), ''),
			coalesce(current_setting('app.other_tenant', true), ''), (SELECT count(*) FROM products)`
		for range 2 {
			var cur, other string
			var n int
			require.NoError(t, pa.QueryRow(ctxFor(tenantA), q).Scan(&cur, &other, &n))
			assert.Equal(t, []any{tenantA.String(), "", len(seedProducts[tenantA])}, []any{cur, other, n})
			// The products policies read app.current_tenant, which pb does
			// not set: it sees none.
			require.NoError(t, pb.QueryRow(ctxFor(tenantB), q).Scan(&cur, &other, &n))
			assert.Equal(t, []any{"", tenantB.String(), 0}, []any{cur, other, n})
		}
	})
}

// TestDirectKeepsStatementAfterDataErrors: a policy violation or a
// constraint violation is about the data, not the statement, which stays
// prepared: the next unit of work is one round trip.
func TestDirectKeepsStatementAfterDataErrors(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	counter := &tripCounter{}
	p := newPool(t, db, poolOpts{maxConns: 1, counter: counter})
	const ins = "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, $2, 1, $3)"
	ctx := ctxFor(tenantA)
	trips := func(f func()) int {
		before, _ := counter.snapshot()
		f()
		after, _ := counter.snapshot()
		return after - before
	}
	_, err := p.Exec(ctx, ins, tenantA.String(), "warm", "EUR")
	require.NoError(t, err)
	for _, bad := range []struct {
		args  []any
		state string
	}{
		{[]any{tenantB.String(), "another tenant's row", "EUR"}, "42501"},
		{[]any{tenantA.String(), "no such currency", "XXX"}, "23503"},
	} {
		require.Equal(t, 1, trips(func() {
			_, err := p.Exec(ctx, ins, bad.args...)
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "%v", err)
			require.Equal(t, bad.state, pgErr.Code)
		}))
		require.Equal(t, 1, trips(func() {
			_, err := p.Exec(ctx, ins, tenantA.String(), "after "+bad.state, "EUR")
			require.NoError(t, err)
		}), "the statement was prepared again after %s", bad.state)
	}
}
