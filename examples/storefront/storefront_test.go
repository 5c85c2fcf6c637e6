package main

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTour runs the scripted tour of make demo, verify steps included.
// The steps check their own expectations and fail the tour on a surprise.
func TestTour(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtenancytest.ServerURL(t)) // the storefront reads DATABASE_URL
	bin := filepath.Join(t.TempDir(), "pgtenancy")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/pgtenancy").CombinedOutput()
	require.NoError(t, err, "%s", out)

	var buf syncBuffer
	err = run(context.Background(), true, "", bin, &buf)
	t.Log(buf.String())
	require.NoError(t, err)
	for _, want := range []string{
		"ok: store A sees exactly its 3 products",
		"ok: store B sees exactly its 2 products, none of A's",
		`"sqlstate":"23503"`,
		"< 403 forbidden",
		"< 400 missing tenant",
		"ok: pgtenancy verify reports no errors (exit 0)",
		"error   rls_not_forced",
		"ok: pgtenancy verify reports the holes (exit 1)",
	} {
		assert.Contains(t, buf.String(), want)
	}
	assert.NotContains(t, buf.String(), "FAILED")

	// The database is gone, also from a server that outlives the
	// storefront (DATABASE_URL).
	m := regexp.MustCompile(`created database (storefront_[0-9a-f]+)`).FindStringSubmatch(buf.String())
	require.NotNil(t, m, "the tour does not name its database")
	admin, err := pgx.Connect(t.Context(), pgtenancytest.ServerURL(t))
	require.NoError(t, err)
	defer admin.Close(context.Background())
	var left bool
	require.NoError(t, admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", m[1]).Scan(&left))
	assert.False(t, left, "database %s left behind", m[1])
}

// TestServe runs the server as make run-example does, asks it for products,
// and stops it.
func TestServe(t *testing.T) {
	t.Setenv("DATABASE_URL", pgtenancytest.ServerURL(t)) // the storefront reads DATABASE_URL
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, false, "127.0.0.1:0", "", &buf) }()

	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(buf.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 30*time.Second, 20*time.Millisecond, "server did not start: %s", buf.String())

	req, err := http.NewRequest("GET", base+"/products", nil)
	require.NoError(t, err)
	req.Header.Set("X-Tenant-ID", "3")
	req.Header.Set("Authorization", "Bearer carol-token")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `[{"id":301,"name":"C coffee","price_cents":5000,"currency":"EUR"}]`, strings.TrimSpace(body.String()))
	assert.Contains(t, buf.String(), "curl -s "+base+"/products")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
}

// TestCommittedMigrationIsGenerated guards against drift: the committed
// 002_tenant_isolation.sql is what pgtenancy generate plans for the schema
// of 001, discovered.
func TestCommittedMigrationIsGenerated(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	ctx := context.Background()
	owner := db.OwnerConn(t)
	schema, err := fs.ReadFile(migrationFiles, "db/migrations/001_schema.sql")
	require.NoError(t, err)
	up, _, _ := strings.Cut(string(schema), "---- create above / drop below ----")
	_, err = owner.Exec(ctx, up)
	require.NoError(t, err)

	model, err := catalog.Discover(ctx, owner, catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores", Global: []string{"currencies", "users"}})
	require.NoError(t, err)
	model.AppRole = appRole
	gen, err := catalog.Plan(ctx, owner, model)
	require.NoError(t, err)
	committed, err := os.ReadFile("db/migrations/002_tenant_isolation.sql")
	require.NoError(t, err)
	cUp, cDown, ok := strings.Cut(string(committed), "\n---- create above / drop below ----\n")
	require.True(t, ok)
	assert.Equal(t, strings.TrimSpace(gen.Up), strings.TrimSpace(cUp))
	assert.Equal(t, strings.TrimSpace(gen.Down), strings.TrimSpace(cDown))
}
