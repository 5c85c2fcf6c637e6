package stdlib

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
	"github.com/pgtenancy/pgtenancy/internal/unit"
)

// tx is a transaction begun by conn.BeginTx: the tenant holds for its
// whole length. The SQL run in it is read for statements that leave
// session state; Commit removes that state in the round trip of the
// COMMIT, Rollback the advisory locks (the only state a rollback leaves)
// in the round trip of the ROLLBACK.
type tx struct {
	c     *conn
	ctx   context.Context // BeginTx's
	state sessionsql.State
}

var _ driver.Tx = (*tx)(nil)

// note records the session state that sql may leave.
func (t *tx) note(sql string) {
	if t.state.Kinds&sessionsql.Opaque != 0 {
		return
	}
	if st := t.c.t.State(sql); !st.Empty() {
		t.state = t.state.Union(st)
	}
}

// Commit commits the transaction.
func (t *tx) Commit() error { return t.end(t.ctx, true) }

// Rollback rolls the transaction back. It runs even when BeginTx's context
// is done (database/sql rolls back then), bounded by 5 seconds.
func (t *tx) Rollback() error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
	defer cancel()
	return t.end(ctx, false)
}

func (t *tx) end(ctx context.Context, commit bool) error {
	if t.c.tx != t {
		return driver.ErrBadConn
	}
	t.c.tx = nil
	pc := t.c.pgx()
	r := unit.ResetsFor(t.state)
	rr := r
	if rr == nil {
		rr = &unit.Resets{}
	}
	if !commit || pc.PgConn().TxStatus() == 'E' {
		// One simple query, ROLLBACK and what survives it: in an aborted
		// transaction the server refuses to prepare anything else, which
		// the describing exec modes do first. If it fails, the connection
		// is closed and database/sql discards it.
		unit.Rollback(ctx, pc.PgConn(), r)
		if commit {
			return pgx.ErrTxCommitRollback
		}
		if pc.IsClosed() {
			return errRollback
		}
		return nil
	}
	err := unit.EndTx(ctx, pc, rr, true)
	// What could not be ended is rolled back, or the connection closed
	// (database/sql then discards it).
	unit.Rollback(ctx, pc.PgConn(), r)
	return err
}

var errRollback = errors.New("stdlib: the rollback failed; the connection was closed")
