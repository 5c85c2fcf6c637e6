package pool_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// storeTemplate is the store schema (bigint tenants) seeded with stores A, B
// and C, the library objects installed and tenant isolation applied.
var storeTemplate = &pgtenancytest.Template{
	Name: "pool_store",
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
	tenants          = testschema.Tenants(rls.BigInt)
	tenantA, tenantB = tenants[0], tenants[1]
	tenantC          = tenants[2]
)

// products of each store in the seed.
var seedProducts = map[rls.Tenant][]int64{
	tenantA: {101, 102, 103},
	tenantB: {201, 202},
	tenantC: {301},
}

// execModes are every pgx query exec mode.
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

// poolOpts tune newPool.
type poolOpts struct {
	mode     pgx.QueryExecMode
	maxConns int32
	citus    bool
	counter  *tripCounter
	url      string // default: the database's AppURL
	tune     func(*pgxpool.Config)
}

// newPool returns a pgtenancy pool connected as the app role.
func newPool(t testing.TB, db *pgtenancytest.DB, o poolOpts) *pool.Pool {
	t.Helper()
	url := o.url
	if url == "" {
		url = db.AppURL
	}
	cfg, err := pool.ParseConfig(url)
	require.NoError(t, err)
	configure(cfg.PoolConfig, o)
	cfg.Citus = o.citus
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func configure(pc *pgxpool.Config, o poolOpts) {
	if o.mode != 0 {
		pc.ConnConfig.DefaultQueryExecMode = o.mode
	}
	pc.MaxConns = 4
	if o.maxConns > 0 {
		pc.MaxConns = o.maxConns
	}
	// No liveness pings: they would add round trips to the counts.
	pc.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	if o.counter != nil {
		pc.ConnConfig.DialFunc = o.counter.dial
	}
	if o.tune != nil {
		o.tune(pc)
	}
}

// tripCounter wraps the connections it dials and counts round trips.
//
// A round trip is the client sending something and then waiting for the
// server's answer. pgx writes a whole request (one or more Write calls),
// then reads the response (one or more Read calls). So the counter counts
// each Read that returns data after at least one Write since the previous
// such Read: a write phase followed by a read phase is one round trip, no
// matter how many calls either phase takes. Reads without a preceding write
// (the rest of a long response) and writes that get no answer (Terminate)
// are not round trips. It also counts bytes written, to prove that nothing
// was sent at all.
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

// snapshot returns the round trips and writes so far.
func (c *tripCounter) snapshot() (trips, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trips, c.writes
}

type countingConn struct {
	net.Conn
	c     *tripCounter
	wrote bool // guarded by c.mu
}

func (cc *countingConn) Write(b []byte) (int, error) {
	// Mark the write before sending: when a write takes over 15 ms (a busy
	// machine), pgconn starts a background reader, which can read the
	// server's answer before this Write returns. Marked after the write,
	// that Read found no write, and the answer was counted with the next
	// phase's (TestRoundTrips once saw 2 round trips for 3 on a loaded
	// machine).
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

// productIDs returns the ids of the products that q shows, in order.
func productIDs(t testing.TB, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []int64 {
	t.Helper()
	rows, err := q.Query(ctx, "SELECT id FROM products ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// requireClean checks every idle connection of p: no tenant, no open
// transaction, no session state (temporary objects, cursors, LISTEN,
// advisory locks, app.user_email). It returns how many connections it
// checked.
func requireClean(t testing.TB, p *pgxpool.Pool, setting string) int {
	t.Helper()
	ctx := context.Background()
	conns := p.AcquireAllIdle(ctx)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for _, c := range conns {
		require.Equal(t, byte('I'), c.Conn().PgConn().TxStatus(), "pooled connection inside a transaction")
		var v *string
		// The simple protocol: this check must not depend on the mode.
		require.NoError(t, c.QueryRow(ctx, "SELECT current_setting($1, true)", pgx.QueryExecModeSimpleProtocol, setting).Scan(&v))
		if v != nil {
			require.Empty(t, *v, "pooled connection holds a tenant")
		}
		var temp, cursors, channels, locks int
		var email *string
		require.NoError(t, c.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()),
			(SELECT count(*) FROM pg_cursors),
			(SELECT count(*) FROM pg_listening_channels()),
			(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
			current_setting('app.user_email', true)`, pgx.QueryExecModeSimpleProtocol).Scan(&temp, &cursors, &channels, &locks, &email))
		require.Zero(t, temp, "pooled connection holds temporary objects")
		require.Zero(t, cursors, "pooled connection holds cursors")
		require.Zero(t, channels, "pooled connection listens")
		require.Zero(t, locks, "pooled connection holds advisory locks")
		require.True(t, email == nil || *email == "", "pooled connection holds app.user_email")
	}
	return len(conns)
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
