// Package pgcluster runs a throwaway PostgreSQL cluster for tests and demos,
// from the server binaries installed on the machine or, without them, from
// a pinned build that it downloads once.
//
// [Start] runs initdb into a fresh temporary directory and starts postgres
// listening only on 127.0.0.1 on a free port, tuned for speed over
// durability (fsync, synchronous_commit and full_page_writes off). The
// superuser is "postgres" and every connection is trusted. [Cluster.Stop]
// shuts the server down and removes the directory.
//
// When the calling process runs as root (initdb and postgres refuse to), the
// server runs as the "postgres" OS user instead.
//
// On Linux, the postmaster is started with a parent-death signal, so it
// shuts down even when the Go process dies without calling [Cluster.Stop];
// callers should still call Stop, which also removes the temporary
// directory. Other systems have no such signal: there a process killed
// before Stop leaves its server running.
//
// # Server binaries
//
// [Start] takes initdb and postgres from, in order:
//
//  1. [Options.BinDir], else the directory in $PGTENANCY_PG_BIN, as it is.
//  2. The machine: initdb on PATH, `pg_config --bindir`, then the
//     directories where packages put each major version
//     (/usr/lib/postgresql/<major>/bin on Debian and Ubuntu,
//     /usr/pgsql-<major>/bin from the PGDG RPMs, Homebrew's
//     postgresql@<major>), highest version first.
//  3. The pinned build of PostgreSQL (see package pgbinary), downloaded
//     over HTTPS on first use, checked against its pinned SHA-512 and
//     cached per user. Major [pgbinary.DefaultMajor] unless asked otherwise.
//
// [Options.Version], else $PGTENANCY_PG_VERSION (15, 16, 17 or 18), asks
// for a major version: step 2 then accepts only binaries of that version
// (`postgres --version` tells), step 3 fetches that version, and step 1
// fails on another one. $PGTENANCY_PG_SOURCE=local skips step 3 (never
// download); $PGTENANCY_PG_SOURCE=pinned skips step 2 (always the pinned
// build). When no binaries can be found or fetched (offline, say), Start's
// error wraps [ErrNoServer].
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoServer is returned (wrapped) by [Start] when there are no PostgreSQL
// server binaries (initdb and postgres) to run: none on the machine (or
// none of the version asked for), and the pinned build cannot be fetched
// (offline, or no build for this platform). The wrapping error says where
// Start looked and why the download failed.
var ErrNoServer = errors.New("pgcluster: no PostgreSQL server binaries")

// Options configure [Start]. The zero value is ready to use.
type Options struct {
	// BinDir is the directory holding initdb and postgres. Empty means
	// $PGTENANCY_PG_BIN, else a search of the machine, else the pinned
	// build: see the package doc.
	BinDir string

	// Version is the major version of PostgreSQL wanted, such as 17. Zero
	// means $PGTENANCY_PG_VERSION, else any version found on the machine,
	// else the pinned build of [pgbinary.DefaultMajor].
	Version int

	// Settings are extra server settings passed as `-c name=value`; they win
	// over the defaults (for example "max_connections": "500").
	Settings map[string]string

	// OSUser is the OS user that runs initdb and postgres when the process
	// runs as root. Empty means "postgres". Ignored when not root.
	OSUser string

	// TempDir is the parent of the cluster's temporary directory. Empty means
	// os.TempDir(). When running as root, OSUser must be able to reach it.
	TempDir string

	// Logf, when not nil, is told about slow steps: downloading the pinned
	// build, or waiting for another process that downloads it.
	Logf func(format string, args ...any)
}

// defaultSettings are the server settings applied before Options.Settings.
var defaultSettings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"max_connections":    "300",
	"listen_addresses":   "127.0.0.1",
	"log_min_messages":   "warning",
	"shared_buffers":     "64MB",
}

// Cluster is a running throwaway PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	binDir   string
	dir      string // temporary directory: socket and data/
	dataDir  string
	logPath  string
	cred     *syscall.Credential
	settings map[string]string

	mu      sync.Mutex
	port    int
	proc    *postmaster // nil when not running
	stopped bool
}

// postmaster is one running postgres process.
type postmaster struct {
	*child
	log *os.File
}

// child is a process started by startChild.
type child struct {
	pid  int
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

// startChild starts cmd as cred (nil: as this process's user) in a process
// group of its own, so that it gets deathSig when this process dies (on
// Linux), and waits for it in the background.
func startChild(cmd *exec.Cmd, cred *syscall.Credential, deathSig syscall.Signal) (*child, error) {
	cmd.SysProcAttr = sysProcAttr(cred, deathSig)
	c := &child{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the starting OS thread exits: keep this
		// goroutine on its own thread for the life of the process. The
		// thread exits with the goroutine (still locked) once the child
		// has exited: harmless then.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.pid = cmd.Process.Pid
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// Start creates and starts a new cluster. It takes a second or two, mostly
// initdb. Call [Cluster.Stop] when done.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	binDir, err := newFinder(opts.Logf).find(ctx, opts)
	if err != nil {
		return nil, err
	}
	cred, err := credential(opts.OSUser)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := reachable(binDir, osUserName(opts.OSUser), cred); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(opts.TempDir, "pgcluster-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{
		binDir:   binDir,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		cred:     cred,
		settings: make(map[string]string),
	}
	c.logPath = filepath.Join(c.dataDir, "postgres.log")
	for k, v := range defaultSettings {
		c.settings[k] = v
	}
	for k, v := range opts.Settings {
		c.settings[k] = v
	}
	if err := c.initdb(ctx); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	// A port picked by listening on :0 can be taken by someone else before
	// postgres binds it: retry with a new one.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		c.port = port
		err = c.start(ctx)
		if err == nil {
			return c, nil
		}
		if attempt < 4 && errors.Is(err, errBind) && ctx.Err() == nil {
			continue
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
}

// URL returns a connection URL for the superuser "postgres" to database db
// over TCP, for example postgres://postgres@127.0.0.1:54321/db?sslmode=disable.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port(), db)
}

// Port returns the TCP port the server listens on (127.0.0.1 only).
func (c *Cluster) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.port
}

// Dir returns the cluster's temporary directory. It holds the unix socket and
// the data directory, data/, whose postgres.log is the server log.
func (c *Cluster) Dir() string { return c.dir }

// BinDir returns the directory of the server binaries in use.
func (c *Cluster) BinDir() string { return c.binDir }

// LogPath returns the path of the server log file.
func (c *Cluster) LogPath() string { return c.logPath }

// Restart stops the server with a fast shutdown (open connections are
// terminated) and starts it again on the same port and data directory.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: Restart after Stop")
	}
	if c.proc != nil {
		if err := c.shutdown(ctx, syscall.SIGINT); err != nil {
			return err
		}
	}
	return c.startLocked(ctx)
}

// Stop shuts the server down at once (an immediate shutdown, like
// `pg_ctl stop -m immediate`), waits for it to exit and removes the temporary
// directory. Calling it again does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var err error
	if c.proc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.shutdown(ctx, syscall.SIGQUIT)
		cancel()
	}
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("pgcluster: %w", rmErr)
	}
	return err
}

// shutdown signals the postmaster and waits for it to exit, killing it if
// ctx ends first. c.mu must be held.
func (c *Cluster) shutdown(ctx context.Context, sig syscall.Signal) error {
	p := c.proc
	c.proc = nil
	_ = syscall.Kill(p.pid, sig)
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
	}
	return p.log.Close()
}

func (c *Cluster) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked(ctx)
}

// errBind marks a start failure caused by the port being taken.
var errBind = errors.New("pgcluster: port in use")

// startLocked starts the postmaster and waits until it accepts connections.
// c.mu must be held.
func (c *Cluster) startLocked(ctx context.Context) error {
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	logStart, _ := logf.Seek(0, 2)
	if c.cred != nil {
		_ = logf.Chown(int(c.cred.Uid), int(c.cred.Gid))
	}
	args := []string{"-D", c.dataDir, "-p", strconv.Itoa(c.port), "-k", c.dir}
	keys := make([]string, 0, len(c.settings))
	for k := range c.settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+c.settings[k])
	}
	cmd := exec.Command(filepath.Join(c.binDir, "postgres"), args...)
	cmd.Dir = c.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = cleanEnv()
	// The postmaster gets SIGQUIT (immediate shutdown) when this process dies.
	proc, err := startChild(cmd, c.cred, syscall.SIGQUIT)
	if err != nil {
		_ = logf.Close()
		return fmt.Errorf("pgcluster: start postgres: %w", err)
	}
	p := &postmaster{child: proc, log: logf}
	if err := c.waitReady(ctx, p); err != nil {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(p.pid, syscall.SIGQUIT)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				<-p.done
			}
		}
		_ = logf.Close()
		tail := c.logTail(logStart)
		if strings.Contains(tail, "could not bind") || strings.Contains(tail, "could not create any TCP/IP sockets") {
			err = fmt.Errorf("%w: %w", errBind, err)
		}
		return fmt.Errorf("%w\nserver log (%s):\n%s", err, c.logPath, tail)
	}
	c.proc = p
	return nil
}

// waitReady polls postmaster.pid until the server reports it is ready.
func (c *Cluster) waitReady(ctx context.Context, p *postmaster) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		// Line 8 of postmaster.pid is the status; "ready" once it accepts
		// connections (what pg_ctl -w waits for).
		if b, err := os.ReadFile(pidFile); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && lines[0] == strconv.Itoa(p.pid) && strings.TrimSpace(lines[7]) == "ready" {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgcluster: postgres exited during start: %v", p.err)
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: waiting for postgres to start: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// logTail returns the last lines of the server log written after offset.
func (c *Cluster) logTail(offset int64) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if offset > 0 && offset <= int64(len(b)) {
		b = b[offset:]
	}
	return tail(b, 30)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (c *Cluster) initdb(ctx context.Context) error {
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "initdb"),
		"-D", c.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	cmd.Dir = c.dir
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w\n%s", err, tail(out.Bytes(), 30))
	}
	return nil
}

// cleanEnv is the environment without libpq variables that could redirect or
// alter initdb and postgres.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C")
}

// osUserName is the OS user that runs the server when the process runs as
// root: name, or "postgres" when empty.
func osUserName(name string) string {
	if name == "" {
		return "postgres"
	}
	return name
}

// credential returns the credential to run the server binaries with: nil
// unless the process runs as root.
func credential(osUser string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	osUser = osUserName(osUser)
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, and PostgreSQL refuses to run as root; "+
			"the OS user %q to run it as is not available (create it, e.g. `useradd --system postgres`, "+
			"which `apt-get install postgresql` does): %w", osUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgcluster: OS user %q: %w", osUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port, nil
}

// ServerVersion returns the server's major version, read from the data
// directory's PG_VERSION file (for example "15").
func (c *Cluster) ServerVersion() (string, error) {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "PG_VERSION"))
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
