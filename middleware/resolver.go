package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Resolver finds the raw tenant value in a request. Resolve returns the
// value, or [ErrNotFound] when its source holds none, or another error:
// one matching a kind such as [ErrMalformedTenant] or [ErrUnauthenticated]
// gives that failure, anything else is [ErrInternal]. The middleware checks
// and parses the value; a resolver need not.
type Resolver interface {
	Resolve(r *http.Request) (string, error)
}

// Func adapts a function to a [Resolver]: a custom source of tenants.
type Func func(r *http.Request) (string, error)

// Resolve calls f(r).
func (f Func) Resolve(r *http.Request) (string, error) { return f(r) }

func (Func) weakness() string { return "Func" }

// DefaultHeader is the header [Header] reads when given an empty name.
const DefaultHeader = "X-Tenant-ID"

// Header resolves the tenant from a request header, [DefaultHeader] when
// name is empty. An absent or empty header is [ErrNotFound]; the header
// given twice is [ErrMalformedTenant].
func Header(name string) Resolver {
	if name == "" {
		name = DefaultHeader
	}
	return header(textproto.CanonicalMIMEHeaderKey(name))
}

type header string

func (h header) weakness() string { return fmt.Sprintf("Header(%q)", string(h)) }

func (h header) Resolve(r *http.Request) (string, error) {
	switch vs := r.Header[string(h)]; {
	case len(vs) == 0 || len(vs) == 1 && vs[0] == "":
		return "", ErrNotFound
	case len(vs) > 1:
		return "", newErr(ErrMalformedTenant, fmt.Errorf("header %s given %d times", string(h), len(vs)))
	default:
		return vs[0], nil
	}
}

// Cookie resolves the tenant from the cookie of the given name. An absent
// or empty cookie is [ErrNotFound]; the cookie given twice is
// [ErrMalformedTenant].
func Cookie(name string) Resolver { return cookie(name) }

type cookie string

func (c cookie) weakness() string { return fmt.Sprintf("Cookie(%q)", string(c)) }

func (c cookie) Resolve(r *http.Request) (string, error) {
	if err := c.check(); err != nil {
		return "", err
	}
	cs := r.CookiesNamed(string(c))
	switch {
	case len(cs) == 0 || len(cs) == 1 && cs[0].Value == "":
		return "", ErrNotFound
	case len(cs) > 1:
		return "", newErr(ErrMalformedTenant, fmt.Errorf("cookie %s given %d times", string(c), len(cs)))
	}
	return cs[0].Value, nil
}

func (c cookie) check() error {
	if c == "" {
		return fmt.Errorf("%w: Cookie resolver with an empty name", ErrConfig)
	}
	return nil
}

// PathValue resolves the tenant from the path wildcard of the given name of
// a net/http ServeMux pattern, such as "GET /t/{tenant}/items": it returns
// r.PathValue(name). The middleware must wrap the handler registered on the
// mux, not the mux itself, because the mux sets path values when it routes.
func PathValue(name string) Resolver { return pathValue(name) }

type pathValue string

func (p pathValue) weakness() string { return fmt.Sprintf("PathValue(%q)", string(p)) }

func (p pathValue) Resolve(r *http.Request) (string, error) {
	if v := r.PathValue(string(p)); v != "" {
		return v, nil
	}
	return "", ErrNotFound
}

func (p pathValue) check() error {
	if p == "" {
		return fmt.Errorf("%w: PathValue resolver with an empty name", ErrConfig)
	}
	return nil
}

// PathFunc resolves the tenant with a getter of another router's path
// parameters, such as chi's URLParam; an empty result is [ErrNotFound].
//
//	middleware.PathFunc(func(r *http.Request) string { return chi.URLParam(r, "tenant") })
func PathFunc(get func(r *http.Request) string) Resolver { return pathFunc(get) }

type pathFunc func(*http.Request) string

func (pathFunc) weakness() string { return "PathFunc" }

func (f pathFunc) Resolve(r *http.Request) (string, error) {
	if err := f.check(); err != nil {
		return "", err
	}
	if v := f(r); v != "" {
		return v, nil
	}
	return "", ErrNotFound
}

func (f pathFunc) check() error {
	if f == nil {
		return fmt.Errorf("%w: PathFunc resolver with a nil func", ErrConfig)
	}
	return nil
}

// FirstOf tries resolvers in order and returns the first value found. A
// resolver returning [ErrNotFound] passes to the next; any other error
// stops the search and fails the request, so a forged token never falls
// through to a weaker source.
func FirstOf(resolvers ...Resolver) Resolver { return firstOf(resolvers) }

type firstOf []Resolver

// weakness: FirstOf yields a credential only if every member does, since
// any member may be the one that finds the value.
func (f firstOf) weakness() string {
	for i, res := range f {
		if w := weakness(res); w != "" {
			return fmt.Sprintf("FirstOf member %d: %s", i+1, w)
		}
	}
	return ""
}

func (f firstOf) Resolve(r *http.Request) (string, error) {
	for _, res := range f {
		v, err := res.Resolve(r)
		if err == nil && v != "" {
			return v, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
	}
	return "", ErrNotFound
}

// Agree runs every resolver; all that find a value must agree on the
// tenant, or the request fails with [ErrConflict] (403). Sources that find
// nothing are skipped, so wrap a source that must be present in [Required].
// Any other error fails the request. Used in the config of [New], values are
// compared in the canonical form of the key type (UUIDs ignore case);
// elsewhere byte for byte. It yields the first value found.
func Agree(resolvers ...Resolver) Resolver { return &agree{rs: resolvers} }

type agree struct {
	rs  []Resolver
	key rls.KeyType // 0: compare raw values
}

// weakness: Agree yields a credential when one member is Required and a
// credential, since every value it yields then equals that member's.
func (a *agree) weakness() string {
	for _, res := range a.rs {
		if q, ok := res.(required); ok && weakness(q) == "" {
			return ""
		}
	}
	return "Agree without a Required credential member"
}

func (a *agree) Resolve(r *http.Request) (string, error) {
	var first string
	var firstAt int
	found := false
	for i, res := range a.rs {
		v, err := res.Resolve(r)
		if err != nil && errors.Is(err, ErrNotFound) || err == nil && v == "" {
			continue
		}
		if err != nil {
			return "", err
		}
		if a.key != 0 {
			t, err := rls.Parse(a.key, v)
			if err != nil {
				return "", newErr(ErrMalformedTenant, err)
			}
			v = t.String()
		}
		if !found {
			first, firstAt, found = v, i, true
			continue
		}
		if v != first {
			return "", newErr(ErrConflict, fmt.Errorf("resolvers %d and %d of Agree yield different tenants", firstAt+1, i+1))
		}
	}
	if !found {
		return "", ErrNotFound
	}
	return first, nil
}

// Required turns [ErrNotFound] from res into [ErrMissingTenant], which stops
// [FirstOf] and [Agree]: Agree(Required(JWTClaim(...)), Subdomain(...))
// demands the claim and a matching subdomain when there is one.
func Required(res Resolver) Resolver { return required{res} }

type required struct{ r Resolver }

func (q required) weakness() string {
	if w := weakness(q.r); w != "" {
		return "Required(" + w + ")"
	}
	return ""
}

func (q required) Resolve(r *http.Request) (string, error) {
	v, err := q.r.Resolve(r)
	if err == nil && v == "" || errors.Is(err, ErrNotFound) {
		return "", newErr(ErrMissingTenant, nil)
	}
	return v, err
}

// credentialer is implemented by the resolvers of this package. weakness
// returns "" when every value the resolver can yield comes from a verified
// credential ([JWTClaim], [VerifiedClaim], and compositions of them), and
// otherwise names a source the caller controls.
type credentialer interface {
	weakness() string
}

// weakness returns "" when res yields only credential-derived values, else
// the source that does not. A Resolver of another package is never a
// credential.
func weakness(res Resolver) string {
	if c, ok := res.(credentialer); ok {
		return c.weakness()
	}
	return fmt.Sprintf("a %T", res)
}

// prepare checks a resolver tree and binds the key type into every Agree.
func prepare(res Resolver, key rls.KeyType) (Resolver, error) {
	switch v := res.(type) {
	case nil:
		return nil, fmt.Errorf("%w: nil Resolver", ErrConfig)
	case firstOf:
		rs, err := prepareAll("FirstOf", v, key)
		return firstOf(rs), err
	case *agree:
		rs, err := prepareAll("Agree", v.rs, key)
		return &agree{rs: rs, key: key}, err
	case required:
		inner, err := prepare(v.r, key)
		return required{inner}, err
	case interface{ check() error }:
		if err := v.check(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func prepareAll(name string, rs []Resolver, key rls.KeyType) ([]Resolver, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: %s without resolvers", ErrConfig, name)
	}
	out := make([]Resolver, len(rs))
	for i, r := range rs {
		var err error
		if out[i], err = prepare(r, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Subdomain resolves the tenant from the one label of the request host
// directly below base: with base "example.com", "acme.example.com" yields
// "acme".
//
//   - The port is stripped, one trailing dot is ignored and the comparison is
//     case-insensitive; the label comes back in lower case.
//   - The base itself, hosts outside it (including look-alikes such as
//     "evilexample.com") and IP literals are [ErrNotFound].
//   - Two or more labels ("a.b.example.com"), or a label that is not ASCII
//     letters, digits and inner hyphens up to 63 bytes, are
//     [ErrMalformedTenant].
//   - Internationalized names: give base in its ASCII (punycode) form, as
//     hosts arrive that way; a punycode label ("xn--...") is yielded as is,
//     and a raw non-ASCII host never matches.
//
// r.Host is the Host header as the client sent it: behind a proxy that
// rewrites it, read X-Forwarded-Host with a [Func] only if the proxy sets
// it.
func Subdomain(base string) Resolver {
	b := strings.TrimSuffix(strings.ToLower(base), ".")
	return &subdomain{base: b, err: checkBase(base, b)}
}

type subdomain struct {
	base string
	err  error
}

func checkBase(orig, b string) error {
	if b == "" {
		return fmt.Errorf("%w: Subdomain with an empty base domain", ErrConfig)
	}
	for _, l := range strings.Split(b, ".") {
		if !validLabel(l) {
			return fmt.Errorf("%w: Subdomain base %q is not a host name of ASCII labels (give IDNs in punycode, no port)", ErrConfig, orig)
		}
	}
	return nil
}

func (s *subdomain) check() error { return s.err }

func (s *subdomain) weakness() string { return fmt.Sprintf("Subdomain(%q)", s.base) }

func (s *subdomain) Resolve(r *http.Request) (string, error) {
	if s.err != nil {
		return "", s.err
	}
	host := r.Host
	if strings.HasPrefix(host, "[") {
		return "", ErrNotFound // IPv6 literal
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	n := len(host) - len(s.base)
	if n < 2 || host[n-1] != '.' || !asciiEqualFold(host[n:], s.base) {
		return "", ErrNotFound
	}
	label := host[:n-1]
	if strings.IndexByte(label, '.') >= 0 {
		return "", newErr(ErrMalformedTenant, errors.New("host has more than one label below the base domain"))
	}
	if !validLabel(label) {
		return "", newErr(ErrMalformedTenant, errors.New("host label is not ASCII letters, digits and hyphens"))
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(label), nil
		}
	}
	return label, nil
}

// asciiEqualFold compares ASCII case-insensitively; any non-ASCII byte
// only equals itself, so Unicode look-alikes never match.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// validLabel reports whether l is a DNS label: 1 to 63 ASCII letters,
// digits and hyphens, not starting or ending with a hyphen.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
