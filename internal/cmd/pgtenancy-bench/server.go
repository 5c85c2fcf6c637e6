package main

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
)

// The roles of the benchmark. The application role is what a pgtenancy
// application connects as; the raw role stands for an application without
// row level security: PostgreSQL plans its queries without the policies,
// as for a table without RLS.
const (
	ownerRole = "pgtenancy_bench_owner" // owns the tables
	appRole   = "pgtenancy_bench_app"   // NOSUPERUSER NOBYPASSRLS: pgtenancy
	rawRole   = "pgtenancy_bench_raw"   // NOSUPERUSER BYPASSRLS: raw pgx with a manual tenant filter
	rolePass  = "pgtenancy_bench"
)

// server is the PostgreSQL server a part of the benchmark runs on: a
// throwaway cluster, or the server of PGTENANCY_BENCH_DATABASE_URL.
type server struct {
	base    *url.URL // superuser URL
	cluster *pgcluster.Cluster
	dbs     []string // databases created, dropped by close on an external server
	version string
}

// openServer starts a throwaway cluster with settings, or connects to
// PGTENANCY_BENCH_DATABASE_URL (settings are then the server's own), and
// creates the roles.
func openServer(ctx context.Context, settings map[string]string) (*server, error) {
	s := &server{}
	raw := os.Getenv("PGTENANCY_BENCH_DATABASE_URL")
	if raw == "" {
		c, err := pgcluster.Start(ctx, pgcluster.Options{Settings: settings, Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}})
		if err != nil {
			return nil, err
		}
		s.cluster = c
		raw = c.URL("postgres")
	}
	u, err := url.Parse(raw)
	if err != nil {
		s.close(ctx)
		return nil, fmt.Errorf("PGTENANCY_BENCH_DATABASE_URL: %w", err)
	}
	s.base = u
	conn, err := s.connect(ctx, "", "")
	if err != nil {
		s.close(ctx)
		return nil, err
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&s.version); err != nil {
		s.close(ctx)
		return nil, err
	}
	for role, attrs := range map[string]string{
		ownerRole: "NOSUPERUSER NOBYPASSRLS CREATEDB",
		appRole:   "NOSUPERUSER NOBYPASSRLS",
		rawRole:   "NOSUPERUSER BYPASSRLS",
	} {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
			s.close(ctx)
			return nil, err
		}
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("%s ROLE %s LOGIN %s PASSWORD '%s'", verb, role, attrs, rolePass)); err != nil {
			s.close(ctx)
			return nil, err
		}
	}
	return s, nil
}

// url returns the URL of database db (the base URL's database when empty)
// as role (the superuser when empty).
func (s *server) url(db, role string) string {
	u := *s.base
	if db != "" {
		u.Path = "/" + db
	}
	if role != "" {
		u.User = url.UserPassword(role, rolePass)
	}
	return u.String()
}

func (s *server) connect(ctx context.Context, db, role string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.url(db, role))
}

// createDB creates database db owned by ownerRole, dropping a leftover of
// an earlier run first.
func (s *server) createDB(ctx context.Context, admin *pgx.Conn, db, template string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return err
	}
	sql := "CREATE DATABASE " + db + " OWNER " + ownerRole
	if template != "" {
		sql += " TEMPLATE " + template
	}
	if _, err := admin.Exec(ctx, sql); err != nil {
		return err
	}
	s.dbs = append(s.dbs, db)
	return nil
}

// dropDB drops database db.
func (s *server) dropDB(ctx context.Context, admin *pgx.Conn, db string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return err
	}
	for i, d := range s.dbs {
		if d == db {
			s.dbs = append(s.dbs[:i], s.dbs[i+1:]...)
			break
		}
	}
	return nil
}

// close stops the throwaway cluster, or drops the databases created on an
// external server.
func (s *server) close(ctx context.Context) {
	if s.cluster != nil {
		_ = s.cluster.Stop()
		return
	}
	if s.base == nil || len(s.dbs) == 0 {
		return
	}
	conn, err := s.connect(ctx, "", "")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	for _, db := range append([]string(nil), s.dbs...) {
		_ = s.dropDB(ctx, conn, db)
	}
}
