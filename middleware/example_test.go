package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// show sends one request and prints the status and the body.
func show(h http.Handler, r *http.Request) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	fmt.Printf("%d %s\n", rec.Code, strings.TrimSpace(rec.Body.String()))
}

// isMember stands in for an application's membership check (the package
// doc shows one through an admin pool): the caller, named here by basic
// auth, may act only for its own tenants.
func isMember(r *http.Request, t rls.Tenant) error {
	user, _, ok := r.BasicAuth() // stands in for real authentication
	if !ok {
		return middleware.ErrUnauthenticated
	}
	if !slices.Contains(memberships[user], t.String()) {
		return middleware.ErrForbidden
	}
	return nil
}

var memberships = map[string][]string{"alice": {"42", "0b7c9a6e-3f1d-4c2b-9a8e-5d4c3b2a1f00"}}

// The tenant comes from the X-Tenant-ID header, and Authorize checks that
// the caller is a member of it (here from a map; in an application, a
// query through an admin pool, see the package doc).
func Example() {
	members := map[string][]string{"alice": {"1"}, "bob": {"2"}}
	mw, err := middleware.New(middleware.Config{
		KeyType:  rls.BigInt,
		Resolver: middleware.Header(""),
		Authorize: func(r *http.Request, t rls.Tenant) error {
			user, _, ok := r.BasicAuth() // stands in for real authentication
			if !ok {
				return middleware.ErrUnauthenticated
			}
			for _, m := range members[user] {
				if m == t.String() {
					return nil
				}
			}
			return middleware.ErrForbidden
		},
		ExemptPaths: []string{"/healthz"},
	})
	if err != nil {
		panic(err)
	}
	app := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, ok := rls.FromContext(r.Context()); ok {
			fmt.Fprintln(w, "tenant", t)
			return
		}
		fmt.Fprintln(w, "no tenant")
	}))

	req := func(path, user, tenant string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if user != "" {
			r.SetBasicAuth(user, "secret")
		}
		if tenant != "" {
			r.Header.Set("X-Tenant-ID", tenant)
		}
		return r
	}
	show(app, req("/orders", "alice", "1"))
	show(app, req("/orders", "alice", "2")) // bob's tenant
	show(app, req("/orders", "", "1"))
	show(app, req("/orders", "alice", ""))
	show(app, req("/orders", "alice", "1 OR 1=1"))
	show(app, req("/healthz", "", ""))
	// Output:
	// 200 tenant 1
	// 403 forbidden
	// 401 unauthenticated
	// 400 missing tenant
	// 400 malformed tenant
	// 200 no tenant
}

// With net/http's ServeMux, wrap the handler of a pattern holding the
// wildcard, not the mux. The path is the caller's choice, so Authorize
// checks membership.
func ExamplePathValue() {
	mw, err := middleware.New(middleware.Config{
		KeyType:   rls.UUID,
		Resolver:  middleware.PathValue("tenant"),
		Authorize: isMember,
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /t/{tenant}/orders", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := rls.FromContext(r.Context())
		fmt.Fprintln(w, "orders of", t)
	})))
	asAlice := func(path string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.SetBasicAuth("alice", "secret")
		return r
	}
	show(mux, asAlice("/t/0B7C9A6E-3F1D-4C2B-9A8E-5D4C3B2A1F00/orders"))
	show(mux, asAlice("/t/5e0c1f7a-9d2b-4e8c-b1a3-7f6d5c4b3a29/orders")) // not alice's
	show(mux, asAlice("/t/42/orders"))
	// Output:
	// 200 orders of 0b7c9a6e-3f1d-4c2b-9a8e-5d4c3b2a1f00
	// 403 forbidden
	// 400 malformed tenant
}

// Subdomain takes the one label below the base domain and refuses
// look-alike and multi-level hosts.
func ExampleSubdomain() {
	res := middleware.Subdomain("example.com")
	for _, host := range []string{"Acme.Example.com:8443", "example.com", "evilexample.com", "a.b.example.com"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		v, err := res.Resolve(r)
		fmt.Printf("%-22s %q %v\n", host, v, err)
	}
	// Output:
	// Acme.Example.com:8443  "acme" <nil>
	// example.com            "" middleware: no tenant in this source
	// evilexample.com        "" middleware: no tenant in this source
	// a.b.example.com        "" middleware: malformed tenant: host has more than one label below the base domain
}

// JWTClaim reads the tenant from a claim of a verified token. The signed
// claim is the credential, so AllowAny is enough here. A verified token
// without the claim grants no tenant: 400 (Config.MissingStatus).
func ExampleJWTClaim() {
	secret := []byte("0123456789abcdef0123456789abcdef")
	mw, err := middleware.New(middleware.Config{
		KeyType: rls.BigInt,
		Resolver: middleware.JWTClaim(middleware.JWTOptions{
			Claim:   "tenant_id",
			Keyfunc: func(*jwt.Token) (any, error) { return secret, nil },
			Methods: []string{"HS256"},
			Parser:  []jwt.ParserOption{jwt.WithIssuer("https://id.example.com")},
		}),
		Authorize: middleware.AllowAny,
	})
	if err != nil {
		panic(err)
	}
	app := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := rls.FromContext(r.Context())
		fmt.Fprintln(w, "tenant", t)
	}))
	token := func(key []byte, claims jwt.MapClaims) *http.Request {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+s)
		return r
	}
	exp := time.Now().Add(time.Hour).Unix()
	iss := "https://id.example.com"
	show(app, token(secret, jwt.MapClaims{"tenant_id": "42", "iss": iss, "exp": exp}))
	show(app, token([]byte("a forged key, 32 bytes long....."), jwt.MapClaims{"tenant_id": "42", "iss": iss, "exp": exp}))
	show(app, token(secret, jwt.MapClaims{"tenant_id": "42", "iss": iss, "exp": time.Now().Add(-time.Hour).Unix()}))
	show(app, token(secret, jwt.MapClaims{"tenant_id": 42, "iss": iss, "exp": exp}))
	show(app, token(secret, jwt.MapClaims{"sub": "alice", "iss": iss, "exp": exp}))
	// Output:
	// 200 tenant 42
	// 401 unauthenticated
	// 401 unauthenticated
	// 400 malformed tenant
	// 400 missing tenant
}

// AllowAny states that the resolver is a credential. New refuses it when a
// request could name its own tenant, as through a header that FirstOf
// falls back to when there is no token; Agree with a Required claim is a
// credential, since the header must then match the claim.
func ExampleAllowAny() {
	claim := middleware.JWTClaim(middleware.JWTOptions{
		Claim:   "tenant_id",
		Keyfunc: func(*jwt.Token) (any, error) { return []byte("0123456789abcdef0123456789abcdef"), nil },
		Methods: []string{"HS256"},
	})
	for _, res := range []middleware.Resolver{
		claim,
		middleware.Agree(middleware.Required(claim), middleware.Header("")),
		middleware.FirstOf(claim, middleware.Header("")),
	} {
		_, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: res, Authorize: middleware.AllowAny})
		fmt.Println(errors.Is(err, middleware.ErrConfig), err)
	}
	// Output:
	// false <nil>
	// false <nil>
	// true middleware: invalid config: Authorize is AllowAny but the resolver can yield a tenant the caller chooses (FirstOf member 2: Header("X-Tenant-Id")): set an Authorize that checks the caller
}

// Agree binds a tenant the caller picks (the subdomain) to the one its
// token grants: a token for tenant 7 cannot be used on 8.example.com.
func ExampleAgree() {
	verify := func(ctx context.Context, token string) (map[string]any, error) {
		if token == "token-of-tenant-7" { // stands in for an OIDC verifier
			return map[string]any{"tid": "7"}, nil
		}
		return nil, errors.New("unknown token")
	}
	mw, err := middleware.New(middleware.Config{
		KeyType:   rls.BigInt,
		Resolver:  middleware.Agree(middleware.Required(middleware.VerifiedClaim("tid", verify)), middleware.Subdomain("example.com")),
		Authorize: middleware.AllowAny,
	})
	if err != nil {
		panic(err)
	}
	app := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := rls.FromContext(r.Context())
		fmt.Fprintln(w, "tenant", t)
	}))
	for _, host := range []string{"7.example.com", "8.example.com", "example.com"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		r.Header.Set("Authorization", "Bearer token-of-tenant-7")
		show(app, r)
	}
	// Output:
	// 200 tenant 7
	// 403 conflicting tenants
	// 200 tenant 7
}

// Work that outlives the request: a goroutine keeps the tenant through
// context.WithoutCancel, and a queued job carries tenant.String() that the
// worker parses back.
func Example_background() {
	type job struct{ Tenant, Task string }
	queue := make(chan job, 1)
	var wg sync.WaitGroup

	mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), Authorize: isMember})
	if err != nil {
		panic(err)
	}
	app := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A goroutine that outlives the request: same tenant, no cancellation.
		ctx := context.WithoutCancel(r.Context())
		wg.Add(1)
		go func() {
			defer wg.Done()
			t, _ := rls.FromContext(ctx)
			fmt.Println("goroutine: tenant", t)
		}()
		wg.Wait()

		// A job for another process: carry the canonical string.
		t, _ := rls.FromContext(r.Context())
		queue <- job{Tenant: t.String(), Task: "send-invoices"}
		w.WriteHeader(http.StatusAccepted)
	}))
	r := httptest.NewRequest(http.MethodPost, "/invoices/send", nil)
	r.SetBasicAuth("alice", "secret")
	r.Header.Set("X-Tenant-ID", "42")
	app.ServeHTTP(httptest.NewRecorder(), r)

	// The worker restores the tenant before touching the database.
	j := <-queue
	t, err := rls.Parse(rls.BigInt, j.Tenant)
	if err != nil {
		panic(err) // a corrupt payload: never run it without a tenant
	}
	ctx := rls.WithTenant(context.Background(), t)
	got, _ := rls.Require(ctx)
	fmt.Println("worker:", j.Task, "for tenant", got)
	// Output:
	// goroutine: tenant 42
	// worker: send-invoices for tenant 42
}

// ErrorHandler receives an *Error for logging or a custom body; the cause
// stays on the server.
func ExampleConfig_errorHandler() {
	mw, err := middleware.New(middleware.Config{
		KeyType:   rls.BigInt,
		Resolver:  middleware.Header(""),
		Authorize: isMember,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var e *middleware.Error
			errors.As(err, &e)
			fmt.Println("log:", err, "| invalid tenant:", errors.Is(err, rls.ErrInvalidTenant))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(e.Status)
			fmt.Fprintf(w, `{"error":%q}`+"\n", http.StatusText(e.Status))
		},
	})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Tenant-ID", "42abc")
	show(mw(http.NotFoundHandler()), r)
	// Output:
	// log: middleware: malformed tenant: rls: invalid bigint tenant "42abc": not a decimal integer | invalid tenant: true
	// 400 {"error":"Bad Request"}
}
