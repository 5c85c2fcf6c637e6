package pool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestCleanAfterFailures makes units of work fail in every way we know,
// then inspects every pooled connection: none holds a tenant or an open
// transaction, and the pool still works for every tenant.
func TestCleanAfterFailures(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		for _, citus := range []bool{false, true} {
			db := pgtenancytest.NewDB(t, storeTemplate)
			p := newPool(t, db, poolOpts{mode: mode, maxConns: 2, citus: citus})
			failures(t, p)
			n := requireClean(t, p.Unwrap(), rls.DefaultSetting)
			require.Positive(t, n, "no pooled connection left to inspect")
			for _, tenant := range tenants {
				require.Equal(t, seedProducts[tenant], productIDs(t, ctxFor(tenant), p))
			}
			// What the failed transactions wrote is gone.
			var n2 int
			admin := db.AdminConn(t)
			require.NoError(t, admin.QueryRow(context.Background(), "SELECT count(*) FROM products WHERE name LIKE 'doomed%'").Scan(&n2))
			require.Zero(t, n2, "rolled-back rows were committed")
		}
	})
}

var errDoomed = errors.New("doomed")

func failures(t *testing.T, p *pool.Pool) {
	ctx := ctxFor(tenantA)
	insert := "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, $2, 1, 'EUR')"

	// A statement error, a policy violation.
	_, err := p.Exec(ctx, "SELECT * FROM no_such_table")
	require.Equal(t, "42P01", sqlState(err), "%v", err)
	_, err = p.Exec(ctx, insert, tenantB.String(), "doomed exec")
	require.Equal(t, "42501", sqlState(err), "%v", err)

	// An error in the middle of the rows: the first row arrives, the second
	// fails.
	rows, err := p.Query(ctx, "SELECT 1 / (x - 2) FROM generate_series(1, 3) x")
	require.NoError(t, err)
	require.True(t, rows.Next())
	for rows.Next() {
	}
	require.Equal(t, "22012", sqlState(rows.Err()), "%v", rows.Err())

	// Rows closed before the end; a row scanned into the wrong type.
	rows, err = p.Query(ctx, "SELECT id FROM products")
	require.NoError(t, err)
	require.True(t, rows.Next())
	rows.Close()
	require.NoError(t, rows.Err())
	var wrong bool
	require.Error(t, p.QueryRow(ctx, "SELECT 'not a bool'").Scan(&wrong))

	// A batch whose second statement fails.
	b := &pgx.Batch{}
	b.Queue(insert, tenantA.String(), "doomed batch")
	b.Queue("SELECT 1 / 0")
	require.Equal(t, "22012", sqlState(p.SendBatch(ctx, b).Close()))

	// A batch that begins a transaction, fails in it, and is rolled back.
	b = &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(insert, tenantA.String(), "doomed batch tx")
	b.Queue("SELECT 1 / 0")
	br := p.SendBatch(ctx, b)
	require.Error(t, br.Close())
	require.NoError(t, br.Tx().Rollback(ctx))

	// A transaction callback that fails, and one that panics.
	err = p.BeginFunc(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insert, tenantA.String(), "doomed tx")
		require.NoError(t, err)
		return errDoomed
	})
	require.ErrorIs(t, err, errDoomed)
	require.Panics(t, func() {
		_ = p.BeginFunc(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, insert, tenantA.String(), "doomed panic")
			require.NoError(t, err)
			panic("boom")
		})
	})
	require.Panics(t, func() {
		_ = p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			_, err := c.Exec(ctx, insert, tenantA.String(), "doomed acquire panic")
			require.NoError(t, err)
			panic("boom")
		})
	})
	err = p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, insert, tenantA.String(), "doomed acquire")
		require.NoError(t, err)
		return errDoomed
	})
	require.ErrorIs(t, err, errDoomed)

	// A transaction whose statement fails, then is rolled back; one that is
	// abandoned in an aborted state and only rolled back by a deferred call.
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT 1 / 0")
	require.Error(t, err)
	require.NoError(t, tx.Rollback(ctx))

	// Cancelled contexts: before the work, during a statement, during a
	// transaction.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = p.Exec(cctx, "SELECT 1")
	require.ErrorIs(t, err, context.Canceled)
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = p.Exec(tctx, "SELECT pg_sleep(10)")
	cancel()
	require.Error(t, err)
	tctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	err = p.BeginFunc(tctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(tctx, insert, tenantA.String(), "doomed cancel")
		if err != nil {
			return err
		}
		_, err = tx.Exec(tctx, "SELECT pg_sleep(10)")
		return err
	})
	cancel()
	require.Error(t, err)
	tctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	rows, err = p.Query(tctx, "SELECT pg_sleep(10)")
	if err == nil {
		for rows.Next() {
		}
		err = rows.Err()
	}
	cancel()
	require.Error(t, err)

	// Statements that end or open a transaction themselves.
	_, err = p.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, _ = p.Exec(ctx, "COMMIT")
}

// TestTenantSwitch runs units of work for alternating tenants on a single
// connection: each sees exactly its own tenant.
func TestTenantSwitch(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		p := newPool(t, db, poolOpts{mode: mode, maxConns: 1})
		pids := map[uint32]bool{}
		for i := range 12 {
			tenant := tenants[i%3]
			ctx := ctxFor(tenant)
			var setting string
			var n int
			require.NoError(t, p.QueryRow(ctx, "SELECT current_setting('app.current_tenant'), (SELECT count(*) FROM products)").Scan(&setting, &n))
			require.Equal(t, tenant.String(), setting)
			require.Equal(t, len(seedProducts[tenant]), n)
			require.NoError(t, p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
				pids[c.Conn().PgConn().PID()] = true
				return nil
			}))
			// Between units of work, the connection holds no tenant.
			requireClean(t, p.Unwrap(), rls.DefaultSetting)
		}
		require.Len(t, pids, 1, "the units of work did not share one connection")
	})
}
