package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestIsolation reads and writes through every method as the app role,
// under every exec mode, and checks that each tenant sees and writes only
// its own rows.
func TestIsolation(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		for _, citus := range []bool{false, true} {
			db := pgtenancytest.NewDB(t, storeTemplate)
			p := newPool(t, db, poolOpts{mode: mode, citus: citus})
			testIsolation(t, p)
			requireClean(t, p.Unwrap(), rls.DefaultSetting)
		}
	})
}

func testIsolation(t *testing.T, p *pool.Pool) {
	for _, tenant := range tenants {
		ctx := ctxFor(tenant)
		want := seedProducts[tenant]

		// Query
		require.Equal(t, want, productIDs(t, ctx, p), "Query")

		// QueryRow, and the setting itself.
		var n int
		var setting string
		require.NoError(t, p.QueryRow(ctx, "SELECT count(*), current_setting('app.current_tenant') FROM products").Scan(&n, &setting))
		require.Equal(t, len(want), n, "QueryRow")
		require.Equal(t, tenant.String(), setting)

		// QueryRow with no row, and with a named argument (a QueryRewriter).
		err := p.QueryRow(ctx, "SELECT id FROM products WHERE id = @id", pgx.NamedArgs{"id": 999}).Scan(&n)
		require.ErrorIs(t, err, pgx.ErrNoRows)

		// A per-query exec mode takes the transaction fallback.
		var ids []int64
		rows, err := p.Query(ctx, "SELECT id FROM products ORDER BY id", pgx.QueryExecModeSimpleProtocol)
		require.NoError(t, err)
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Equal(t, want, ids, "Query with a QueryExecMode argument")
		tag, err := p.Exec(ctx, "UPDATE products SET name = name WHERE true", pgx.QueryExecModeExec)
		require.NoError(t, err)
		require.EqualValues(t, len(want), tag.RowsAffected(), "Exec with a QueryExecMode argument")

		// Exec: the other tenants' rows are out of reach.
		tag, err = p.Exec(ctx, "UPDATE products SET price_cents = price_cents WHERE id IN (101, 201, 301)")
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected(), "Exec UPDATE of one product per store")

		// Exec: writing another tenant's row is refused by the policy.
		other := tenantB
		if tenant == tenantB {
			other = tenantA
		}
		_, err = p.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", other.String())
		require.Equal(t, "42501", sqlState(err), "insert for another tenant: %v", err)

		// SendBatch, with a callback and with manual reads.
		b := &pgx.Batch{}
		b.Queue("SELECT count(*) FROM products").QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
		b.Queue("SELECT current_setting('app.current_tenant')")
		b.Queue("SELECT id FROM products ORDER BY id")
		br := p.SendBatch(ctx, b)
		require.Nil(t, br.Tx())
		_, err = br.Exec() // runs the callback
		require.NoError(t, err)
		require.NoError(t, br.QueryRow().Scan(&setting))
		rows, err = br.Query()
		require.NoError(t, err)
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.NoError(t, br.Close())
		require.Equal(t, tenant.String(), setting, "SendBatch")
		require.Equal(t, want, ids, "SendBatch")
		require.Len(t, b.QueuedQueries, 3, "the batch's queue is restored")

		// Begin: the tenant holds for the whole transaction.
		tx, err := p.Begin(ctx)
		require.NoError(t, err)
		require.Equal(t, want, productIDs(t, ctx, tx), "Begin")
		require.Equal(t, want, productIDs(t, context.Background(), tx), "the tenant is fixed at Begin")
		sp, err := tx.Begin(ctx)
		require.NoError(t, err)
		require.Equal(t, want, productIDs(t, ctx, sp), "savepoint")
		require.NoError(t, sp.Rollback(ctx))
		require.NoError(t, tx.Commit(ctx))
		require.ErrorIs(t, tx.Rollback(ctx), pgx.ErrTxClosed)

		// A batch that begins a transaction.
		b = &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		b.Queue("SELECT current_setting('transaction_isolation')")
		br = p.SendBatch(ctx, b)
		btx := br.Tx()
		require.NotNil(t, btx)
		_, err = br.Exec() // the BEGIN
		require.NoError(t, err)
		var iso string
		require.NoError(t, br.QueryRow().Scan(&iso))
		require.NoError(t, br.Close())
		require.Equal(t, "repeatable read", iso)
		require.Equal(t, want, productIDs(t, ctx, btx), "SendBatch with BeginTx")
		require.NoError(t, btx.Commit(ctx))

		// BeginFunc and AcquireFunc.
		require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
			require.Equal(t, want, productIDs(t, ctx, tx), "BeginFunc")
			return nil
		}))
		require.NoError(t, p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			require.Equal(t, want, productIDs(t, ctx, c), "AcquireFunc")
			return nil
		}))
	}
}

// TestNoTenant checks that work without a tenant fails with
// rls.ErrNoTenant before any I/O: no connection acquired, nothing written.
func TestNoTenant(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	counter := &tripCounter{}
	p := newPool(t, db, poolOpts{counter: counter})
	ctx := context.Background()
	ops := map[string]func() error{
		"Exec": func() error { _, err := p.Exec(ctx, "SELECT 1"); return err },
		"Query": func() error {
			rows, err := p.Query(ctx, "SELECT 1")
			require.ErrorIs(t, rows.Err(), rls.ErrNoTenant)
			rows.Close()
			return err
		},
		"QueryRow": func() error { var n int; return p.QueryRow(ctx, "SELECT 1").Scan(&n) },
		"SendBatch": func() error {
			b := &pgx.Batch{}
			b.Queue("SELECT 1")
			br := p.SendBatch(ctx, b)
			_, err := br.Exec()
			require.ErrorIs(t, br.Close(), rls.ErrNoTenant)
			return err
		},
		"SendBatch BeginTx": func() error {
			b := &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{})
			br := p.SendBatch(ctx, b)
			require.ErrorIs(t, br.Tx().Rollback(ctx), pgx.ErrTxClosed)
			return br.Close()
		},
		"Begin":       func() error { _, err := p.Begin(ctx); return err },
		"BeginTx":     func() error { _, err := p.BeginTx(ctx, pgx.TxOptions{}); return err },
		"BeginFunc":   func() error { return p.BeginFunc(ctx, func(pgx.Tx) error { panic("must not run") }) },
		"AcquireFunc": func() error { return p.AcquireFunc(ctx, func(*pgxpool.Conn) error { panic("must not run") }) },
		"CopyFrom": func() error {
			_, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"name"}, pgx.CopyFromRows([][]any{{"x"}}))
			return err
		},
		"zero tenant": func() error {
			_, err := p.Exec(rls.WithTenant(ctxFor(tenantA), rls.Tenant{}), "SELECT 1")
			return err
		},
	}
	for name, op := range ops {
		require.ErrorIs(t, op(), rls.ErrNoTenant, name)
	}
	trips, writes := counter.snapshot()
	require.Zero(t, writes, "bytes were sent")
	require.Zero(t, trips)
	require.Zero(t, p.Stat().AcquireCount(), "a connection was acquired")
	require.Zero(t, p.Stat().TotalConns(), "a connection was opened")

	// The same pool works once there is a tenant: the checks above could fail.
	_, err := p.Exec(ctxFor(tenantA), "SELECT 1")
	require.NoError(t, err)
	_, writes = counter.snapshot()
	require.NotZero(t, writes)
}

// TestRoundTrips counts the round trips of each unit of work on the wire.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		for _, citus := range []bool{false, true} {
			db := pgtenancytest.NewDB(t, storeTemplate)
			counter := &tripCounter{}
			p := newPool(t, db, poolOpts{mode: mode, maxConns: 1, counter: counter, citus: citus})
			testRoundTrips(t, mode, p, counter, citus)
		}
	})
}

func testRoundTrips(t *testing.T, mode pgx.QueryExecMode, p *pool.Pool, counter *tripCounter, citus bool) {
	ctx := ctxFor(tenantA)
	// One statement: one round trip, but DescribeExec describes every
	// statement first, every time.
	want := 1
	if mode == pgx.QueryExecModeDescribeExec {
		want = 2
	}
	count := func(name string, op func()) int {
		t.Helper()
		op() // warm up: connect, prepare or describe into the caches
		op()
		before, _ := counter.snapshot()
		op()
		after, _ := counter.snapshot()
		t.Logf("%s (citus=%v): %d round trips", name, citus, after-before)
		return after - before
	}
	assert.Equal(t, want, count("Exec", func() {
		_, err := p.Exec(ctx, "UPDATE products SET price_cents = price_cents WHERE id = $1", 101)
		require.NoError(t, err)
	}), "Exec")
	assert.Equal(t, want, count("Query", func() {
		require.Equal(t, seedProducts[tenantA], productIDs(t, ctx, p))
	}), "Query")
	assert.Equal(t, want, count("QueryRow", func() {
		var name string
		require.NoError(t, p.QueryRow(ctx, "SELECT name FROM products WHERE id = $1", 101).Scan(&name))
	}), "QueryRow")
	assert.Equal(t, want, count("SendBatch", func() {
		b := &pgx.Batch{}
		b.Queue("SELECT count(*) FROM products")
		b.Queue("SELECT name FROM products WHERE id = $1", 101)
		require.NoError(t, p.SendBatch(ctx, b).Close())
	}), "SendBatch")
	// Begin, then Rollback (a simple protocol statement: one trip in every
	// mode).
	assert.Equal(t, want+1, count("Begin+Rollback", func() {
		tx, err := p.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
	}), "Begin+Rollback")
	// Begin, one statement, Commit: three round trips.
	assert.Equal(t, 2*want+1, count("Begin+Exec+Commit", func() {
		require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "UPDATE products SET price_cents = price_cents WHERE id = $1", 101)
			return err
		}))
	}), "Begin+Exec+Commit")
	copyTrips := count("CopyFrom", func() {
		n, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"store_id", "name", "price_cents", "currency"},
			pgx.CopyFromRows([][]any{{1, "copied", 1, "EUR"}}))
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	})
	// BEGIN, tenant and the columns' types in the trip of a statement; the
	// rows (one chunk) and COMMIT in one more.
	assert.Equal(t, want+1, copyTrips, "CopyFrom")
}
