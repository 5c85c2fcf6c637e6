package stress_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/ci"
	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

var (
	stressDuration = flag.Duration("stress.duration", 20*time.Second,
		"how long TestStress runs its workload (CI: at most 60s)")
	stressSeed = flag.Uint64("stress.seed", 0, "seed of TestStress's random choices; 0 picks one from the clock")
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// The tenants of the stress test are the stores firstTenant ..
// firstTenant+numTenants-1, each seeded with two products and a purchase.
const (
	firstTenant = 1000
	numTenants  = 1000
)

// tokenPrefix starts the name of every product the workload writes:
// stress:<tenant>:<goroutine>:<seq>, so the final check knows which tenant
// each row must belong to.
const tokenPrefix = "stress:"

// storeTemplate is the store schema (bigint keys) with 1,000 more stores,
// the library installed and tenant isolation applied. products.store_id
// defaults to the current tenant setting, so that an INSERT without
// store_id lands wherever the connection's setting points: a tenant leaking
// from one unit of work to the next would put rows in the wrong tenant, and
// the final check would see it.
var storeTemplate = &pgtenancytest.Template{
	Name: "stress_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt)); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		_, err := conn.Exec(ctx, fmt.Sprintf(`
			INSERT INTO stores (id, name) SELECT g, 'store ' || g FROM generate_series(%[1]d, %[2]d) g;
			INSERT INTO products (store_id, name, price_cents, currency)
				SELECT g, 'seed ' || g || ' ' || i, 100, 'EUR' FROM generate_series(%[1]d, %[2]d) g, generate_series(1, 2) i;
			INSERT INTO purchases (store_id, product_id, quantity)
				SELECT store_id, min(id), 1 FROM products WHERE store_id >= %[1]d GROUP BY store_id;
			ALTER TABLE products ALTER COLUMN store_id SET DEFAULT NULLIF(current_setting('app.current_tenant', true), '')::bigint;
			CREATE INDEX products_name_idx ON products (name);
			ANALYZE;`, firstTenant, firstTenant+numTenants-1))
		if err != nil {
			return fmt.Errorf("seed: %w", err)
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

// startPgBouncer starts pgbouncer in transaction pooling mode in front of
// the test server, knowing the app role, and returns the URL of db's app
// role through it. Without pgbouncer on the machine it returns "" (and
// fails the test on CI).
func startPgBouncer(t *testing.T, db *pgtenancytest.DB, poolSize int) string {
	t.Helper()
	server, err := url.Parse(pgtenancytest.ServerURL(t))
	require.NoError(t, err)
	host, portStr, err := net.SplitHostPort(server.Host)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	app, err := url.Parse(db.AppURL)
	require.NoError(t, err)
	password, _ := app.User.Password()
	b, err := pgcluster.StartPgBouncer(context.Background(), host, port, pgcluster.PgBouncerOptions{
		PoolSize: poolSize,
		Users:    map[string]string{pgtenancytest.AppRole: password},
		Settings: map[string]string{
			// Retry a failed server login after 1 s, not 15: the server
			// restarts during the test.
			"server_login_retry": "1",
		},
	})
	if errors.Is(err, pgcluster.ErrNoPgBouncer) {
		if ci.On() {
			t.Fatalf("%v", err)
		}
		t.Logf("%v: the PgBouncer half of the test does not run", err)
		return ""
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Stop()) })
	u, err := b.URL(db.AppURL)
	require.NoError(t, err)
	return u
}

// isFault reports whether err is what an injected fault causes: a killed
// backend or a restarting server (SQLSTATE classes 08 and 57, a closed
// connection, a failed dial), a cancelled or timed-out context, or a
// statement timeout (57014). Any other error is a bug the test reports.
func isFault(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "57":
			return true
		}
		// 25P02: the transaction was aborted by a fault earlier in it;
		// 58P01/XX000: pgbouncer's own errors when its server went away.
		if pgErr.Code == "25P02" || pgErr.Code == "58P01" {
			return true
		}
		return pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC" ||
			pgErr.Code == "XX000" && isBouncerMessage(pgErr.Message)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, net.ErrClosed), errors.Is(err, pgx.ErrTxClosed):
		return true
	}
	// pgconn reports a connection that a fault closed under it in these
	// words, without a typed error.
	return containsAny(err.Error(), "conn closed", "conn is closed", "closed pool", "connection closed",
		"unexpected EOF", "broken pipe", "connection reset", "timeout: context", "failed to deallocate")
}

func isBouncerMessage(m string) bool {
	return containsAny(m, "server conn crashed", "server closed", "client_login_timeout", "pgbouncer")
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// sqlState returns err's SQLSTATE, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
