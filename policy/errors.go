package policy

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalidModel matches every [*ModelError] with errors.Is: the model (or
// the options it was built from) is wrong in itself, whatever the database.
var ErrInvalidModel = errors.New("policy: invalid model")

// ErrSchemaMismatch matches every [*SchemaError] with errors.Is: the model
// does not fit the live database, or the database holds something pgtenancy
// cannot make tenant-safe.
var ErrSchemaMismatch = errors.New("policy: model does not match the database")

// ModelError is one problem found by [Model.Validate]. Table and Column name
// the offending table and column as written in the model; either is empty
// when the problem is not about one (an invalid setting name, say).
type ModelError struct {
	Table  string
	Column string
	Reason string
}

func (e *ModelError) Error() string {
	return format("policy: invalid model", e.Table, e.Column, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidModel) true.
func (e *ModelError) Is(target error) bool { return target == ErrInvalidModel }

// SchemaError is one difference between a model and the live database found
// by [Check], [Resolve] or [Discover]. Table and Column name the table and
// column concerned; either is empty when the problem is not about one.
type SchemaError struct {
	Table  string
	Column string
	Reason string
}

func (e *SchemaError) Error() string {
	return format("policy: schema mismatch", e.Table, e.Column, e.Reason)
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaMismatch }

func format(prefix, table, column, reason string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if table != "" {
		b.WriteString(": table ")
		b.WriteString(strconv.Quote(table))
	}
	if column != "" {
		if table == "" {
			b.WriteString(":")
		}
		b.WriteString(" column ")
		b.WriteString(strconv.Quote(column))
	}
	b.WriteString(": ")
	b.WriteString(reason)
	return b.String()
}
