package stdlib

import "github.com/pgtenancy/pgtenancy/pool"

// IsRLSViolation reports whether err is PostgreSQL refusing a row that the
// row level security policies do not admit (an INSERT or UPDATE of
// another tenant's row), as opposed to an ordinary permission error. It
// is pool.IsRLSViolation.
func IsRLSViolation(err error) bool { return pool.IsRLSViolation(err) }
