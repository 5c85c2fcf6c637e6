package stdlib_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// storeTemplate is the store schema (bigint tenants) seeded with stores A,
// B and C, the library objects installed and tenant isolation applied.
var storeTemplate = &pgtenancytest.Template{
	Name: "stdlib_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt)); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
			return err
		}
		gen, err := policy.Generate(testschema.Model(rls.BigInt, pgtenancytest.AppRole))
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, gen.Up)
		return err
	},
}

var (
	tenants                   = testschema.Tenants(rls.BigInt)
	tenantA, tenantB, tenantC = tenants[0], tenants[1], tenants[2]
)

// seedProducts are the products of each store in the seed.
var seedProducts = map[rls.Tenant][]int64{
	tenantA: {101, 102, 103},
	tenantB: {201, 202},
	tenantC: {301},
}

var execModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement,
	pgx.QueryExecModeCacheDescribe,
	pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec,
	pgx.QueryExecModeSimpleProtocol,
}

// forEachMode runs fn as a parallel subtest per exec mode.
func forEachMode(t *testing.T, fn func(t *testing.T, mode pgx.QueryExecMode)) {
	t.Helper()
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			fn(t, mode)
		})
	}
}

func ctxFor(t rls.Tenant) context.Context { return rls.WithTenant(context.Background(), t) }

// dbOpts tune openDB.
type dbOpts struct {
	mode     pgx.QueryExecMode
	url      string // default: the database's AppURL
	citus    bool
	reset    bool
	maxConns int
	counter  *tripCounter
}

// openDB returns a *sql.DB through pgtenancy's connector, connected as the
// app role, without liveness pings (they would add round trips).
func openDB(t testing.TB, db *pgtenancytest.DB, o dbOpts) *sql.DB {
	t.Helper()
	url := o.url
	if url == "" {
		url = db.AppURL
	}
	cfg, err := stdlib.ParseConfig(url)
	require.NoError(t, err)
	if o.mode != 0 {
		cfg.ConnConfig.DefaultQueryExecMode = o.mode
	}
	if o.counter != nil {
		cfg.ConnConfig.DialFunc = o.counter.dial
	}
	cfg.Citus = o.citus
	cfg.ResetSession = o.reset
	cfg.Options = append(cfg.Options, pgxstdlib.OptionShouldPing(func(context.Context, pgxstdlib.ShouldPingParams) bool { return false }))
	sdb, err := stdlib.OpenDB(context.Background(), cfg)
	require.NoError(t, err)
	if o.maxConns > 0 {
		sdb.SetMaxOpenConns(o.maxConns)
		sdb.SetMaxIdleConns(o.maxConns)
	}
	t.Cleanup(func() { require.NoError(t, sdb.Close()) })
	return sdb
}

// productIDs returns the ids of the products that q shows, in order.
func productIDs(t testing.TB, ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) []int64 {
	t.Helper()
	rows, err := q.QueryContext(ctx, "SELECT id FROM products ORDER BY id")
	require.NoError(t, err)
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	return ids
}

// requireClean checks every idle connection of sdb (it takes them all):
// no open transaction, no tenant, no session state. It returns how many it
// checked.
func requireClean(t testing.TB, sdb *sql.DB) int {
	t.Helper()
	ctx := context.Background()
	n := sdb.Stats().Idle
	var conns []*sql.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for range n {
		c, err := sdb.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		require.NoError(t, c.Raw(func(dc any) error {
			pc := stdlib.PgxConn(dc)
			require.Equal(t, byte('I'), pc.PgConn().TxStatus(), "pooled connection inside a transaction")
			var v *string
			var temp, cursors, channels, locks int
			var email *string
			require.NoError(t, pc.QueryRow(ctx, `SELECT current_setting('app.current_tenant', true),
				(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
				(SELECT count(*) FROM pg_cursors),
				(SELECT count(*) FROM pg_listening_channels()),
				(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
				current_setting('app.user_email', true)`, pgx.QueryExecModeSimpleProtocol).Scan(&v, &temp, &cursors, &channels, &locks, &email))
			require.True(t, v == nil || *v == "", "pooled connection holds a tenant")
			require.Zero(t, temp, "pooled connection holds temporary objects")
			require.Zero(t, cursors, "pooled connection holds cursors")
			require.Zero(t, channels, "pooled connection listens")
			require.Zero(t, locks, "pooled connection holds advisory locks")
			require.True(t, email == nil || *email == "", "pooled connection holds app.user_email")
			return nil
		}))
	}
	return n
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// tripCounter wraps the connections it dials and counts round trips: a
// write phase followed by a read phase is one (see pool's tests).
type tripCounter struct {
	mu     sync.Mutex
	trips  int
	writes int
}

func (c *tripCounter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: c}, nil
}

func (c *tripCounter) snapshot() (trips, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips, c.writes
}

type countingConn struct {
	net.Conn
	c     *tripCounter
	wrote bool
}

func (cc *countingConn) Write(b []byte) (int, error) {
	if len(b) > 0 {
		cc.c.mu.Lock()
		cc.wrote = true
		cc.c.mu.Unlock()
	}
	n, err := cc.Conn.Write(b)
	if n > 0 {
		cc.c.mu.Lock()
		cc.c.writes++
		cc.c.mu.Unlock()
	}
	return n, err
}

func (cc *countingConn) Read(b []byte) (int, error) {
	n, err := cc.Conn.Read(b)
	if n > 0 {
		cc.c.mu.Lock()
		if cc.wrote {
			cc.c.trips++
			cc.wrote = false
		}
		cc.c.mu.Unlock()
	}
	return n, err
}
