package middleware_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// outcome is what one request through the middleware produced.
type outcome struct {
	status    int
	body      string
	header    http.Header
	called    bool       // next ran
	tenant    rls.Tenant // tenant next saw
	hasTenant bool
	err       error // error handed to the error handler
}

// requireUser is the Authorize of [serve] when the config sets none. It
// stands in for an application's check: the caller is named by the X-User
// header, which [get] sets to "alice"; no caller is 401, and "mallory"
// belongs to no tenant (403).
func requireUser(r *http.Request, _ rls.Tenant) error {
	switch r.Header.Get("X-User") {
	case "":
		return middleware.ErrUnauthenticated
	case "mallory":
		return middleware.ErrForbidden
	}
	return nil
}

// serve runs r through New(cfg) in front of a handler that records the
// tenant of its context. A nil cfg.Authorize means [requireUser].
func serve(t *testing.T, cfg middleware.Config, r *http.Request) outcome {
	t.Helper()
	var o outcome
	if cfg.Authorize == nil {
		cfg.Authorize = requireUser
	}
	inner := cfg.ErrorHandler
	if inner == nil {
		inner = middleware.DefaultErrorHandler
	}
	cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if o.err != nil {
			t.Errorf("error handler called twice")
		}
		o.err = err
		inner(w, r, err)
	}
	mw, err := middleware.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.called = true
		o.tenant, o.hasTenant = rls.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	rec := httptest.NewRecorder()
	mw(next).ServeHTTP(rec, r)
	o.status, o.body, o.header = rec.Code, rec.Body.String(), rec.Header()
	return o
}

// want checks an outcome: either success with the canonical tenant, or a
// failure of a kind with its status, next not called and a body without
// detail.
func (o outcome) want(t *testing.T, kind error, status int, tenant string, key rls.KeyType) {
	t.Helper()
	if kind == nil {
		if o.status != http.StatusNoContent || !o.called || o.err != nil {
			t.Fatalf("want success, got status %d called=%v err=%v body=%q", o.status, o.called, o.err, o.body)
		}
		if !o.hasTenant {
			t.Fatalf("next saw no tenant")
		}
		want := rls.MustParse(key, tenant)
		if o.tenant != want || o.tenant.String() != tenant || o.tenant.Key() != key {
			t.Fatalf("next saw tenant %v %q, want %v %q", o.tenant.Key(), o.tenant, key, tenant)
		}
		return
	}
	if o.called {
		t.Fatalf("next was called on a failure (status %d)", o.status)
	}
	if o.status != status {
		t.Fatalf("status %d, want %d (err %v)", o.status, status, o.err)
	}
	if !errors.Is(o.err, kind) {
		t.Fatalf("error %v, want kind %v", o.err, kind)
	}
	var e *middleware.Error
	if !errors.As(o.err, &e) || e.Status != status || e.Kind != kind {
		t.Fatalf("error %#v is not an *Error{Kind: %v, Status: %d}", o.err, kind, status)
	}
	checkBody(t, o.body, status)
}

// publicBodies are the only bodies the default error handler may write.
var publicBodies = map[string]bool{
	"missing tenant\n":        true,
	"malformed tenant\n":      true,
	"unauthenticated\n":       true,
	"forbidden\n":             true,
	"conflicting tenants\n":   true,
	"Internal Server Error\n": true,
}

func checkBody(t *testing.T, body string, status int) {
	t.Helper()
	if !publicBodies[body] {
		t.Fatalf("body %q is not one of the fixed public bodies", body)
	}
	if status >= 500 && body != "Internal Server Error\n" {
		t.Fatalf("status %d with body %q", status, body)
	}
}

// get builds a request from the authenticated caller alice (see [requireUser]).
func get(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("X-User", "alice")
	return r
}

func withHeader(name string, values ...string) *http.Request {
	r := get("/")
	for _, v := range values {
		r.Header.Add(name, v)
	}
	return r
}

func withHost(host string) *http.Request {
	r := get("/")
	r.Host = host
	return r
}

var long = strings.Repeat("a", middleware.MaxValueLen+1)
