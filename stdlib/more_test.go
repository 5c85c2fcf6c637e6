package stdlib_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/ci"
	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
	"github.com/pgtenancy/pgtenancy/verify"
)

// startPgBouncer starts pgbouncer in transaction pooling mode in front of
// the test server and returns the URL of db through it.
func startPgBouncer(t testing.TB, db *pgtenancytest.DB, poolSize int) string {
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
	})
	if errors.Is(err, pgcluster.ErrNoPgBouncer) {
		if ci.On() {
			t.Fatalf("%v", err)
		}
		t.Skipf("%v; install it to run the PgBouncer tests", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Stop()) })
	u, err := b.URL(db.AppURL)
	require.NoError(t, err)
	return u
}

// TestPgBouncer: 16 goroutines on 24 database/sql connections share 3
// server connections behind pgbouncer in transaction pooling mode, reading
// and writing for random tenants, in statements, prepared statements and
// transactions: every read sees only its tenant's rows and every insert
// lands with its tenant. The modes are those that need no named prepared
// statement across transactions (docs/pgbouncer.md).
func TestPgBouncer(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{
		pgx.QueryExecModeExec,
		pgx.QueryExecModeSimpleProtocol,
		pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec,
	} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplate)
			sdb := openDB(t, db, dbOpts{mode: mode, url: startPgBouncer(t, db, 3), maxConns: 24})
			stmt, err := sdb.PrepareContext(context.Background(), "SELECT count(*) FILTER (WHERE store_id <> $1), count(*) FROM products")
			require.NoError(t, err)
			defer stmt.Close()
			var mu sync.Mutex
			inserted := map[rls.Tenant]int{}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 2))
					for i := range 40 {
						tn := tenants[rng.IntN(3)]
						ctx := ctxFor(tn)
						var foreign, total int
						var err error
						switch i % 3 {
						case 0:
							err = stmt.QueryRowContext(ctx, tn.String()).Scan(&foreign, &total)
						case 1:
							_, err = sdb.ExecContext(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'bounced', 1, 'EUR')", tn.String())
							if err == nil {
								mu.Lock()
								inserted[tn]++
								mu.Unlock()
							}
						case 2:
							err = func() error {
								tx, err := sdb.BeginTx(ctx, nil)
								if err != nil {
									return err
								}
								defer tx.Rollback() //nolint:errcheck // after Commit
								if err := tx.QueryRowContext(ctx, "SELECT count(*) FILTER (WHERE store_id <> $1), count(*) FROM products", tn.String()).Scan(&foreign, &total); err != nil {
									return err
								}
								return tx.Commit()
							}()
						}
						if err == nil && foreign != 0 {
							err = fmt.Errorf("tenant %v saw %d rows of other tenants", tn, foreign)
						}
						if err != nil {
							errs <- fmt.Errorf("goroutine %d op %d: %w", g, i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			for _, tn := range tenants {
				var n int
				require.NoError(t, db.AdminConn(t).QueryRow(context.Background(),
					"SELECT count(*) FROM products WHERE store_id = $1 AND name = 'bounced'", tn.String()).Scan(&n))
				assert.Equal(t, inserted[tn], n, "inserts of %v", tn)
			}
		})
	}
}

// TestCitusCluster runs the isolation proof list through database/sql with
// Config.Citus against a real Citus cluster (CITUS_URL), as the
// application role, in every exec mode.
func TestCitusCluster(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewCitusDB(t)
		ctx := t.Context()
		owner := db.OwnerConn(t)
		_, err := owner.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt))
		require.NoError(t, err)
		require.NoError(t, migrations.Install(ctx, owner, migrations.Options{}))
		m := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
		m.Citus = true
		mig, err := catalog.Plan(ctx, owner, m)
		require.NoError(t, err)
		require.NoError(t, pgx.BeginFunc(ctx, owner, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, mig.Up)
			return err
		}))
		sdb := openDB(t, &db.DB, dbOpts{mode: mode, citus: true, maxConns: 4})
		proofList(t, sdb, true)
		var propagate string
		require.NoError(t, sdb.QueryRowContext(ctxFor(tenantB), "SELECT current_setting('citus.propagate_set_commands')").Scan(&propagate))
		assert.Equal(t, "local", propagate)
	})
}

// TestAudit: Config.Audit = verify.AuditConn(...) audits the database
// before OpenDB returns, and refuses a database with a hole.
func TestAudit(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	ctx := context.Background()
	open := func(url string) (*sql.DB, error) {
		cfg, err := stdlib.ParseConfig(url)
		require.NoError(t, err)
		cfg.Audit = verify.AuditConn(verify.Options{Model: testschema.Model(rls.BigInt, "")})
		return stdlib.OpenDB(ctx, cfg)
	}
	sdb, err := open(db.AppURL)
	require.NoError(t, err)
	assert.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), sdb))
	require.NoError(t, sdb.Close())

	_, err = db.OwnerConn(t).Exec(ctx, "ALTER TABLE products NO FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)
	sdb, err = open(db.AppURL)
	assert.Nil(t, sdb)
	require.ErrorIs(t, err, verify.ErrFailed)
	assert.ErrorContains(t, err, string(verify.CodeRLSNotForced))
	_, err = open(db.OwnerURL)
	assert.ErrorContains(t, err, string(verify.CodeAppRoleOwnsTable), "connecting as the owner is refused")
}
