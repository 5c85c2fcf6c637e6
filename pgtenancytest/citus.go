package pgtenancytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// EnvCitusURL names the environment variable that points the Citus tests at
// a cluster: a postgres:// URL of the coordinator, as a superuser.
const EnvCitusURL = "CITUS_URL"

// CitusSkipMessage is the message of tests skipped because [EnvCitusURL] is
// not set.
const CitusSkipMessage = EnvCitusURL + " is not set, so this Citus test did not run. To run the Citus tests, point it at " +
	"the coordinator of a Citus cluster, as a superuser whose name and password the workers accept too: " +
	EnvCitusURL + "='postgres://postgres@coordinator:5432/postgres' go test -race -run Citus ./..."

// CitusNode is a node of a Citus cluster.
type CitusNode struct {
	Host string
	Port int
}

// CitusDB is a database on every node of a Citus cluster, with the citus
// extension and the nodes registered, created by [NewCitusDB] and dropped
// when its test ends. Its URLs ([DB.AdminURL], [DB.OwnerURL], [DB.AppURL])
// connect to the coordinator.
type CitusDB struct {
	DB
	// Coordinator is the coordinator, as the cluster's metadata names it.
	Coordinator CitusNode
	// Workers are the worker nodes, in node id order.
	Workers []CitusNode
	nodeURL func(n CitusNode) string // the admin URL of this database on a node
}

// citusCluster is the process's view of the cluster, read once.
type citusCluster struct {
	adminURL    string
	coordinator CitusNode
	workers     []CitusNode
	err         error
}

var (
	citusOnce sync.Once
	citus     citusCluster
)

// CitusURL returns [EnvCitusURL], or skips tb with [CitusSkipMessage] when it
// is not set.
func CitusURL(tb TB) string {
	tb.Helper()
	u := os.Getenv(EnvCitusURL)
	if u == "" {
		tb.Skipf("%s", CitusSkipMessage)
	}
	return u
}

// NewCitusDB creates a database for the test on the Citus cluster that
// [EnvCitusURL] names (it skips the test when that is not set): the
// database is created on the coordinator and on every worker, owned by
// [OwnerRole], with the citus extension, and the coordinator and workers
// registered in it, so tables created in it can be distributed. Creating
// one takes about two seconds. [OwnerRole] and [AppRole] exist on every
// node (Citus propagates roles). The database is dropped from every node
// when the test ends.
//
// The cluster must be one the tests may use freely: the coordinator's
// metadata in database "postgres" (or the URL's database) lists the
// workers, and the URL's user and password work on every node.
func NewCitusDB(tb TB) *CitusDB {
	tb.Helper()
	adminURL := CitusURL(tb)
	citusOnce.Do(func() { citus = loadCitusCluster(adminURL) })
	if citus.err != nil {
		tb.Fatalf("pgtenancytest: Citus cluster at %s: %v", EnvCitusURL, citus.err)
	}
	ctx := context.WithoutCancel(tb.Context())
	name := fmt.Sprintf("pgtenancyc_%s_%d", suffix, dbSeq.Add(1))
	nodeURL := func(n CitusNode, db, role string) string {
		u, _ := url.Parse(withDB(citus.adminURL, db, role))
		u.Host = net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		return u.String()
	}
	nodes := append([]CitusNode{citus.coordinator}, citus.workers...)
	drop := func() error {
		var first error
		for _, n := range nodes {
			// Citus's maintenance daemon may connect again while the
			// database is dropped (55006): retry.
			var err error
			for attempt := 0; attempt < 6; attempt++ {
				err = execOn(ctx, nodeURL(n, "postgres", ""), "DROP DATABASE IF EXISTS "+sqlquote.Ident(name)+" WITH (FORCE)")
				var pgErr *pgconn.PgError
				if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
					break
				}
				time.Sleep(time.Duration(attempt+1) * 250 * time.Millisecond)
			}
			if err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	tb.Cleanup(func() {
		if err := drop(); err != nil {
			tb.Errorf("pgtenancytest: drop Citus database %s: %v", name, err)
		}
	})
	// Workers first: the coordinator's citus_add_node connects to them.
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if err := execOn(ctx, nodeURL(n, "postgres", ""), "CREATE DATABASE "+sqlquote.Ident(name)+" TEMPLATE template0 ENCODING 'UTF8' OWNER "+sqlquote.Ident(OwnerRole)); err != nil {
			tb.Fatalf("pgtenancytest: create database %s on %s:%d: %v", name, n.Host, n.Port, err)
		}
		sql := "CREATE EXTENSION citus; REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT ALL ON SCHEMA public TO " + sqlquote.Ident(OwnerRole) + ";"
		if i == 0 {
			sql += fmt.Sprintf("SELECT citus_set_coordinator_host(%s, %d);", sqlquote.Literal(n.Host), n.Port)
			for _, w := range citus.workers {
				sql += fmt.Sprintf("SELECT citus_add_node(%s, %d);", sqlquote.Literal(w.Host), w.Port)
			}
		}
		var err error
		if i == 0 {
			err = registerNodes(ctx, nodeURL(n, "postgres", ""), nodeURL(n, name, ""), sql)
		} else {
			err = execOn(ctx, nodeURL(n, name, ""), sql)
		}
		if err != nil {
			tb.Fatalf("pgtenancytest: set up Citus in database %s on %s:%d: %v", name, n.Host, n.Port, err)
		}
	}
	coord := citus.coordinator
	return &CitusDB{
		DB: DB{
			Name:     name,
			AdminURL: nodeURL(coord, name, ""),
			OwnerURL: nodeURL(coord, name, OwnerRole),
			AppURL:   nodeURL(coord, name, AppRole),
		},
		Coordinator: coord,
		Workers:     append([]CitusNode(nil), citus.workers...),
		nodeURL:     func(n CitusNode) string { return nodeURL(n, name, "") },
	}
}

// NodeAdminURL returns the URL of this database on node n (a worker or the
// coordinator) as the admin role, to look at a shard directly.
func (db *CitusDB) NodeAdminURL(n CitusNode) string { return db.nodeURL(n) }

// loadCitusCluster reads the nodes from the coordinator's metadata and
// creates the test roles, which Citus propagates to the workers.
func loadCitusCluster(adminURL string) citusCluster {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := citusCluster{adminURL: adminURL}
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		c.err = err
		return c
	}
	cfg.MaxConns = 2
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		c.err = err
		return c
	}
	defer p.Close()
	rows, err := p.Query(ctx, `SELECT groupid = 0, nodename, nodeport FROM pg_catalog.pg_dist_node
		WHERE noderole = 'primary' AND isactive ORDER BY nodeid`)
	if err != nil {
		c.err = fmt.Errorf("reading pg_dist_node (is it a Citus coordinator?): %w", err)
		return c
	}
	var coord bool
	var n CitusNode
	_, err = pgx.ForEachRow(rows, []any{&coord, &n.Host, &n.Port}, func() error {
		if coord {
			c.coordinator = n
		} else {
			c.workers = append(c.workers, n)
		}
		return nil
	})
	switch {
	case err != nil:
		c.err = err
	case len(c.workers) == 0:
		c.err = fmt.Errorf("no worker in pg_dist_node")
	case c.coordinator.Host == "":
		u := cfg.ConnConfig
		c.coordinator = CitusNode{Host: u.Host, Port: int(u.Port)}
	}
	if c.err == nil {
		c.err = ensureCitusRoles(ctx, p)
	}
	return c
}

// ensureCitusRoles runs ensureRoles under the lock that node registration
// takes: Citus propagates ALTER ROLE to the workers, where it deadlocks with
// another process's node activation. A distributed deadlock is retried, and
// so is "tuple concurrently updated" (XX000), which the workers still report
// now and then when several test processes start at once.
func ensureCitusRoles(ctx context.Context, p *pgxpool.Pool) error {
	conn, err := p.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtext('pgtenancytest citus nodes'))"); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtext('pgtenancytest citus nodes'))") //nolint:errcheck
	for attempt := 0; ; attempt++ {
		err = ensureRoles(ctx, p)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 4 || !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Message != "tuple concurrently updated") {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// registerNodes runs sql, which registers the nodes, on dbURL while it holds
// an advisory lock on lockURL: Citus's node activation alters the roles on
// the workers, and two at once in different databases fail with "tuple
// concurrently updated", also across test processes.
func registerNodes(ctx context.Context, lockURL, dbURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	lock, err := pgx.Connect(ctx, lockURL)
	if err != nil {
		return err
	}
	defer lock.Close(context.WithoutCancel(ctx))
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(hashtext('pgtenancytest citus nodes'))"); err != nil {
		return err
	}
	return execOn(ctx, dbURL, sql)
}

func execOn(ctx context.Context, connURL, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
