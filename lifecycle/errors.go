package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinels that every error of the package matches with errors.Is, so a
// caller can branch on each refusal without reading messages.
var (
	// ErrUnknownTenant: the tenant has no row in the root table (and, for
	// Delete, no row anywhere).
	ErrUnknownTenant = errors.New("lifecycle: unknown tenant")
	// ErrUncovered matches [*UncoveredError]: a table outside the model holds
	// tenant data, so the operation would miss it.
	ErrUncovered = errors.New("lifecycle: a table holds tenant data that the model does not cover")
	// ErrNoRLS matches [*NoRLSError]: row level security does not apply to
	// the connecting role on some table, so the tenant setting would not
	// limit what it reads or deletes.
	ErrNoRLS = errors.New("lifecycle: row level security does not apply to the connecting role")
	// ErrTargetNotEmpty matches [*TargetNotEmptyError]: the target already
	// holds rows of the tenant.
	ErrTargetNotEmpty = errors.New("lifecycle: the target already holds rows of the tenant")
	// ErrSchemaMismatch matches [*SchemaMismatchError]: the target's tables
	// differ from the export's.
	ErrSchemaMismatch = errors.New("lifecycle: the target's schema differs from the export's")
	// ErrChecksumMismatch matches [*ChecksumError].
	ErrChecksumMismatch = errors.New("lifecycle: checksums differ")
	// ErrConflict matches [*ConflictError]: an imported row collides with a
	// row in the target (a key another tenant uses) or breaks a constraint.
	ErrConflict = errors.New("lifecycle: imported rows conflict with the target")
	// ErrForeignKeyCycle: foreign keys between tenant tables form a cycle,
	// so there is no order to copy or delete them in.
	ErrForeignKeyCycle = errors.New("lifecycle: foreign keys between tenant tables form a cycle")
	// ErrCitus: the database runs Citus; see docs/lifecycle.md.
	ErrCitus = errors.New("lifecycle: not supported on Citus")
	// ErrManifest: an export directory without a complete manifest, or whose
	// files do not match it.
	ErrManifest = errors.New("lifecycle: bad export")
	// ErrSourceChanged: the tenant's rows on the source changed after the
	// export, so Move does not delete them.
	ErrSourceChanged = errors.New("lifecycle: the tenant's rows changed on the source after the export")
	// ErrDirNotEmpty: Export writes only into an empty or new directory.
	ErrDirNotEmpty = errors.New("lifecycle: export directory is not empty")
	// ErrSameDatabase: Move's source and target are the same database.
	ErrSameDatabase = errors.New("lifecycle: source and target are the same database")
)

// UncoveredTable is a table outside the model that holds tenant data.
type UncoveredTable struct {
	Table  string // schema.name
	Reason string
}

// UncoveredError lists the tables outside the model that hold tenant data:
// those verify reports as table_not_in_model, and those whose foreign keys
// reference a tenant table.
type UncoveredError struct {
	Tables []UncoveredTable
}

func (e *UncoveredError) Error() string {
	var b strings.Builder
	b.WriteString("lifecycle: tenant data outside the model, which this operation would miss; add these tables to the model:")
	for _, t := range e.Tables {
		fmt.Fprintf(&b, "\n  %s: %s", t.Table, t.Reason)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUncovered) true.
func (e *UncoveredError) Is(target error) bool { return target == ErrUncovered }

// NoRLSError lists the tables on which row level security does not apply
// to the connecting role (a superuser, a BYPASSRLS role, or the owner of a
// table without FORCE ROW LEVEL SECURITY).
type NoRLSError struct {
	Role   string
	Tables []string
}

func (e *NoRLSError) Error() string {
	return fmt.Sprintf("lifecycle: row level security does not apply to role %q on %s, so the tenant setting would not limit its work: "+
		"connect as the tables' owner with FORCE ROW LEVEL SECURITY on, or as a role without BYPASSRLS that does not own them", e.Role, strings.Join(e.Tables, ", "))
}

// Is makes errors.Is(err, ErrNoRLS) true.
func (e *NoRLSError) Is(target error) bool { return target == ErrNoRLS }

// TargetNotEmptyError lists the tables of the target that hold rows of the
// tenant, with their counts.
type TargetNotEmptyError struct {
	Tenant string
	Rows   map[string]int64
}

func (e *TargetNotEmptyError) Error() string {
	names := make([]string, 0, len(e.Rows))
	for n := range e.Rows {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s (%d)", n, e.Rows[n])
	}
	return fmt.Sprintf("lifecycle: the target already holds rows of tenant %s: %s; nothing imported", e.Tenant, strings.Join(parts, ", "))
}

// Is makes errors.Is(err, ErrTargetNotEmpty) true.
func (e *TargetNotEmptyError) Is(target error) bool { return target == ErrTargetNotEmpty }

// SchemaMismatchError lists how the target's tables differ from the
// export's.
type SchemaMismatchError struct {
	Problems []string
}

func (e *SchemaMismatchError) Error() string {
	return "lifecycle: the target's schema differs from the export's; nothing imported:\n  " + strings.Join(e.Problems, "\n  ")
}

// Is makes errors.Is(err, ErrSchemaMismatch) true.
func (e *SchemaMismatchError) Is(target error) bool { return target == ErrSchemaMismatch }

// ChecksumError is a table whose rows do not match the checksum they
// should have. Where says which copy: "target", "source" or "file".
type ChecksumError struct {
	Table     string
	Where     string
	Want, Got Checksum
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("lifecycle: checksums differ: %s: the %s holds %s (rows:sum), the export %s", e.Table, e.Where, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrChecksumMismatch) true.
func (e *ChecksumError) Is(target error) bool { return target == ErrChecksumMismatch }

// ConflictError is an imported table whose rows the target refused: a key
// that another tenant's row holds, a reference to a row the target lacks
// (a global table's), or another constraint. The import was rolled back.
type ConflictError struct {
	Table      string
	Constraint string
	// Detail is the server's detail, such as `Key (store_id, currency)=(1,
	// XYZ) is not present in table "currencies".`; the server leaves it
	// out for a key that collides in a table under row level security.
	Detail string
	// Conflicting counts, for a key that collides, the table's imported
	// rows that collide with rows already in the target, and Keys shows up
	// to 5 of their keys, such as "(slug)=(acme)".
	Conflicting int64
	Keys        []string
	err         error
}

func (e *ConflictError) Error() string {
	msg := fmt.Sprintf("lifecycle: %s: the target refused the imported rows", e.Table)
	if e.Conflicting > 0 {
		msg += fmt.Sprintf(" (%d rows collide with rows already there)", e.Conflicting)
	}
	if e.Constraint != "" {
		msg += " (constraint " + e.Constraint + ")"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if len(e.Keys) > 0 {
		msg += ": " + strings.Join(e.Keys, ", ")
	}
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg + "; nothing imported"
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Unwrap returns the server's error.
func (e *ConflictError) Unwrap() error { return e.err }
