package middleware

import (
	"errors"
	"net/http"

	"github.com/pgtenancy/pgtenancy/rls"
)

// ErrNotFound is what a [Resolver] returns when its source holds no tenant
// (no header, no cookie, a host outside the base domain). [FirstOf] moves on
// to the next resolver; the middleware answers [ErrMissingTenant].
var ErrNotFound = errors.New("middleware: no tenant in this source")

// ErrConfig is matched, with errors.Is, by every error [New] returns for a
// bad [Config]: a missing Authorize or Resolver, an invalid key type, a
// resolver built with bad arguments (JWT options among them), or
// [AllowAny] with a resolver that is not a credential. The message says
// which.
var ErrConfig = errors.New("middleware: invalid config")

// The kinds of failure. Every error the middleware hands to
// [Config.ErrorHandler] is an [*Error] whose Kind is one of these, so
// errors.Is(err, ErrForbidden) and friends work on it.
var (
	// ErrMissingTenant: no resolver yielded a tenant, or a verified token
	// ([JWTClaim], [VerifiedClaim]) carries no tenant claim; the latter
	// stops [FirstOf] and [Agree]. Default status 400, see
	// [Config.MissingStatus].
	ErrMissingTenant = errors.New("middleware: missing tenant")

	// ErrMalformedTenant: a value was found but is not a valid tenant of the
	// key type (the cause is then an [*rls.InvalidTenantError]), is longer
	// than [MaxValueLen], holds control characters, or the source itself is
	// malformed (a host with two labels below the base domain, two headers).
	// Status 400.
	ErrMalformedTenant = errors.New("middleware: malformed tenant")

	// ErrUnauthenticated: a bearer token is present but fails verification,
	// or [Config.Authorize] found no authenticated caller. Status 401.
	ErrUnauthenticated = errors.New("middleware: unauthenticated")

	// ErrForbidden: [Config.Authorize] denied the caller this tenant.
	// Status 403.
	ErrForbidden = errors.New("middleware: forbidden")

	// ErrConflict: the resolvers of an [Agree] yielded different tenants.
	// Status 403: Agree typically binds a value the caller chose (header,
	// subdomain, path) to a credential (a JWT claim), and a mismatch means the
	// credential does not grant the chosen tenant.
	ErrConflict = errors.New("middleware: conflicting tenants")

	// ErrInternal: a resolver or [Config.Authorize] failed without deciding
	// (a key set could not be fetched, the membership lookup failed). Status
	// 500, and the default error handler writes no detail.
	ErrInternal = errors.New("middleware: internal error")
)

// Error is the error the middleware reports for a rejected request.
// errors.Is matches both its Kind and its cause, and errors.As reaches the
// cause (for example an [*rls.InvalidTenantError]).
type Error struct {
	Kind   error // ErrMissingTenant, ErrMalformedTenant, ErrUnauthenticated, ErrForbidden, ErrConflict or ErrInternal
	Status int   // the HTTP status the default error handler writes; set by the middleware
	Err    error // the cause, or nil
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Err.Error()
}

// Unwrap returns the Kind and the cause, for errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// newErr builds the error a resolver returns for a failure of a given kind.
func newErr(kind, cause error) error { return &Error{Kind: kind, Err: cause} }

// classify maps an error from a resolver or from Authorize to a kind.
// Unknown errors are internal.
func classify(err error) error {
	switch {
	case errors.Is(err, ErrInternal):
		return ErrInternal
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrMissingTenant):
		return ErrMissingTenant
	case errors.Is(err, ErrMalformedTenant), errors.Is(err, rls.ErrInvalidTenant):
		return ErrMalformedTenant
	case errors.Is(err, ErrUnauthenticated):
		return ErrUnauthenticated
	case errors.Is(err, ErrConflict):
		return ErrConflict
	case errors.Is(err, ErrForbidden):
		return ErrForbidden
	}
	return ErrInternal
}

// statusOf returns the default status of a kind.
func statusOf(kind error, missing int) int {
	switch kind {
	case ErrMissingTenant:
		return missing
	case ErrMalformedTenant:
		return http.StatusBadRequest
	case ErrUnauthenticated:
		return http.StatusUnauthorized
	case ErrForbidden, ErrConflict:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// DefaultErrorHandler writes e.Status with a short fixed text/plain body
// that depends only on the kind of failure: never the offending value nor
// the internal cause. A 401 for a rejected token carries
// `WWW-Authenticate: Bearer error="invalid_token"`.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var e *Error
	if errors.As(err, &e) && e.Status != 0 {
		status = e.Status
	}
	msg := http.StatusText(status)
	switch {
	case status >= 500:
		// no detail
	case errors.Is(err, ErrMissingTenant):
		msg = "missing tenant"
	case errors.Is(err, ErrMalformedTenant):
		msg = "malformed tenant"
	case errors.Is(err, ErrUnauthenticated):
		msg = "unauthenticated"
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case errors.Is(err, ErrConflict):
		msg = "conflicting tenants"
	case errors.Is(err, ErrForbidden):
		msg = "forbidden"
	}
	http.Error(w, msg, status)
}
