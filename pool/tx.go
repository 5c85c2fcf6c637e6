package pool

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Tx is a transaction that holds the tenant from [Pool.Begin] (or a
// batch with [pgx.Batch.BeginTx] sent by [Pool.SendBatch]) for its whole
// length. It implements [pgx.Tx]. Its methods pass straight to pgx, except
// [Tx.CopyFrom], which goes through the row level security policies, and
// [Tx.Begin], whose savepoint transaction is a Tx too.
type Tx struct {
	tx     pgx.Tx
	c      *pgxpool.Conn // nil for a savepoint, or once released
	parent *Tx           // the enclosing transaction of a savepoint
	closed bool          // committed or rolled back
	citus  bool          // begun by a pool with Config.Citus
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
	sp, err := tx.tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &Tx{tx: sp, parent: tx, citus: tx.citus}, nil
}

// Commit commits the transaction (or releases the savepoint) and returns the
// connection to the pool. See [pgx.Tx].
func (tx *Tx) Commit(ctx context.Context) error {
	err := tx.tx.Commit(ctx)
	tx.closed = true
	tx.release(ctx)
	return err
}

// Rollback rolls the transaction (or the savepoint) back and returns the
// connection to the pool. It is safe to call after Commit, so it can be
// deferred. See [pgx.Tx].
func (tx *Tx) Rollback(ctx context.Context) error {
	err := tx.tx.Rollback(ctx)
	tx.closed = true
	tx.release(ctx)
	return err
}

func (tx *Tx) release(ctx context.Context) {
	if tx.c != nil {
		release(ctx, tx.c)
		tx.c = nil
	}
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
//
// After Commit or Rollback (of tx or of a transaction enclosing it) it
// returns [pgx.ErrTxClosed] without I/O: the connection may serve another
// transaction by then.
func (tx *Tx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if tx.isClosed() {
		return 0, pgx.ErrTxClosed
	}
	return copyFromTx(ctx, tx.tx.Conn(), table, columns, src, tx.citus)
}

// SendBatch sends b in the transaction. See [pgx.Tx].
func (tx *Tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return tx.tx.SendBatch(ctx, b)
}

// LargeObjects returns the large objects of the transaction. See [pgx.Tx].
func (tx *Tx) LargeObjects() pgx.LargeObjects { return tx.tx.LargeObjects() }

// Prepare prepares a statement on the transaction's connection. See
// [pgx.Tx]. Behind PgBouncer in transaction pooling mode before 1.21,
// prepared statements do not survive the transaction.
func (tx *Tx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return tx.tx.Prepare(ctx, name, sql)
}

// Exec runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return tx.tx.Exec(ctx, sql, args...)
}

// Query runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return tx.tx.Query(ctx, sql, args...)
}

// QueryRow runs sql in the transaction. See [pgx.Tx].
func (tx *Tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return tx.tx.QueryRow(ctx, sql, args...)
}

// Conn returns the transaction's connection. See [pgx.Tx].
func (tx *Tx) Conn() *pgx.Conn { return tx.tx.Conn() }
