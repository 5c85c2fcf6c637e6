package middleware_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/rls"
)

// The fuzz targets check one invariant: a request either fails with a 4xx
// status, a fixed body and next not called, or next runs with a context
// tenant that rls.Parse accepts and that equals the canonical form of the
// value the source held. Each also checks the converse where an
// independent oracle exists: a valid value is never rejected.

func keyOf(k uint8) rls.KeyType { return rls.KeyType(k%3) + rls.BigInt }

// acceptable reports whether the middleware must accept raw for key, and
// the tenant it must store.
func acceptable(key rls.KeyType, raw string) (rls.Tenant, bool) {
	if raw == "" || len(raw) > middleware.MaxValueLen {
		return rls.Tenant{}, false
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x20 || raw[i] == 0x7f {
			return rls.Tenant{}, false
		}
	}
	t, err := rls.Parse(key, raw)
	return t, err == nil
}

func checkOutcome(t *testing.T, o outcome, key rls.KeyType, raw string, mustAccept bool) {
	t.Helper()
	if !o.called {
		if o.status < 400 || o.status > 499 || o.err == nil {
			t.Fatalf("failure with status %d err %v", o.status, o.err)
		}
		checkBody(t, o.body, o.status)
		if mustAccept {
			t.Fatalf("valid %s value %q rejected: %v", key, raw, o.err)
		}
		return
	}
	if o.status != http.StatusNoContent || o.err != nil || !o.hasTenant {
		t.Fatalf("next ran with status %d err %v tenant %v", o.status, o.err, o.hasTenant)
	}
	want, ok := acceptable(key, raw)
	if !ok {
		t.Fatalf("invalid %s value %q accepted as %q", key, raw, o.tenant)
	}
	again, err := rls.Parse(key, o.tenant.String())
	if err != nil || again != o.tenant || o.tenant != want || o.tenant.Key() != key {
		t.Fatalf("value %q: context tenant %v %q, want %q (reparse err %v)", raw, o.tenant.Key(), o.tenant, want, err)
	}
}

func FuzzHeader(f *testing.F) {
	for _, s := range []string{"42", "-1", "042", "", " 42", "1;DROP TABLE t", `"42"`, "4\x002", long,
		"0B7C9A6E-3F1D-4C2B-9A8E-5D4C3B2A1F00", "acme", "аcme", "a\u0085b", "\xff"} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
	}
	f.Fuzz(func(t *testing.T, k uint8, value string) {
		key := keyOf(k)
		r := get("/")
		r.Header["X-Tenant-Id"] = []string{value} // raw, bypassing net/http's checks
		o := serve(t, middleware.Config{KeyType: key, Resolver: middleware.Header("")}, r)
		_, ok := acceptable(key, value)
		checkOutcome(t, o, key, value, ok)
	})
}

// subdomainRE is the oracle: one DNS label below example.com, after ASCII
// lower-casing, an optional trailing dot and an optional port.
var subdomainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\.example\.com\.?(:[^:]*)?$`)

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzSubdomain(f *testing.F) {
	for _, s := range []string{"acme.example.com", "ACME.EXAMPLE.COM:8080", "acme.example.com.", "example.com",
		"evilexample.com", "a.b.example.com", "xn--80ak6aa92e.example.com", "\u0430cme.example.com",
		"acme.ex\u0430mple.com", "[::1]:80", "a\x00.example.com", "a'.example.com", "42.example.com"} {
		f.Add(uint8(2), s)
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, k uint8, host string) {
		key := keyOf(k)
		o := serve(t, middleware.Config{KeyType: key, Resolver: middleware.Subdomain("example.com")}, withHost(host))
		m := subdomainRE.FindStringSubmatch(asciiLower(host))
		label := ""
		if m != nil {
			label = m[1]
		}
		_, ok := acceptable(key, label)
		checkOutcome(t, o, key, label, m != nil && ok)
	})
}

// fuzzExp is the expiry of the signed seed tokens: far in the future.
var fuzzExp = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func FuzzJWT(f *testing.F) {
	for _, s := range []string{"42", "acme", "", "4\x002", `a"b`, "\xff", long} {
		f.Add(uint8(0), s, "")
		f.Add(uint8(2), s, "")
	}
	f.Add(uint8(0), "", "eyJhbGciOiJub25lIn0.eyJ0aWQiOiI0MiJ9.")
	res := middleware.JWTClaim(middleware.JWTOptions{
		Claim:   "tid",
		Keyfunc: func(*jwt.Token) (any, error) { return hmacKey, nil },
		Methods: []string{"HS256"},
	})
	f.Fuzz(func(t *testing.T, k uint8, tenant, token string) {
		key := keyOf(k)
		cfg := middleware.Config{KeyType: key, Resolver: res}

		// A genuine token carrying the fuzzed claim. JSON turns invalid
		// UTF-8 into U+FFFD, so the oracle uses the decoded claim.
		tok := sign(t, jwt.SigningMethodHS256, hmacKey, jwt.MapClaims{"tid": tenant, "exp": fuzzExp})
		var decoded struct{ Tid string }
		b, _ := json.Marshal(map[string]string{"tid": tenant})
		if err := json.Unmarshal(b, &decoded); err != nil {
			t.Fatal(err)
		}
		_, ok := acceptable(key, decoded.Tid)
		checkOutcome(t, serve(t, cfg, bearerReq(tok)), key, decoded.Tid, ok)

		// A token the fuzzer wrote: accepted only if it verifies on its own.
		if token == "" {
			return
		}
		r := get("/")
		r.Header["Authorization"] = []string{"Bearer " + token}
		o := serve(t, cfg, r)
		claim := ""
		mustAccept := false
		parsed, err := jwt.Parse(strings.TrimLeft(token, " "), func(*jwt.Token) (any, error) { return hmacKey, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if err == nil && parsed.Valid && len(token) <= 16<<10 {
			claim, _ = parsed.Claims.(jwt.MapClaims)["tid"].(string)
			_, mustAccept = acceptable(key, claim)
		}
		if o.called && (err != nil || !parsed.Valid) {
			t.Fatalf("token %q does not verify (%v) yet was accepted as %q", token, err, o.tenant)
		}
		if o.status == 500 {
			t.Fatalf("token %q: status 500 (%v)", token, o.err)
		}
		checkOutcome(t, o, key, claim, mustAccept)
	})
}
