package pool_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// cancelAfterCopy is a pgx tracer that cancels the context of a CopyFrom
// into CopyFrom's temporary table once the COPY has succeeded: the
// context expires right between the COPY and the INSERT ... SELECT that
// follows it.
type cancelAfterCopy struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	fired  bool
}

type copyTableKey struct{}

func (c *cancelAfterCopy) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (c *cancelAfterCopy) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *cancelAfterCopy) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, copyTableKey{}, data.TableName.Sanitize())
}

func (c *cancelAfterCopy) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctx.Value(copyTableKey{}) == `"pg_temp"."pgtenancy_copy"` && data.Err == nil && c.cancel != nil {
		c.cancel()
		c.cancel = nil
		c.fired = true
	}
}

// arm makes the next copy into the temporary table cancel ctx, returned.
func (c *cancelAfterCopy) arm(ctx context.Context) context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, c.cancel = context.WithCancel(ctx)
	c.fired = false
	return ctx
}

// TestTxCopyFromCancelledAfterCopy: Tx.CopyFrom on the temporary table
// path (an array and a domain column) whose context expires after the
// COPY into the temporary table and before the INSERT ... SELECT: it
// returns the context's error and aborts the transaction, as documented,
// so an application that commits anyway commits nothing, and the
// temporary table with tenant A's rows never reaches the next unit on the
// connection (tenant B's), whose own temporary table copy works.
func TestTxCopyFromCancelledAfterCopy(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	_, err := db.OwnerConn(t).Exec(context.Background(), fmt.Sprintf(typedDDL, pgtenancytest.AppRole))
	require.NoError(t, err)
	tracer := &cancelAfterCopy{}
	p := newPool(t, db, poolOpts{maxConns: 1, tune: func(pc *pgxpool.Config) { pc.ConnConfig.Tracer = tracer }})
	cols := []string{"tenant_id", "id", "tags", "qty"}
	rowsOf := func(tenant int64) [][]any {
		return [][]any{{tenant, 1, []string{"a"}, 1}, {tenant, 2, []string{"b"}, 2}, {tenant, 3, nil, 3}}
	}
	ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)

	tx, err := p.Begin(ctxA)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctxA) }() // when an assertion fails: p.Close waits for the connection
	_, err = tx.CopyFrom(tracer.arm(ctxA), pgx.Identifier{"other_rls"}, cols, pgx.CopyFromRows(rowsOf(1)))
	require.True(t, tracer.fired, "the context was not cancelled between the COPY and the INSERT")
	require.ErrorIs(t, err, context.Canceled)
	_, err = tx.Exec(ctxA, "SELECT 1")
	require.Equal(t, "25P02", sqlState(err), "the transaction goes on after a failed CopyFrom: %v", err)
	require.ErrorIs(t, tx.Commit(ctxA), pgx.ErrTxCommitRollback, "the commit of an aborted transaction")
	require.Empty(t, tableText(t, db, "other_rls"))

	// B's unit on the same connection finds no temporary table, and B's
	// own copy through one works.
	_, err = p.Exec(ctxB, "SELECT * FROM pg_temp.pgtenancy_copy")
	require.Equal(t, "42P01", sqlState(err), "B found CopyFrom's temporary table: %v", err)
	require.NoError(t, p.BeginFunc(ctxB, func(tx pgx.Tx) error {
		n, err := tx.CopyFrom(ctxB, pgx.Identifier{"other_rls"}, cols, pgx.CopyFromRows(rowsOf(2)))
		require.EqualValues(t, 3, n)
		return err
	}))
	require.Len(t, tableText(t, db, "other_rls"), 3)

	// In a savepoint: the savepoint is aborted, and rolling it back leaves
	// the enclosing transaction usable, without the temporary table.
	tx2, err := p.Begin(ctxA)
	require.NoError(t, err)
	defer func() { _ = tx2.Rollback(ctxA) }()
	sp, err := tx2.Begin(ctxA)
	require.NoError(t, err)
	_, err = sp.CopyFrom(tracer.arm(ctxA), pgx.Identifier{"other_rls"}, cols, pgx.CopyFromRows(rowsOf(1)))
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, sp.Rollback(ctxA))
	_, err = tx2.Exec(ctxA, "SELECT * FROM pg_temp.pgtenancy_copy")
	require.Equal(t, "42P01", sqlState(err), "%v", err)
	require.NoError(t, tx2.Rollback(ctxA))

	// Pool.CopyFrom, whose transaction is its own, leaves nothing either.
	_, err = p.CopyFrom(tracer.arm(ctxA), pgx.Identifier{"other_rls"}, cols, pgx.CopyFromRows(rowsOf(1)))
	require.ErrorIs(t, err, context.Canceled)
	require.Len(t, tableText(t, db, "other_rls"), 3)
	requireClean(t, p.Unwrap(), "app.current_tenant")
}
