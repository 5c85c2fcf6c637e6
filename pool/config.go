package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/unit"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

// ErrConfig matches, with errors.Is, every error about an invalid [Config].
var ErrConfig = errors.New("pool: invalid configuration")

// Config configures a [Pool]. Create it with [ParseConfig]; a Config built
// by hand for [NewWithConfig] needs a PoolConfig from [pgxpool.ParseConfig].
type Config struct {
	// PoolConfig configures the underlying pgxpool for [NewWithConfig].
	// Every pgxpool and pgx option applies, hooks included. The query exec
	// mode is PoolConfig.ConnConfig.DefaultQueryExecMode; behind PgBouncer
	// in transaction pooling mode before 1.21, use [pgx.QueryExecModeExec],
	// [pgx.QueryExecModeCacheDescribe], [pgx.QueryExecModeDescribeExec] or
	// [pgx.QueryExecModeSimpleProtocol] (docs/pgbouncer.md). [Wrap], which
	// borrows a pgxpool that exists already, refuses a Config with one.
	PoolConfig *pgxpool.Config

	// Setting is the name of the setting that holds the current tenant;
	// [rls.DefaultSetting] ("app.current_tenant") when empty. It must match
	// the Setting of the schema model the policies were generated from.
	Setting string

	// KeyType, when not 0, is the tenant key type of the schema: work whose
	// context carries a tenant of another key type fails with
	// [ErrKeyType] before any I/O, instead of failing in the database on
	// every statement with a cast error.
	KeyType rls.KeyType

	// Citus makes every unit of work run in an explicit transaction that sets
	// the tenant with SET LOCAL through pgtenancy.set_tenant (installed by the
	// migrations package) after setting citus.propagate_set_commands to
	// 'local' for the transaction, the only way the tenant reaches the
	// shards. Still one round trip per unit of work. With Citus, the Setting
	// must be the one pgtenancy.set_tenant was installed with. It works on plain
	// PostgreSQL too, a little slower.
	Citus bool

	// ResetSession makes every unit of work remove all the session state
	// it may have created, not only the state that its SQL shows: the
	// reset statements (DISCARD TEMP, CLOSE ALL, UNLISTEN *, RESET ALL,
	// DISCARD SEQUENCES, pg_advisory_unlock_all(), the role back to the
	// session's) run in each unit's transaction, before it commits, in
	// the same round trip. Set it when functions, procedures or triggers
	// that the application's SQL calls create temporary tables, cursors
	// WITH HOLD, LISTEN, set settings at session level (set_config(...,
	// false)) or take session-level advisory locks: the pool cannot see
	// those in the SQL text. It costs server time on every unit of work
	// (docs/security.md has the figures). Settings return to the
	// connection's defaults (connection string, ALTER ROLE and ALTER
	// DATABASE settings): session settings put in place by an AfterConnect
	// hook do not survive a unit of work.
	ResetSession bool

	// Signer, when not nil, turns on signed mode (docs/security.md): every
	// unit of work sets the tenant setting to the tenant signed with the
	// Signer's key (an HMAC-SHA256 that pgtenancy.tenant() verifies in the
	// database) instead of the tenant's text. Use it with policies
	// generated with policy.Model.Signed and the key stored in the
	// database (signing.AddKey, or pgtenancy key rotate). Not with Citus:
	// [ErrConfig] wrapping [rls.ErrSignedCitus].
	Signer *signing.Signer

	// Audit, when not nil, is called by [NewWithConfig] with the new
	// pgxpool before it returns:
	//   - it runs once, with NewWithConfig's context;
	//   - a non-nil error closes the pool, and NewWithConfig returns it;
	//   - work it runs on the pgxpool gets no tenant.
	// verify.Audit returns one that refuses to start on a database where
	// row level security would be inert (the application role owns a
	// table, a table is not forced, a policy drifted, ...).
	Audit func(ctx context.Context, p *pgxpool.Pool) error
}

// ParseConfig parses connString as [pgxpool.ParseConfig] does (a URL or
// key=value string, pool_* parameters included) and returns a Config with
// the default Setting.
func ParseConfig(connString string) (*Config, error) {
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return &Config{PoolConfig: pc, Setting: rls.DefaultSetting}, nil
}

// ErrKeyType is returned, before any I/O, for work whose context carries a
// tenant of another key type than [Config.KeyType]. The database/sql
// driver (package stdlib) returns the same error.
var ErrKeyType = unit.ErrKeyType

// newTenancy returns the one owner of the tenant invariant for cfg
// (internal/unit): every path of the pool (the direct path, pgx batches,
// transactions, CopyFrom) takes the tenant and the statement that sets it
// from there, and nothing else sets it.
func newTenancy(cfg *Config) (*unit.Tenancy, error) {
	t, err := unit.New(cfg.Setting, cfg.KeyType, cfg.Citus, cfg.ResetSession)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Signer != nil {
		if cfg.Citus {
			return nil, fmt.Errorf("%w: %w", ErrConfig, rls.ErrSignedCitus)
		}
		t.Signer = cfg.Signer
	}
	return t, nil
}
