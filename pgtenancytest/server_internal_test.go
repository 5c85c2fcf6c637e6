package pgtenancytest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// recordTB records how checkServer ends a test.
type recordTB struct {
	testing.TB
	how, msg string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.how, r.msg = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordTB) Skipf(format string, args ...any) {
	r.how, r.msg = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordTB) check(s *server) {
	done := make(chan struct{})
	go func() { defer close(done); checkServer(r, s) }()
	<-done
}

// TestNoServer is not parallel: it sets CI.
func TestNoServer(t *testing.T) {
	noServer := &server{skip: "no PostgreSQL: PGTENANCY_TEST_DATABASE_URL is not set and no binaries"}

	t.Setenv("CI", "")
	r := &recordTB{TB: t}
	r.check(noServer)
	if r.how != "skip" || !strings.Contains(r.msg, "no PostgreSQL") {
		t.Errorf("without CI: %s %q, want a skip with the reason", r.how, r.msg)
	}

	t.Setenv("CI", "true")
	r = &recordTB{TB: t}
	r.check(noServer)
	if r.how != "fatal" || !strings.Contains(r.msg, "apt-get install postgresql") {
		t.Errorf("on CI: %s %q, want a failure saying how to install", r.how, r.msg)
	}

	r = &recordTB{TB: t}
	r.check(&server{adminURL: "postgres://x@127.0.0.1/postgres"})
	if r.how != "" {
		t.Errorf("with a server: %s %q", r.how, r.msg)
	}
}

func TestWithDB(t *testing.T) {
	t.Parallel()
	base := "postgres://admin:s%40cret@db.example:5433/postgres?sslmode=require&application_name=x"
	if got, want := withDB(base, "d1", ""), "postgres://admin:s%40cret@db.example:5433/d1?sslmode=require&application_name=x"; got != want {
		t.Errorf("admin: %s, want %s", got, want)
	}
	if got, want := withDB(base, "d1", AppRole), "postgres://pgtenancy_test_app:pgtenancy_test_password@db.example:5433/d1?sslmode=require&application_name=x"; got != want {
		t.Errorf("app: %s, want %s", got, want)
	}
}
