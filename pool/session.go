package pool

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/unit"
)

// Session state. A connection carries state besides the tenant setting:
// temporary tables, cursors WITH HOLD, LISTEN, session-level settings and
// advisory locks. The pool removes what a unit of work's SQL creates
// inside the unit's own transaction, in the same round trip (internal/unit
// reads the SQL and writes the resets). State created where the text does
// not show it (a function, a procedure, a trigger) is removed only with
// Config.ResetSession, and always at the end of AcquireFunc, whose
// callback runs SQL the pool does not see.

// resets are the statements that remove a unit's session state.
type resets = unit.Resets

var (
	allState   = unit.AllState
	fullResets = unit.FullResets
	resetsFor  = unit.ResetsFor
	endTx      = unit.EndTx
)

// release ends whatever transaction a unit of work left open (after an
// error, with a flagged unit or Citus, or SQL that ran BEGIN), removing
// the session state of r that survives a rollback in the same round trip,
// and returns c to the pool. A connection that cannot be rolled back is
// closed, and pgxpool destroys it (it never pools a connection inside a
// transaction either).
func release(ctx context.Context, c *pgxpool.Conn, r *resets) {
	unit.Rollback(ctx, c.Conn().PgConn(), r)
	c.Release()
}
