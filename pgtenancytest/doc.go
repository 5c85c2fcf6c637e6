// Package pgtenancytest gives each test its own PostgreSQL database, cloned from
// a template, with the roles that Row Level Security tests need. Tests that
// use it run in parallel against a real server.
//
// # Setup
//
// Call [Main] from TestMain, declare templates as package variables, and ask
// for a database in each test:
//
//	func TestMain(m *testing.M) { pgtenancytest.Main(m) }
//
//	var schema = &pgtenancytest.Template{
//		Name: "notes",
//		Setup: func(ctx context.Context, conn *pgx.Conn) error {
//			_, err := conn.Exec(ctx, `
//				CREATE TABLE notes (tenant_id int NOT NULL, body text);
//				GRANT SELECT, INSERT ON notes TO pgtenancy_test_app;`)
//			return err
//		},
//	}
//
//	func TestNotes(t *testing.T) {
//		t.Parallel()
//		db := pgtenancytest.NewDB(t, schema)
//		conn := db.AppConn(t) // NOSUPERUSER, NOBYPASSRLS, owns nothing
//		// ... RLS applies to every query on conn.
//	}
//
// # The server
//
// When PGTENANCY_TEST_DATABASE_URL is set (a postgres:// URL), tests use that
// server; its role must be allowed to CREATE DATABASE and CREATE ROLE (a
// superuser is simplest). The variable is not DATABASE_URL on purpose: an
// application's own database must never be used by accident. The roles get a fixed test password, which the URLs in [DB]
// carry, so the server must accept password (or trust) authentication for
// them. Use a server dedicated to tests.
//
// Otherwise each test process starts its own throwaway cluster on first use,
// and [Main] stops it. Starting takes a second or two. The server binaries
// (initdb and postgres) are the ones installed on the machine (found on
// PATH, through pg_config, or where packages put them, such as
// /usr/lib/postgresql/<major>/bin), else a pinned build of PostgreSQL that
// is downloaded once over HTTPS, checked against its pinned SHA-512 and
// cached per user. Environment variables choose:
//
//   - PGTENANCY_PG_VERSION=15|16|17|18: that major version, local if
//     installed, else the pinned build (the default build is 18).
//   - PGTENANCY_PG_BIN=dir: the binaries in dir, as they are.
//   - PGTENANCY_PG_SOURCE=local never downloads; =pinned always uses the
//     pinned build.
//   - PGTENANCY_PG_CACHE=dir: where pinned builds are cached.
//
// When the process runs as root, the server runs as the "postgres" OS user.
//
// Without a server (no URL, no local binaries, and the download failed, as
// when offline), tests that need a database are skipped, or fail when the
// environment variable CI is "true". Machines with Docker can also use the
// separate module github.com/pgtenancy/pgtenancy/pgtenancytest/containers.
//
// # Roles
//
// Two roles exist on the server, created once and shared by all tests:
//
//   - [OwnerRole] owns every test database and the tables that Template
//     setups create. Owners bypass RLS unless a table has FORCE ROW LEVEL
//     SECURITY: a test that queries as the owner proves nothing about RLS.
//   - [AppRole] is LOGIN NOSUPERUSER NOBYPASSRLS, owns nothing and cannot
//     create objects in schema public. Query as this role to test RLS, after
//     granting it privileges in the template.
//
// The admin role, the server's superuser, is there for checks that must see
// everything ([DB.AdminConn]).
//
// # Templates
//
// A [Template] is built once per test process, on the first [NewDB] that asks
// for it: an empty database owned by OwnerRole, then Setup, connected as
// OwnerRole. Templates are told apart by address, not by Name, so declare
// each one once, as a package variable. Each NewDB clones it with CREATE DATABASE ... TEMPLATE, which
// is much faster than running migrations per test. A failing Setup fails
// every test that asks for its template. [NewDB] with a nil template clones
// an empty database.
//
// Each database is dropped when its test ends, and the templates when [Main]
// returns. Every database name carries a random per-process suffix, and
// template databases a per-process sequence number, so the test processes
// of several packages, and several runs, can share one server: go test
// runs the packages' test binaries at once. A process killed before [Main]
// returns (a test timeout, say) leaves its databases behind on such a
// server; they are named pgtenancy_<suffix>_*.
package pgtenancytest
