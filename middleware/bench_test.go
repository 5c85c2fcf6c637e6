package middleware_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// The benchmarks measure the per-request overhead of the middleware against
// BenchmarkBare: one *http.Request built once and reused, a no-op
// ResponseWriter, a final handler that reads the tenant, and requireUser
// as Authorize (one header lookup).

type noopWriter struct{ h http.Header }

func (w *noopWriter) Header() http.Header         { return w.h }
func (w *noopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *noopWriter) WriteHeader(int)             {}

var sink rls.Tenant

var final = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	sink, _ = rls.FromContext(r.Context())
})

func benchRequest() *http.Request {
	r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/orders"}, Header: http.Header{"X-User": {"alice"}}, Host: "example.com"}
	return r.WithContext(context.Background())
}

func runBench(b *testing.B, h http.Handler, r *http.Request, want rls.Tenant) {
	w := &noopWriter{h: http.Header{}}
	sink = rls.Tenant{}
	h.ServeHTTP(w, r) // warm up
	if sink != want {
		b.Fatalf("handler saw %q, want %q", sink, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if sink != want {
		b.Fatalf("handler saw %q, want %q", sink, want)
	}
}

func benchMiddleware(b *testing.B, key rls.KeyType, res middleware.Resolver) func(http.Handler) http.Handler {
	mw, err := middleware.New(middleware.Config{KeyType: key, Resolver: res, Authorize: requireUser})
	if err != nil {
		b.Fatal(err)
	}
	return mw
}

func BenchmarkBare(b *testing.B) {
	runBench(b, final, benchRequest(), rls.Tenant{})
}

// BenchmarkFloor is the least any context-setting middleware costs: one
// context.WithValue and one r.WithContext, with the value boxed beforehand.
func BenchmarkFloor(b *testing.B) {
	type key struct{}
	var boxed any = rls.Int64(1234567)
	floor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		final.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, boxed)))
	})
	runBench(b, floor, benchRequest(), rls.Tenant{})
}

func BenchmarkHeader(b *testing.B) {
	r := benchRequest()
	r.Header.Set("X-Tenant-ID", "1234567")
	runBench(b, benchMiddleware(b, rls.BigInt, middleware.Header(""))(final), r, rls.Int64(1234567))
}

func BenchmarkSubdomain(b *testing.B) {
	r := benchRequest()
	r.Host = "acme.example.com:8443"
	runBench(b, benchMiddleware(b, rls.Text, middleware.Subdomain("example.com"))(final), r, rls.MustParse(rls.Text, "acme"))
}

func BenchmarkJWT(b *testing.B) {
	keys(b)
	exp := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		method  jwt.SigningMethod
		signKey any
		verify  any
	}{
		{jwt.SigningMethodHS256, hmacKey, hmacKey},
		{jwt.SigningMethodEdDSA, edKey, edPub},
		{jwt.SigningMethodRS256, rsaKey, &rsaKey.PublicKey},
	} {
		b.Run(tc.method.Alg(), func(b *testing.B) {
			res := middleware.JWTClaim(middleware.JWTOptions{
				Claim:   "tid",
				Keyfunc: func(*jwt.Token) (any, error) { return tc.verify, nil },
				Methods: []string{tc.method.Alg()},
			})
			r := benchRequest()
			r.Header.Set("Authorization", "Bearer "+sign(b, tc.method, tc.signKey, jwt.MapClaims{"tid": "1234567", "exp": exp}))
			runBench(b, benchMiddleware(b, rls.BigInt, res)(final), r, rls.Int64(1234567))
		})
	}
}
