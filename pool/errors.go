package pool

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsRLSViolation reports whether err is PostgreSQL refusing a row that the
// row level security policies do not admit: an INSERT or UPDATE of another
// tenant's row (or of a row without the current tenant), or a query with
// row_security = off that the policies would affect. Both are SQLSTATE
// 42501, insufficient_privilege, which an ordinary permission error (a
// missing GRANT) has too: this tells them apart by the server function
// that raised the error, or, for errors relayed from Citus's workers,
// which do not carry it, by the message. Reads are never refused: a policy
// filters them.
func IsRLSViolation(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return false
	}
	switch pgErr.Routine {
	case "ExecWithCheckOptions", "check_enable_rls":
		return true
	case "":
		return strings.Contains(pgErr.Message, "row-level security policy")
	}
	return false
}
