package policy

import (
	"errors"

	"github.com/pgtenancy/pgtenancy/internal/errfmt"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ErrInvalidModel matches every [*ModelError] with errors.Is: the model (or
// the facts of an [Existing] given with it) is wrong in itself, whatever
// the database.
var ErrInvalidModel = errors.New("policy: invalid model")

// ErrSignedCitus is the cause of the [*ModelError] of a [Model] with both
// Signed and Citus. Citus rejects subqueries in policies, so the signature
// would be verified once per row checked instead of once per statement
// (docs/security.md has the figures).
// It is [rls.ErrSignedCitus], which the pool returns for the same
// combination.
var ErrSignedCitus = rls.ErrSignedCitus

// ModelError is one problem found by [Model.Validate]. Table and Column name
// the offending table and column as written in the model; either is empty
// when the problem is not about one (an invalid setting name, say).
type ModelError struct {
	Table  string
	Column string
	Reason string

	err error // the cause, such as an rls.ErrInvalidSetting error
}

func (e *ModelError) Error() string {
	return errfmt.Problem("policy: invalid model", e.Table, e.Column, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidModel) true.
func (e *ModelError) Is(target error) bool { return target == ErrInvalidModel }

// Unwrap returns the cause, if any: an invalid setting name unwraps to the
// error of [rls.Setting].
func (e *ModelError) Unwrap() error { return e.err }
