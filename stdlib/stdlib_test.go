package stdlib_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// variants are the configurations every isolation test runs under: the
// default (the direct path in cache_statement mode), ResetSession (always
// the batch path, with an explicit transaction) and Citus on plain
// PostgreSQL (BEGIN, set_tenant, COMMIT).
var variants = []struct {
	name         string
	reset, citus bool
}{
	{"default", false, false},
	{"ResetSession", true, false},
	{"Citus", false, true},
}

// TestIsolation runs the isolation proof list through database/sql, as the
// application role, in every exec mode and variant: reads, updates and
// deletes see only the context's tenant, writes of another tenant's rows
// and references to them are refused, work without a tenant fails before
// any I/O, and the connections come back clean.
func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
				db := pgtenancytest.NewDB(t, storeTemplate)
				sdb := openDB(t, db, dbOpts{mode: mode, reset: v.reset, citus: v.citus, maxConns: 4})
				proofList(t, sdb, false)
				require.Positive(t, requireClean(t, sdb))
			})
		})
	}
}

// proofList is the isolation proof list on sdb, seeded with the store
// schema.
func proofList(t *testing.T, sdb *sql.DB, citus bool) {
	ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)
	// refused reports whether the database refused a write for its
	// tenant. Errors relayed from Citus's workers lose the server function
	// that IsRLSViolation reads, and Citus refuses to move a row to
	// another shard before any policy sees it.
	refused := func(err error) bool {
		if citus {
			return sqlState(err) == "42501" || sqlState(err) == "0A000"
		}
		return stdlib.IsRLSViolation(err)
	}

	// Reads.
	for _, tn := range tenants {
		assert.Equal(t, seedProducts[tn], productIDs(t, ctxFor(tn), sdb), "products of %v", tn)
	}
	var n int
	require.NoError(t, sdb.QueryRowContext(ctxA, "SELECT count(*) FROM products WHERE store_id = $1", tenantB.String()).Scan(&n))
	assert.Zero(t, n, "A filtering on B's store sees nothing")

	// Updates and deletes across tenants touch nothing.
	res, err := sdb.ExecContext(ctxA, "UPDATE products SET name = 'stolen' WHERE id = 201")
	require.NoError(t, err)
	affected, err := res.RowsAffected()
	require.NoError(t, err)
	assert.Zero(t, affected, "A updating B's product")
	res, err = sdb.ExecContext(ctxA, "DELETE FROM products WHERE id IN (201, 202, 301)")
	require.NoError(t, err)
	affected, err = res.RowsAffected()
	require.NoError(t, err)
	assert.Zero(t, affected, "A deleting B's and C's products")
	assert.Equal(t, seedProducts[tenantB], productIDs(t, ctxB, sdb))
	var name string
	require.NoError(t, sdb.QueryRowContext(ctxB, "SELECT name FROM products WHERE id = 201").Scan(&name))
	assert.NotEqual(t, "stolen", name)
	// Updates within the tenant work.
	res, err = sdb.ExecContext(ctxB, "UPDATE products SET price_cents = price_cents + 1 WHERE id = $1", 201)
	require.NoError(t, err)
	affected, _ = res.RowsAffected()
	assert.EqualValues(t, 1, affected)

	// Writes of another tenant's rows are refused by the policy.
	_, err = sdb.ExecContext(ctxA, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'sneaky', 1, 'EUR')", tenantB.String())
	require.Error(t, err)
	assert.True(t, refused(err), "insert into B as A: %v", err)
	_, err = sdb.ExecContext(ctxA, "UPDATE products SET store_id = $1 WHERE id = 101", tenantB.String())
	assert.True(t, refused(err), "moving A's product to B: %v", err)

	// A reference to another tenant's row is refused by the composite key.
	_, err = sdb.ExecContext(ctxA, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 201, 1)", tenantA.String())
	assert.Equal(t, "23503", sqlState(err), "A buying B's product: %v", err)
	_, err = sdb.ExecContext(ctxA, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, 101, 1)", tenantA.String())
	require.NoError(t, err, "A buying its own product")

	// Transactions hold the tenant from BEGIN to COMMIT.
	tx, err := sdb.BeginTx(ctxB, nil)
	require.NoError(t, err)
	assert.Equal(t, seedProducts[tenantB], productIDs(t, ctxA, tx), "the transaction's tenant, not the statement's context's")
	_, err = tx.ExecContext(ctxB, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'B new', 5, 'EUR')", tenantB.String())
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	assert.Len(t, productIDs(t, ctxB, sdb), 3)
	assert.Equal(t, seedProducts[tenantA], productIDs(t, ctxA, sdb))

	// A failed write in a transaction rolls it all back.
	tx, err = sdb.BeginTx(ctxA, &sql.TxOptions{Isolation: sql.LevelSerializable})
	require.NoError(t, err)
	_, err = tx.ExecContext(ctxA, "UPDATE products SET name = 'renamed' WHERE id = 103")
	require.NoError(t, err)
	_, err = tx.ExecContext(ctxA, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'sneaky', 1, 'EUR')", tenantC.String())
	require.True(t, refused(err), "%v", err)
	require.NoError(t, tx.Rollback())
	assert.Equal(t, seedProducts[tenantA], productIDs(t, ctxA, sdb))

	// Raw connections (sql.Conn) carry the tenant of each call too.
	c, err := sdb.Conn(ctxA)
	require.NoError(t, err)
	assert.Equal(t, seedProducts[tenantA], productIDs(t, ctxA, c))
	assert.Equal(t, productIDs(t, ctxB, sdb), productIDs(t, ctxB, c))
	require.NoError(t, c.Close())

	// No tenant: an error, before any I/O.
	bg := context.Background()
	_, err = sdb.ExecContext(bg, "DELETE FROM products")
	assert.ErrorIs(t, err, rls.ErrNoTenant)
	_, err = sdb.QueryContext(bg, "SELECT id FROM products") //nolint:rowserrcheck // no rows
	assert.ErrorIs(t, err, rls.ErrNoTenant)
	assert.ErrorIs(t, sdb.QueryRowContext(bg, "SELECT 1").Scan(&n), rls.ErrNoTenant)
	_, err = sdb.BeginTx(bg, nil)
	assert.ErrorIs(t, err, rls.ErrNoTenant)
	_, err = sdb.Exec("DELETE FROM products")
	assert.ErrorIs(t, err, rls.ErrNoTenant, "the methods without a context")
	stmt, err := sdb.PrepareContext(bg, "SELECT count(*) FROM products")
	require.NoError(t, err, "Prepare does no I/O and needs no tenant")
	assert.ErrorIs(t, stmt.QueryRowContext(bg).Scan(&n), rls.ErrNoTenant)
	require.NoError(t, stmt.Close())
	// Every product is still there.
	for _, tn := range []rls.Tenant{tenantA, tenantC} {
		assert.Equal(t, seedProducts[tn], productIDs(t, ctxFor(tn), sdb))
	}
}

// TestPreparedAcrossTenants: one prepared statement, called by goroutines
// with different tenants, returns each call's tenant's rows; in and out
// of transactions.
func TestPreparedAcrossTenants(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		sdb := openDB(t, db, dbOpts{mode: mode, maxConns: 3})
		ctx := ctxFor(tenantA)
		stmt, err := sdb.PrepareContext(ctx, "SELECT array_agg(id ORDER BY id)::text FROM products WHERE price_cents >= $1")
		require.NoError(t, err)
		defer stmt.Close()
		upd, err := sdb.PrepareContext(ctx, "UPDATE products SET price_cents = price_cents WHERE price_cents >= $1")
		require.NoError(t, err)
		defer upd.Close()
		want := map[rls.Tenant]string{tenantA: "{101,102,103}", tenantB: "{201,202}", tenantC: "{301}"}
		var wg sync.WaitGroup
		errs := make(chan error, 12)
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 30 {
					tn := tenants[(g+i)%3]
					ctx := ctxFor(tn)
					var got string
					if err := stmt.QueryRowContext(ctx, 0).Scan(&got); err != nil {
						errs <- err
						return
					}
					if got != want[tn] {
						errs <- fmt.Errorf("tenant %v saw %s", tn, got)
						return
					}
					res, err := upd.ExecContext(ctx, 0)
					if err != nil {
						errs <- err
						return
					}
					if n, _ := res.RowsAffected(); n != int64(len(seedProducts[tn])) {
						errs <- fmt.Errorf("tenant %v updated %d rows", tn, n)
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
		// In a transaction, the statement runs with the transaction's tenant.
		tx, err := sdb.BeginTx(ctxFor(tenantC), nil)
		require.NoError(t, err)
		var got string
		require.NoError(t, tx.StmtContext(ctx, stmt).QueryRowContext(ctx, 0).Scan(&got))
		assert.Equal(t, "{301}", got)
		require.NoError(t, tx.Commit())
		requireClean(t, sdb)
	})
}

// TestRoundTrips: a statement outside a transaction is one round trip, the
// tenant included; BeginTx is one; no tenant sends nothing.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		counter := &tripCounter{}
		sdb := openDB(t, db, dbOpts{mode: mode, maxConns: 1, counter: counter})
		ctx := ctxFor(tenantA)
		// Warm up: connect, and let the caches fill.
		for range 2 {
			tx, err := sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
			require.NoError(t, tx.Rollback())
			_, err = sdb.ExecContext(ctx, "UPDATE products SET name = name WHERE id = $1", 101)
			require.NoError(t, err)
			productIDs(t, ctx, sdb)
		}
		trips := func(f func()) int {
			before, _ := counter.snapshot()
			f()
			after, _ := counter.snapshot()
			return after - before
		}
		// DescribeExec describes every statement first: one more.
		one := 1
		if mode == pgx.QueryExecModeDescribeExec {
			one = 2
		}
		assert.Equal(t, one, trips(func() {
			res, err := sdb.ExecContext(ctx, "UPDATE products SET name = name WHERE id = $1", 101)
			require.NoError(t, err)
			n, _ := res.RowsAffected()
			require.EqualValues(t, 1, n)
		}), "Exec")
		assert.Equal(t, one, trips(func() { require.Equal(t, seedProducts[tenantA], productIDs(t, ctx, sdb)) }), "Query")
		var tx *sql.Tx
		assert.Equal(t, one, trips(func() {
			var err error
			tx, err = sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
		}), "BeginTx")
		require.NoError(t, tx.Rollback())
		_, w0 := counter.snapshot()
		_, err := sdb.ExecContext(context.Background(), "SELECT 1")
		require.ErrorIs(t, err, rls.ErrNoTenant)
		_, err = sdb.BeginTx(context.Background(), nil)
		require.ErrorIs(t, err, rls.ErrNoTenant)
		_, w1 := counter.snapshot()
		assert.Equal(t, w0, w1, "no tenant: nothing sent")
	})
}

// TestValues: values reach database/sql as they do through pgx's own
// driver, whichever path the statement takes.
func TestValues(t *testing.T) {
	t.Parallel()
	const q = `SELECT 1::int2, 2::int4, 3::int8, 1.5::float4, 2.5::float8, 12.50::numeric(6,2), true, 'text'::text,
		'x'::varchar(3), '\x0102'::bytea, '{"a": 1}'::jsonb, '{"b": 2}'::json, '2026-12-07'::date,
		'2026-12-07 01:02:03'::timestamp, '2026-12-07 01:02:03+00'::timestamptz, '1 day'::interval,
		'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, '{1,2}'::int[], '{a,"b c"}'::text[], '10.0.0.1'::inet,
		NULL::text, 42::oid, $1::text`
	db := pgtenancytest.NewDB(t, storeTemplate)
	ref, err := sql.Open("pgx/v5", db.AppURL)
	require.NoError(t, err)
	defer ref.Close()
	for _, mode := range execModes {
		t.Run(mode.String(), func(t *testing.T) {
			refCfg, err := pgx.ParseConfig(db.AppURL)
			require.NoError(t, err)
			refCfg.DefaultQueryExecMode = mode
			refDB := pgxstdlib.OpenDB(*refCfg)
			defer refDB.Close()
			want, wantTypes := readAll(t, refDB, context.Background(), q)
			for _, v := range variants {
				sdb := openDB(t, db, dbOpts{mode: mode, reset: v.reset, citus: v.citus, maxConns: 1})
				got, gotTypes := readAll(t, sdb, ctxFor(tenantA), q)
				if binaryBatch(mode, v.reset || v.citus) {
					// Documented: pgx renders these two from binary.
					assert.Equal(t, "1 day 00:00:00", got[15])
					assert.Equal(t, "10.0.0.1/32", got[19])
					got[15], got[19] = want[15], want[19]
				}
				assert.Equal(t, want, got, v.name)
				assert.Equal(t, wantTypes, gotTypes, v.name)
				tx, err := sdb.BeginTx(ctxFor(tenantA), nil)
				require.NoError(t, err)
				got, _ = readAll(t, tx, ctxFor(tenantA), q)
				assert.Equal(t, want, got, v.name+" in a transaction")
				require.NoError(t, tx.Commit())
			}
		})
	}
}

// binaryBatch reports whether statements take pgx's batch path in a mode
// that reads results in binary.
func binaryBatch(mode pgx.QueryExecMode, batchPath bool) bool {
	switch mode {
	case pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec:
		return true
	case pgx.QueryExecModeCacheStatement:
		return batchPath
	}
	return false
}

// readAll reads the one row of q with one argument, "arg", as database/sql
// values, and the columns' type names.
func readAll(t *testing.T, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, ctx context.Context, q string) ([]any, []string) {
	t.Helper()
	rows, err := db.QueryContext(ctx, q, "arg")
	require.NoError(t, err)
	defer rows.Close()
	types, err := rows.ColumnTypes()
	require.NoError(t, err)
	var names []string
	for _, ct := range types {
		names = append(names, ct.DatabaseTypeName())
	}
	require.True(t, rows.Next())
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	require.NoError(t, rows.Scan(ptrs...))
	require.False(t, rows.Next())
	require.NoError(t, rows.Err())
	return vals, names
}

// TestClean: connections come back to database/sql's pool clean after
// statements that leave session state, errors, panics and cancelled
// contexts, in and out of transactions.
func TestClean(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		sdb := openDB(t, db, dbOpts{mode: mode, maxConns: 2})
		ctx := ctxFor(tenantA)
		for _, q := range []string{
			"CREATE TEMP TABLE scratch (x int)",
			"LISTEN channel",
			"SELECT pg_advisory_lock(7)",
			"SET app.user_email = 'a@example.com'",
			"SELECT set_config('app.user_email', 'b@example.com', false)",
			"SELECT set_config('app.current_tenant', '2', false)",
			"SELECT 1/0",
			"SELECT * FROM no_such_table",
		} {
			_, _ = sdb.ExecContext(ctx, q)
			rows, err := sdb.QueryContext(ctx, q)
			if err == nil {
				for rows.Next() {
				}
				_ = rows.Close()
			}
			requireClean(t, sdb)
			// A tenant left at session level is inert.
			assert.Equal(t, seedProducts[tenantA], productIDs(t, ctx, sdb))
		}

		// In a transaction.
		tx, err := sdb.BeginTx(ctx, nil)
		require.NoError(t, err)
		for _, q := range []string{
			"CREATE TEMP TABLE scratch (x int)",
			"DECLARE held CURSOR WITH HOLD FOR SELECT 1",
			"LISTEN channel",
			"SELECT pg_advisory_lock(8)",
			"SET app.user_email = 'c@example.com'",
		} {
			_, err := tx.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
		require.NoError(t, tx.Commit())
		requireClean(t, sdb)
		tx, err = sdb.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "SELECT pg_advisory_lock(9)")
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, "SELECT 1/0")
		require.Error(t, err)
		require.NoError(t, tx.Rollback())
		requireClean(t, sdb)

		// A panic with rows open and in a transaction; the deferred
		// calls end them.
		func() {
			defer func() { assert.NotNil(t, recover()) }()
			rows, err := sdb.QueryContext(ctx, "SELECT id FROM products ORDER BY id")
			require.NoError(t, err)
			defer rows.Close()
			rows.Next()
			panic("in the rows loop")
		}()
		requireClean(t, sdb)
		func() {
			defer func() { assert.NotNil(t, recover()) }()
			tx, err := sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
			defer tx.Rollback() //nolint:errcheck // after a panic
			_, err = tx.ExecContext(ctx, "CREATE TEMP TABLE scratch (x int)")
			require.NoError(t, err)
			panic("in the transaction")
		}()
		requireClean(t, sdb)

		// Cancelled contexts: a statement, a transaction.
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = sdb.ExecContext(cctx, "SELECT pg_sleep(10)")
		cancel()
		require.Error(t, err)
		cctx, cancel = context.WithCancel(ctx)
		tx, err = sdb.BeginTx(cctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(cctx, "CREATE TEMP TABLE scratch (x int)")
		require.NoError(t, err)
		cancel()
		assert.Error(t, tx.Commit(), "database/sql rolls it back")
		cctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
		rows, err := sdb.QueryContext(cctx, "SELECT pg_sleep(0.01), g FROM generate_series(1, 1000) g")
		if err == nil {
			for rows.Next() {
			}
			assert.Error(t, rows.Err())
			_ = rows.Close()
		}
		cancel()
		// Let database/sql finish its rollback of the cancelled transaction.
		require.Eventually(t, func() bool { return sdb.Stats().InUse == 0 }, 5*time.Second, 10*time.Millisecond)
		requireClean(t, sdb)
		assert.Equal(t, seedProducts[tenantA], productIDs(t, ctx, sdb))
	})
}

// TestConfig: configuration errors are ErrConfig; a tenant of another key
// type is ErrKeyType, before any I/O.
func TestConfig(t *testing.T) {
	t.Parallel()
	_, err := stdlib.NewConnector(nil)
	assert.ErrorIs(t, err, stdlib.ErrConfig)
	_, err = stdlib.OpenDB(context.Background(), &stdlib.Config{})
	assert.ErrorIs(t, err, stdlib.ErrConfig)
	cfg, err := stdlib.ParseConfig("postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	cfg.Setting = "no dots; drop table"
	_, err = stdlib.NewConnector(cfg)
	assert.ErrorIs(t, err, stdlib.ErrConfig)
	cfg.Setting = ""
	cfg.KeyType = rls.KeyType(99)
	_, err = stdlib.NewConnector(cfg)
	assert.ErrorIs(t, err, stdlib.ErrConfig)
	_, err = stdlib.ParseConfig("postgres://:::")
	assert.Error(t, err)

	db := pgtenancytest.NewDB(t, storeTemplate)
	cfg, err = stdlib.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.KeyType = rls.UUID
	c, err := stdlib.NewConnector(cfg)
	require.NoError(t, err)
	sdb := sql.OpenDB(c)
	defer sdb.Close()
	_, err = sdb.ExecContext(ctxFor(tenantA), "SELECT 1")
	assert.ErrorIs(t, err, stdlib.ErrKeyType, "bigint tenant, uuid schema")
	_, err = c.Driver().Open("postgres://x")
	assert.ErrorIs(t, err, stdlib.ErrNoDriverOpen)
}
