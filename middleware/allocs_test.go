//go:build !race

package middleware_test

import (
	"testing"

	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestHeaderAllocs pins the allocation budget of the header path: the
// context value and the request copy, nothing else, with an Authorize that
// reads a header as a real check would. (Counted, not timed.)
func TestHeaderAllocs(t *testing.T) {
	mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), Authorize: requireUser})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(final)
	r := benchRequest()
	r.Header.Set("X-Tenant-ID", "1234567")
	w := &noopWriter{}
	bare := testing.AllocsPerRun(100, func() { final.ServeHTTP(w, r) })
	got := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
	if sink != rls.Int64(1234567) {
		t.Fatalf("handler saw %q", sink)
	}
	if got-bare > 2 {
		t.Fatalf("header path allocates %v per request beyond the bare handler's %v, want at most 2", got-bare, bare)
	}
}
