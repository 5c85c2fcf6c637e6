package pgtenancytest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// exists reports whether relation name exists in the database of conn.
func exists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestNewDBIsIndependent(t *testing.T) {
	t.Parallel()
	a, b := pgtenancytest.NewDB(t, nil), pgtenancytest.NewDB(t, nil)
	if a.Name == b.Name {
		t.Fatalf("both databases are named %s", a.Name)
	}
	ca, cb := a.OwnerConn(t), b.OwnerConn(t)
	if _, err := ca.Exec(t.Context(), "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	if !exists(t, ca, "only_in_a") {
		t.Fatal("table missing in the database that created it")
	}
	if exists(t, cb, "only_in_a") {
		t.Fatal("table created in one database appears in the other")
	}
	for _, db := range []*pgtenancytest.DB{a, b} {
		var owner, current string
		err := db.AdminConn(t).QueryRow(t.Context(),
			"SELECT pg_get_userbyid(datdba), current_database() FROM pg_database WHERE datname = current_database()").Scan(&owner, &current)
		if err != nil {
			t.Fatal(err)
		}
		if owner != pgtenancytest.OwnerRole || current != db.Name {
			t.Errorf("database %s (connected to %s) is owned by %s, want %s", db.Name, current, owner, pgtenancytest.OwnerRole)
		}
	}
}

var (
	setupRuns   atomic.Int32
	setupUser   atomic.Value
	notesSchema = &pgtenancytest.Template{
		Name: "notes",
		Setup: func(ctx context.Context, conn *pgx.Conn) error {
			setupRuns.Add(1)
			var user string
			if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
				return err
			}
			setupUser.Store(user)
			_, err := conn.Exec(ctx, `
				CREATE TABLE notes (tenant_id int NOT NULL, body text NOT NULL);
				INSERT INTO notes VALUES (1, 'one'), (2, 'two');
				ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
				CREATE POLICY tenant ON notes
					USING (tenant_id = NULLIF(current_setting('app.tenant', true), '')::int);
				GRANT SELECT ON notes TO pgtenancy_test_app;`)
			return err
		},
	}
)

func TestTemplateSetupRunsOnceAndIsCloned(t *testing.T) {
	t.Parallel()
	names := make(chan string, 6)
	t.Run("clones", func(t *testing.T) {
		for i := range cap(names) {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				db := pgtenancytest.NewDB(t, notesSchema)
				names <- db.Name
				conn := db.OwnerConn(t)
				var n int
				if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM notes").Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 2 {
					t.Errorf("clone has %d rows, want the template's 2", n)
				}
				// Writes stay in this clone.
				if _, err := conn.Exec(t.Context(), "DELETE FROM notes"); err != nil {
					t.Fatal(err)
				}
				var owner string
				if err := conn.QueryRow(t.Context(), "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'").Scan(&owner); err != nil {
					t.Fatal(err)
				}
				if owner != pgtenancytest.OwnerRole {
					t.Errorf("notes owned by %s, want %s", owner, pgtenancytest.OwnerRole)
				}
			})
		}
	})
	close(names)
	seen := map[string]bool{}
	for n := range names {
		if seen[n] {
			t.Errorf("database name %s used twice", n)
		}
		seen[n] = true
	}
	if got := setupRuns.Load(); got != 1 {
		t.Errorf("Setup ran %d times, want 1", got)
	}
	if got := setupUser.Load(); got != pgtenancytest.OwnerRole {
		t.Errorf("Setup ran as %v, want %s", got, pgtenancytest.OwnerRole)
	}
}

func TestAppRole(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := pgtenancytest.NewDB(t, notesSchema)
	app := db.AppConn(t)

	var user string
	var super, bypass, createdb, createrole, login bool
	err := app.QueryRow(ctx, `SELECT rolname, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolcanlogin
		FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super, &bypass, &createdb, &createrole, &login)
	if err != nil {
		t.Fatal(err)
	}
	if user != pgtenancytest.AppRole || super || bypass || createdb || createrole || !login {
		t.Errorf("app role: %s super=%v bypassrls=%v createdb=%v createrole=%v login=%v",
			user, super, bypass, createdb, createrole, login)
	}

	// Owns nothing in any database of the server (pg_shdepend records
	// ownership everywhere), and is a member of no role.
	var owned, member int
	err = app.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass
			AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND deptype = 'o'),
		(SELECT count(*) FROM pg_auth_members WHERE member = (SELECT oid FROM pg_roles WHERE rolname = current_user))`).Scan(&owned, &member)
	if err != nil {
		t.Fatal(err)
	}
	if owned != 0 || member != 0 {
		t.Errorf("app role owns %d objects and is a member of %d roles, want 0 and 0", owned, member)
	}

	// Cannot create tables in public, nor schemas.
	for _, sql := range []string{"CREATE TABLE public.t (id int)", "CREATE TABLE t (id int)", "CREATE SCHEMA s"} {
		_, err := app.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s as the app role: err = %v, want insufficient_privilege (42501)", sql, err)
		}
	}
	// The owner can.
	if _, err := db.OwnerConn(t).Exec(ctx, "CREATE TABLE public.t (id int)"); err != nil {
		t.Errorf("owner cannot create in public: %v", err)
	}

	// RLS applies to the app role: it sees only its tenant's rows, the owner
	// (without FORCE) sees all.
	countAs := func(conn *pgx.Conn, tenant string) int {
		t.Helper()
		var n int
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('app.tenant', $1, true)", tenant); err != nil {
				return err
			}
			return tx.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := countAs(app, "1"); n != 1 {
		t.Errorf("app role with tenant 1 sees %d rows, want 1", n)
	}
	if n := countAs(app, ""); n != 0 {
		t.Errorf("app role without tenant sees %d rows, want 0", n)
	}
	if n := countAs(db.OwnerConn(t), "1"); n != 2 {
		t.Errorf("owner sees %d rows, want 2", n)
	}
}

func TestPools(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	for want, p := range map[string]interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}{pgtenancytest.OwnerRole: db.OwnerPool(t), pgtenancytest.AppRole: db.AppPool(t)} {
		var user, dbName string
		if err := p.QueryRow(t.Context(), "SELECT current_user, current_database()").Scan(&user, &dbName); err != nil {
			t.Fatal(err)
		}
		if user != want || dbName != db.Name {
			t.Errorf("pool connects as %s to %s, want %s to %s", user, dbName, want, db.Name)
		}
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	t.Parallel()
	var name string
	var leaked *pgx.Conn
	if !t.Run("uses a database", func(t *testing.T) {
		db := pgtenancytest.NewDB(t, notesSchema)
		name = db.Name
		_ = db.AppConn(t)
		// A connection the test forgets to close must not block the drop.
		var err error
		leaked, err = pgx.Connect(context.Background(), db.OwnerURL)
		if err != nil {
			t.Fatal(err)
		}
	}) {
		t.FailNow() // the subtest said why; leaked may be nil
	}
	defer leaked.Close(context.Background())
	admin, err := pgx.Connect(t.Context(), pgtenancytest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

var (
	twinRuns atomic.Int32
	// notesTwin has notesSchema's Name and other content. It is a
	// template of its own: which of the two a test uses first must not
	// matter. (When the harness keyed templates by Name, whichever came
	// first took the name, and the tests of the other failed with "two
	// different Templates are named" when test order changed.)
	notesTwin = &pgtenancytest.Template{
		Name: notesSchema.Name,
		Setup: func(ctx context.Context, conn *pgx.Conn) error {
			twinRuns.Add(1)
			_, err := conn.Exec(ctx, "CREATE TABLE twin (id int)")
			return err
		},
	}
)

func TestTemplatesShareAName(t *testing.T) {
	t.Parallel()
	// The twin first, then both at once in random order.
	first := pgtenancytest.NewDB(t, notesTwin)
	if !exists(t, first.OwnerConn(t), "twin") || exists(t, first.OwnerConn(t), "notes") {
		t.Fatal("a clone of the twin does not hold the twin's table alone")
	}
	t.Run("group", func(t *testing.T) {
		for i := range 4 {
			tmpl, table, other := notesSchema, "notes", "twin"
			if i%2 == 1 {
				tmpl, table, other = notesTwin, "twin", "notes"
			}
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := pgtenancytest.NewDB(t, tmpl).OwnerConn(t)
				if !exists(t, conn, table) || exists(t, conn, other) {
					t.Errorf("a clone of the template with table %s has %s: %v, %s: %v",
						table, table, exists(t, conn, table), other, exists(t, conn, other))
				}
			})
		}
	})
	if n := twinRuns.Load(); n != 1 {
		t.Errorf("the twin's Setup ran %d times, want 1", n)
	}
}

// fakeTB records Fatalf and Skipf instead of failing the real test.
type fakeTB struct {
	testing.TB
	mu    sync.Mutex
	fatal []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = append(f.fatal, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

// run calls fn with f on a new goroutine (Fatalf ends it) and returns the
// Fatalf message, or "" when fn returned.
func (f *fakeTB) run(fn func(tb testing.TB)) string {
	f.mu.Lock()
	n := len(f.fatal)
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fatal) > n {
		return f.fatal[n]
	}
	return ""
}

var (
	brokenRuns   atomic.Int32
	errBadSchema = errors.New("bad schema 7f3a")
	broken       = &pgtenancytest.Template{
		Name: "broken",
		Setup: func(ctx context.Context, conn *pgx.Conn) error {
			brokenRuns.Add(1)
			return errBadSchema
		},
	}
	panicky = &pgtenancytest.Template{
		Name:  "panicky",
		Setup: func(ctx context.Context, conn *pgx.Conn) error { panic("boom 41c2") },
	}
)

func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	_ = pgtenancytest.ServerURL(t) // skip here, not in fakeTB, when there is no server
	ftb := &fakeTB{TB: t}
	for i := range 2 {
		msg := ftb.run(func(tb testing.TB) { pgtenancytest.NewDB(tb, broken) })
		if !strings.Contains(msg, errBadSchema.Error()) {
			t.Errorf("call %d: NewDB with a failing Setup: fatal %q, want the Setup error", i, msg)
		}
	}
	if n := brokenRuns.Load(); n != 1 {
		t.Errorf("failing Setup ran %d times, want 1", n)
	}
	for i := range 2 {
		msg := ftb.run(func(tb testing.TB) { pgtenancytest.NewDB(tb, panicky) })
		if !strings.Contains(msg, "boom 41c2") {
			t.Errorf("call %d: NewDB with a panicking Setup: fatal %q, want the panic", i, msg)
		}
	}
	if msg := ftb.run(func(tb testing.TB) {
		pgtenancytest.NewDB(tb, &pgtenancytest.Template{Name: "Bad-Name"})
	}); !strings.Contains(msg, "Bad-Name") {
		t.Errorf("invalid template name: fatal %q", msg)
	}
	// The failures did not break the harness.
	if msg := ftb.run(func(tb testing.TB) { pgtenancytest.NewDB(tb, nil) }); msg != "" {
		t.Errorf("NewDB after template errors: %s", msg)
	}
}

// TestClusterRestart is not parallel: restarting ends every connection of
// the process.
func TestClusterRestart(t *testing.T) {
	c := pgtenancytest.Local(t)
	if c == nil {
		t.Skip("PGTENANCY_TEST_DATABASE_URL names the server: no local cluster to restart")
	}
	ctx := t.Context()
	db := pgtenancytest.NewDB(t, nil)
	conn := db.OwnerConn(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	port := c.Port()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port changed from %d to %d", port, c.Port())
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("connection from before the restart still works")
	}
	var v int
	if err := db.AppConn(t).QueryRow(ctx, "SELECT 1").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := db.OwnerConn(t).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after restart: v = %d, err = %v; want 7", v, err)
	}
	// The harness's own connections recover: new databases still work.
	other := pgtenancytest.NewDB(t, notesSchema)
	if !exists(t, other.OwnerConn(t), "notes") {
		t.Error("template clone after restart lacks its table")
	}
}

// TestServerMajor: with PGTENANCY_PG_VERSION set (make test-matrix), the
// server the tests ran on is that major, so a matrix run cannot quietly
// test the default version.
func TestServerMajor(t *testing.T) {
	want := os.Getenv("PGTENANCY_PG_VERSION")
	if want == "" {
		t.Skip("PGTENANCY_PG_VERSION is not set")
	}
	conn, err := pgx.Connect(t.Context(), pgtenancytest.ServerURL(t))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var num int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&num))
	require.Equal(t, want, strconv.Itoa(num/10000), "server_version_num %d", num)
}
