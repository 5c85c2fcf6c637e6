package rls

import (
	"errors"
	"fmt"
	"regexp"
)

// DefaultSetting is the name of the setting that holds the current tenant
// when none is configured.
const DefaultSetting = "app.current_tenant"

// ErrInvalidSetting matches, with errors.Is, every error about a setting
// name that pgtenancy does not accept.
var ErrInvalidSetting = errors.New("rls: invalid setting name")

// settingRE is what pgtenancy accepts as a setting name: a custom (dotted)
// setting in lower case, so that it needs no quoting in SET LOCAL.
var settingRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$`)

// Setting returns the name of the tenant setting: name, or [DefaultSetting]
// when name is empty. It is the one place where pgtenancy defaults and
// validates a setting name, for the schema model, the pool and the
// library's objects alike. A name it does not accept, one that is not a
// lower-case custom setting such as "app.current_tenant", is an error that
// matches [ErrInvalidSetting].
func Setting(name string) (string, error) {
	if name == "" {
		return DefaultSetting, nil
	}
	if !settingRE.MatchString(name) {
		return "", fmt.Errorf("%w %q: want a lower-case custom setting name like %q", ErrInvalidSetting, name, DefaultSetting)
	}
	return name, nil
}

// ErrSignedCitus is returned for signed mode (policy.Model.Signed,
// pool.Config.Signer) combined with Citus. Citus rejects subqueries in
// policies, so the signature would be verified once per row checked
// instead of once per statement; pgtenancy refuses the combination rather
// than make every scan pay for it (docs/security.md has the figures).
var ErrSignedCitus = errors.New("signed mode is not supported with Citus: its policies cannot verify the signature once per statement")

// XactSetting returns the name of the companion setting of a tenant
// setting: setting + "_xact". Whoever sets the tenant for a transaction
// also sets the companion, transaction-local, to [XactStamp]; the policies
// that pgtenancy generates admit rows only when the companion holds the
// stamp of the current transaction.
//
// So a tenant set at session level (SET, or set_config(..., false)), by
// application SQL, a library or injected SQL, is inert: it never matches a
// later transaction's stamp, and a connection that goes back to the pool
// or to PgBouncer carries no tenant that the next transaction would see.
// Hand-written policies that read the tenant setting alone still work, but
// do not get this protection.
func XactSetting(setting string) string { return setting + "_xact" }

// XactStamp is the SQL expression of the current transaction's stamp: the
// transaction's start time (now()) as epoch seconds, in text. It is the
// same for every statement of a transaction and differs between
// transactions of a connection; it does not depend on TimeZone, DateStyle
// or extra_float_digits. One exception: PostgreSQL takes a transaction's
// start time from the message that starts it, so the transactions of one
// simple-protocol message ("BEGIN; ...; COMMIT; SELECT ...") share a
// stamp; a tenant left at session level by one of them is live in the
// later ones of that message only, never across messages or clients.
const XactStamp = "pg_catalog.extract('epoch', pg_catalog.now())::text"
