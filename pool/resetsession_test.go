package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
)

// leaveStateFunc is a function that leaves tenant A's data in the session
// where the pool cannot see it: its SQL text is only a call.
const leaveStateFunc = `
CREATE FUNCTION leave_state() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE report AS SELECT id::text FROM products;
	LISTEN store_events;
	PERFORM set_config('app.user_email', 'alice@store-a.example', false);
	PERFORM pg_advisory_lock(4242);
END $$`

// hiddenLeakCases are leakCases whose state a function creates.
var hiddenLeakCases = []leakCase{
	{name: "temp_table", sql: "SELECT leave_state()", probe: probeRows("SELECT id FROM report ORDER BY id", "42P01")},
	{name: "listen", sql: "SELECT leave_state()", probe: probeNotify},
	{name: "session_setting", sql: "SELECT leave_state()", probe: probeSetting},
	{name: "advisory_lock", sql: "SELECT leave_state()", probe: probeLock},
}

func newResetPool(t *testing.T, db *pgtenancytest.DB, o poolOpts, reset bool) *pool.Pool {
	t.Helper()
	url := o.url
	if url == "" {
		url = db.AppURL
	}
	cfg, err := pool.ParseConfig(url)
	require.NoError(t, err)
	configure(cfg.PoolConfig, o)
	cfg.ResetSession = reset
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// TestResetSessionHiddenState: state that a function creates is invisible
// in the SQL text. Without Config.ResetSession it survives the unit (the
// limit that docs/security.md states); with it, every path removes it, in
// every exec mode; AcquireFunc removes it always.
func TestResetSessionHiddenState(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		_, err := db.OwnerConn(t).Exec(context.Background(), leaveStateFunc)
		require.NoError(t, err)
		admin := db.AdminConn(t)

		t.Run("without", func(t *testing.T) {
			p := newResetPool(t, db, poolOpts{mode: mode, maxConns: 1}, false)
			_, err := p.Exec(ctxFor(tenantA), "SELECT leave_state()")
			require.NoError(t, err)
			require.NotEmpty(t, probeSetting(t, p, admin), "the pool saw inside a function: update docs/security.md")
			require.NotEmpty(t, probeLock(t, p, admin))
			_, err = p.Exec(ctxFor(tenantB), "DISCARD TEMP")
			require.NoError(t, err)
		})
		runLeakCasesWith(t, hiddenLeakCases, unitPaths, func(t *testing.T) (unitPool, unitPool) {
			p := newResetPool(t, db, poolOpts{mode: mode, maxConns: 1}, true)
			t.Cleanup(func() { requireClean(t, p.Unwrap(), "app.current_tenant") })
			return p, p
		}, admin)
		t.Run("AcquireFunc", func(t *testing.T) {
			runLeakCasesWith(t, hiddenLeakCases, unitPaths[len(unitPaths)-1:], func(t *testing.T) (unitPool, unitPool) {
				p := newResetPool(t, db, poolOpts{mode: mode, maxConns: 1}, false)
				t.Cleanup(func() { requireClean(t, p.Unwrap(), "app.current_tenant") })
				return p, p
			}, admin)
		})
	})
}

// TestPgBouncerResetSessionHiddenState: the same behind PgBouncer, A and B
// two clients of its one server connection.
func TestPgBouncerResetSessionHiddenState(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	_, err := db.OwnerConn(t).Exec(context.Background(), leaveStateFunc)
	require.NoError(t, err)
	url := startPgBouncer(t, db, 1)
	runLeakCasesWith(t, hiddenLeakCases, unitPaths, func(t *testing.T) (unitPool, unitPool) {
		o := poolOpts{mode: pgx.QueryExecModeExec, maxConns: 1, url: url}
		return newResetPool(t, db, o, true), newResetPool(t, db, o, false)
	}, db.AdminConn(t))
}

// TestResetSessionCopyFrom: with Config.ResetSession, CopyFrom's own
// transaction ends with the resets too, on both of its paths.
func TestResetSessionCopyFrom(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		owner := db.OwnerConn(t)
		_, err := owner.Exec(context.Background(), leaveStateFunc+`;
			CREATE FUNCTION leave_state_trigger() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM leave_state(); RETURN NULL; END $$;
			CREATE TRIGGER leave_state AFTER INSERT ON products FOR EACH STATEMENT EXECUTE FUNCTION leave_state_trigger();`)
		require.NoError(t, err)
		p := newResetPool(t, db, poolOpts{mode: mode, maxConns: 1}, true)
		ctx := ctxFor(tenantA)
		n, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "copied", 10)))
		require.NoError(t, err)
		require.EqualValues(t, 10, n)
		requireClean(t, p.Unwrap(), "app.current_tenant")
		n, err = pool.CopyFromTempTable(ctx, p, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "temp", 10)))
		require.NoError(t, err)
		require.EqualValues(t, 10, n)
		requireClean(t, p.Unwrap(), "app.current_tenant")
	})
}

// TestPgBouncerServerResetQueryAlways: PgBouncer's own safety net. With
// server_reset_query_always = 1, PgBouncer runs server_reset_query
// (DISCARD ALL by default) whenever a client's transaction releases the
// server connection, so state that the pool cannot see (a function's)
// does not reach the next client, even without Config.ResetSession;
// without the setting it does.
func TestPgBouncerServerResetQueryAlways(t *testing.T) {
	t.Parallel()
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("always=%v", always), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, storeTemplate)
			_, err := db.OwnerConn(t).Exec(context.Background(), leaveStateFunc)
			require.NoError(t, err)
			var settings map[string]string
			if always {
				settings = map[string]string{"server_reset_query": "DISCARD ALL", "server_reset_query_always": "1"}
			}
			url := startPgBouncerWith(t, db, 1, settings)
			o := poolOpts{mode: pgx.QueryExecModeExec, maxConns: 1, url: url}
			a, b := newResetPool(t, db, o, false), newResetPool(t, db, o, false)
			_, err = a.Exec(ctxFor(tenantA), "SELECT leave_state()")
			require.NoError(t, err)
			got := probeSetting(t, b, nil)
			if always {
				require.Empty(t, got)
				require.Empty(t, probeRows("SELECT id FROM report ORDER BY id", "42P01")(t, b, nil))
			} else {
				require.NotEmpty(t, got, "PgBouncer reset the session without server_reset_query_always")
			}
		})
	}
}
