package pool_test

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTxCopyFromAfterEnd: a Tx's CopyFrom after Commit or Rollback must not
// write into whatever transaction its connection serves next (here another
// tenant's, on a pool of one connection).
func TestTxCopyFromAfterEnd(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 1})
	ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)
	cols := []string{"store_id", "name", "price_cents", "currency"}
	rowOfB := pgx.CopyFromRows([][]any{{int64(2), "forged", int64(1), "EUR"}})

	txA, err := p.Begin(ctxA)
	require.NoError(t, err)
	sp, err := txA.Begin(ctxA)
	require.NoError(t, err)
	require.NoError(t, txA.Commit(ctxA))

	txB, err := p.Begin(ctxB) // the same connection, now in B's transaction
	require.NoError(t, err)
	n, err := txA.CopyFrom(ctxA, pgx.Identifier{"products"}, cols, rowOfB)
	assert.ErrorIs(t, err, pgx.ErrTxClosed)
	assert.Zero(t, n)
	_, err = sp.CopyFrom(ctxA, pgx.Identifier{"products"}, cols, rowOfB)
	assert.ErrorIs(t, err, pgx.ErrTxClosed, "a savepoint of a committed transaction is closed too")
	require.NoError(t, txB.Commit(ctxB))

	var forged int
	require.NoError(t, p.QueryRow(ctxB, "SELECT count(*) FROM products WHERE name = 'forged'").Scan(&forged))
	assert.Zero(t, forged)

	txC, err := p.Begin(ctxA)
	require.NoError(t, err)
	require.NoError(t, txC.Rollback(ctxA))
	_, err = txC.CopyFrom(ctxA, pgx.Identifier{"products"}, cols, rowOfB)
	assert.ErrorIs(t, err, pgx.ErrTxClosed)
}

// TestAcquireFuncCallbackReleases: a callback that releases its connection
// (a pgxpool habit) gets ErrConnReleased, not a panic, and its work is not
// committed.
func TestAcquireFuncCallbackReleases(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 2})
	ctx := ctxFor(tenantA)
	err := p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		if _, err := c.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES (1, 'released', 1, 'EUR')"); err != nil {
			return err
		}
		c.Release()
		return nil
	})
	assert.ErrorIs(t, err, pool.ErrConnReleased)
	var n int
	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products WHERE name = 'released'").Scan(&n))
	assert.Zero(t, n)

	boom := errors.New("boom")
	err = p.AcquireFunc(ctx, func(c *pgxpool.Conn) error { c.Release(); return boom })
	assert.ErrorIs(t, err, boom)
	assert.ErrorIs(t, err, pool.ErrConnReleased)

	// The pool still works and its connections are clean.
	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 3, n)
	requireClean(t, p.Unwrap(), "app.current_tenant")
}
