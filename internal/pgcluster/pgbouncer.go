package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoPgBouncer is returned (wrapped) by [StartPgBouncer] when no pgbouncer
// binary can be found on the machine.
var ErrNoPgBouncer = errors.New("pgcluster: no pgbouncer binary found (install e.g. `apt-get install pgbouncer`)")

// PgBouncerOptions configure [StartPgBouncer]. The zero value is ready to
// use: transaction pooling, four server connections per user and database,
// user postgres trusted.
type PgBouncerOptions struct {
	// Bin is the pgbouncer binary. Empty means search PATH, then
	// /usr/sbin/pgbouncer (where Debian's package puts it).
	Bin string

	// PoolMode is "session", "transaction" (the default) or "statement".
	PoolMode string

	// PoolSize is default_pool_size, the number of server connections per
	// user and database pair; 4 when zero. Keep it small so that server
	// connections are really shared between clients.
	PoolSize int

	// MaxClientConn is max_client_conn; 1000 when zero.
	MaxClientConn int

	// Users maps the user names that may connect to their passwords;
	// pgbouncer knows no others. When every password is empty, pgbouncer
	// trusts its clients and logs in to the server without a password,
	// which suits a [Cluster] (it trusts every connection). Otherwise
	// clients log in with md5 and pgbouncer logs in to the server with the
	// same password. Empty means {"postgres": ""}.
	Users map[string]string

	// Settings are extra [pgbouncer] settings; they win over the defaults.
	Settings map[string]string

	// OSUser is the OS user that runs pgbouncer when the process runs as
	// root (pgbouncer refuses to). Empty means "postgres". Ignored when not
	// root.
	OSUser string

	// TempDir is the parent of pgbouncer's temporary directory (config, log).
	// Empty means os.TempDir().
	TempDir string
}

// PgBouncer is a running pgbouncer in front of a PostgreSQL server, listening
// on 127.0.0.1 on a free port. Every database name is forwarded to the
// database of the same name upstream.
type PgBouncer struct {
	dir     string
	logPath string
	port    int
	*child  // the pgbouncer process, once started

	stopOnce sync.Once
	stopErr  error
}

// StartPgBouncer starts pgbouncer in front of the server at host:port (for
// a [Cluster]: "127.0.0.1" and [Cluster.Port]). Call [PgBouncer.Stop] when
// done. The pgbouncer service that a distribution package may run is not
// involved: this one has its own configuration and port.
func StartPgBouncer(ctx context.Context, host string, port int, opts PgBouncerOptions) (*PgBouncer, error) {
	bin, err := findPgBouncer(opts.Bin)
	if err != nil {
		return nil, err
	}
	cred, err := credential(opts.OSUser)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(opts.TempDir, "pgbouncer-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	b := &PgBouncer{dir: dir, logPath: filepath.Join(dir, "pgbouncer.log")}
	if err := b.writeUserlist(opts); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Chown(path, int(cred.Uid), int(cred.Gid))
		})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("pgcluster: %w", err)
		}
	}
	// A port picked by listening on :0 can be taken before pgbouncer binds
	// it: retry with a new one.
	for attempt := 0; ; attempt++ {
		if b.port, err = freePort(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		if err = b.writeIni(host, port, opts); err == nil {
			err = b.start(ctx, bin, cred)
		}
		if err == nil {
			return b, nil
		}
		if attempt < 4 && errors.Is(err, errBind) && ctx.Err() == nil {
			continue
		}
		_ = os.RemoveAll(dir)
		return nil, err
	}
}

// Port returns the TCP port pgbouncer listens on (127.0.0.1 only).
func (b *PgBouncer) Port() int { return b.port }

// LogPath returns the path of pgbouncer's log file.
func (b *PgBouncer) LogPath() string { return b.logPath }

// URL returns serverURL (a postgres:// URL, such as one of the test
// database URLs) with its host and port replaced by pgbouncer's, keeping
// user, password, database and parameters.
func (b *PgBouncer) URL(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("pgcluster: %w", err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	return u.String(), nil
}

// Stop shuts pgbouncer down at once, waits for it to exit and removes its
// temporary directory. Calling it again does nothing.
func (b *PgBouncer) Stop() error {
	b.stopOnce.Do(func() {
		_ = syscall.Kill(b.pid, syscall.SIGTERM) // immediate shutdown
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(b.pid, syscall.SIGKILL)
			<-b.done
		}
		if err := os.RemoveAll(b.dir); err != nil {
			b.stopErr = fmt.Errorf("pgcluster: %w", err)
		}
	})
	return b.stopErr
}

func (b *PgBouncer) iniPath() string { return filepath.Join(b.dir, "pgbouncer.ini") }

// userlist returns opts.Users or its default.
func userlist(opts PgBouncerOptions) map[string]string {
	if len(opts.Users) == 0 {
		return map[string]string{"postgres": ""}
	}
	return opts.Users
}

// writeUserlist writes the auth_file.
func (b *PgBouncer) writeUserlist(opts PgBouncerOptions) error {
	list := userlist(opts)
	users := make([]string, 0, len(list))
	for u := range list {
		users = append(users, u)
	}
	sort.Strings(users)
	var sb strings.Builder
	for _, u := range users {
		fmt.Fprintf(&sb, "%s %s\n", quoteUserlist(u), quoteUserlist(list[u]))
	}
	if err := os.WriteFile(filepath.Join(b.dir, "userlist.txt"), []byte(sb.String()), 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// quoteUserlist quotes s for pgbouncer's auth_file.
func quoteUserlist(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (b *PgBouncer) writeIni(host string, port int, opts PgBouncerOptions) error {
	settings := map[string]string{
		"listen_addr":               "127.0.0.1",
		"listen_port":               strconv.Itoa(b.port),
		"unix_socket_dir":           "",
		"auth_type":                 "trust",
		"auth_file":                 filepath.Join(b.dir, "userlist.txt"),
		"pool_mode":                 "transaction",
		"default_pool_size":         "4",
		"min_pool_size":             "0",
		"reserve_pool_size":         "0",
		"max_client_conn":           "1000",
		"max_db_connections":        "0",
		"logfile":                   b.logPath,
		"log_connections":           "0",
		"log_disconnections":        "0",
		"ignore_startup_parameters": "extra_float_digits",
		"server_lifetime":           "3600",
		"server_idle_timeout":       "600",
	}
	if opts.PoolMode != "" {
		settings["pool_mode"] = opts.PoolMode
	}
	if opts.PoolSize > 0 {
		settings["default_pool_size"] = strconv.Itoa(opts.PoolSize)
	}
	if opts.MaxClientConn > 0 {
		settings["max_client_conn"] = strconv.Itoa(opts.MaxClientConn)
	}
	for _, pw := range userlist(opts) {
		if pw != "" {
			settings["auth_type"] = "md5"
		}
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	fmt.Fprintf(&sb, "[databases]\n* = host=%s port=%d\n\n[pgbouncer]\n", host, port)
	for _, k := range keys {
		fmt.Fprintf(&sb, "%s = %s\n", k, settings[k])
	}
	if err := os.WriteFile(b.iniPath(), []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// start runs pgbouncer and waits until it accepts connections.
func (b *PgBouncer) start(ctx context.Context, bin string, cred *syscall.Credential) error {
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	defer logf.Close()
	if cred != nil {
		_ = logf.Chown(int(cred.Uid), int(cred.Gid))
	}
	logStart, _ := logf.Seek(0, 2)
	cmd := exec.Command(bin, b.iniPath())
	cmd.Dir = b.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = cleanEnv()
	proc, err := startChild(cmd, cred, syscall.SIGTERM)
	if err != nil {
		return fmt.Errorf("pgcluster: start pgbouncer: %w", err)
	}
	b.child = proc
	if err := b.waitReady(ctx); err != nil {
		select {
		case <-b.done:
		default:
			_ = syscall.Kill(b.pid, syscall.SIGKILL)
			<-b.done
		}
		logTail := "(no log)"
		if data, rerr := os.ReadFile(b.logPath); rerr == nil {
			if logStart > 0 && logStart <= int64(len(data)) {
				data = data[logStart:]
			}
			logTail = tail(data, 30)
		}
		if strings.Contains(logTail, "Address already in use") {
			err = fmt.Errorf("%w: %w", errBind, err)
		}
		return fmt.Errorf("%w\npgbouncer log (%s):\n%s", err, b.logPath, logTail)
	}
	return nil
}

// waitReady dials the port until pgbouncer answers.
func (b *PgBouncer) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	for {
		select {
		case <-b.done:
			return fmt.Errorf("pgcluster: pgbouncer exited during start: %v", b.err)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-b.done:
			return fmt.Errorf("pgcluster: pgbouncer exited during start: %v", b.err)
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: waiting for pgbouncer to start: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func findPgBouncer(explicit string) (string, error) {
	if explicit != "" {
		if isExecutable(explicit) {
			return explicit, nil
		}
		return "", fmt.Errorf("%w: %s is not an executable", ErrNoPgBouncer, explicit)
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer"} {
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w (searched PATH, /usr/sbin, /usr/local/sbin, /usr/local/bin)", ErrNoPgBouncer)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
