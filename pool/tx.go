package pool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/unit"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
)

// Tx is a transaction that holds the tenant from [Pool.Begin] (or a
// batch with [pgx.Batch.BeginTx] sent by [Pool.SendBatch]) for its whole
// length. It implements [pgx.Tx]. Its methods pass straight to pgx, except
// [Tx.CopyFrom], which goes through the row level security policies, and
// [Tx.Begin], whose savepoint transaction is a Tx too.
//
// The SQL run through its methods is read for statements that leave
// session state (temporary tables, cursors WITH HOLD, LISTEN,
// session-level settings and advisory locks); [Tx.Commit] removes that
// state in the round trip of the COMMIT, and [Tx.Rollback] the advisory
// locks, the only state a rollback leaves, in the round trip of the
// ROLLBACK. After [Tx.Conn], which hands out the connection, they remove
// all of it, as [Config.ResetSession] does.
//
// After Commit or Rollback (of tx or of a transaction enclosing it), every
// method returns [pgx.ErrTxClosed] without I/O: the connection may serve
// another unit of work by then.
type Tx struct {
	tx     pgx.Tx
	c      *pgxpool.Conn // nil for a savepoint, or once released
	parent *Tx           // the enclosing transaction of a savepoint
	closed bool          // committed or rolled back
	citus  bool          // begun by a pool with Config.Citus
	t      *unit.Tenancy
	state  sessionsql.State // of the SQL run so far (on the outermost Tx)
}

// root returns the outermost transaction.
func (tx *Tx) root() *Tx {
	for tx.parent != nil {
		tx = tx.parent
	}
	return tx
}

// note records the session state that sql may leave.
func (tx *Tx) note(sql string) {
	r := tx.root()
	if r.state.Kinds&sessionsql.Opaque != 0 {
		return
	}
	if st := r.t.State(sql); !st.Empty() {
		r.state = r.state.Union(st)
	}
}

// isClosed reports whether tx or a transaction enclosing it has ended.
func (tx *Tx) isClosed() bool {
	for t := tx; t != nil; t = t.parent {
		if t.closed {
			return true
		}
	}
	return false
}

var _ pgx.Tx = (*Tx)(nil)

// Begin starts a pseudo nested transaction (a savepoint).
func (tx *Tx) Begin(ctx context.Context) (pgx.Tx, error) {
	if tx.isClosed() {
		return nil, pgx.ErrTxClosed
	}
	sp, err := tx.tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: sp, parent: tx, citus: tx.citus, t: tx.t}, nil
}

// Commit commits the transaction (or releases the savepoint) and returns the
// connection to the pool. See [pgx.Tx].
func (tx *Tx) Commit(ctx context.Context) error {
	return tx.end(ctx, true)
}

// Rollback rolls the transaction (or the savepoint) back and returns the
// connection to the pool. It is safe to call after Commit, so it can be
// deferred. See [pgx.Tx].
func (tx *Tx) Rollback(ctx context.Context) error {
	return tx.end(ctx, false)
}

func (tx *Tx) end(ctx context.Context, commit bool) error {
	if tx.isClosed() {
		return pgx.ErrTxClosed
	}
	var err error
	r := resetsFor(tx.state)
	switch {
	case tx.parent != nil || r == nil:
		if commit {
			err = tx.tx.Commit(ctx)
		} else {
			err = tx.tx.Rollback(ctx)
		}
	default:
		// The resets travel with the COMMIT or the ROLLBACK. pgx's
		// transaction does not know it ended; tx does.
		err = endTx(ctx, tx.tx.Conn(), r, commit)
	}
	tx.closed = true
	if tx.c != nil {
		release(ctx, tx.c, r)
		tx.c = nil
	}
	return err
}

// CopyFrom copies rows into a table under row level security (where COPY
// itself is refused) as [Pool.CopyFrom] does, inside this transaction. A
// row of another tenant fails the whole copy and aborts the transaction, as
// a failed COPY does; a failure on the client side (the source's error, a
// value that cannot be encoded) takes back the rows already sent and leaves
// the transaction usable, except with the columns that take the temporary
// table (see [Pool.CopyFrom]): there any failure, a cancelled context
// included, aborts the transaction, and the temporary table is dropped
// with it whatever happens (it is ON COMMIT DROP). In a transaction of a
// pool with [Config.Citus], it inserts with multi-row INSERT ... VALUES,
// as [Pool.CopyFrom] does with Citus.
func (tx *Tx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if tx.isClosed() {
		return 0, pgx.ErrTxClosed
	}
	return copyFromTx(ctx, tx.tx.Conn(), table, columns, src, tx.citus)
}

// SendBatch sends b in the transaction. See [pgx.Tx].
func (tx *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if tx.isClosed() {
		return pgx.FailedBatchResults(b, pgx.ErrTxClosed)
	}
	for _, qq := range b.QueuedQueries {
		tx.note(qq.SQL)
	}
	return tx.tx.SendBatch(ctx, b)
}

// LargeObjects returns the large objects of the transaction. See [pgx.Tx].
// Large objects are outside row level security: every tenant can read and
// write every large object it learns the OID of (docs/security.md).
func (tx *Tx) LargeObjects() pgx.LargeObjects { return tx.tx.LargeObjects() }

// Prepare prepares a statement on the transaction's connection. See
// [pgx.Tx]. Behind PgBouncer in transaction pooling mode before 1.21,
// prepared statements do not survive the transaction.
func (tx *Tx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if tx.isClosed() {
		return nil, pgx.ErrTxClosed
	}
	tx.note(sql)
	return tx.tx.Prepare(ctx, name, sql)
}

// Exec runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if tx.isClosed() {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	tx.note(sql)
	return tx.tx.Exec(ctx, sql, args...)
}

// Query runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if tx.isClosed() {
		return errRows{err: pgx.ErrTxClosed}, pgx.ErrTxClosed
	}
	tx.note(sql)
	return tx.tx.Query(ctx, sql, args...)
}

// QueryRow runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if tx.isClosed() {
		return errRows{err: pgx.ErrTxClosed}
	}
	tx.note(sql)
	return tx.tx.QueryRow(ctx, sql, args...)
}

// Conn returns the transaction's connection. See [pgx.Tx]. The pool
// cannot see what runs on it, so the transaction's end then removes all
// the session state that it may have created, as [Config.ResetSession]
// does.
func (tx *Tx) Conn() *pgx.Conn {
	r := tx.root()
	r.state = allState
	return tx.tx.Conn()
}
