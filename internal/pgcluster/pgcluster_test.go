package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/ci"
)

func startOrSkip(t *testing.T) *Cluster {
	t.Helper()
	ctx := context.Background()
	c, err := Start(ctx, Options{Logf: t.Logf})
	if errors.Is(err, ErrNoServer) {
		if ci.On() {
			t.Fatalf("%v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestStartSettingsAndStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	begin := time.Now()
	c := startOrSkip(t)
	t.Logf("Start took %v (bindir %s)", time.Since(begin), c.BinDir())

	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port())
	if got := c.URL("postgres"); got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
	conn := connect(t, c.URL("postgres"))
	for name, want := range map[string]string{
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"max_connections":         "300",
		"listen_addresses":        "127.0.0.1",
		"server_encoding":         "UTF8",
		"unix_socket_directories": c.Dir(),
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		t.Fatal(err)
	}
	if !super {
		t.Error("the URL's role is not a superuser")
	}
	v, err := c.ServerVersion()
	if err != nil || v == "" {
		t.Errorf("ServerVersion = %q, %v", v, err)
	}
	// The matrix (make test-matrix) runs on the version it asks for.
	if want := os.Getenv(EnvVersion); want != "" && v != want {
		t.Errorf("%s=%s, but the server is PostgreSQL %s (binaries in %s)", EnvVersion, want, v, c.BinDir())
	}
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(num/10000) != v {
		t.Errorf("server_version_num %d, data directory of PostgreSQL %s", num, v)
	}
	if _, err := os.Stat(c.LogPath()); err != nil {
		t.Errorf("log file: %v", err)
	}

	pid := postmasterPID(t, c)
	_ = conn.Close(ctx)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if alive(pid) {
		t.Errorf("postmaster %d still running after Stop", pid)
	}
	if _, err := os.Stat(c.Dir()); !os.IsNotExist(err) {
		t.Errorf("dir %s not removed: %v", c.Dir(), err)
	}
	if _, err := pgx.Connect(ctx, c.URL("postgres")); err == nil {
		t.Error("connected after Stop")
	}
	if err := c.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := startOrSkip(t)
	conn := connect(t, c.URL("postgres"))
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	port, pid := c.Port(), postmasterPID(t, c)

	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port changed from %d to %d", port, c.Port())
	}
	if newPID := postmasterPID(t, c); newPID == pid {
		t.Errorf("postmaster pid unchanged (%d): not restarted", pid)
	}
	if alive(pid) {
		t.Errorf("old postmaster %d still running", pid)
	}
	// The old connection was terminated by the fast shutdown.
	if err := conn.Ping(ctx); err == nil {
		t.Error("old connection still works after Restart")
	}
	var v int
	if err := connect(t, c.URL("postgres")).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 42 {
		t.Errorf("v = %d, want 42", v)
	}
}

func TestNoServer(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoServer) {
		t.Fatalf("err = %v, want ErrNoServer", err)
	}
}

// serverOrSkip skips the test when there is no server to run, and fails
// it on CI.
func serverOrSkip(t *testing.T) {
	t.Helper()
	_, err := newFinder(t.Logf).find(context.Background(), Options{})
	if errors.Is(err, ErrNoServer) && !ci.On() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestBadSettingShowsLog(t *testing.T) {
	t.Parallel()
	serverOrSkip(t)
	_, err := Start(context.Background(), Options{Settings: map[string]string{"no_such_setting": "1"}})
	if err == nil {
		t.Fatal("Start with an unknown setting succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "no_such_setting") {
		t.Errorf("error lacks the server log line naming the setting:\n%v", err)
	}
}

// TestNoOrphanAfterExit runs a child test process that starts a cluster and
// exits without calling Stop: the postmaster must go away with it.
func TestNoOrphanAfterExit(t *testing.T) {
	if os.Getenv("PGCLUSTER_CHILD") == "1" {
		c, err := Start(context.Background(), Options{})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		b, _ := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
		fmt.Printf("PID %s DIR %s\n", strings.SplitN(string(b), "\n", 2)[0], c.Dir())
		os.Exit(0)
	}
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal exists on Linux only")
	}
	serverOrSkip(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOrphanAfterExit$")
	cmd.Env = append(os.Environ(), "PGCLUSTER_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var pid int
	var dir string
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "PID %d DIR %s", &pid, &dir); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	defer os.RemoveAll(dir)
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postmaster %d of the exited child still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func postmasterPID(t *testing.T, c *Cluster) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesized command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
