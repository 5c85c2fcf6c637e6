package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/errfmt"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
)

// Conn is what the catalog and verify packages read a database through:
// *pgx.Conn, pgx.Tx, *pgxpool.Pool and *pgxpool.Conn satisfy it. They read
// in a transaction of their own (a savepoint inside a pgx.Tx), which they
// roll back.
type Conn interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrSchemaMismatch matches every [*SchemaError] with errors.Is: the model
// does not fit the live database, or the database holds something pgtenancy
// cannot make tenant-safe.
var ErrSchemaMismatch = errors.New("catalog: model does not match the database")

// SchemaError is one difference between a model and the live database found
// by [Check], [Plan] or [Discover]. Table and Column name the table and
// column concerned; either is empty when the problem is not about one.
type SchemaError struct {
	Table  string
	Column string
	Reason string
}

func (e *SchemaError) Error() string {
	return errfmt.Problem("catalog: schema mismatch", e.Table, e.Column, e.Reason)
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaMismatch }

// ErrInvalidOptions matches every [*OptionsError] with errors.Is.
var ErrInvalidOptions = errors.New("catalog: invalid options")

// OptionsError is a problem with the options of [Discover]: a bad name or
// a missing field. Field names the option.
type OptionsError struct {
	Field  string
	Reason string

	err error // the cause, such as an rls.ErrInvalidSetting error
}

func (e *OptionsError) Error() string {
	return "catalog: invalid options: " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidOptions) true.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// Unwrap returns the cause, if any: an invalid setting name unwraps to the
// error of rls.Setting.
func (e *OptionsError) Unwrap() error { return e.err }

// NewOptionsError returns an [*OptionsError] about field, caused by err.
func NewOptionsError(field string, err error) *OptionsError {
	return &OptionsError{Field: field, Reason: err.Error(), err: err}
}

// read reads a snapshot of schemas in a transaction of conn and calls fn
// with it while the transaction is open. The transaction is rolled back.
func read(ctx context.Context, conn Conn, opts snapshot.Options, fn func(tx pgx.Tx, s *snapshot.Snapshot) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	if opts.Schemas != nil {
		opts.Schemas = slices.Compact(slices.Sorted(slices.Values(opts.Schemas)))
	}
	s, err := snapshot.Read(ctx, tx, opts)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return fn(tx, s)
}
