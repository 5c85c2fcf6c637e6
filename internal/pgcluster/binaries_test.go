package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pgtenancy/pgtenancy/internal/pgbinary"
)

// fakeBin creates dir with initdb and a postgres that reports version.
func fakeBin(t *testing.T, dir, version string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, script := range map[string]string{
		"initdb":   "#!/bin/sh\nexit 0\n",
		"postgres": fmt.Sprintf("#!/bin/sh\necho 'postgres (PostgreSQL) %s (Test %s-1)'\n", version, version),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fakeMachine is a machine with PostgreSQL 15.3 and 17.1 installed under
// root/lib/<major>/bin, 16.2 on PATH, and a recording fetch.
type fakeMachine struct {
	root   string
	env    map[string]string
	mu     sync.Mutex
	majors []int // fetched
	err    error // fetch's error
}

func newFakeMachine(t *testing.T) *fakeMachine {
	root := t.TempDir()
	fakeBin(t, filepath.Join(root, "lib", "15", "bin"), "15.3")
	fakeBin(t, filepath.Join(root, "lib", "17", "bin"), "17.1")
	fakeBin(t, filepath.Join(root, "path16"), "16.2")
	return &fakeMachine{root: root, env: map[string]string{}}
}

func (m *fakeMachine) finder() *finder {
	return &finder{
		getenv:     func(k string) string { return m.env[k] },
		searchDirs: []string{filepath.Join(m.root, "lib", "*", "bin")},
		fetch: func(_ context.Context, major int) (string, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.majors = append(m.majors, major)
			if m.err != nil {
				return "", m.err
			}
			return fmt.Sprintf("/pinned/%d/bin", major), nil
		},
	}
}

func (m *fakeMachine) dir(major string) string { return filepath.Join(m.root, "lib", major, "bin") }

func TestFindLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		version int
		want    string // "lib/N", "path16" or "/pinned/N/bin"
		fetched []int
	}{
		{name: "highest installed", want: "lib/17"},
		{name: "PATH first", env: map[string]string{"PATH": "path16"}, want: "path16"},
		{name: "version from env", env: map[string]string{EnvVersion: "15"}, want: "lib/15"},
		{name: "Options.Version over env", env: map[string]string{EnvVersion: "15"}, version: 17, want: "lib/17"},
		{name: "version on PATH", env: map[string]string{"PATH": "path16", EnvVersion: "16"}, want: "path16"},
		{name: "PATH of another version", env: map[string]string{"PATH": "path16", EnvVersion: "15"}, want: "lib/15"},
		{name: "missing version fetched", env: map[string]string{EnvVersion: "18"}, want: "/pinned/18/bin", fetched: []int{18}},
		{name: "pinned source", env: map[string]string{EnvSource: "pinned"}, want: fmt.Sprintf("/pinned/%d/bin", pgbinary.DefaultMajor), fetched: []int{pgbinary.DefaultMajor}},
		{name: "pinned source and version", env: map[string]string{EnvSource: "pinned", EnvVersion: "15"}, want: "/pinned/15/bin", fetched: []int{15}},
		{name: "local source", env: map[string]string{EnvSource: "local", EnvVersion: "17"}, want: "lib/17"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newFakeMachine(t)
			for k, v := range tc.env {
				if k == "PATH" {
					v = filepath.Join(m.root, v)
				}
				m.env[k] = v
			}
			got, err := m.finder().find(ctx, Options{Version: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if !strings.HasPrefix(want, "/") {
				want = filepath.Join(m.root, want)
				if strings.HasPrefix(tc.want, "lib/") {
					want = filepath.Join(want, "bin")
				}
			}
			if got != want {
				t.Errorf("find = %s, want %s", got, want)
			}
			if fmt.Sprint(m.majors) != fmt.Sprint(tc.fetched) {
				t.Errorf("fetched %v, want %v", m.majors, tc.fetched)
			}
		})
	}
}

func TestFindExplicit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newFakeMachine(t)
	f := m.finder()
	if got, err := f.find(ctx, Options{BinDir: m.dir("15")}); err != nil || got != m.dir("15") {
		t.Errorf("BinDir: %s, %v", got, err)
	}
	m.env[EnvBin] = m.dir("17")
	if got, err := f.find(ctx, Options{}); err != nil || got != m.dir("17") {
		t.Errorf("%s: %s, %v", EnvBin, got, err)
	}
	if got, err := f.find(ctx, Options{BinDir: m.dir("15")}); err != nil || got != m.dir("15") {
		t.Errorf("BinDir over %s: %s, %v", EnvBin, got, err)
	}
	if got, err := f.find(ctx, Options{Version: 17}); err != nil || got != m.dir("17") {
		t.Errorf("%s of the version asked for: %s, %v", EnvBin, got, err)
	}
	// Another version than asked for is an error, not a silent mismatch.
	_, err := f.find(ctx, Options{Version: 15})
	if err == nil || errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "PostgreSQL 17") {
		t.Errorf("%s of another version: %v, want an error naming it", EnvBin, err)
	}
	// A directory without the server.
	if _, err := f.find(ctx, Options{BinDir: m.root}); !errors.Is(err, ErrNoServer) {
		t.Errorf("BinDir without binaries: %v, want ErrNoServer", err)
	}
	if len(m.majors) != 0 {
		t.Errorf("an explicit directory fetched %v", m.majors)
	}
}

func TestFindErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, env := range map[string]map[string]string{
		"bad version": {EnvVersion: "17.2"},
		"old version": {EnvVersion: "9"},
		"bad source":  {EnvSource: "download"},
	} {
		m := newFakeMachine(t)
		m.env = env
		if _, err := m.finder().find(ctx, Options{}); err == nil || errors.Is(err, ErrNoServer) {
			t.Errorf("%s: %v, want an error about the setting", name, err)
		}
	}

	// Local only, and the version is not installed: no download.
	m := newFakeMachine(t)
	m.env[EnvSource], m.env[EnvVersion] = "local", "18"
	_, err := m.finder().find(ctx, Options{})
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "PostgreSQL 18") {
		t.Errorf("local only: %v, want ErrNoServer naming the version", err)
	}
	if len(m.majors) != 0 {
		t.Errorf("local only fetched %v", m.majors)
	}

	// Offline: nothing local, the download fails. ErrNoServer (tests skip
	// off CI), and the cause is kept.
	m = newFakeMachine(t)
	m.env[EnvVersion] = "18"
	m.err = &pgbinary.DownloadError{URL: "https://registry.example/x.tgz", Err: errors.New("dial tcp: lookup registry.example: no such host")}
	_, err = m.finder().find(ctx, Options{})
	if !errors.Is(err, ErrNoServer) || !errors.Is(err, pgbinary.ErrDownload) || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("offline: %v, want ErrNoServer wrapping the download error", err)
	}

	// A tarball that is not the pinned one is no excuse to skip.
	m = newFakeMachine(t)
	m.env[EnvSource] = "pinned"
	m.err = &pgbinary.IntegrityError{URL: "u", Want: "sha512-a", Got: "sha512-b"}
	_, err = m.finder().find(ctx, Options{})
	if errors.Is(err, ErrNoServer) || !errors.Is(err, pgbinary.ErrIntegrity) {
		t.Errorf("integrity: %v, want ErrIntegrity and not ErrNoServer", err)
	}
}

func TestReachable(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parent is private.
	base, err := os.MkdirTemp("", "reachable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "private", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	private := filepath.Dir(dir)
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	other := &syscall.Credential{Uid: 54321, Gid: 54321}
	err = reachable(dir, "someone", other)
	if err == nil || !strings.Contains(err.Error(), private) || !strings.Contains(err.Error(), `"someone"`) {
		t.Errorf("private directory: %v, want an error naming it and the user", err)
	}
	owner := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}
	if err := reachable(dir, "me", owner); err != nil {
		t.Errorf("the owner: %v", err)
	}
	if err := os.Chmod(private, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := reachable(dir, "someone", other); err != nil {
		t.Errorf("searchable directory: %v", err)
	}
}
