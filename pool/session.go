package pool

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// sessionKey is the key, in each connection's pgconn CustomData, of the
// tenant that ConfigureSession last set on it.
const sessionKey = "pgtenancy.session_tenant"

// ConfigureSession sets cfg.PrepareConn so that a plain [pgxpool.Pool] built
// from cfg hands out every connection holding exactly the tenant of the
// acquiring context in setting ("" means [policy.DefaultSetting]), or no
// tenant (the empty string, which the generated policies read as none)
// when the context has none. It is for third-party code that takes a
// *pgxpool.Pool, such as a job queue, and cannot use [Pool].
//
// The tenant is set at session level with set_config(setting, $1, false),
// the value a bind parameter, one round trip on acquire. Each connection
// remembers the value it holds, so an acquire for the tenant it already
// holds costs nothing. An existing PrepareConn (or deprecated
// BeforeAcquire) hook still runs, after this one.
//
// Connections are not cleared on release: that would cost a round trip per
// use, and every way to get a connection from the pool (Acquire and
// everything built on it, AcquireAllIdle) goes through PrepareConn, which
// overwrites the value, clearing it for a context without a tenant. A
// connection taken out of the pool with Hijack keeps its last tenant.
//
// Limits, all inherent to session-level settings:
//   - Direct connections only. Behind PgBouncer in transaction pooling mode
//     the setting stays on the server connection and reaches other
//     clients: use [Pool] there.
//   - Not Citus: workers never see session settings (no rows, fail closed).
//   - SQL that changes the setting itself (SET, RESET, DISCARD ALL) makes
//     the remembered value wrong; don't.
//   - Unlike [Pool], work without a tenant is not refused here; it runs
//     with no tenant and sees no tenant rows.
func ConfigureSession(cfg *pgxpool.Config, setting string) error {
	if cfg == nil {
		return fmt.Errorf("%w: nil *pgxpool.Config", ErrConfig)
	}
	if setting == "" {
		setting = policy.DefaultSetting
	}
	if err := policy.CheckSetting(setting); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	next := cfg.PrepareConn
	//lint:ignore SA1019 a deprecated hook that pgxpool still honours must keep running
	if before := cfg.BeforeAcquire; next == nil && before != nil {
		next = func(ctx context.Context, conn *pgx.Conn) (bool, error) { return before(ctx, conn), nil }
	}
	cfg.PrepareConn = func(ctx context.Context, conn *pgx.Conn) (bool, error) {
		var want string
		if t, ok := rls.FromContext(ctx); ok {
			want = t.String()
		}
		data := conn.PgConn().CustomData()
		if have, ok := data[sessionKey].(string); !ok || have != want {
			delete(data, sessionKey) // unknown until the set succeeds
			if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config($1, $2, false)", setting, want); err != nil {
				// Destroy the connection: its setting is unknown.
				return false, fmt.Errorf("pool: set the session tenant: %w", err)
			}
			data[sessionKey] = want
		}
		if next != nil {
			return next(ctx, conn)
		}
		return true, nil
	}
	return nil
}
