package middleware

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the tokens the JWT resolvers look at.
const maxTokenLen = 16 << 10

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive), or "" when there is none, the scheme is
// another, or the header is given more than once.
func BearerToken(r *http.Request) string {
	tok, _ := bearer(r)
	return tok
}

func bearer(r *http.Request) (string, error) {
	vs := r.Header["Authorization"]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", newErr(ErrUnauthenticated, errors.New("header Authorization given more than once"))
	}
	v := vs[0]
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", nil
	}
	return strings.TrimLeft(v[7:], " "), nil
}

// JWTOptions configures [JWTClaim].
type JWTOptions struct {
	// Claim is the name of the top-level claim holding the tenant, for
	// example "tenant_id". Its value must be a JSON string, also for bigint
	// keys (a JSON number is rejected). Required.
	Claim string

	// Keyfunc returns the key that verifies a token, as for jwt.Parse.
	// Required.
	Keyfunc jwt.Keyfunc

	// Methods lists the accepted signing algorithms, such as "RS256" or
	// "EdDSA". Required, and "none" is refused: the algorithm comes from the
	// token, so without this list an attacker picks it (HS256 signed with a
	// public RSA key, or no signature at all).
	Methods []string

	// Parser holds further parser options: jwt.WithIssuer,
	// jwt.WithAudience, jwt.WithLeeway and the like. The expiry ("exp") is
	// always required and checked; an option that turns claim validation
	// off makes [New] fail.
	Parser []jwt.ParserOption

	// Token extracts the token from a request; "" means none. Nil means
	// [BearerToken].
	Token func(r *http.Request) string
}

// JWTClaim resolves the tenant from a claim of a signed JWT, verified with
// opts.Keyfunc for one of opts.Methods, with an expiry that has not passed.
// No claim is read from a token that does not verify.
//
//   - No token: [ErrNotFound], so [FirstOf] tries its next resolver.
//   - A verified token without the claim (absent, null or ""):
//     [ErrMissingTenant], status [Config.MissingStatus] (400 by default).
//     It stops FirstOf and [Agree]: the caller proved an identity that
//     grants no tenant, and must not pick one from a weaker source.
//   - A token that fails verification: [ErrUnauthenticated] (401), which
//     also stops FirstOf.
//   - A claim that is not a JSON string: [ErrMalformedTenant].
//
// A bad opts is reported by [New] (and by Resolve, when used without it).
func JWTClaim(opts JWTOptions) Resolver {
	j := &jwtClaim{claim: opts.Claim, keyfunc: opts.Keyfunc, token: opts.Token}
	j.err = j.init(opts)
	return j
}

type jwtClaim struct {
	claim   string
	keyfunc jwt.Keyfunc
	token   func(*http.Request) string
	parser  *jwt.Parser
	err     error
}

func (j *jwtClaim) init(opts JWTOptions) error {
	switch {
	case opts.Claim == "":
		return fmt.Errorf("%w: JWTClaim without a Claim", ErrConfig)
	case opts.Keyfunc == nil:
		return fmt.Errorf("%w: JWTClaim without a Keyfunc", ErrConfig)
	case len(opts.Methods) == 0:
		return fmt.Errorf("%w: JWTClaim without Methods: list the accepted algorithms", ErrConfig)
	case slices.ContainsFunc(opts.Methods, func(m string) bool { return strings.EqualFold(m, "none") || m == "" }):
		return fmt.Errorf(`%w: JWTClaim Methods hold "none" or ""`, ErrConfig)
	}
	// Ours come last so that the caller's options cannot replace them.
	base := append(slices.Clip(opts.Parser), jwt.WithExpirationRequired())
	j.parser = jwt.NewParser(append(base, jwt.WithValidMethods(slices.Clone(opts.Methods)))...)
	return checkExpiryEnforced(base)
}

// checkExpiryEnforced parses a well-signed token that expired in 2000 with
// the caller's options: if it passes, the options disabled claim
// validation (or set an absurd leeway).
func checkExpiryEnforced(opts []jwt.ParserOption) error {
	key := []byte("pgtenancy middleware probe key")
	expired := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp": time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix(),
	})
	s, err := expired.SignedString(key)
	if err != nil {
		return fmt.Errorf("%w: JWTClaim self-check: %w", ErrConfig, err)
	}
	p := jwt.NewParser(append(opts, jwt.WithValidMethods([]string{"HS256"}))...)
	if _, err := p.Parse(s, func(*jwt.Token) (any, error) { return key, nil }); err == nil {
		return fmt.Errorf("%w: JWTClaim Parser options accept an expired token: drop jwt.WithoutClaimsValidation and large leeways", ErrConfig)
	}
	return nil
}

func (j *jwtClaim) check() error { return j.err }

func (*jwtClaim) weakness() string { return "" }

func (j *jwtClaim) Resolve(r *http.Request) (string, error) {
	if j.err != nil {
		return "", j.err
	}
	var tok string
	if j.token != nil {
		tok = j.token(r)
	} else {
		var err error
		if tok, err = bearer(r); err != nil {
			return "", err
		}
	}
	if tok == "" {
		return "", ErrNotFound
	}
	if len(tok) > maxTokenLen {
		return "", newErr(ErrUnauthenticated, errors.New("token too long"))
	}
	claims := jwt.MapClaims{}
	t, err := j.parser.ParseWithClaims(tok, claims, j.keyfunc)
	if err != nil || !t.Valid {
		if err == nil {
			err = errors.New("token not valid")
		}
		return "", newErr(ErrUnauthenticated, err)
	}
	return claimString(claims, j.claim)
}

// claimString reads the tenant claim of a verified token. A token without
// it (absent, null or "") is ErrMissingTenant, not ErrNotFound: the caller
// proved an identity that grants no tenant, and FirstOf must not go on to
// a source the caller chooses.
func claimString(claims map[string]any, name string) (string, error) {
	v, ok := claims[name]
	if !ok || v == nil {
		return "", newErr(ErrMissingTenant, fmt.Errorf("verified token has no claim %q", name))
	}
	s, ok := v.(string)
	if !ok {
		return "", newErr(ErrMalformedTenant, fmt.Errorf("claim %q is a %T, not a string", name, v))
	}
	if s == "" {
		return "", newErr(ErrMissingTenant, fmt.Errorf("verified token has an empty claim %q", name))
	}
	return s, nil
}

// Verifier verifies a token with the application's own means (an OIDC
// library, a session store) and returns its claims. It returns an error for
// a token that does not verify; an error matching [ErrInternal] means the
// verification could not be done (500) rather than failed (401).
type Verifier func(ctx context.Context, token string) (claims map[string]any, err error)

// VerifiedClaim resolves the tenant from a claim of a bearer token that
// verify accepts. The claim must be a string. No token: [ErrNotFound]; a
// verified token without the claim: [ErrMissingTenant], which stops
// [FirstOf], as for [JWTClaim]; a token verify rejects: [ErrUnauthenticated].
func VerifiedClaim(claim string, verify Verifier) Resolver {
	return &verifiedClaim{claim: claim, verify: verify}
}

type verifiedClaim struct {
	claim  string
	verify Verifier
}

func (*verifiedClaim) weakness() string { return "" }

func (v *verifiedClaim) check() error {
	switch {
	case v.claim == "":
		return fmt.Errorf("%w: VerifiedClaim without a claim name", ErrConfig)
	case v.verify == nil:
		return fmt.Errorf("%w: VerifiedClaim with a nil Verifier", ErrConfig)
	}
	return nil
}

func (v *verifiedClaim) Resolve(r *http.Request) (string, error) {
	if err := v.check(); err != nil {
		return "", err
	}
	tok, err := bearer(r)
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", ErrNotFound
	}
	if len(tok) > maxTokenLen {
		return "", newErr(ErrUnauthenticated, errors.New("token too long"))
	}
	claims, err := v.verify(r.Context(), tok)
	if err != nil {
		if errors.Is(err, ErrInternal) {
			return "", err
		}
		return "", newErr(ErrUnauthenticated, err)
	}
	return claimString(claims, v.claim)
}
