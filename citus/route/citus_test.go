package route_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/citus/route"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

var (
	tenants          = testschema.Tenants(rls.BigInt)
	tenantA, tenantB = tenants[0], tenants[1]
)

func ctxFor(t rls.Tenant) context.Context { return rls.WithTenant(context.Background(), t) }

// citusStoreDB is the seeded store schema on a fresh Citus database,
// distributed (32 shards, the cluster's default) and isolated by the
// migration that catalog.Plan writes, applied as the tables' owner.
func citusStoreDB(t testing.TB) *pgtenancytest.CitusDB {
	t.Helper()
	db := pgtenancytest.NewCitusDB(t)
	ctx := context.Background()
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
	return db
}

// routedPool is a Citus-mode pool, as the application role, with the
// rewriter of the tables Load reads (as the application role).
func routedPool(t testing.TB, db *pgtenancytest.CitusDB, mode pgx.QueryExecMode) (*pool.Pool, *route.Rewriter) {
	t.Helper()
	tables, err := route.Load(context.Background(), db.AppConn(t))
	require.NoError(t, err)
	rw, err := route.New(tables, route.Options{})
	require.NoError(t, err)
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = mode
	cfg.Citus = true
	cfg.Rewriter = rw
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p, rw
}

var execModes = []pgx.QueryExecMode{
	pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec,
	pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol,
}

func count(t *testing.T, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, q.QueryRow(ctx, sql, args...).Scan(&n), sql)
	return n
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// TestCitusLoad: Load finds the three tenant tables and their tenant
// columns, not the reference table.
func TestCitusLoad(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	tables, err := route.Load(context.Background(), db.AppConn(t))
	require.NoError(t, err)
	assert.Equal(t, []route.Table{
		{Schema: "public", Name: "products", Column: "store_id", Visible: true},
		{Schema: "public", Name: "purchases", Column: "store_id", Visible: true},
		{Schema: "public", Name: "stores", Column: "id", Visible: true},
	}, tables)
}

// TestCitusIsolationWithRewrite: the isolation proof list through a
// Citus-mode pool with the rewrite on, in every exec mode, as the
// application role (NOSUPERUSER NOBYPASSRLS, owning nothing). Statements
// the rewriter leaves alone are still isolated, and counted.
func TestCitusIsolationWithRewrite(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	var super, bypass bool
	require.NoError(t, db.AppConn(t).QueryRow(context.Background(),
		"SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").Scan(&super, &bypass))
	require.False(t, super || bypass)
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			p, rw := routedPool(t, db, mode)
			a, b := ctxFor(tenantA), ctxFor(tenantB)
			reads := []struct {
				sql     string
				args    []any
				a, b    int64
				outcome route.Outcome
			}{
				{"SELECT count(*) FROM stores", nil, 1, 1, route.Rewritten},
				{"SELECT count(*) FROM products", nil, 3, 2, route.Rewritten},
				{"SELECT count(*) FROM products WHERE id = $1", []any{int64(101)}, 1, 0, route.Rewritten},
				{"SELECT count(*) FROM products WHERE store_id = $1", []any{tenantB.String()}, 0, 2, route.Rewritten},
				{"SELECT count(*) FROM products WHERE id IN (201, 202, 301)", nil, 0, 2, route.Rewritten},
				{"SELECT count(*) FROM purchases pu JOIN products p ON p.store_id = pu.store_id AND p.id = pu.product_id", nil, 3, 2, route.Rewritten},
				{"SELECT count(*) FROM products p JOIN stores s ON s.id = p.store_id JOIN currencies c ON c.code = p.currency", nil, 3, 2, route.Rewritten},
				{"SELECT count(*) FROM products p WHERE id IN (SELECT product_id FROM purchases WHERE store_id = p.store_id)", nil, 3, 2, route.Rewritten},
				{"SELECT count(*) FROM stores s LEFT JOIN products p ON p.store_id = s.id", nil, 3, 2, route.Rewritten},
				{"WITH x AS (SELECT id FROM products) SELECT count(*) FROM x", nil, 3, 2, route.Rewritten},
				{"SELECT sum(price_cents) FROM products", nil, 600, 3000, route.Rewritten},
				{"SELECT count(*) FROM currencies", nil, 2, 2, route.NoTenantTable},
				// Left alone: still isolated.
				{"SELECT count(*) FROM products p(s, i)", nil, 3, 2, route.LeftAlone},
				{"SELECT count(*) FROM products p FULL JOIN purchases u ON u.product_id = p.id AND u.store_id = p.store_id", nil, 3, 2, route.LeftAlone},
			}
			for _, r := range reads {
				assert.Equal(t, r.a, count(t, a, p, r.sql, r.args...), "A: %s", r.sql)
				assert.Equal(t, r.b, count(t, b, p, r.sql, r.args...), "B: %s", r.sql)
				assert.Equal(t, r.outcome, rw.Analyze(r.sql).Outcome, r.sql)
			}
			assert.Equal(t, int64(2), rw.Stats().LeftAlone, "the statements left alone are counted")

			errRollback := errors.New("roll back")
			require.ErrorIs(t, p.BeginFunc(a, func(tx pgx.Tx) error {
				sp := func(sql string, args ...any) (pgconn.CommandTag, error) {
					s, err := tx.Begin(a)
					require.NoError(t, err)
					tag, err := s.Exec(a, sql, args...)
					if err != nil {
						_ = s.Rollback(a)
						return tag, err
					}
					return tag, s.Commit(a)
				}
				_, err := sp("INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", tenantA.String())
				assert.NoError(t, err, "insert for own tenant")
				_, err = sp("INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", tenantB.String())
				assert.Equal(t, "42501", sqlState(err), "insert for another tenant: %v", err)
				tag, err := sp("UPDATE products SET price_cents = 0 WHERE store_id = $1", tenantB.String())
				require.NoError(t, err)
				assert.Zero(t, tag.RowsAffected(), "update of another tenant's rows")
				tag, err = sp("UPDATE products SET price_cents = 0 WHERE id = 201")
				require.NoError(t, err)
				assert.Zero(t, tag.RowsAffected())
				tag, err = sp("DELETE FROM purchases WHERE id IN (SELECT id FROM purchases WHERE store_id = $1)", tenantB.String())
				require.NoError(t, err)
				assert.Zero(t, tag.RowsAffected(), "delete of another tenant's rows")
				_, err = sp("UPDATE products SET store_id = $1 WHERE id = 101", tenantB.String())
				assert.Error(t, err, "moving a row to another tenant")
				_, err = sp("INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", tenantA.String())
				assert.Equal(t, "23503", sqlState(err), "purchase of A pointing at B's product: %v", err)
				bought := count(t, a, tx, "SELECT count(DISTINCT product_id) FROM purchases")
				tag, err = sp("UPDATE products p SET name = p.name FROM purchases u WHERE u.product_id = p.id AND u.store_id = p.store_id")
				require.NoError(t, err)
				assert.Equal(t, bought, tag.RowsAffected(), "UPDATE ... FROM touches the tenant's rows only")
				tag, err = sp("DELETE FROM purchases")
				require.NoError(t, err)
				assert.EqualValues(t, 3, tag.RowsAffected(), "an unfiltered delete touches only the tenant's rows")
				return errRollback
			}), errRollback)
			assert.Equal(t, int64(3000), count(t, b, p, "SELECT sum(price_cents) FROM products"))
			assert.Equal(t, int64(2), count(t, b, p, "SELECT count(*) FROM purchases"))

			_, err := p.Exec(context.Background(), "SELECT 1 FROM products")
			assert.ErrorIs(t, err, rls.ErrNoTenant)
		})
	}
}

// explain returns the plan of sql (EXPLAIN through p, rewritten).
func explain(t *testing.T, ctx context.Context, p *pool.Pool, sql string, args ...any) string {
	t.Helper()
	rows, err := p.Query(ctx, "EXPLAIN "+sql, args...)
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err, sql)
	return strings.Join(lines, "\n")
}

// TestCitusRouted: EXPLAIN through the pool shows a single-shard router
// plan (Task Count: 1) for point queries, joins between co-located tenant
// tables, UPDATE and DELETE, in every exec mode; without the rewriter the
// same statements go to every shard.
func TestCitusRouted(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	stmts := []struct {
		sql  string
		args []any
	}{
		{"SELECT * FROM products WHERE id = $1", []any{int64(101)}},
		{"SELECT name FROM products WHERE price_cents > 10", nil},
		{"SELECT p.name, u.quantity FROM products p JOIN purchases u ON u.product_id = p.id AND u.store_id = p.store_id WHERE p.id = $1", []any{int64(101)}},
		{"SELECT s.name, count(p.id) FROM stores s LEFT JOIN products p ON p.store_id = s.id GROUP BY s.name", nil},
		{"SELECT * FROM products WHERE id IN (SELECT product_id FROM purchases WHERE quantity > $1)", []any{int64(1)}},
		{"UPDATE products SET price_cents = price_cents + 1 WHERE id = $1 RETURNING id", []any{int64(101)}},
		{"DELETE FROM purchases WHERE id = $1", []any{int64(1001)}},
	}
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			p, _ := routedPool(t, db, mode)
			ctx := ctxFor(tenantA)
			for _, s := range stmts {
				assert.Contains(t, explain(t, ctx, p, s.sql, s.args...), "Task Count: 1\n", s.sql)
			}
		})
	}
	// Without the rewriter: every shard.
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.Citus = true
	plain, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer plain.Close()
	var shards int
	require.NoError(t, db.AdminConn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'products'::regclass").Scan(&shards))
	assert.Contains(t, explain(t, ctxFor(tenantA), plain, stmts[0].sql, stmts[0].args...), fmt.Sprintf("Task Count: %d\n", shards))
}

// TestCitusCheck: Check reports the statements that fan out, with the
// table responsible, and nothing for those that route.
func TestCitusCheck(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	p, rw := routedPool(t, db, pgx.QueryExecModeCacheStatement)
	qs, err := route.ParseSQLC(`-- name: GetProduct :one
SELECT * FROM products WHERE id = $1;

-- name: ListPurchases :many
SELECT p.name, u.quantity FROM products p
JOIN purchases u ON u.product_id = p.id AND u.store_id = p.store_id;

-- name: Renamed :many
SELECT * FROM products p(s, i) WHERE i > 100;

-- name: Full :many
SELECT 1 FROM products p FULL JOIN purchases u ON u.product_id = p.id AND u.store_id = p.store_id;

-- name: Currencies :many
SELECT * FROM currencies;

-- name: Broken :exec
SELECT * FROM no_such_table;
`)
	require.NoError(t, err)
	require.Len(t, qs, 6)
	fs, err := rw.Check(ctxFor(tenantA), p, qs)
	require.NoError(t, err)
	got := map[string]route.Finding{}
	for _, f := range fs {
		got[f.Name] = f
		t.Log(f)
	}
	require.Len(t, got, 3, "%v", fs)
	assert.Equal(t, []string{"products"}, got["Renamed"].Tables)
	assert.Greater(t, got["Renamed"].TaskCount, 1)
	assert.Equal(t, route.LeftAlone, got["Renamed"].Outcome)
	assert.Equal(t, []string{"products", "purchases"}, got["Full"].Tables)
	assert.Error(t, got["Broken"].Err)
}

// TestCitusRoutedDatabaseSQL: the same rewriter in database/sql
// (stdlib.Config.Rewriter) routes each statement to one shard, outside and
// inside a transaction, in every exec mode, and isolation holds.
func TestCitusRoutedDatabaseSQL(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	tables, err := route.Load(context.Background(), db.AppConn(t))
	require.NoError(t, err)
	rw, err := route.New(tables, route.Options{})
	require.NoError(t, err)
	explainSQL := func(t *testing.T, ctx context.Context, q interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}, query string, args ...any) string {
		t.Helper()
		rows, err := q.QueryContext(ctx, "EXPLAIN "+query, args...)
		require.NoError(t, err, query)
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var l string
			require.NoError(t, rows.Scan(&l))
			lines = append(lines, l)
		}
		require.NoError(t, rows.Err())
		return strings.Join(lines, "\n")
	}
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			cfg, err := stdlib.ParseConfig(db.AppURL)
			require.NoError(t, err)
			cfg.ConnConfig.DefaultQueryExecMode = mode
			cfg.Citus = true
			cfg.Rewriter = rw
			sdb, err := stdlib.OpenDB(context.Background(), cfg)
			require.NoError(t, err)
			defer sdb.Close()
			ctx := ctxFor(tenantA)
			const point = "SELECT * FROM products WHERE id = $1"
			assert.Contains(t, explainSQL(t, ctx, sdb, point, int64(101)), "Task Count: 1\n")
			tx, err := sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
			assert.Contains(t, explainSQL(t, ctx, tx, "SELECT name FROM products WHERE price_cents > 10"), "Task Count: 1\n")
			require.NoError(t, tx.Rollback())
			for _, tn := range tenants {
				var n int64
				require.NoError(t, sdb.QueryRowContext(ctxFor(tn), "SELECT count(*) FROM products").Scan(&n))
				var want int64
				require.NoError(t, db.AdminConn(t).QueryRow(context.Background(), "SELECT count(*) FROM products WHERE store_id = $1", tn.String()).Scan(&want))
				assert.Equal(t, want, n, "tenant %s sees its own products only", tn)
			}
		})
	}
}
