package pool_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// unitPool is what a leak test runs units of work on: a pgtenancy pool.
type unitPool interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
	Begin(context.Context) (pgx.Tx, error)
	BeginFunc(context.Context, func(pgx.Tx) error) error
	AcquireFunc(context.Context, func(*pgxpool.Conn) error) error
}

// leakCase is one way for tenant A's unit of work to leave its data in the
// session (issue 23's table), and the unit of tenant B that would find
// it next on the same connection.
type leakCase struct {
	name string
	sql  string // A's statement
	// fails: A's statement fails (after creating the state).
	fails bool
	// probe runs B's units and returns what B got of A's, "" for nothing.
	probe func(t *testing.T, b unitPool, admin *pgx.Conn) string
}

// probeProducts: B's plain SELECT and UPDATE of products must hit B's
// rows, not a temporary copy of A's that shadows the table.
func probeProducts(t *testing.T, b unitPool, _ *pgx.Conn) string {
	ctx := ctxFor(tenantB)
	tag, err := b.Exec(ctx, "UPDATE products SET price_cents = price_cents")
	require.NoError(t, err)
	ids := productIDs(t, ctx, b)
	if !slices.Equal(ids, seedProducts[tenantB]) || tag.RowsAffected() != int64(len(seedProducts[tenantB])) {
		return fmt.Sprintf("B's SELECT saw %v, B's UPDATE hit %d rows", ids, tag.RowsAffected())
	}
	return ""
}

// probeRows runs sql as B and returns the rows it got, or "" when it
// failed with one of the codes of a missing object.
func probeRows(sql string, missing ...string) func(*testing.T, unitPool, *pgx.Conn) string {
	return func(t *testing.T, b unitPool, _ *pgx.Conn) string {
		rows, err := b.Query(ctxFor(tenantB), sql)
		var got []string
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			require.Contains(t, missing, sqlState(err), "%s: %v", sql, err)
			return ""
		}
		return fmt.Sprintf("%s returned %v", sql, got)
	}
}

// probeNotify: a NOTIFY to A's channel while B's transaction is open
// reaches B's client at the commit, and B's next unit reads it.
func probeNotify(t *testing.T, b unitPool, admin *pgx.Conn) string {
	ctx := ctxFor(tenantB)
	require.NoError(t, b.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			return err
		}
		_, err := admin.Exec(context.Background(), "NOTIFY store_events, 'order 101 of store A'")
		return err
	}))
	var got *pgconn.Notification
	require.NoError(t, b.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		n, err := c.Conn().WaitForNotification(wctx)
		if err == nil {
			got = n
		}
		return nil
	}))
	if got != nil {
		return fmt.Sprintf("B received %q on %s", got.Payload, got.Channel)
	}
	return ""
}

// probeSetting: B reads A's user from a setting left at session level.
func probeSetting(t *testing.T, b unitPool, _ *pgx.Conn) string {
	var v *string
	require.NoError(t, b.QueryRow(ctxFor(tenantB), "SELECT current_setting('app.user_email', true)").Scan(&v))
	if v != nil && *v != "" {
		return "app.user_email is " + *v
	}
	return ""
}

// probeLock: B releases A's advisory lock, and another session cannot take
// it while A's lock is left on the connection.
func probeLock(t *testing.T, b unitPool, admin *pgx.Conn) string {
	var free bool
	require.NoError(t, admin.QueryRow(context.Background(), "SELECT pg_try_advisory_lock(4242)").Scan(&free))
	if free {
		_, err := admin.Exec(context.Background(), "SELECT pg_advisory_unlock(4242)")
		require.NoError(t, err)
	}
	var released bool
	require.NoError(t, b.QueryRow(ctxFor(tenantB), "SELECT pg_advisory_unlock(4242)").Scan(&released))
	if released || !free {
		return fmt.Sprintf("lock 4242 free for others: %v; B released it: %v", free, released)
	}
	return ""
}

var leakCases = []leakCase{
	{name: "temp_table", sql: "CREATE TEMP TABLE report AS SELECT id::text FROM products",
		probe: probeRows("SELECT id FROM report ORDER BY id", "42P01")},
	{name: "temp_table_shadows", sql: "CREATE TEMP TABLE products AS SELECT * FROM public.products",
		probe: probeProducts},
	{name: "cursor_with_hold", sql: "DECLARE export CURSOR WITH HOLD FOR SELECT id::text FROM products ORDER BY id",
		probe: probeRows("FETCH ALL FROM export", "34000")},
	{name: "listen", sql: "LISTEN store_events", probe: probeNotify},
	{name: "session_setting", sql: "SELECT set_config('app.user_email', 'alice@store-a.example', false)",
		probe: probeSetting},
	{name: "advisory_lock", sql: "SELECT pg_advisory_lock(4242)", probe: probeLock},
	// The lock is taken before the division fails (at run time).
	{name: "advisory_lock_then_error", sql: "SELECT 1/(x - 1) FROM (SELECT pg_advisory_lock(4242), 1 AS x) s", fails: true, probe: probeLock},
}

// unitPath is one way to run A's statement as a unit of work.
type unitPath struct {
	name string
	run  func(ctx context.Context, p unitPool, sql string) error
}

var unitPaths = []unitPath{
	{"Exec", func(ctx context.Context, p unitPool, sql string) error {
		_, err := p.Exec(ctx, sql)
		return err
	}},
	{"Query", func(ctx context.Context, p unitPool, sql string) error {
		rows, err := p.Query(ctx, sql)
		if err != nil {
			return err
		}
		rows.Close()
		return rows.Err()
	}},
	{"SendBatch", func(ctx context.Context, p unitPool, sql string) error {
		b := &pgx.Batch{}
		b.Queue("SELECT 1")
		b.Queue(sql)
		return p.SendBatch(ctx, b).Close()
	}},
	{"Tx", func(ctx context.Context, p unitPool, sql string) error {
		return p.BeginFunc(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
	}},
	{"TxRollback", func(ctx context.Context, p unitPool, sql string) error {
		tx, err := p.Begin(ctx)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, sql)
		if rbErr := tx.Rollback(ctx); err == nil {
			err = rbErr
		}
		return err
	}},
	{"BatchTx", func(ctx context.Context, p unitPool, sql string) error {
		b := &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue(sql)
		br := p.SendBatch(ctx, b)
		tx := br.Tx()
		err := br.Close()
		if err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		return tx.Commit(ctx)
	}},
	{"AcquireFunc", func(ctx context.Context, p unitPool, sql string) error {
		return p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			_, err := c.Exec(ctx, sql)
			return err
		})
	}},
}

// runLeakCases runs every case through every path: A's unit on pool a,
// then B's probe on pool b (the same pool, or another client of the same
// PgBouncer server connection).
func runLeakCases(t *testing.T, newPools func(t *testing.T) (a, b unitPool), admin *pgx.Conn) {
	t.Helper()
	runLeakCasesWith(t, leakCases, unitPaths, newPools, admin)
}

func runLeakCasesWith(t *testing.T, cases []leakCase, paths []unitPath, newPools func(t *testing.T) (a, b unitPool), admin *pgx.Conn) {
	t.Helper()
	for _, lc := range cases {
		for _, path := range paths {
			t.Run(lc.name+"/"+path.name, func(t *testing.T) {
				a, b := newPools(t)
				err := path.run(ctxFor(tenantA), a, lc.sql)
				if lc.fails {
					require.Error(t, err)
				} else {
					require.NoError(t, err)
				}
				if got := lc.probe(t, b, admin); got != "" {
					t.Errorf("B got A's session state: %s", got)
				}
			})
		}
	}
}

// TestSessionStateLeaks: tenant A's unit of work creates session state
// (each row of issue 23's table) through every path of the pool, then
// tenant B's unit runs on the same connection (a pool of one): B finds
// none of it, in every exec mode.
func TestSessionStateLeaks(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		admin := db.AdminConn(t)
		runLeakCases(t, func(t *testing.T) (unitPool, unitPool) {
			p := newPool(t, db, poolOpts{mode: mode, maxConns: 1})
			t.Cleanup(func() { requireClean(t, p.Unwrap(), "app.current_tenant") })
			return p, p
		}, admin)
	})
}

// TestPgBouncerSessionStateLeaks: the same, with A and B two clients of
// PgBouncer in transaction pooling mode sharing its one server
// connection: the state must be gone before A's transaction ends.
func TestPgBouncerSessionStateLeaks(t *testing.T) {
	t.Parallel()
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplate)
			url := startPgBouncer(t, db, 1)
			admin := db.AdminConn(t)
			runLeakCases(t, func(t *testing.T) (unitPool, unitPool) {
				a := newPool(t, db, poolOpts{mode: mode, maxConns: 1, url: url})
				b := newPool(t, db, poolOpts{mode: mode, maxConns: 1, url: url})
				t.Cleanup(func() { discardServerSession(t, url) })
				return a, b
			}, admin)
		})
	}
}

// discardServerSession empties the session of the server connection
// behind PgBouncer at url, so that one test case cannot see what an
// earlier one left.
func discardServerSession(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DISCARD ALL")
	require.NoError(t, err)
}

// TestSessionStateScanIsTextual: what the pool reads is the SQL text, so
// the same words in a string literal, a comment or a quoted identifier
// create nothing and cost nothing, while a statement after a comment is
// found. The temporary table of a statement after a comment is gone; a
// string that only mentions one leaves the connection as it was.
func TestSessionStateScanIsTextual(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{maxConns: 1, mode: pgx.QueryExecModeSimpleProtocol})
	ctx := ctxFor(tenantA)
	_, err := p.Exec(ctx, "/* report */ CREATE TEMP TABLE report AS SELECT 1 AS x")
	require.NoError(t, err)
	_, err = p.Exec(ctxFor(tenantB), "SELECT 1 FROM report")
	require.Equal(t, "42P01", sqlState(err), "%v", err)
	var s string
	require.NoError(t, p.QueryRow(ctx, "SELECT 'CREATE TEMP TABLE x AS SELECT 1; LISTEN y' -- LISTEN z").Scan(&s))
	require.True(t, strings.HasPrefix(s, "CREATE TEMP"))
	requireClean(t, p.Unwrap(), "app.current_tenant")
}

// TestSessionStateResetKeepsPreparedStatements: the resets leave prepared
// statements alone (no DISCARD ALL): pgx's and the direct path's caches
// stay valid, and CopyFrom's temporary table path works between flagged
// units.
func TestSessionStateResetKeepsPreparedStatements(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	_, err := db.OwnerConn(t).Exec(context.Background(), fmt.Sprintf(typedDDL, pgtenancytest.AppRole))
	require.NoError(t, err)
	p := newPool(t, db, poolOpts{maxConns: 1})
	ctx := ctxFor(tenantA)
	prepared := func() int {
		var n int
		require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&n))
		return n
	}
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctx, p))
	before := prepared()
	require.Positive(t, before)
	for _, lc := range leakCases {
		_, _ = p.Exec(ctx, lc.sql)
		require.Equal(t, seedProducts[tenantA], productIDs(t, ctx, p))
		otherCols := []string{"tenant_id", "id", "tags", "qty"}
		n, err := p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows([][]any{{int64(1), 1, []string{"a"}, 5}}))
		require.NoError(t, err, lc.name)
		require.EqualValues(t, 1, n)
	}
	require.GreaterOrEqual(t, prepared(), before, "prepared statements were deallocated")
	requireClean(t, p.Unwrap(), "app.current_tenant")
}

// TestBatchNoMoreResults: reading past a batch's own results reports it,
// rather than reading the hidden COMMIT and resets.
func TestBatchNoMoreResults(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	for _, citus := range []bool{false, true} {
		p := newPool(t, db, poolOpts{citus: citus})
		b := &pgx.Batch{}
		b.Queue("SELECT pg_advisory_lock(4242)")
		br := p.SendBatch(ctxFor(tenantA), b)
		_, err := br.Exec()
		require.NoError(t, err)
		_, err = br.Exec()
		require.ErrorContains(t, err, "no more results")
		require.NoError(t, br.Close())
		requireClean(t, p.Unwrap(), "app.current_tenant")
	}
}

// TestLargeObjectsOutsideRLS documents a hole that the pool cannot close:
// large objects have no tenant and no policy. Tenant B finds the object
// that A created, reads it and overwrites it, through the pool's own
// Tx.LargeObjects. docs/security.md says to use bytea instead.
func TestLargeObjectsOutsideRLS(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{})
	ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)
	var oid uint32
	require.NoError(t, p.BeginFunc(ctxA, func(tx pgx.Tx) error {
		los := tx.LargeObjects()
		var err error
		if oid, err = los.Create(ctxA, 0); err != nil {
			return err
		}
		lo, err := los.Open(ctxA, oid, pgx.LargeObjectModeWrite)
		if err != nil {
			return err
		}
		_, err = lo.Write([]byte("store A's invoice"))
		return err
	}))

	var found uint32
	require.NoError(t, p.QueryRow(ctxB, "SELECT oid::int8 FROM pg_largeobject_metadata ORDER BY oid DESC LIMIT 1").Scan(&found))
	require.Equal(t, oid, found, "B does not find A's large object: update docs/security.md")
	var data []byte
	require.NoError(t, p.QueryRow(ctxB, "SELECT lo_get($1)", found).Scan(&data))
	require.Equal(t, "store A's invoice", string(data))
	require.NoError(t, p.BeginFunc(ctxB, func(tx pgx.Tx) error {
		los := tx.LargeObjects()
		lo, err := los.Open(ctxB, found, pgx.LargeObjectModeWrite)
		if err != nil {
			return err
		}
		_, err = lo.Write([]byte("store B was here"))
		return err
	}))
	require.NoError(t, p.QueryRow(ctxA, "SELECT lo_get($1)", oid).Scan(&data))
	require.Equal(t, "store B was here", string(data[:16]), "B overwrote A's object")
}
