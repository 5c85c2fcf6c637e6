package unit

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// Session state. A connection carries state besides the tenant setting:
// temporary tables, cursors WITH HOLD, LISTEN, session-level settings and
// advisory locks. Created by one tenant's unit of work and left there, it
// would serve the next user of the connection (behind PgBouncer, another
// process's client). It is removed inside the unit's own transaction,
// before the transaction ends, since PgBouncer may hand the server
// connection to another client as soon as it does: the reset statements
// travel in the same round trip as the unit, and only units whose SQL
// creates state pay for them.
//
// Which SQL creates state is read from its text (internal/sessionsql),
// once per distinct SQL text. State created where the text does not show
// it (a function, a procedure, a trigger) is removed only with
// Config.ResetSession (FullResets on every unit).

// scanCacheMax bounds the SQL texts whose scan is cached; scanCacheMaxSQL
// is the longest text cached. Others are scanned at each use.
const (
	scanCacheMax    = 4096
	scanCacheMaxSQL = 16 << 10
)

var (
	scanCache    sync.Map // SQL text -> sessionsql.State
	scanCacheLen atomic.Int64
)

// ScanSQL returns the session state that sql may leave.
func ScanSQL(sql string) sessionsql.State {
	if v, ok := scanCache.Load(sql); ok {
		return v.(sessionsql.State)
	}
	st := sessionsql.Scan(sql)
	if len(sql) <= scanCacheMaxSQL && scanCacheLen.Load() < scanCacheMax {
		if _, loaded := scanCache.LoadOrStore(sql, st); !loaded {
			scanCacheLen.Add(1)
		}
	}
	return st
}

// AllState is the state of SQL that cannot be seen: all of it.
var AllState = sessionsql.State{Kinds: sessionsql.All}

// Resets are the statements that remove a unit's session state.
type Resets struct {
	// Before run inside the unit's transaction, just before it commits.
	Before []string
	// After run right after a rollback, in the same round trip: session
	// advisory locks survive a rollback, the rest does not.
	After []string
}

const unlockAll = "SELECT pg_catalog.pg_advisory_unlock_all()"

// FullResets remove every kind of session state that a unit can create
// and leave behind, but prepared statements (pgx's and the direct path's
// caches must stay valid, so no DISCARD ALL): temporary objects, cursors,
// LISTEN, settings (to the connection's defaults), sequences' currval and
// lastval, advisory locks, the role.
var FullResets = &Resets{
	Before: []string{
		"DISCARD TEMP",
		"CLOSE ALL",
		"UNLISTEN *",
		"RESET ALL",
		"DISCARD SEQUENCES",
		"SELECT pg_catalog.pg_advisory_unlock_all(), pg_catalog.set_config('session_authorization', NULL, false), " +
			"pg_catalog.set_config('role', NULL, false)",
	},
	After: []string{unlockAll},
}

// ResetsFor returns the statements that remove st, or nil when st is
// empty.
func ResetsFor(st sessionsql.State) *Resets {
	switch {
	case st.Empty():
		return nil
	case st.Kinds&sessionsql.Opaque != 0:
		return FullResets
	}
	r := &Resets{}
	if st.Kinds&sessionsql.TempObjects != 0 {
		r.Before = append(r.Before, "DISCARD TEMP")
	}
	if st.Kinds&sessionsql.HoldCursors != 0 {
		r.Before = append(r.Before, "CLOSE ALL")
	}
	if st.Kinds&sessionsql.Listen != 0 {
		r.Before = append(r.Before, "UNLISTEN *")
	}
	switch {
	case st.Kinds&sessionsql.AllSettings != 0:
		// RESET ALL leaves the role alone.
		r.Before = append(r.Before, "RESET ALL",
			"SELECT pg_catalog.set_config('session_authorization', NULL, false), pg_catalog.set_config('role', NULL, false)")
	case st.Kinds&sessionsql.Settings != 0:
		// set_config with a NULL value is RESET. A name that does not
		// exist (the SQL that named it did not run) is skipped rather
		// than failing the commit.
		names := make([]string, len(st.Settings))
		for i, n := range st.Settings {
			names[i] = sqlquote.Literal(n)
		}
		r.Before = append(r.Before, "SELECT pg_catalog.set_config(n, NULL, false) FROM pg_catalog.unnest(ARRAY["+
			strings.Join(names, ", ")+"]::text[]) n WHERE pg_catalog.current_setting(n, true) IS NOT NULL")
	}
	if st.Kinds&sessionsql.AdvisoryLocks != 0 {
		r.Before = append(r.Before, unlockAll)
		r.After = append(r.After, unlockAll)
	}
	return r
}

// EndTx ends the transaction open on conn, committing it when commit is
// set (and it is not aborted), and removes the session state of r in the
// same round trip: before the COMMIT, or after the ROLLBACK. It returns
// [pgx.ErrTxCommitRollback] when a commit rolled back, as pgx's Commit
// does. After an error, the caller ends the unit with [Rollback], which
// rolls back what is still open.
func EndTx(ctx context.Context, conn *pgx.Conn, r *Resets, commit bool) error {
	b := &pgx.Batch{}
	end := "rollback"
	if commit {
		end = "commit"
	}
	var tag pgconn.CommandTag
	record := func(t pgconn.CommandTag) error {
		tag = t
		return nil
	}
	if commit && conn.PgConn().TxStatus() != 'E' {
		for _, sql := range r.Before {
			b.Queue(sql)
		}
		b.Queue(end).Exec(record)
	} else {
		b.Queue(end).Exec(record)
		for _, sql := range r.After {
			b.Queue(sql)
		}
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if commit && tag.String() == "ROLLBACK" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// Rollback ends whatever transaction a unit of work left open on pc (after
// an error, with a flagged unit or Citus, or SQL that ran BEGIN), removing
// the session state of r that survives a rollback in the same round trip.
// When the connection cannot be rolled back, it closes it, since the state
// may have survived: callers must not reuse a closed connection (pgxpool
// destroys it; the database/sql driver reports driver.ErrBadConn). It does
// nothing on a connection outside a transaction, closed or busy.
func Rollback(ctx context.Context, pc *pgconn.PgConn, r *Resets) {
	if pc.IsClosed() || pc.IsBusy() || pc.TxStatus() == 'I' {
		return
	}
	sql := "rollback"
	if r != nil {
		for _, s := range r.After {
			sql += "; " + s
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// One simple query: the server connection stays this client's until
	// it is done, also behind PgBouncer.
	if _, err := pc.Exec(rctx, sql).ReadAll(); err != nil {
		_ = pc.Close(rctx)
	}
}
