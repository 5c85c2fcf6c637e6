package middleware_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// hsResolver reads the "tid" claim of an HS256 token signed with hmacKey.
func hsResolver() middleware.Resolver {
	return middleware.JWTClaim(middleware.JWTOptions{
		Claim:   "tid",
		Keyfunc: func(*jwt.Token) (any, error) { return hmacKey, nil },
		Methods: []string{"HS256"},
	})
}

// verifiedOrg accepts the token "good" (claim org = "42") and "noclaim"
// (verified, without org), and rejects any other.
func verifiedOrg() middleware.Resolver {
	return middleware.VerifiedClaim("org", func(_ context.Context, tok string) (map[string]any, error) {
		switch tok {
		case "good":
			return map[string]any{"sub": "alice", "org": "42"}, nil
		case "noclaim":
			return map[string]any{"sub": "alice"}, nil
		case "nullclaim":
			return map[string]any{"sub": "alice", "org": nil}, nil
		case "emptyclaim":
			return map[string]any{"sub": "alice", "org": ""}, nil
		}
		return nil, errors.New("signature is invalid")
	})
}

// ownResolver is a Resolver of the application's own: not a credential as
// far as the middleware can tell.
type ownResolver struct{}

func (ownResolver) Resolve(*http.Request) (string, error) { return "42", nil }

// TestAllowAnyNeedsCredential: New accepts AllowAny only when every value
// the resolver tree can yield comes from a verified credential.
func TestAllowAnyNeedsCredential(t *testing.T) {
	t.Parallel()
	jwtR, vc := hsResolver(), verifiedOrg()
	h, sub := middleware.Header(""), middleware.Subdomain("example.com")
	req := middleware.Required
	credentials := map[string]middleware.Resolver{
		"JWTClaim":                               jwtR,
		"VerifiedClaim":                          vc,
		"Required(JWTClaim)":                     req(jwtR),
		"FirstOf(JWTClaim, VerifiedClaim)":       middleware.FirstOf(jwtR, vc),
		"Agree(Required(JWTClaim), Header)":      middleware.Agree(req(jwtR), h),
		"Agree(Subdomain, Required(Verified))":   middleware.Agree(sub, req(vc)),
		"Agree(Required(FirstOf(creds)), Hdr)":   middleware.Agree(req(middleware.FirstOf(jwtR, vc)), h),
		"FirstOf(Agree(Required(JWT), Sub), VC)": middleware.FirstOf(middleware.Agree(req(jwtR), sub), vc),
		"Required(Agree(Required(JWT), Header))": req(middleware.Agree(req(jwtR), h)),
	}
	callerChosen := map[string]middleware.Resolver{
		"Header":                            h,
		"Cookie":                            middleware.Cookie("tenant"),
		"PathValue":                         middleware.PathValue("tenant"),
		"PathFunc":                          middleware.PathFunc(func(*http.Request) string { return "42" }),
		"Subdomain":                         sub,
		"Func":                              middleware.Func(func(*http.Request) (string, error) { return "42", nil }),
		"own Resolver type":                 ownResolver{},
		"Required(Header)":                  req(h),
		"FirstOf(JWTClaim, Header)":         middleware.FirstOf(jwtR, h),
		"FirstOf(Header, JWTClaim)":         middleware.FirstOf(h, jwtR),
		"FirstOf(VerifiedClaim, Cookie)":    middleware.FirstOf(vc, middleware.Cookie("tenant")),
		"Agree(JWTClaim, Header)":           middleware.Agree(jwtR, h),
		"Agree(Required(Header), JWTClaim)": middleware.Agree(req(h), jwtR),
		"Agree(Required(FirstOf(JWT, Header)), VC)": middleware.Agree(req(middleware.FirstOf(jwtR, h)), vc),
		"FirstOf(Agree(Required(JWT), Sub), Hdr)":   middleware.FirstOf(middleware.Agree(req(jwtR), sub), h),
		"Agree(Agree(Required(JWT), Header))":       middleware.Agree(middleware.Agree(req(jwtR), h)),
	}
	for name, res := range credentials {
		if _, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: res, Authorize: middleware.AllowAny}); err != nil {
			t.Errorf("%s: New refused AllowAny with a credential: %v", name, err)
		}
	}
	for name, res := range callerChosen {
		mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: res, Authorize: middleware.AllowAny})
		if !errors.Is(err, middleware.ErrConfig) || mw != nil {
			t.Errorf("%s: New with AllowAny: got %v, want ErrConfig and no middleware", name, err)
		}
		// With a real check the same resolver is fine.
		if _, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: res, Authorize: requireUser}); err != nil {
			t.Errorf("%s: New refused it with an Authorize check: %v", name, err)
		}
	}
}

// TestAllowAnyHeaderFallback is the attack the AllowAny check stops: with
// FirstOf(JWTClaim, Header) and AllowAny, a request without a token would
// take its tenant from the header the caller wrote.
func TestAllowAnyHeaderFallback(t *testing.T) {
	t.Parallel()
	_, err := middleware.New(middleware.Config{
		KeyType:   rls.BigInt,
		Resolver:  middleware.FirstOf(hsResolver(), middleware.Header("")),
		Authorize: middleware.AllowAny,
	})
	if !errors.Is(err, middleware.ErrConfig) {
		t.Fatalf("New: got %v, want ErrConfig", err)
	}

	// With an Authorize that checks the caller, the fallback is safe:
	// mallory, with no token, names tenant 43 in the header and is refused.
	r := withHeader("X-Tenant-ID", "43")
	r.Header.Set("X-User", "mallory")
	o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.FirstOf(hsResolver(), middleware.Header(""))}, r)
	o.want(t, middleware.ErrForbidden, 403, "", 0)
}

// TestVerifiedTokenWithoutClaim: a token that verifies but grants no tenant
// is a failure of its own (ErrMissingTenant, Config.MissingStatus), never
// a reason to try the next source; no token at all still falls through.
func TestVerifiedTokenWithoutClaim(t *testing.T) {
	t.Parallel()
	noClaim := claims(nil)
	nullClaim := claims(nil)
	nullClaim["tid"] = nil
	for _, src := range []struct {
		name                                 string
		res                                  middleware.Resolver
		good, noClaim, nullClaim, emptyClaim string
	}{
		{"JWTClaim", hsResolver(), sign(t, jwt.SigningMethodHS256, hmacKey, claims("42")), sign(t, jwt.SigningMethodHS256, hmacKey, noClaim),
			sign(t, jwt.SigningMethodHS256, hmacKey, nullClaim), sign(t, jwt.SigningMethodHS256, hmacKey, claims(""))},
		{"VerifiedClaim", verifiedOrg(), "good", "noclaim", "nullclaim", "emptyclaim"},
	} {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			hdr := func(tok, tenant string) *http.Request {
				r := bearerReq(tok)
				r.Header.Set("X-Tenant-ID", tenant)
				return r
			}
			first := middleware.FirstOf(src.res, middleware.Header(""))
			agree := middleware.Agree(src.res, middleware.Header(""))
			for _, tc := range []struct {
				name    string
				res     middleware.Resolver
				missing int
				req     *http.Request
				kind    error
				status  int
				tenant  string
			}{
				{"first: no claim stops", first, 0, hdr(src.noClaim, "43"), middleware.ErrMissingTenant, 400, ""},
				{"first: null claim stops", first, 0, hdr(src.nullClaim, "43"), middleware.ErrMissingTenant, 400, ""},
				{"first: empty claim stops", first, 0, hdr(src.emptyClaim, "43"), middleware.ErrMissingTenant, 400, ""},
				{"first: MissingStatus applies", first, 401, hdr(src.noClaim, "43"), middleware.ErrMissingTenant, 401, ""},
				{"first: no token falls through", first, 0, hdr("", "43"), nil, 0, "43"},
				{"first: claim wins", first, 0, hdr(src.good, "43"), nil, 0, "42"},
				{"agree: no claim stops", agree, 0, hdr(src.noClaim, "43"), middleware.ErrMissingTenant, 400, ""},
				{"agree: no token, header alone", agree, 0, hdr("", "43"), nil, 0, "43"},
				{"alone: no claim", src.res, 0, bearerReq(src.noClaim), middleware.ErrMissingTenant, 400, ""},
			} {
				o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: tc.res, MissingStatus: tc.missing}, tc.req)
				o.want(t, tc.kind, tc.status, tc.tenant, rls.BigInt)
			}

			// The resolver's own errors: no token is ErrNotFound; a token
			// without the claim is ErrMissingTenant and not ErrNotFound.
			if _, err := src.res.Resolve(bearerReq("")); !errors.Is(err, middleware.ErrNotFound) {
				t.Fatalf("no token: got %v, want ErrNotFound", err)
			}
			for _, tok := range []string{src.noClaim, src.nullClaim, src.emptyClaim} {
				_, err := src.res.Resolve(bearerReq(tok))
				if !errors.Is(err, middleware.ErrMissingTenant) || errors.Is(err, middleware.ErrNotFound) {
					t.Fatalf("token without the claim: got %v, want ErrMissingTenant and not ErrNotFound", err)
				}
			}
		})
	}
}
