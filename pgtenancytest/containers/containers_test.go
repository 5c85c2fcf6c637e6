package containers

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { Main(m) }

func TestEngineAvailableIsFast(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	err := EngineAvailable(t.Context())
	if err != nil && !errors.Is(err, ErrNoEngine) {
		t.Fatalf("error %v does not wrap ErrNoEngine", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("EngineAvailable took %v", d)
	}
	t.Logf("engine: %v (%v)", err, time.Since(begin))
}

func TestStart(t *testing.T) {
	t.Parallel()
	if err := EngineAvailable(t.Context()); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	url, stop, err := Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var version, maxConns string
	if err := conn.QueryRow(t.Context(), "SELECT current_setting('server_version_num'), current_setting('max_connections')").Scan(&version, &maxConns); err != nil {
		t.Fatal(err)
	}
	if version[:2] != "15" || maxConns != "300" {
		t.Errorf("server_version_num %s, max_connections %s; want 15xxxx, 300", version, maxConns)
	}
}

// TestHarnessUsesContainer checks that Main pointed pgtenancytest at the container.
func TestHarnessUsesContainer(t *testing.T) {
	t.Parallel()
	if startedURL == "" {
		t.Skip("Main started no container (no Docker engine, or PGTENANCY_TEST_DATABASE_URL was set)")
	}
	if os.Getenv("PGTENANCY_TEST_DATABASE_URL") != startedURL {
		t.Fatalf("PGTENANCY_TEST_DATABASE_URL = %q, want the container's %q", os.Getenv("PGTENANCY_TEST_DATABASE_URL"), startedURL)
	}
	if pgtenancytest.Local(t) != nil {
		t.Fatal("pgtenancytest started a local cluster although the container runs")
	}
	db := pgtenancytest.NewDB(t, nil)
	var user string
	if err := db.AppConn(t).QueryRow(t.Context(), "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != pgtenancytest.AppRole {
		t.Errorf("connected as %s, want %s", user, pgtenancytest.AppRole)
	}
}
