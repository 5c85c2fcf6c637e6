package pool_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// tenantD is a store that TestCitusCluster adds to the seed, for its
// copies.
var tenantD = rls.Int64(4)

// citusStoreDB is the seeded store schema on a fresh Citus database (see
// pgtenancytest.NewCitusDB), distributed and isolated by the Citus migration
// that catalog.Plan writes, applied as the tables' owner.
func citusStoreDB(t *testing.T) *pgtenancytest.CitusDB {
	t.Helper()
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
	var n int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_dist_partition WHERE partmethod = 'h'").Scan(&n))
	require.Equal(t, 3, n, "the tenant tables are distributed")
	return db
}

// TestCitusCluster runs the pool with its Citus option against a real
// Citus cluster (CITUS_URL), as the application role, in every query exec
// mode: each way of running work sees only the tenant's rows, router
// queries (with the tenant filter) and multi-shard queries alike, and
// writes for another tenant fail.
func TestCitusCluster(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	_, err := db.AdminConn(t).Exec(t.Context(), "INSERT INTO stores (id, name) VALUES ($1, 'Store D')", tenantD.String())
	require.NoError(t, err)
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		p := newPool(t, &db.DB, poolOpts{mode: mode, citus: true, maxConns: 8})
		ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)

		t.Run("Query and QueryRow", func(t *testing.T) {
			for _, tenant := range tenants {
				assert.Equal(t, seedProducts[tenant], productIDs(t, ctxFor(tenant), p))
			}
			var n int
			require.NoError(t, p.QueryRow(ctxA, "SELECT count(*) FROM products WHERE store_id = $1", tenantA.String()).Scan(&n))
			assert.Equal(t, 3, n, "router query")
			require.NoError(t, p.QueryRow(ctxA, "SELECT count(*) FROM products WHERE store_id = $1", tenantB.String()).Scan(&n))
			assert.Equal(t, 0, n, "router query to another tenant's shard")
			require.NoError(t, p.QueryRow(ctxA, "SELECT count(*) FROM purchases pu JOIN products pr ON pr.store_id = pu.store_id AND pr.id = pu.product_id").Scan(&n))
			assert.Equal(t, 3, n, "co-located join")
			var propagate, setting string
			require.NoError(t, p.QueryRow(ctxB, "SELECT current_setting('citus.propagate_set_commands'), current_setting('app.current_tenant')").Scan(&propagate, &setting))
			assert.Equal(t, "local", propagate)
			assert.Equal(t, tenantB.String(), setting)
		})

		t.Run("Exec", func(t *testing.T) {
			_, err := p.Exec(ctxA, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", tenantB.String())
			assert.Equal(t, "42501", sqlState(err), "insert for another tenant: %v", err)
			tag, err := p.Exec(ctxA, "UPDATE products SET price_cents = price_cents WHERE store_id = $1", tenantB.String())
			require.NoError(t, err)
			assert.EqualValues(t, 0, tag.RowsAffected())
			tag, err = p.Exec(ctxA, "UPDATE products SET price_cents = price_cents")
			require.NoError(t, err)
			assert.EqualValues(t, 3, tag.RowsAffected(), "multi-shard update touches the tenant's rows only")
		})

		t.Run("Begin and BeginFunc", func(t *testing.T) {
			tx, err := p.Begin(ctxA)
			require.NoError(t, err)
			assert.Equal(t, seedProducts[tenantA], productIDs(t, ctxA, tx))
			_, err = tx.Exec(ctxA, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'tx', 1, 'EUR')", tenantA.String())
			require.NoError(t, err)
			var n int
			require.NoError(t, tx.QueryRow(ctxA, "SELECT count(*) FROM products").Scan(&n))
			assert.Equal(t, 4, n)
			require.NoError(t, tx.Rollback(ctxA))

			err = p.BeginFunc(ctxB, func(tx pgx.Tx) error {
				assert.Equal(t, seedProducts[tenantB], productIDs(t, ctxB, tx))
				_, err := tx.Exec(ctxB, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", tenantA.String())
				return err
			})
			assert.Equal(t, "42501", sqlState(err), "%v", err)
		})

		t.Run("SendBatch", func(t *testing.T) {
			b := &pgx.Batch{}
			b.Queue("SELECT count(*) FROM products")
			b.Queue("SELECT count(*) FROM purchases WHERE store_id = $1", tenantB.String())
			br := p.SendBatch(ctxA, b)
			var n1, n2 int
			require.NoError(t, br.QueryRow().Scan(&n1))
			require.NoError(t, br.QueryRow().Scan(&n2))
			require.NoError(t, br.Close())
			assert.Equal(t, 3, n1)
			assert.Equal(t, 0, n2)

			b = &pgx.Batch{}
			b.BeginTx(pgx.TxOptions{})
			b.Queue("SELECT count(*) FROM products")
			br = p.SendBatch(ctxB, b)
			_, err := br.Exec() // the batch's BEGIN
			assert.NoError(t, err)
			assert.NoError(t, br.QueryRow().Scan(&n1))
			require.NoError(t, br.Close())
			tx := br.Tx()
			require.NotNil(t, tx)
			defer tx.Rollback(ctxB)
			require.NoError(t, tx.QueryRow(ctxB, "SELECT count(*) FROM purchases").Scan(&n2))
			require.NoError(t, tx.Commit(ctxB))
			assert.Equal(t, 2, n1)
			assert.Equal(t, 2, n2)
		})

		t.Run("CopyFrom", func(t *testing.T) {
			// With Citus, CopyFrom inserts with multi-row INSERT ...
			// VALUES (INSERT ... SELECT would reach the shards as COPY,
			// which row level security refuses there). 1,500 rows: two
			// statements. Tenant D: the other subtests, running
			// meanwhile in the other exec modes, count A's, B's and C's
			// rows.
			ctxC := ctxFor(tenantD)
			name := fmt.Sprintf("copy %s", mode)
			n, err := p.CopyFrom(ctxC, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(citusProductRows(tenantD, name, 1500)))
			require.NoError(t, err)
			assert.EqualValues(t, 1500, n)
			assert.Equal(t, 1500, citusCount(t, ctxC, p, name))
			assert.Zero(t, citusCount(t, ctxA, p, name), "another tenant sees none of them")

			txName := fmt.Sprintf("txcopy %s", mode)
			require.NoError(t, p.BeginFunc(ctxC, func(tx pgx.Tx) error {
				n, err := tx.CopyFrom(ctxC, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(citusProductRows(tenantD, txName, 1500)))
				assert.EqualValues(t, 1500, n)
				return err
			}))
			assert.Equal(t, 1500, citusCount(t, ctxC, p, txName))
			assert.Zero(t, citusCount(t, ctxB, p, txName))

			bad := citusProductRows(tenantD, "bad "+name, 1500)
			bad[1200][0] = tenantA.String()
			_, err = p.CopyFrom(ctxC, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
			assert.Equal(t, "42501", sqlState(err), "a row of another tenant: %v", err)
			assert.Zero(t, citusCount(t, ctxC, p, "bad "+name), "nothing of the failed copy was inserted")
			assert.Zero(t, citusCount(t, ctxA, p, "bad "+name))
		})

		t.Run("many tenants concurrently", func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 15 {
						tenant := tenants[(g+i)%3]
						ctx := ctxFor(tenant)
						rows, err := p.Query(ctx, "SELECT id FROM products ORDER BY id")
						if !assert.NoError(t, err) {
							return
						}
						ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
						assert.NoError(t, err)
						assert.Equal(t, seedProducts[tenant], ids, "tenant %s", tenant)
					}
				}()
			}
			wg.Wait()
		})

		t.Run("no tenant", func(t *testing.T) {
			_, err := p.Query(context.Background(), "SELECT 1")
			assert.ErrorIs(t, err, rls.ErrNoTenant)
			var n int
			require.NoError(t, p.Unwrap().QueryRow(context.Background(), "SELECT count(*) FROM products").Scan(&n))
			assert.Zero(t, n, "the unwrapped pool sees no tenant rows")
		})
		requireClean(t, p.Unwrap(), "app.current_tenant")
	})
}

// citusProductRows returns n products of tenant named name.
func citusProductRows(tenant rls.Tenant, name string, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{tenant.String(), name, int64(i), "EUR"}
	}
	return rows
}

// citusCount counts the products named name that the context's tenant
// sees through q.
func citusCount(t *testing.T, ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) int {
	t.Helper()
	var n int
	require.NoError(t, q.QueryRow(ctx, "SELECT count(*) FROM products WHERE name = $1", name).Scan(&n))
	return n
}

// TestCitusCopyFrom runs Pool.CopyFrom and Tx.CopyFrom on a real Citus
// cluster, as the application role: 5,000 rows (five INSERT ... VALUES
// statements) go to the tenant's shard and only the tenant sees them; a
// row of another tenant, even in the last statement, or a failure of the
// source, leaves nothing inserted.
func TestCitusCopyFrom(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	p := newPool(t, &db.DB, poolOpts{citus: true})
	ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)
	const n = 5000
	table := pgx.Identifier{"public", "products"}

	got, err := p.CopyFrom(ctxA, table, productColumns, pgx.CopyFromRows(citusProductRows(tenantA, "pool", n)))
	require.NoError(t, err)
	assert.EqualValues(t, n, got)
	assert.Equal(t, n, citusCount(t, ctxA, p, "pool"))
	assert.Zero(t, citusCount(t, ctxB, p, "pool"), "another tenant sees none of them")
	var stored int
	require.NoError(t, db.AdminConn(t).QueryRow(t.Context(),
		"SELECT count(*) FROM products WHERE name = 'pool' AND store_id = $1", tenantA.String()).Scan(&stored))
	assert.Equal(t, n, stored, "stored for tenant A (counted by the superuser, without the policies)")

	// A row of another tenant in the last statement: nothing is inserted.
	bad := citusProductRows(tenantA, "mixed", n)
	bad[n-3][0] = tenantB.String()
	_, err = p.CopyFrom(ctxA, table, productColumns, pgx.CopyFromRows(bad))
	assert.Equal(t, "42501", sqlState(err), "%v", err)
	assert.Zero(t, citusCount(t, ctxA, p, "mixed"))
	assert.Zero(t, citusCount(t, ctxB, p, "mixed"))

	// A value the table refuses (no such currency).
	bad = citusProductRows(tenantA, "badvalue", n)
	bad[n-1][3] = "XXX"
	_, err = p.CopyFrom(ctxA, table, productColumns, pgx.CopyFromRows(bad))
	assert.Equal(t, "23503", sqlState(err), "%v", err)
	assert.Zero(t, citusCount(t, ctxA, p, "badvalue"))

	// A column that does not exist.
	_, err = p.CopyFrom(ctxA, table, []string{"store_id", "nope"}, pgx.CopyFromRows([][]any{{tenantA.String(), 1}}))
	assert.ErrorContains(t, err, `column "nope" does not exist`)

	// In a transaction: the rows are there before the commit, and only
	// for the tenant.
	tx, err := p.Begin(ctxB)
	require.NoError(t, err)
	defer tx.Rollback(ctxB)
	got, err = tx.CopyFrom(ctxB, table, productColumns, pgx.CopyFromRows(citusProductRows(tenantB, "tx", n)))
	require.NoError(t, err)
	assert.EqualValues(t, n, got)
	assert.Equal(t, n, citusCount(t, ctxB, tx, "tx"))
	// A failure of the source after some statements went in takes them
	// back (a savepoint), and the transaction goes on.
	errSource := errors.New("source failed")
	_, err = tx.CopyFrom(ctxB, table, productColumns, failingSource(citusProductRows(tenantB, "txfailing", n), n-1, errSource))
	assert.ErrorIs(t, err, errSource)
	assert.Zero(t, citusCount(t, ctxB, tx, "txfailing"))
	require.NoError(t, tx.Commit(ctxB))
	assert.Equal(t, n, citusCount(t, ctxB, p, "tx"))
	assert.Zero(t, citusCount(t, ctxA, p, "tx"))

	// A row of another tenant in a transaction aborts it: nothing is
	// inserted.
	tx, err = p.Begin(ctxB)
	require.NoError(t, err)
	defer tx.Rollback(ctxB)
	bad = citusProductRows(tenantB, "txmixed", n)
	bad[n-3][0] = tenantA.String()
	_, err = tx.CopyFrom(ctxB, table, productColumns, pgx.CopyFromRows(bad))
	assert.Equal(t, "42501", sqlState(err), "%v", err)
	assert.Error(t, tx.Commit(ctxB), "the transaction is aborted")
	assert.Zero(t, citusCount(t, ctxB, p, "txmixed"))
	assert.Zero(t, citusCount(t, ctxA, p, "txmixed"))

	requireClean(t, p.Unwrap(), "app.current_tenant")
}

// TestCitusModeCopyFromTypes runs the Citus path of CopyFrom (multi-row
// INSERT ... VALUES) on plain PostgreSQL, where raw COPY into a twin table
// without RLS gives the rows to compare with: the same rows come out for
// many column types and Go value types, arrays and domains included (which
// need no temporary table on this path), for Pool.CopyFrom and
// Tx.CopyFrom; and a table of 100 columns, whose statements carry at most
// 655 rows (65,535 parameters).
func TestCitusModeCopyFromTypes(t *testing.T) {
	t.Parallel()
	const n = 5000
	rows := typedRows(n)
	db := pgtenancytest.NewDB(t, storeTemplate)
	ctx := ctxFor(tenantA)
	owner := db.OwnerConn(t)
	_, err := owner.Exec(ctx, fmt.Sprintf(typedDDL, pgtenancytest.AppRole))
	require.NoError(t, err)
	p := newPool(t, db, poolOpts{citus: true})
	_, err = p.Unwrap().CopyFrom(ctx, pgx.Identifier{"typed_plain"}, typedColumns, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	want := tableText(t, db, "typed_plain")
	require.Len(t, want, n)

	got, err := p.CopyFrom(ctx, pgx.Identifier{"typed_rls"}, typedColumns, pgx.CopyFromRows(rows))
	require.NoError(t, err)
	require.EqualValues(t, n, got)
	requireSameRows(t, want, tableText(t, db, "typed_rls"), "Pool.CopyFrom")
	_, err = db.AdminConn(t).Exec(ctx, "DELETE FROM typed_rls")
	require.NoError(t, err)
	require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
		got, err := tx.CopyFrom(ctx, pgx.Identifier{"typed_rls"}, typedColumns, pgx.CopyFromRows(rows))
		assert.EqualValues(t, n, got)
		return err
	}))
	requireSameRows(t, want, tableText(t, db, "typed_rls"), "Tx.CopyFrom")

	other := [][]any{
		{int64(1), 1, []string{"a", `b"c`, `d\e`, "", "NULL"}, 5},
		{int64(1), 2, nil, nil},
		{int64(1), 3, []any{"x", nil}, "7"},
	}
	otherCols := []string{"tenant_id", "id", "tags", "qty"}
	_, err = p.Unwrap().CopyFrom(ctx, pgx.Identifier{"other_plain"}, otherCols, pgx.CopyFromRows(other))
	require.NoError(t, err)
	got, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
	require.NoError(t, err)
	require.EqualValues(t, len(other), got)
	require.Equal(t, tableText(t, db, "other_plain"), tableText(t, db, "other_rls"))
	other[1][0] = int64(2)
	_, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
	assert.Equal(t, "42501", sqlState(err), "%v", err)
	other[1][0], other[2][3] = int64(1), 0 // fails the domain's check
	_, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
	assert.Equal(t, "23514", sqlState(err), "%v", err)
	require.Len(t, tableText(t, db, "other_rls"), 3)

	// 100 columns: 655 rows a statement.
	var ddl, cols strings.Builder
	ddl.WriteString("CREATE TABLE wide (tenant_id bigint NOT NULL")
	wideCols := []string{"tenant_id"}
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&ddl, ", c%d integer", i)
		wideCols = append(wideCols, fmt.Sprintf("c%d", i))
	}
	cols.WriteString(fmt.Sprintf(`); GRANT SELECT, INSERT ON wide TO %s;
ALTER TABLE wide ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON wide USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);`, pgtenancytest.AppRole))
	_, err = owner.Exec(ctx, ddl.String()+cols.String())
	require.NoError(t, err)
	wide := make([][]any, 2000)
	for r := range wide {
		wide[r] = make([]any, 100)
		wide[r][0] = int64(1)
		for i := 1; i < 100; i++ {
			wide[r][i] = int32(r*100 + i)
		}
	}
	got, err = p.CopyFrom(ctx, pgx.Identifier{"wide"}, wideCols, pgx.CopyFromRows(wide))
	require.NoError(t, err)
	require.EqualValues(t, len(wide), got)
	var sum int64
	require.NoError(t, db.AdminConn(t).QueryRow(ctx, "SELECT sum(c99) FROM wide").Scan(&sum))
	assert.EqualValues(t, int64(len(wide)*(len(wide)-1)/2*100+99*len(wide)), sum)
	wide[1999][0] = int64(2)
	_, err = p.CopyFrom(ctx, pgx.Identifier{"wide"}, wideCols, pgx.CopyFromRows(wide))
	assert.Equal(t, "42501", sqlState(err), "%v", err)
	require.NoError(t, db.AdminConn(t).QueryRow(ctx, "SELECT count(*) FROM wide").Scan(&sum))
	assert.EqualValues(t, len(wide), sum, "nothing of the failed copy")
	requireClean(t, p.Unwrap(), "app.current_tenant")
}

// TestCitusNaiveFailsClosed: without the Citus option, the pool sets the
// tenant with set_config, which Citus never sends to the shards: every
// query sees no rows and every write fails, on a real cluster.
func TestCitusNaiveFailsClosed(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	p := newPool(t, &db.DB, poolOpts{})
	ctx := ctxFor(tenantA)
	assert.Empty(t, productIDs(t, ctx, p))
	var n int
	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products WHERE store_id = $1", tenantA.String()).Scan(&n))
	assert.Zero(t, n, "router query")
	_, err := p.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'x', 1, 'EUR')", tenantA.String())
	assert.Equal(t, "42501", sqlState(err), "%v", err)

	// The Citus option on the same database sees the rows.
	pc := newPool(t, &db.DB, poolOpts{citus: true})
	assert.Equal(t, seedProducts[tenantA], productIDs(t, ctx, pc))

	// So does a role whose propagate_set_commands is 'local' with the
	// plain pool? No: set_config is a function call, never propagated.
	cfg, err := pool.ParseConfig(db.AppURL + "&options=-c%20citus.propagate_set_commands%3Dlocal")
	if err != nil {
		cfg, err = pool.ParseConfig(db.AppURL + "?options=-c%20citus.propagate_set_commands%3Dlocal")
	}
	require.NoError(t, err)
	plain, err := pool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	defer plain.Close()
	assert.Empty(t, productIDs(t, ctx, plain), "set_config with propagation on: still 0 rows")
}

// TestCitusMultiRowInsert shows what a bulk insert on Citus can use
// instead of INSERT ... SELECT: a multi-row INSERT ... VALUES with bind
// parameters, which Citus routes to the shards as INSERTs, so the
// policies check every row.
func TestCitusMultiRowInsert(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := citusStoreDB(t)
	p := newPool(t, &db.DB, poolOpts{citus: true})
	ctx := ctxFor(tenantC)
	const insert = "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'bulk', 1, 'EUR'), ($2, 'bulk', 2, 'EUR')"
	tag, err := p.Exec(ctx, insert, tenantC.String(), tenantC.String())
	require.NoError(t, err)
	assert.EqualValues(t, 2, tag.RowsAffected())
	_, err = p.Exec(ctx, insert, tenantC.String(), tenantA.String())
	assert.Equal(t, "42501", sqlState(err), "a row of another tenant fails the statement: %v", err)
	var n int
	require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM products WHERE name = 'bulk'").Scan(&n))
	assert.Equal(t, 2, n)
	require.NoError(t, p.QueryRow(ctxFor(tenantA), "SELECT count(*) FROM products WHERE name = 'bulk'").Scan(&n))
	assert.Zero(t, n)
}
