package middleware_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

var (
	keysOnce         sync.Once
	rsaKey, rsaOther *rsa.PrivateKey
	rsaPubPEM        []byte
	edPub            ed25519.PublicKey
	edKey            ed25519.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
		if err != nil {
			panic(err)
		}
		rsaPubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if edPub, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// hmacKey is the shared secret of the HS256 tests and fuzz target.
var hmacKey = []byte("0123456789abcdef0123456789abcdef")

func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(tenant any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	if tenant != nil {
		c["tid"] = tenant
	}
	return c
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func bearerReq(tok string) *http.Request {
	r := get("/")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func rsaResolver() middleware.Resolver {
	return middleware.JWTClaim(middleware.JWTOptions{
		Claim:   "tid",
		Keyfunc: func(*jwt.Token) (any, error) { return &rsaKey.PublicKey, nil },
		Methods: []string{"RS256"},
	})
}

func TestJWTClaim(t *testing.T) {
	t.Parallel()
	keys(t)
	valid := sign(t, jwt.SigningMethodRS256, rsaKey, claims("42"))
	parts := strings.Split(valid, ".")
	expired := claims("42")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	noExp := claims("42")
	delete(noExp, "exp")
	notYet := claims("42")
	notYet["nbf"] = time.Now().Add(time.Hour).Unix()
	payload42 := b64(`{"tid":"42","exp":` + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + `}`)
	payload43 := b64(`{"tid":"43","exp":` + fmt.Sprint(time.Now().Add(time.Hour).Unix()) + `}`)

	tests := []struct {
		name   string
		req    *http.Request
		kind   error
		status int
		tenant string
	}{
		{"valid", bearerReq(valid), nil, 0, "42"},
		{"scheme case", func() *http.Request { r := get("/"); r.Header.Set("Authorization", "bearer "+valid); return r }(), nil, 0, "42"},
		{"no token", get("/"), middleware.ErrMissingTenant, 400, ""},
		{"basic auth", func() *http.Request { r := get("/"); r.SetBasicAuth("a", "b"); return r }(), middleware.ErrMissingTenant, 400, ""},
		{"two authorization headers", withHeader("Authorization", "Bearer "+valid, "Bearer "+valid), middleware.ErrUnauthenticated, 401, ""},
		{"wrong key", bearerReq(sign(t, jwt.SigningMethodRS256, rsaOther, claims("42"))), middleware.ErrUnauthenticated, 401, ""},
		{"alg none", bearerReq(b64(`{"alg":"none","typ":"JWT"}`) + "." + payload42 + "."), middleware.ErrUnauthenticated, 401, ""},
		{"alg none via library", bearerReq(sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("42"))), middleware.ErrUnauthenticated, 401, ""},
		{"HS256 with the public key", bearerReq(sign(t, jwt.SigningMethodHS256, rsaPubPEM, claims("42"))), middleware.ErrUnauthenticated, 401, ""},
		{"EdDSA not allowed", bearerReq(sign(t, jwt.SigningMethodEdDSA, edKey, claims("42"))), middleware.ErrUnauthenticated, 401, ""},
		{"tampered payload", bearerReq(parts[0] + "." + payload43 + "." + parts[2]), middleware.ErrUnauthenticated, 401, ""},
		{"signature stripped", bearerReq(parts[0] + "." + parts[1] + "."), middleware.ErrUnauthenticated, 401, ""},
		{"expired", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, expired)), middleware.ErrUnauthenticated, 401, ""},
		{"no exp", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, noExp)), middleware.ErrUnauthenticated, 401, ""},
		{"not yet valid", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, notYet)), middleware.ErrUnauthenticated, 401, ""},
		{"garbage", bearerReq("not.a.jwt"), middleware.ErrUnauthenticated, 401, ""},
		{"too long", bearerReq(strings.Repeat("a", 17<<10)), middleware.ErrUnauthenticated, 401, ""},
		{"missing claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil))), middleware.ErrMissingTenant, 400, ""},
		{"empty claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(""))), middleware.ErrMissingTenant, 400, ""},
		{"number claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(42))), middleware.ErrMalformedTenant, 400, ""},
		{"big number claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(int64(9007199254740993)))), middleware.ErrMalformedTenant, 400, ""},
		{"bool claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(true))), middleware.ErrMalformedTenant, 400, ""},
		{"array claim", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims([]string{"42"}))), middleware.ErrMalformedTenant, 400, ""},
		{"claim not a bigint", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims("acme"))), middleware.ErrMalformedTenant, 400, ""},
		{"claim with NUL", bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims("4\x002"))), middleware.ErrMalformedTenant, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: rsaResolver()}, tc.req)
			o.want(t, tc.kind, tc.status, tc.tenant, rls.BigInt)
			if tc.status == 401 && o.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 without WWW-Authenticate")
			}
		})
	}
}

func TestJWTForgedTokenDoesNotFallThrough(t *testing.T) {
	t.Parallel()
	keys(t)
	r := bearerReq(sign(t, jwt.SigningMethodRS256, rsaOther, claims("42")))
	r.Header.Set("X-Tenant-ID", "42")
	o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.FirstOf(rsaResolver(), middleware.Header(""))}, r)
	o.want(t, middleware.ErrUnauthenticated, 401, "", 0)

	// Agree binds the header to the claim.
	r = bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims("42")))
	r.Header.Set("X-Tenant-ID", "43")
	o = serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Agree(middleware.Required(rsaResolver()), middleware.Header(""))}, r)
	o.want(t, middleware.ErrConflict, 403, "", 0)
}

func TestJWTOptions(t *testing.T) {
	t.Parallel()
	keys(t)
	kf := func(*jwt.Token) (any, error) { return hmacKey, nil }
	bad := map[string]middleware.JWTOptions{
		"no claim":           {Keyfunc: kf, Methods: []string{"HS256"}},
		"no keyfunc":         {Claim: "tid", Methods: []string{"HS256"}},
		"no methods":         {Claim: "tid", Keyfunc: kf},
		"none":               {Claim: "tid", Keyfunc: kf, Methods: []string{"HS256", "none"}},
		"NONE":               {Claim: "tid", Keyfunc: kf, Methods: []string{"NONE"}},
		"no claims check":    {Claim: "tid", Keyfunc: kf, Methods: []string{"HS256"}, Parser: []jwt.ParserOption{jwt.WithoutClaimsValidation()}},
		"absurd leeway":      {Claim: "tid", Keyfunc: kf, Methods: []string{"HS256"}, Parser: []jwt.ParserOption{jwt.WithLeeway(100 * 365 * 24 * time.Hour)}},
		"methods overridden": {Claim: "tid", Keyfunc: kf, Methods: []string{"HS256"}, Parser: []jwt.ParserOption{jwt.WithoutClaimsValidation(), jwt.WithValidMethods([]string{"none"})}},
	}
	for name, opts := range bad {
		if _, err := middleware.New(middleware.Config{KeyType: rls.Text, Resolver: middleware.JWTClaim(opts), Authorize: middleware.AllowAny}); !errors.Is(err, middleware.ErrConfig) {
			t.Errorf("%s: New: got %v, want ErrConfig", name, err)
		}
		if _, err := middleware.JWTClaim(opts).Resolve(get("/")); !errors.Is(err, middleware.ErrConfig) {
			t.Errorf("%s: Resolve without New: got %v, want ErrConfig", name, err)
		}
	}

	// Caller options apply: issuer and audience.
	res := middleware.JWTClaim(middleware.JWTOptions{
		Claim: "tid", Keyfunc: kf, Methods: []string{"HS256"},
		Parser: []jwt.ParserOption{jwt.WithIssuer("https://id.example.com"), jwt.WithAudience("api")},
	})
	good := claims("acme")
	good["iss"], good["aud"] = "https://id.example.com", "api"
	wrongIss := claims("acme")
	wrongIss["iss"], wrongIss["aud"] = "https://evil.example.com", "api"
	o := serve(t, middleware.Config{KeyType: rls.Text, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodHS256, hmacKey, good)))
	o.want(t, nil, 0, "acme", rls.Text)
	o = serve(t, middleware.Config{KeyType: rls.Text, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodHS256, hmacKey, wrongIss)))
	o.want(t, middleware.ErrUnauthenticated, 401, "", 0)
	o = serve(t, middleware.Config{KeyType: rls.Text, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodHS256, []byte("another key of 32 bytes........."), good)))
	o.want(t, middleware.ErrUnauthenticated, 401, "", 0)

	// A token from a cookie.
	res = middleware.JWTClaim(middleware.JWTOptions{
		Claim: "tid", Keyfunc: func(*jwt.Token) (any, error) { return edPub, nil }, Methods: []string{"EdDSA"},
		Token: func(r *http.Request) string {
			c, err := r.Cookie("session")
			if err != nil {
				return ""
			}
			return c.Value
		},
	})
	r := get("/")
	r.AddCookie(&http.Cookie{Name: "session", Value: sign(t, jwt.SigningMethodEdDSA, edKey, claims("acme"))})
	o = serve(t, middleware.Config{KeyType: rls.Text, Resolver: res}, r)
	o.want(t, nil, 0, "acme", rls.Text)
}

func TestVerifiedClaim(t *testing.T) {
	t.Parallel()
	verify := func(ctx context.Context, tok string) (map[string]any, error) {
		switch tok {
		case "good":
			return map[string]any{"org": "0B7C9A6E-3F1D-4C2B-9A8E-5D4C3B2A1F00"}, nil
		case "noclaim":
			return map[string]any{"sub": "x"}, nil
		case "number":
			return map[string]any{"org": 12.0}, nil
		case "down":
			return nil, fmt.Errorf("%w: jwks fetch: connection refused", middleware.ErrInternal)
		}
		return nil, errors.New("signature is invalid")
	}
	res := middleware.VerifiedClaim("org", verify)
	for _, tc := range []struct {
		tok    string
		kind   error
		status int
		tenant string
	}{
		{"good", nil, 0, "0b7c9a6e-3f1d-4c2b-9a8e-5d4c3b2a1f00"},
		{"", middleware.ErrMissingTenant, 400, ""},
		{"noclaim", middleware.ErrMissingTenant, 400, ""},
		{"number", middleware.ErrMalformedTenant, 400, ""},
		{"forged", middleware.ErrUnauthenticated, 401, ""},
		{"down", middleware.ErrInternal, 500, ""},
	} {
		o := serve(t, middleware.Config{KeyType: rls.UUID, Resolver: res}, bearerReq(tc.tok))
		o.want(t, tc.kind, tc.status, tc.tenant, rls.UUID)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Bearer abc":   "abc",
		"BEARER abc":   "abc",
		"Bearer   abc": "abc",
		"Bearer ":      "",
		"Bearer":       "",
		"Basic abc":    "",
		"Bearerabc":    "",
		"":             "",
	} {
		r := get("/")
		if in != "" {
			r.Header.Set("Authorization", in)
		}
		if got := middleware.BearerToken(r); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if got := middleware.BearerToken(withHeader("Authorization", "Bearer a", "Bearer b")); got != "" {
		t.Errorf("two headers: got %q", got)
	}
}

// TestJWTMethodsEnforced uses a Keyfunc that hands out a key for whatever
// algorithm the token names, as multi-issuer apps do: only Methods stops an
// HS256 token when RS256 is configured.
func TestJWTMethodsEnforced(t *testing.T) {
	t.Parallel()
	keys(t)
	res := middleware.JWTClaim(middleware.JWTOptions{
		Claim: "tid",
		Keyfunc: func(tok *jwt.Token) (any, error) {
			switch tok.Method.(type) {
			case *jwt.SigningMethodHMAC:
				return hmacKey, nil
			case *jwt.SigningMethodRSA:
				return &rsaKey.PublicKey, nil
			}
			return nil, errors.New("unknown method")
		},
		Methods: []string{"RS256"},
	})
	o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims("1"))))
	o.want(t, nil, 0, "1", rls.BigInt)
	o = serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodHS256, hmacKey, claims("1"))))
	o.want(t, middleware.ErrUnauthenticated, 401, "", 0)
	o = serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: res}, bearerReq(sign(t, jwt.SigningMethodRS512, rsaKey, claims("1"))))
	o.want(t, middleware.ErrUnauthenticated, 401, "", 0)
}
