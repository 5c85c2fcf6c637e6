package pgtenancytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/ci"
	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// OwnerRole is the role that runs migrations and template setup, owns the
// tables and the test databases. It is NOSUPERUSER and NOBYPASSRLS, but as
// the tables' owner it bypasses RLS unless a table has FORCE ROW LEVEL
// SECURITY.
const OwnerRole = "pgtenancy_test_owner"

// AppRole is the role an application connects as: LOGIN NOSUPERUSER
// NOBYPASSRLS NOCREATEDB NOCREATEROLE, owning nothing and unable to create
// objects in schema public. Queries that test RLS must run as this role.
// Grant it privileges on tables in the template's Setup.
const AppRole = "pgtenancy_test_app"

// rolePassword is the password of OwnerRole and AppRole, which the URLs carry.
// The roles exist only on test servers.
const rolePassword = "pgtenancy_test_password"

// envDatabaseURL names the environment variable of an existing server.
const envDatabaseURL = "PGTENANCY_TEST_DATABASE_URL"

// Template describes a template database that [NewDB] clones. A Template
// is identified by its address: each *Template is built at most once per
// test process, on first use. Declare templates as package-level variables;
// a Template literal inside a test function is a new template, built again
// at every call.
type Template struct {
	// Name labels the template in its database's name and in error
	// messages: [a-z0-9_]+, at most 40 bytes. Names need not be unique:
	// two Templates with the same Name are still two templates.
	Name string

	// Setup builds the template's content, typically by running migrations.
	// It runs once per process, connected as [OwnerRole] to the template
	// database. If it fails, every test that asks for the template fails
	// with its error.
	Setup func(ctx context.Context, conn *pgx.Conn) error
}

// DB is a test database, created by [NewDB] and dropped when its test ends.
type DB struct {
	// Name is the database name.
	Name string
	// AdminURL connects to this database as the server's admin (superuser)
	// role.
	AdminURL string
	// OwnerURL connects to this database as [OwnerRole].
	OwnerURL string
	// AppURL connects to this database as [AppRole].
	AppURL string
}

var templateName = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// server is the process's PostgreSQL server, set up once.
type server struct {
	adminURL string             // admin role, database "postgres"
	cluster  *pgcluster.Cluster // nil with PGTENANCY_TEST_DATABASE_URL
	admin    *pgxpool.Pool      // admin role, database "postgres"
	skip     string             // non-empty: no server available, skip
	err      error              // setup failed
}

// template is the per-process state of one Template.
type template struct {
	tmpl   *Template // nil for the internal empty template
	dbName string    // unique on the server: suffix and a sequence number
	once   sync.Once
	err    error
	ready  atomic.Bool // built successfully, to drop in Main
	clone  sync.Mutex  // serializes clones
}

var (
	srvOnce sync.Once
	srv     server

	// suffix makes this process's database names unique on a shared server.
	suffix = randomHex(4)
	dbSeq  atomic.Int64

	// templates holds the state of each Template used, by address (nil:
	// the empty template). Keying by Name instead made the outcome depend
	// on test order: with two Templates of one Name, whichever test came
	// first took the name and the other's tests failed.
	tmplMu    sync.Mutex
	templates = map[*Template]*template{}
)

// Main runs the tests of a package, then drops the templates and stops the
// server that this process started, and exits with the tests' status. Call
// it from TestMain:
//
//	func TestMain(m *testing.M) { pgtenancytest.Main(m) }
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is [Main] without the exit: it runs the tests, drops the templates,
// stops the server this process started and returns the exit code. It is for
// wrappers that have their own cleanup to do before exiting.
func Run(m *testing.M) int {
	code := m.Run()
	shutdown()
	return code
}

// shutdown drops the templates (best effort) and stops the server.
func shutdown() {
	srvOnce.Do(func() {}) // a later first use must not start a server
	if srv.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		tmplMu.Lock()
		for _, t := range templates {
			if t.ready.Load() {
				_, _ = srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+sqlquote.Ident(t.dbName)+" WITH (FORCE)")
			}
		}
		tmplMu.Unlock()
		cancel()
		srv.admin.Close()
	}
	if srv.cluster != nil {
		if err := srv.cluster.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtenancytest: stopping the test server: %v\n", err)
		}
	}
}

// ServerURL returns a URL of the server's admin role to database "postgres",
// starting the server if needed. See the package doc for where the server
// comes from.
func ServerURL(tb TB) string {
	tb.Helper()
	return getServer(tb).adminURL
}

// Server is the throwaway PostgreSQL server that this process started.
type Server interface {
	// Port is the server's TCP port on 127.0.0.1.
	Port() int
	// Restart stops the server fast and starts it again on the same port
	// and data. It ends every connection of every test in the process, so
	// call it from a test that does not call t.Parallel.
	Restart(ctx context.Context) error
}

// Local returns the throwaway server that this process started, starting it
// if needed. It is nil when PGTENANCY_TEST_DATABASE_URL names the server, which
// tests do not control.
func Local(tb TB) Server {
	tb.Helper()
	if c := getServer(tb).cluster; c != nil {
		return c
	}
	return nil
}

func getServer(tb TB) *server {
	tb.Helper()
	srvOnce.Do(startServer)
	checkServer(tb, &srv)
	return &srv
}

// checkServer skips or fails tb when s is not usable.
func checkServer(tb TB, s *server) {
	tb.Helper()
	switch {
	case s.skip != "" && ci.On():
		tb.Fatalf("pgtenancytest: %s.\nOn CI, install PostgreSQL (for example `apt-get install postgresql`), let the pinned build download (network access to registry.npmjs.org), or set %s.", s.skip, envDatabaseURL)
	case s.skip != "":
		tb.Skipf("pgtenancytest: %s", s.skip)
	case s.err != nil:
		tb.Fatalf("pgtenancytest: %v", s.err)
	}
}

func startServer() {
	// Long enough for a first download of the pinned server build.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if u := os.Getenv(envDatabaseURL); u != "" {
		if !strings.Contains(u, "://") {
			srv.err = fmt.Errorf("%s must be a URL (postgres://user:password@host:port/db?...)", envDatabaseURL)
			return
		}
		srv.adminURL = u
	} else {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}})
		if errors.Is(err, pgcluster.ErrNoServer) {
			srv.skip = fmt.Sprintf("no PostgreSQL: %s is not set and %v", envDatabaseURL, err)
			return
		}
		if err != nil {
			srv.err = err
			return
		}
		srv.cluster = c
		srv.adminURL = c.URL("postgres")
	}
	cfg, err := pgxpool.ParseConfig(srv.adminURL)
	if err != nil {
		srv.err = err
		return
	}
	cfg.MaxConns = 4
	// Ping on every acquire: the server may have been restarted (see
	// [Cluster]) since a connection was last used.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = ensureRoles(ctx, pool)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		srv.err = err
		return
	}
	srv.admin = pool
}

// ensureRoles creates OwnerRole and AppRole or resets their attributes. An
// advisory lock serializes concurrent test processes on one server.
func ensureRoles(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('pgtenancytest roles'))"); err != nil {
			return err
		}
		for _, role := range []string{OwnerRole, AppRole} {
			var exists bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
				return err
			}
			verb := "CREATE"
			if exists {
				verb = "ALTER"
			}
			sql := fmt.Sprintf("%s ROLE %s WITH LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %s",
				verb, sqlquote.Ident(role), sqlquote.Literal(rolePassword))
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s role %s (the %s role must allow CREATE ROLE): %w", strings.ToLower(verb), role, envDatabaseURL, err)
			}
		}
		return nil
	})
}

// NewDB creates a database for the test, cloned from tmpl (nil: an empty
// database), owned by [OwnerRole]. The database is dropped when the test
// ends. Schema public is usable by OwnerRole; AppRole cannot create in it.
func NewDB(tb TB, tmpl *Template) *DB {
	tb.Helper()
	s := getServer(tb)
	t, err := lookupTemplate(tmpl)
	if err != nil {
		tb.Fatalf("pgtenancytest: %v", err)
	}
	ctx := tb.Context()
	t.once.Do(func() { t.err = buildTemplate(ctx, s, t) })
	if t.err != nil {
		tb.Fatalf("pgtenancytest: template %q: %v", t.name(), t.err)
	}

	name := fmt.Sprintf("pgtenancy_%s_%d", suffix, dbSeq.Add(1))
	if err := cloneTemplate(ctx, s, t, name); err != nil {
		tb.Fatalf("pgtenancytest: create database from template %q: %v", t.name(), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+sqlquote.Ident(name)+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtenancytest: drop database %s: %v", name, err)
		}
	})
	return &DB{
		Name:     name,
		AdminURL: withDB(s.adminURL, name, ""),
		OwnerURL: withDB(s.adminURL, name, OwnerRole),
		AppURL:   withDB(s.adminURL, name, AppRole),
	}
}

func (t *template) name() string {
	if t.tmpl == nil {
		return "(empty)"
	}
	return t.tmpl.Name
}

// maxIdent is the longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
const maxIdent = 63

func lookupTemplate(tmpl *Template) (*template, error) {
	if tmpl != nil && !templateName.MatchString(tmpl.Name) {
		return nil, fmt.Errorf("template name %q must match %s", tmpl.Name, templateName)
	}
	tmplMu.Lock()
	defer tmplMu.Unlock()
	if t := templates[tmpl]; t != nil {
		return t, nil
	}
	dbName := fmt.Sprintf("pgtenancy_%s_empty", suffix)
	if tmpl != nil {
		// The sequence number makes the name unique; the Name, cut to
		// fit, is for people reading pg_database.
		dbName = fmt.Sprintf("pgtenancy_%s_t%d_%s", suffix, len(templates)+1, tmpl.Name)
		if len(dbName) > maxIdent {
			dbName = dbName[:maxIdent]
		}
	}
	t := &template{tmpl: tmpl, dbName: dbName}
	templates[tmpl] = t
	return t, nil
}

// buildTemplate creates the template database and runs Setup as the owner.
func buildTemplate(ctx context.Context, s *server, t *template) (err error) {
	ctx = context.WithoutCancel(ctx) // shared by later tests: finish even if this test ends
	q := sqlquote.Ident(t.dbName)
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+q+" TEMPLATE template0 ENCODING 'UTF8' OWNER "+sqlquote.Ident(OwnerRole)); err != nil {
		return fmt.Errorf("create database (the %s role must allow CREATE DATABASE): %w", envDatabaseURL, err)
	}
	t.ready.Store(true) // exists: Main drops it
	admin, err := pgx.Connect(ctx, withDB(s.adminURL, t.dbName, ""))
	if err != nil {
		return err
	}
	// Servers before 15 let PUBLIC create in schema public.
	_, err = admin.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT ALL ON SCHEMA public TO "+sqlquote.Ident(OwnerRole))
	_ = admin.Close(ctx)
	if err != nil {
		return err
	}
	if t.tmpl != nil && t.tmpl.Setup != nil {
		conn, err := pgx.Connect(ctx, withDB(s.adminURL, t.dbName, OwnerRole))
		if err != nil {
			return err
		}
		err = runSetup(ctx, t.tmpl, conn)
		_ = conn.Close(ctx)
		if err != nil {
			return err
		}
	}
	// No connections from now on (autovacuum included), so clones never find
	// the template in use; end any that Setup left open.
	_, err = s.admin.Exec(ctx, "ALTER DATABASE "+q+" WITH ALLOW_CONNECTIONS false")
	if err == nil {
		_, err = s.admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", t.dbName)
	}
	return err
}

func runSetup(ctx context.Context, tmpl *Template, conn *pgx.Conn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("setup panicked: %v\n%s", r, debug.Stack())
		}
	}()
	if err := tmpl.Setup(ctx, conn); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}

// cloneTemplate creates database name from t, one clone at a time per
// template, retrying while the template is in use (SQLSTATE 55006).
func cloneTemplate(ctx context.Context, s *server, t *template, name string) error {
	t.clone.Lock()
	defer t.clone.Unlock()
	sql := "CREATE DATABASE " + sqlquote.Ident(name) + " TEMPLATE " + sqlquote.Ident(t.dbName) + " OWNER " + sqlquote.Ident(OwnerRole)
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		_, err := s.admin.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 6 || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// withDB returns serverURL with the database set to db and, when role is not
// empty, the user set to role with the test password.
func withDB(serverURL, db, role string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		panic(err) // validated when the server was set up
	}
	u.Path = "/" + db
	u.RawPath = ""
	if role != "" {
		u.User = url.UserPassword(role, rolePassword)
	}
	return u.String()
}

// AdminConn connects to the database as the server's admin role. The
// connection is closed when the test ends.
func (db *DB) AdminConn(tb TB) *pgx.Conn { tb.Helper(); return connect(tb, db.AdminURL) }

// OwnerConn connects to the database as [OwnerRole]. The connection is closed
// when the test ends.
func (db *DB) OwnerConn(tb TB) *pgx.Conn { tb.Helper(); return connect(tb, db.OwnerURL) }

// AppConn connects to the database as [AppRole]. The connection is closed
// when the test ends.
func (db *DB) AppConn(tb TB) *pgx.Conn { tb.Helper(); return connect(tb, db.AppURL) }

// OwnerPool returns a pool of connections as [OwnerRole]. It is closed when
// the test ends.
func (db *DB) OwnerPool(tb TB) *pgxpool.Pool { tb.Helper(); return pool(tb, db.OwnerURL) }

// AppPool returns a pool of connections as [AppRole]. It is closed when the
// test ends.
func (db *DB) AppPool(tb TB) *pgxpool.Pool { tb.Helper(); return pool(tb, db.AppURL) }

func connect(tb TB, connURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), connURL)
	if err != nil {
		tb.Fatalf("pgtenancytest: connect: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func pool(tb TB, connURL string) *pgxpool.Pool {
	tb.Helper()
	p, err := pgxpool.New(tb.Context(), connURL)
	if err != nil {
		tb.Fatalf("pgtenancytest: pool: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
