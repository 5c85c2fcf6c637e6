package middleware_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestHeader(t *testing.T) {
	t.Parallel()
	const uuidUpper = "0B7C9A6E-3F1D-4C2B-9A8E-5D4C3B2A1F00"
	tests := []struct {
		name   string
		key    rls.KeyType
		hdr    string // header name given to Header
		send   string // header name sent
		values []string
		kind   error
		status int
		tenant string
	}{
		{"bigint", rls.BigInt, "", "X-Tenant-ID", []string{"42"}, nil, 0, "42"},
		{"bigint large", rls.BigInt, "", "X-Tenant-ID", []string{"9223372036854775807"}, nil, 0, "9223372036854775807"},
		{"negative", rls.BigInt, "", "X-Tenant-ID", []string{"-7"}, nil, 0, "-7"},
		{"name is case-insensitive", rls.BigInt, "x-tenant-id", "X-TENANT-ID", []string{"42"}, nil, 0, "42"},
		{"custom header", rls.BigInt, "X-Org", "X-Org", []string{"5"}, nil, 0, "5"},
		{"integer", rls.Integer, "", "X-Tenant-ID", []string{"2147483647"}, nil, 0, "2147483647"},
		{"integer overflow", rls.Integer, "", "X-Tenant-ID", []string{"2147483648"}, middleware.ErrMalformedTenant, 400, ""},
		{"smallint", rls.SmallInt, "", "X-Tenant-ID", []string{"-32768"}, nil, 0, "-32768"},
		{"smallint overflow", rls.SmallInt, "", "X-Tenant-ID", []string{"32768"}, middleware.ErrMalformedTenant, 400, ""},
		{"uuid canonical", rls.UUID, "", "X-Tenant-ID", []string{uuidUpper}, nil, 0, strings.ToLower(uuidUpper)},
		{"text with quote and semicolon", rls.Text, "", "X-Tenant-ID", []string{`a'b";c`}, nil, 0, `a'b";c`},
		{"absent", rls.BigInt, "", "X-Other", []string{"42"}, middleware.ErrMissingTenant, 400, ""},
		{"empty", rls.BigInt, "", "X-Tenant-ID", []string{""}, middleware.ErrMissingTenant, 400, ""},
		{"twice", rls.BigInt, "", "X-Tenant-ID", []string{"1", "2"}, middleware.ErrMalformedTenant, 400, ""},
		{"leading zero", rls.BigInt, "", "X-Tenant-ID", []string{"042"}, middleware.ErrMalformedTenant, 400, ""},
		{"not a number", rls.BigInt, "", "X-Tenant-ID", []string{"abc"}, middleware.ErrMalformedTenant, 400, ""},
		{"sql", rls.BigInt, "", "X-Tenant-ID", []string{"1; DROP TABLE t"}, middleware.ErrMalformedTenant, 400, ""},
		{"overflow", rls.BigInt, "", "X-Tenant-ID", []string{"9223372036854775808"}, middleware.ErrMalformedTenant, 400, ""},
		{"space", rls.BigInt, "", "X-Tenant-ID", []string{" 42"}, middleware.ErrMalformedTenant, 400, ""},
		{"bad uuid", rls.UUID, "", "X-Tenant-ID", []string{"not-a-uuid"}, middleware.ErrMalformedTenant, 400, ""},
		{"oversized text", rls.Text, "", "X-Tenant-ID", []string{long}, middleware.ErrMalformedTenant, 400, ""},
		{"NUL", rls.Text, "", "X-Tenant-ID", []string{"a\x00b"}, middleware.ErrMalformedTenant, 400, ""},
		{"newline", rls.Text, "", "X-Tenant-ID", []string{"a\nb"}, middleware.ErrMalformedTenant, 400, ""},
		{"DEL", rls.Text, "", "X-Tenant-ID", []string{"a\x7fb"}, middleware.ErrMalformedTenant, 400, ""},
		{"C1 control", rls.Text, "", "X-Tenant-ID", []string{"a\u0085b"}, middleware.ErrMalformedTenant, 400, ""},
		{"invalid UTF-8", rls.Text, "", "X-Tenant-ID", []string{"a\xffb"}, middleware.ErrMalformedTenant, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := serve(t, middleware.Config{KeyType: tc.key, Resolver: middleware.Header(tc.hdr)}, withHeader(tc.send, tc.values...))
			o.want(t, tc.kind, tc.status, tc.tenant, tc.key)
		})
	}
}

func TestMalformedWrapsRlsError(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"abc", long, "4\x002"} {
		o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header("")}, withHeader("X-Tenant-ID", v))
		var inv *rls.InvalidTenantError
		if !errors.Is(o.err, rls.ErrInvalidTenant) || !errors.As(o.err, &inv) || inv.Key != rls.BigInt {
			t.Fatalf("%q: error %v does not wrap an *rls.InvalidTenantError for bigint", v, o.err)
		}
		if strings.Contains(o.body, v) {
			t.Fatalf("body %q echoes the value", o.body)
		}
	}
}

func TestMissingStatus(t *testing.T) {
	t.Parallel()
	o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), MissingStatus: 401}, get("/"))
	o.want(t, middleware.ErrMissingTenant, 401, "", 0)
}

func TestSubdomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		key    rls.KeyType
		host   string
		kind   error
		status int
		tenant string
	}{
		{"label", rls.Text, "acme.example.com", nil, 0, "acme"},
		{"port stripped", rls.Text, "acme.example.com:8443", nil, 0, "acme"},
		{"case folded", rls.Text, "ACME.Example.COM", nil, 0, "acme"},
		{"trailing dot", rls.Text, "acme.example.com.", nil, 0, "acme"},
		{"hyphen and digits", rls.Text, "a-1.example.com", nil, 0, "a-1"},
		{"punycode label", rls.Text, "xn--80ak6aa92e.example.com", nil, 0, "xn--80ak6aa92e"},
		{"bigint label", rls.BigInt, "42.example.com:80", nil, 0, "42"},
		{"base itself", rls.Text, "example.com", middleware.ErrMissingTenant, 400, ""},
		{"look-alike", rls.Text, "evilexample.com", middleware.ErrMissingTenant, 400, ""},
		{"under look-alike", rls.Text, "acme.evilexample.com", middleware.ErrMissingTenant, 400, ""},
		{"base as label", rls.Text, "example.com.evil.com", middleware.ErrMissingTenant, 400, ""},
		{"other domain", rls.Text, "acme.example.org", middleware.ErrMissingTenant, 400, ""},
		{"unicode base look-alike", rls.Text, "acme.ex\u0430mple.com", middleware.ErrMissingTenant, 400, ""},
		{"kelvin sign", rls.Text, "acme.example.co\u212a", middleware.ErrMissingTenant, 400, ""},
		{"ipv4", rls.Text, "127.0.0.1:8080", middleware.ErrMissingTenant, 400, ""},
		{"ipv6", rls.Text, "[::1]:8080", middleware.ErrMissingTenant, 400, ""},
		{"empty host", rls.Text, "", middleware.ErrMissingTenant, 400, ""},
		{"empty label", rls.Text, ".example.com", middleware.ErrMissingTenant, 400, ""},
		{"two labels", rls.Text, "a.b.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"empty inner label", rls.Text, "a..example.com", middleware.ErrMalformedTenant, 400, ""},
		{"unicode label", rls.Text, "\u0430cme.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"underscore", rls.Text, "a_b.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"leading hyphen", rls.Text, "-a.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"quote", rls.Text, "a'.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"NUL", rls.Text, "a\x00.example.com", middleware.ErrMalformedTenant, 400, ""},
		{"label too long", rls.Text, strings.Repeat("a", 64) + ".example.com", middleware.ErrMalformedTenant, 400, ""},
		{"label not a bigint", rls.BigInt, "acme.example.com", middleware.ErrMalformedTenant, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := serve(t, middleware.Config{KeyType: tc.key, Resolver: middleware.Subdomain("Example.com.")}, withHost(tc.host))
			o.want(t, tc.kind, tc.status, tc.tenant, tc.key)
		})
	}
}

func TestServeMuxPathValue(t *testing.T) {
	t.Parallel()
	onlyTenant42 := func(r *http.Request, tn rls.Tenant) error {
		if tn != rls.Int64(42) {
			return middleware.ErrForbidden
		}
		return nil
	}
	mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: middleware.PathValue("tenant"), Authorize: onlyTenant42})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /t/{tenant}/items", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn, err := rls.Require(r.Context())
		if err != nil {
			t.Errorf("no tenant: %v", err)
		}
		fmt.Fprint(w, tn)
	})))
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/t/42/items", 200, "42"},
		{"/t/43/items", 403, "forbidden\n"},
		{"/t/abc/items", 400, "malformed tenant\n"},
		{"/t/042/items", 400, "malformed tenant\n"},
		{"/t/%00/items", 400, "malformed tenant\n"},
		{"/t/1%3B2/items", 400, "malformed tenant\n"},
		{"/healthz", 200, "ok"},
	} {
		resp, err := srv.Client().Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != tc.status || body != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}

	// Wrapping the whole mux runs before routing: no path value yet.
	o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: middleware.PathValue("tenant")}, get("/t/42/items"))
	o.want(t, middleware.ErrMissingTenant, 400, "", 0)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 512)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return sb.String()
}

// chiURLParam stands in for chi.URLParam, which reads chi's route context.
type chiCtxKey struct{}

func chiURLParam(r *http.Request, key string) string {
	m, _ := r.Context().Value(chiCtxKey{}).(map[string]string)
	return m[key]
}

func TestPathFuncCookieFunc(t *testing.T) {
	t.Parallel()
	chiReq := func(v string) *http.Request {
		r := get("/")
		return r.WithContext(context.WithValue(r.Context(), chiCtxKey{}, map[string]string{"tenant": v}))
	}
	cookieReq := func(vs ...string) *http.Request {
		r := get("/")
		for _, v := range vs {
			r.AddCookie(&http.Cookie{Name: "tenant", Value: v})
		}
		return r
	}
	chi := middleware.PathFunc(func(r *http.Request) string { return chiURLParam(r, "tenant") })
	boom := errors.New("db password is hunter2")
	tests := []struct {
		name   string
		res    middleware.Resolver
		req    *http.Request
		kind   error
		status int
		tenant string
	}{
		{"chi param", chi, chiReq("7"), nil, 0, "7"},
		{"chi param empty", chi, chiReq(""), middleware.ErrMissingTenant, 400, ""},
		{"chi param bad", chi, chiReq("x"), middleware.ErrMalformedTenant, 400, ""},
		{"cookie", middleware.Cookie("tenant"), cookieReq("9"), nil, 0, "9"},
		{"cookie absent", middleware.Cookie("tenant"), get("/"), middleware.ErrMissingTenant, 400, ""},
		{"cookie twice", middleware.Cookie("tenant"), cookieReq("9", "10"), middleware.ErrMalformedTenant, 400, ""},
		{"cookie bad", middleware.Cookie("tenant"), cookieReq("9x"), middleware.ErrMalformedTenant, 400, ""},
		{"func", middleware.Func(func(*http.Request) (string, error) { return "11", nil }), get("/"), nil, 0, "11"},
		{"func not found", middleware.Func(func(*http.Request) (string, error) { return "", middleware.ErrNotFound }), get("/"), middleware.ErrMissingTenant, 400, ""},
		{"func empty", middleware.Func(func(*http.Request) (string, error) { return "", nil }), get("/"), middleware.ErrMissingTenant, 400, ""},
		{"func failure", middleware.Func(func(*http.Request) (string, error) { return "", boom }), get("/"), middleware.ErrInternal, 500, ""},
		{"func failure with a value", middleware.Func(func(*http.Request) (string, error) { return "12", boom }), get("/"), middleware.ErrInternal, 500, ""},
		{"func forbidden", middleware.Func(func(*http.Request) (string, error) { return "", middleware.ErrForbidden }), get("/"), middleware.ErrForbidden, 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := serve(t, middleware.Config{KeyType: rls.BigInt, Resolver: tc.res}, tc.req)
			o.want(t, tc.kind, tc.status, tc.tenant, rls.BigInt)
			if tc.status == 500 && !errors.Is(o.err, boom) {
				t.Fatalf("error %v lost its cause", o.err)
			}
		})
	}
}

func TestFirstOfAgreeRequired(t *testing.T) {
	t.Parallel()
	const u = "0b7c9a6e-3f1d-4c2b-9a8e-5d4c3b2a1f00"
	req := func(host string, hdr ...string) *http.Request {
		r := withHeader("X-Tenant-ID", hdr...)
		r.Host = host
		return r
	}
	h, s := middleware.Header(""), middleware.Subdomain("example.com")
	tests := []struct {
		name   string
		key    rls.KeyType
		res    middleware.Resolver
		req    *http.Request
		kind   error
		status int
		tenant string
	}{
		{"first: header wins", rls.BigInt, middleware.FirstOf(h, s), req("2.example.com", "1"), nil, 0, "1"},
		{"first: falls through", rls.BigInt, middleware.FirstOf(h, s), req("2.example.com"), nil, 0, "2"},
		{"first: none", rls.BigInt, middleware.FirstOf(h, s), req("example.com"), middleware.ErrMissingTenant, 400, ""},
		{"first: error stops", rls.BigInt, middleware.FirstOf(s, h), req("a.b.example.com", "1"), middleware.ErrMalformedTenant, 400, ""},
		{"first: bad value does not fall through", rls.BigInt, middleware.FirstOf(h, s), req("2.example.com", "x"), middleware.ErrMalformedTenant, 400, ""},
		{"agree: both", rls.BigInt, middleware.Agree(h, s), req("2.example.com", "2"), nil, 0, "2"},
		{"agree: one", rls.BigInt, middleware.Agree(h, s), req("example.com", "2"), nil, 0, "2"},
		{"agree: none", rls.BigInt, middleware.Agree(h, s), req("example.com"), middleware.ErrMissingTenant, 400, ""},
		{"agree: conflict", rls.BigInt, middleware.Agree(h, s), req("3.example.com", "2"), middleware.ErrConflict, 403, ""},
		{"agree: uuid case", rls.UUID, middleware.Agree(h, s), req(u+".example.com", strings.ToUpper(u)), nil, 0, u},
		{"agree: malformed", rls.BigInt, middleware.Agree(h, s), req("3.example.com", "x"), middleware.ErrMalformedTenant, 400, ""},
		{"agree: error", rls.BigInt, middleware.Agree(h, s), req("a.b.example.com", "1"), middleware.ErrMalformedTenant, 400, ""},
		{"required: missing", rls.BigInt, middleware.Agree(middleware.Required(h), s), req("2.example.com"), middleware.ErrMissingTenant, 400, ""},
		{"required: stops FirstOf", rls.BigInt, middleware.FirstOf(middleware.Required(h), s), req("2.example.com"), middleware.ErrMissingTenant, 400, ""},
		{"required: present", rls.BigInt, middleware.Agree(middleware.Required(h), s), req("example.com", "5"), nil, 0, "5"},
		{"nested", rls.BigInt, middleware.FirstOf(middleware.Agree(h, s), middleware.Cookie("t")), req("4.example.com", "4"), nil, 0, "4"},
		{"nested conflict", rls.BigInt, middleware.FirstOf(middleware.Agree(h, s), middleware.Cookie("t")), req("4.example.com", "5"), middleware.ErrConflict, 403, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := serve(t, middleware.Config{KeyType: tc.key, Resolver: tc.res}, tc.req)
			o.want(t, tc.kind, tc.status, tc.tenant, tc.key)
		})
	}
}

func TestAgreeOutsideNewComparesBytes(t *testing.T) {
	t.Parallel()
	r := withHeader("X-Tenant-ID", "ABC")
	r.Host = "abc.example.com"
	_, err := middleware.Agree(middleware.Header(""), middleware.Subdomain("example.com")).Resolve(r)
	if !errors.Is(err, middleware.ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	members := map[string]map[string]bool{"alice": {"1": true}, "bob": {"2": true}}
	authorize := func(r *http.Request, tn rls.Tenant) error {
		switch user := r.Header.Get("X-User"); {
		case user == "":
			return middleware.ErrUnauthenticated
		case user == "broken":
			return fmt.Errorf("%w: membership lookup: connection refused", middleware.ErrInternal)
		case user == "plain":
			return errors.New("not a member")
		case !members[user][tn.String()]:
			return middleware.ErrForbidden
		}
		return nil
	}
	tests := []struct {
		user, tenant string
		kind         error
		status       int
	}{
		{"alice", "1", nil, 0},
		{"bob", "2", nil, 0},
		{"alice", "2", middleware.ErrForbidden, 403},
		{"bob", "1", middleware.ErrForbidden, 403},
		{"plain", "1", middleware.ErrForbidden, 403},
		{"", "1", middleware.ErrUnauthenticated, 401},
		{"broken", "1", middleware.ErrInternal, 500},
	}
	mwCfg := middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), Authorize: authorize}
	for _, tc := range tests {
		t.Run(tc.user+"->"+tc.tenant, func(t *testing.T) {
			t.Parallel()
			r := withHeader("X-Tenant-ID", tc.tenant)
			r.Header.Del("X-User")
			if tc.user != "" {
				r.Header.Set("X-User", tc.user)
			}
			o := serve(t, mwCfg, r)
			o.want(t, tc.kind, tc.status, tc.tenant, rls.BigInt)
		})
	}
}

// TestAuthorizeRunsEveryRequest checks that the tenant cache never skips
// Authorize: the same value is allowed once and denied next.
func TestAuthorizeRunsEveryRequest(t *testing.T) {
	t.Parallel()
	calls := 0
	var got []rls.Tenant
	mw, err := middleware.New(middleware.Config{
		KeyType:  rls.BigInt,
		Resolver: middleware.Header(""),
		Authorize: func(r *http.Request, tn rls.Tenant) error {
			calls++
			got = append(got, tn)
			if calls > 2 {
				return middleware.ErrForbidden
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	nexts := 0
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nexts++
		if tn, _ := rls.FromContext(r.Context()); tn != rls.Int64(12345) {
			t.Errorf("tenant %v", tn)
		}
	}))
	codes := []int{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, withHeader("X-Tenant-ID", "12345"))
		codes = append(codes, rec.Code)
	}
	if calls != 3 || nexts != 2 || fmt.Sprint(codes) != "[200 200 403]" {
		t.Fatalf("calls=%d nexts=%d codes=%v", calls, nexts, codes)
	}
	for _, tn := range got {
		if tn != rls.Int64(12345) {
			t.Fatalf("Authorize saw %v", tn)
		}
	}
}

// TestManyTenants runs more distinct tenants than the cache holds, twice,
// and checks each request sees its own tenant.
func TestManyTenants(t *testing.T) {
	t.Parallel()
	mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), Authorize: requireUser})
	if err != nil {
		t.Fatal(err)
	}
	var seen rls.Tenant
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = rls.FromContext(r.Context()) }))
	for round := range 2 {
		for i := int64(1); i <= 3000; i++ {
			h.ServeHTTP(httptest.NewRecorder(), withHeader("X-Tenant-ID", fmt.Sprint(i*7919)))
			if seen != rls.Int64(i*7919) {
				t.Fatalf("round %d: request for %d saw %v", round, i*7919, seen)
			}
		}
	}
}

func TestExempt(t *testing.T) {
	t.Parallel()
	cfg := middleware.Config{
		KeyType:        rls.BigInt,
		Resolver:       middleware.Header(""),
		ExemptPaths:    []string{"/healthz"},
		ExemptPrefixes: []string{"/static/", "/metrics"},
		Exempt:         func(r *http.Request) bool { return r.Method == http.MethodOptions },
	}
	for _, tc := range []struct {
		method, target string
		exempt         bool
	}{
		{"GET", "/healthz", true},
		{"GET", "/healthz/", false},
		{"GET", "/healthz/x", false},
		{"GET", "/static/app.js", true},
		{"GET", "/static", true},
		{"GET", "/staticx", false},
		{"GET", "/metrics", true},
		{"GET", "/metrics/go", true},
		{"GET", "/metricsx", false},
		{"GET", "/static/../api/orders", false},
		{"GET", "/static/%2e%2e/api/orders", false},
		{"GET", "/static//x", false},
		{"GET", "/static/./x", false},
		{"GET", "/static/..", false},
		{"GET", "/api", false},
		{"OPTIONS", "/api", true},
	} {
		o := serve(t, cfg, httptest.NewRequest(tc.method, tc.target, nil))
		if tc.exempt {
			if !o.called || o.hasTenant || o.err != nil {
				t.Errorf("%s %s: want exempt, got called=%v tenant=%v err=%v", tc.method, tc.target, o.called, o.hasTenant, o.err)
			}
		} else if o.called || !errors.Is(o.err, middleware.ErrMissingTenant) {
			t.Errorf("%s %s: want missing tenant, got called=%v err=%v", tc.method, tc.target, o.called, o.err)
		}
	}
}

func TestCustomErrorHandler(t *testing.T) {
	t.Parallel()
	var got error
	cfg := middleware.Config{
		KeyType:  rls.UUID,
		Resolver: middleware.Header(""),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			got = err
			var e *middleware.Error
			if errors.As(err, &e) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(e.Status)
				fmt.Fprintf(w, `{"error":%q}`, http.StatusText(e.Status))
			}
		},
	}
	o := serve(t, cfg, withHeader("X-Tenant-ID", "nope"))
	if o.status != 400 || o.body != `{"error":"Bad Request"}` || !errors.Is(got, middleware.ErrMalformedTenant) || o.called {
		t.Fatalf("status %d body %q err %v called %v", o.status, o.body, got, o.called)
	}
}

func TestDefaultErrorHandlerHeaders(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	middleware.DefaultErrorHandler(rec, get("/"), &middleware.Error{Kind: middleware.ErrUnauthenticated, Status: 401, Err: errors.New("signature is invalid")})
	if rec.Code != 401 || rec.Body.String() != "unauthenticated\n" || rec.Header().Get("WWW-Authenticate") != `Bearer error="invalid_token"` ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
	rec = httptest.NewRecorder()
	middleware.DefaultErrorHandler(rec, get("/"), errors.New("not an *Error"))
	if rec.Code != 500 || rec.Body.String() != "Internal Server Error\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := middleware.Header("")
	ok := middleware.Config{KeyType: rls.BigInt, Resolver: h, Authorize: requireUser}
	with := func(f func(*middleware.Config)) middleware.Config { c := ok; f(&c); return c }
	for name, cfg := range map[string]middleware.Config{
		"no key":              with(func(c *middleware.Config) { c.KeyType = 0 }),
		"bad key":             with(func(c *middleware.Config) { c.KeyType = 9 }),
		"no resolver":         with(func(c *middleware.Config) { c.Resolver = nil }),
		"no authorize":        with(func(c *middleware.Config) { c.Authorize = nil }),
		"missing 200":         with(func(c *middleware.Config) { c.MissingStatus = 200 }),
		"missing 500":         with(func(c *middleware.Config) { c.MissingStatus = 500 }),
		"empty FirstOf":       with(func(c *middleware.Config) { c.Resolver = middleware.FirstOf() }),
		"empty Agree":         with(func(c *middleware.Config) { c.Resolver = middleware.Agree() }),
		"nil in FirstOf":      with(func(c *middleware.Config) { c.Resolver = middleware.FirstOf(h, nil) }),
		"empty cookie":        with(func(c *middleware.Config) { c.Resolver = middleware.Cookie("") }),
		"empty path value":    with(func(c *middleware.Config) { c.Resolver = middleware.PathValue("") }),
		"nil path func":       with(func(c *middleware.Config) { c.Resolver = middleware.PathFunc(nil) }),
		"empty base":          with(func(c *middleware.Config) { c.Resolver = middleware.Subdomain("") }),
		"base with port":      with(func(c *middleware.Config) { c.Resolver = middleware.Subdomain("example.com:80") }),
		"unicode base":        with(func(c *middleware.Config) { c.Resolver = middleware.Subdomain("exämple.com") }),
		"bad base in Agree":   with(func(c *middleware.Config) { c.Resolver = middleware.Agree(h, middleware.Subdomain("a..b")) }),
		"bad base in Require": with(func(c *middleware.Config) { c.Resolver = middleware.Required(middleware.Subdomain(".")) }),
		"verified no claim": with(func(c *middleware.Config) {
			c.Resolver = middleware.VerifiedClaim("", func(context.Context, string) (map[string]any, error) { return nil, nil })
		}),
		"verified nil func": with(func(c *middleware.Config) { c.Resolver = middleware.VerifiedClaim("tid", nil) }),
		"exempt no slash":   with(func(c *middleware.Config) { c.ExemptPaths = []string{"healthz"} }),
		"prefix no slash":   with(func(c *middleware.Config) { c.ExemptPrefixes = []string{"static"} }),
		"allow any header":  with(func(c *middleware.Config) { c.Authorize = middleware.AllowAny }),
		"bad jwt options": with(func(c *middleware.Config) {
			c.Resolver = middleware.JWTClaim(middleware.JWTOptions{Claim: "tid", Methods: []string{"HS256"}})
		}),
	} {
		mw, err := middleware.New(cfg)
		if err == nil {
			t.Errorf("%s: New accepted a bad config", name)
			continue
		}
		if !errors.Is(err, middleware.ErrConfig) {
			t.Errorf("%s: error %v does not match ErrConfig", name, err)
		}
		if mw != nil {
			t.Errorf("%s: New returned a middleware with its error", name)
		}
		for _, kind := range []error{middleware.ErrMissingTenant, middleware.ErrMalformedTenant, middleware.ErrUnauthenticated,
			middleware.ErrForbidden, middleware.ErrConflict, middleware.ErrInternal, middleware.ErrNotFound} {
			if errors.Is(err, kind) {
				t.Errorf("%s: config error %v matches the request failure %v", name, err, kind)
			}
		}
	}
	if _, err := middleware.New(ok); err != nil {
		t.Fatalf("good config: %v", err)
	}
}

// TestOutsideHTTP checks the two documented ways to keep the tenant past the
// request: context.WithoutCancel for a goroutine, and a job payload
// carrying tenant.String().
func TestOutsideHTTP(t *testing.T) {
	t.Parallel()
	type job struct{ Tenant string }
	type result struct {
		tenant    rls.Tenant
		ok        bool
		ctxErr    error
		parentErr error
	}
	done := make(chan result, 1)
	queue := make(chan job, 1)
	mw, err := middleware.New(middleware.Config{KeyType: rls.UUID, Resolver: middleware.Header(""), Authorize: requireUser})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithoutCancel(r.Context())
		parent := r.Context()
		go func() {
			<-parent.Done() // the request is over
			tn, ok := rls.FromContext(ctx)
			done <- result{tn, ok, ctx.Err(), parent.Err()}
		}()
		tn, _ := rls.FromContext(r.Context())
		queue <- job{Tenant: tn.String()}
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("X-Tenant-ID", "0B7C9A6E-3F1D-4C2B-9A8E-5D4C3B2A1F00")
	req.Header.Set("X-User", "alice")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := rls.MustParse(rls.UUID, "0b7c9a6e-3f1d-4c2b-9a8e-5d4c3b2a1f00")

	res := <-done
	if !res.ok || res.tenant != want || res.ctxErr != nil || res.parentErr == nil {
		t.Fatalf("goroutine: %+v", res)
	}

	j := <-queue // the worker side
	tn, err := rls.Parse(rls.UUID, j.Tenant)
	if err != nil {
		t.Fatal(err)
	}
	ctx := rls.WithTenant(context.Background(), tn)
	if got, err := rls.Require(ctx); err != nil || got != want {
		t.Fatalf("worker: %v %v", got, err)
	}
}
