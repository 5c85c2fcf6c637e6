package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/unit"
)

// poolRows are the rows of a unit of work. Closing them reads the rest of
// the batch (the implicit commit included) and returns the connection.
type poolRows struct {
	ctx    context.Context
	r      pgx.Rows
	br     pgx.BatchResults          // the batch path, or nil
	mrr    *pgconn.MultiResultReader // the direct path, or nil
	sc     *unit.StmtCache           // the direct path's cache, or nil
	sql    string                    // the direct path's statement
	conn   *pgx.Conn                 // the direct path's connection
	c      *pgxpool.Conn             // nil once released
	tx     pgx.Tx                    // the transaction fallback, or nil
	resets *resets                   // the unit's session resets, or nil
	err    error
	closed bool
}

func (r *poolRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.r.Close()
	err := r.r.Err()
	switch {
	case r.tx != nil:
		if err == nil {
			err = r.tx.Commit(r.ctx)
		} else {
			_ = r.tx.Rollback(r.ctx)
		}
	case r.mrr != nil:
		// Close reads the rest, up to the end of the implicit transaction.
		if closeErr := r.mrr.Close(); err == nil {
			err = closeErr
		}
		if err != nil {
			r.sc.Failed(r.sql, err)
		}
		release(r.ctx, r.c, nil)
		r.c = nil
	case r.br != nil:
		// Close reads the rest, with Citus or resets the COMMIT.
		if closeErr := r.br.Close(); err == nil {
			err = closeErr
		}
		release(r.ctx, r.c, r.resets)
		r.c = nil
	}
	if r.err == nil {
		r.err = err
	}
}

func (r *poolRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.r.Err()
}

func (r *poolRows) CommandTag() pgconn.CommandTag { return r.r.CommandTag() }

func (r *poolRows) FieldDescriptions() []pgconn.FieldDescription { return r.r.FieldDescriptions() }

func (r *poolRows) Next() bool {
	if r.closed {
		return false
	}
	if r.r.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *poolRows) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if err != nil {
		r.Close()
	}
	return err
}

func (r *poolRows) Values() ([]any, error) {
	v, err := r.r.Values()
	if err != nil {
		r.Close()
	}
	return v, err
}

func (r *poolRows) RawValues() [][]byte { return r.r.RawValues() }

func (r *poolRows) Conn() *pgx.Conn {
	if r.conn != nil {
		return r.conn
	}
	return r.r.Conn()
}

func (r *poolRows) TypeMap() *pgtype.Map { return r.r.TypeMap() }

// poolRow is the row of QueryRow.
type poolRow struct {
	rows poolRows
	err  error
}

func (r *poolRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	rows := &r.rows
	defer rows.Close() // also when a scanner panics
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range dest {
		if _, ok := d.(*pgtype.DriverBytes); ok {
			return fmt.Errorf("cannot scan into *pgtype.DriverBytes from QueryRow")
		}
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	_ = rows.Scan(dest...)
	rows.Close()
	return rows.Err()
}

// errRows are the rows of a query that failed before it was sent.
type errRows struct{ err error }

func (errRows) Close()                                       {}
func (e errRows) Err() error                                 { return e.err }
func (errRows) CommandTag() pgconn.CommandTag                { return pgconn.CommandTag{} }
func (errRows) FieldDescriptions() []pgconn.FieldDescription { return nil }
func (errRows) Next() bool                                   { return false }
func (e errRows) Scan(...any) error                          { return e.err }
func (e errRows) Values() ([]any, error)                     { return nil, e.err }
func (errRows) RawValues() [][]byte                          { return nil }
func (errRows) Conn() *pgx.Conn                              { return nil }
func (errRows) TypeMap() *pgtype.Map                         { return nil }

// batchResults hide the tenant statements of a batch sent by SendBatch.
type batchResults struct {
	ctx              context.Context
	br               pgx.BatchResults
	b                *pgx.Batch
	orig             []*pgx.QueuedQuery // b's own queue, restored by Close
	hideFrom, hideTo int                // positions of the hidden leading results
	pos              int                // results read so far
	read             int                // results of orig read so far
	c                *pgxpool.Conn      // released by Close, unless tx owns it
	resets           *resets            // the batch's session resets, or nil
	tx               *Tx
	closed           bool
	err              error
}

// errNoMoreResults is returned for a result past the batch's own: the
// hidden statements after them (COMMIT, resets) are Close's to read.
var errNoMoreResults = errors.New("pool: no more results in batch")

// skip reads the hidden results that come before the next one.
func (br *batchResults) skip() error {
	if br.read >= len(br.orig) {
		return errNoMoreResults
	}
	for br.pos >= br.hideFrom && br.pos < br.hideTo {
		br.pos++
		if _, err := br.br.Exec(); err != nil {
			return err
		}
	}
	br.pos++
	br.read++
	return nil
}

func (br *batchResults) Exec() (pgconn.CommandTag, error) {
	if err := br.skip(); err != nil {
		return pgconn.CommandTag{}, err
	}
	return br.br.Exec()
}

func (br *batchResults) Query() (pgx.Rows, error) {
	if err := br.skip(); err != nil {
		return errRows{err: err}, err
	}
	return br.br.Query()
}

func (br *batchResults) QueryRow() pgx.Row {
	if err := br.skip(); err != nil {
		return errRows{err: err}
	}
	return br.br.QueryRow()
}

func (br *batchResults) Close() error {
	if br.closed {
		return br.err
	}
	br.closed = true
	br.err = br.br.Close()
	br.b.QueuedQueries = br.orig
	switch {
	case br.c != nil:
		release(br.ctx, br.c, br.resets)
		br.c = nil
	case br.tx != nil && br.tx.c != nil && br.tx.c.Conn().PgConn().TxStatus() == 'I':
		// The batch's BEGIN failed: no transaction holds the connection.
		br.tx.c.Release()
		br.tx.c = nil
		br.tx.closed = true
	}
	return br.err
}

func (br *batchResults) Tx() pgx.Tx {
	if br.tx == nil {
		return nil
	}
	return br.tx
}
