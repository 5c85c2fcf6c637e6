package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/pgtenancy/pgtenancy/rls"
)

// MaxValueLen is the longest raw tenant value, in bytes, that the middleware
// passes to [rls.Parse]. Longer values are rejected as [ErrMalformedTenant]
// before parsing, as are values holding ASCII control characters.
const MaxValueLen = 256

// Config configures the middleware built by [New].
type Config struct {
	// KeyType is the tenant key type; every resolved value is parsed with
	// rls.Parse(KeyType, value). Required.
	KeyType rls.KeyType

	// Resolver finds the raw tenant value in a request. Required. Compose
	// several with [FirstOf] and [Agree].
	Resolver Resolver

	// Authorize decides whether the caller may act for the resolved tenant,
	// so that nobody reaches another tenant by editing a header. Required:
	// when the resolver is itself a credential ([JWTClaim], [VerifiedClaim])
	// say so with [AllowAny], which New refuses for any other resolver.
	//
	//   - nil error: allowed; the tenant goes into the request context.
	//   - an error matching [ErrUnauthenticated]: 401 (no authenticated caller).
	//   - an error matching [ErrInternal]: 500 (the check itself failed,
	//     e.g. the membership lookup could not reach the database).
	//   - any other error, such as [ErrForbidden]: 403.
	//
	// In every failure case the next handler is not called.
	Authorize func(r *http.Request, t rls.Tenant) error

	// ErrorHandler writes the response for a rejected request. err is always
	// an [*Error]. Nil means [DefaultErrorHandler].
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// MissingStatus is the status for [ErrMissingTenant], 400 when zero.
	// Set it to 401 when a missing tenant means a missing login. Must be 4xx.
	MissingStatus int

	// ExemptPaths are request paths served without a tenant, compared
	// exactly with r.URL.Path (e.g. "/healthz").
	ExemptPaths []string

	// ExemptPrefixes are path prefixes served without a tenant, matched at
	// segment boundaries: "/static" exempts "/static" and "/static/app.js"
	// but not "/staticfoo". A path holding "." or ".." segments or "//" is
	// never exempted by prefix.
	ExemptPrefixes []string

	// Exempt, when set, exempts every request for which it returns true.
	Exempt func(r *http.Request) bool
}

// AllowAny is an Authorize hook that allows every resolved tenant, for a
// resolver that is itself a credential: its signed claim already states
// which tenant the caller may act for. [New] accepts it only when every
// value the resolver can yield comes from a credential, and returns an
// error matching [ErrConfig] otherwise:
//
//   - [JWTClaim] and [VerifiedClaim] are credentials.
//   - [Required](x) is a credential if x is.
//   - [FirstOf](...) is a credential if all its resolvers are, since any of
//     them may supply the value.
//   - [Agree](...) is a credential if one of its resolvers is Required(x)
//     with x a credential: every value it yields equals that one.
//   - [Header], [Cookie], [PathValue], [PathFunc], [Subdomain], [Func] and
//     resolvers of other packages are not.
func AllowAny(*http.Request, rls.Tenant) error { return nil }

// allowAnyPC is the code pointer of AllowAny, which isAllowAny compares
// with: func values are not comparable with ==.
var allowAnyPC = reflect.ValueOf(AllowAny).Pointer()

func isAllowAny(f func(*http.Request, rls.Tenant) error) bool {
	return reflect.ValueOf(f).Pointer() == allowAnyPC
}

// New checks cfg and returns the middleware. For each request that is not
// exempt it runs the resolver, checks and parses the value, calls
// Authorize, and only then calls next with the tenant stored in the request
// context (read it with [rls.FromContext]). On any failure it calls the
// error handler and not next.
func New(cfg Config) (func(next http.Handler) http.Handler, error) {
	if !cfg.KeyType.Valid() {
		return nil, fmt.Errorf("%w: invalid key type %v", ErrConfig, cfg.KeyType)
	}
	res, err := prepare(cfg.Resolver, cfg.KeyType)
	if err != nil {
		return nil, err
	}
	if cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: Authorize is nil: set a membership check, or AllowAny when the resolver is a credential", ErrConfig)
	}
	if isAllowAny(cfg.Authorize) {
		if w := weakness(res); w != "" {
			return nil, fmt.Errorf("%w: Authorize is AllowAny but the resolver can yield a tenant the caller chooses (%s): set an Authorize that checks the caller", ErrConfig, w)
		}
	}
	if cfg.MissingStatus == 0 {
		cfg.MissingStatus = http.StatusBadRequest
	}
	if cfg.MissingStatus < 400 || cfg.MissingStatus > 499 {
		return nil, fmt.Errorf("%w: MissingStatus %d is not a 4xx status", ErrConfig, cfg.MissingStatus)
	}
	if cfg.ErrorHandler == nil {
		cfg.ErrorHandler = DefaultErrorHandler
	}
	for _, p := range append(append([]string(nil), cfg.ExemptPaths...), cfg.ExemptPrefixes...) {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("%w: exempt path %q does not start with /", ErrConfig, p)
		}
	}
	m := &mw{
		key:       cfg.KeyType,
		res:       res,
		authorize: cfg.Authorize,
		onError:   cfg.ErrorHandler,
		missing:   cfg.MissingStatus,
		exact:     make(map[string]bool, len(cfg.ExemptPaths)),
		exempt:    cfg.Exempt,
	}
	for _, p := range cfg.ExemptPaths {
		m.exact[p] = true
	}
	for _, p := range cfg.ExemptPrefixes {
		m.prefixes = append(m.prefixes, strings.TrimSuffix(p, "/"))
	}
	return m.wrap, nil
}

type mw struct {
	key       rls.KeyType
	res       Resolver
	authorize func(*http.Request, rls.Tenant) error
	onError   func(http.ResponseWriter, *http.Request, error)
	missing   int
	exact     map[string]bool
	prefixes  []string
	exempt    func(*http.Request) bool
	cache     tenantCache
}

func (m *mw) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.isExempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		raw, err := m.res.Resolve(r)
		if err == nil && raw == "" {
			err = ErrNotFound
		}
		if err != nil {
			m.reject(w, r, err)
			return
		}
		bound, t, err := m.tenant(raw)
		if err != nil {
			m.reject(w, r, err)
			return
		}
		if err := m.authorize(r, t); err != nil {
			kind := ErrForbidden
			switch {
			case errors.Is(err, ErrInternal):
				kind = ErrInternal
			case errors.Is(err, ErrUnauthenticated):
				kind = ErrUnauthenticated
			}
			m.fail(w, r, kind, err)
			return
		}
		if bound.Tenant().IsZero() {
			bound = m.cache.put(raw, t)
		}
		next.ServeHTTP(w, r.WithContext(bound.Context(r.Context())))
	})
}

// tenant checks and parses raw. A cached parse comes back bound, ready for
// the context; otherwise bound is the zero Bound.
func (m *mw) tenant(raw string) (bound rls.Bound, t rls.Tenant, err error) {
	if b, ok := m.cache.get(raw); ok {
		return b, b.Tenant(), nil
	}
	if len(raw) > MaxValueLen {
		return bound, t, &Error{Kind: ErrMalformedTenant, Err: invalid(m.key, raw, "longer than "+strconv.Itoa(MaxValueLen)+" bytes")}
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f {
			return bound, t, &Error{Kind: ErrMalformedTenant, Err: invalid(m.key, raw, "contains a control character")}
		}
	}
	t, err = rls.Parse(m.key, raw)
	if err != nil {
		return bound, t, &Error{Kind: ErrMalformedTenant, Err: err}
	}
	return bound, t, nil
}

func invalid(key rls.KeyType, s, reason string) error {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return &rls.InvalidTenantError{Key: key, Value: strconv.Quote(s), Reason: reason}
}

// reject reports an error from a resolver or from the value checks.
func (m *mw) reject(w http.ResponseWriter, r *http.Request, err error) {
	kind, cause := classify(err), err
	if e, ok := err.(*Error); ok {
		cause = e.Err
	}
	if errors.Is(cause, ErrNotFound) {
		cause = nil
	}
	m.fail(w, r, kind, cause)
}

// fail hands an *Error of the given kind to the error handler.
func (m *mw) fail(w http.ResponseWriter, r *http.Request, kind, cause error) {
	m.onError(w, r, &Error{Kind: kind, Status: statusOf(kind, m.missing), Err: cause})
}

func (m *mw) isExempt(r *http.Request) bool {
	if r.URL == nil {
		return m.exempt != nil && m.exempt(r)
	}
	p := r.URL.Path
	if m.exact[p] {
		return true
	}
	if len(m.prefixes) > 0 && cleanPath(p) {
		for _, pre := range m.prefixes {
			if p == pre || strings.HasPrefix(p, pre) && (pre == "" || p[len(pre)] == '/') {
				return true
			}
		}
	}
	return m.exempt != nil && m.exempt(r)
}

// cleanPath reports whether p has no "." or ".." segment and no empty
// segment, so that a router cleaning it would not route it elsewhere.
func cleanPath(p string) bool {
	return !strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.Contains(p, "/../") &&
		!strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
}

// tenantCache maps raw values that parsed and passed Authorize once to the
// parsed tenant, bound with rls.Bind. A hit skips parsing and the
// allocation that boxing an rls.Tenant costs. It holds at most
// maxCacheEntries entries and starts afresh when full, so a caller cycling
// through values cannot grow it.
type tenantCache struct {
	mu sync.RWMutex
	m  map[string]rls.Bound
}

const maxCacheEntries = 1024

func (c *tenantCache) get(raw string) (rls.Bound, bool) {
	c.mu.RLock()
	b, ok := c.m[raw]
	c.mu.RUnlock()
	return b, ok
}

func (c *tenantCache) put(raw string, t rls.Tenant) rls.Bound {
	b := rls.Bind(t)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCacheEntries {
		c.m = make(map[string]rls.Bound)
	}
	c.m[strings.Clone(raw)] = b
	c.mu.Unlock()
	return b
}
