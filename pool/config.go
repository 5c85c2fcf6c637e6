package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/unit"
	"github.com/pgtenancy/pgtenancy/observe"
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

	// Rewriter, when not nil, rewrites the SQL of the statements the pool
	// runs before it sends them; package citus/route (a module of its own,
	// which builds libpg_query with cgo) provides one that adds the tenant
	// predicate so that Citus routes each statement to the tenant's shard.
	// The pool calls it:
	//   - for the SQL of Exec, Query, QueryRow, of every query of a batch
	//     sent by SendBatch, and of Exec, Query, QueryRow and SendBatch of
	//     a [Tx]; not for Prepare, CopyFrom, the connection of AcquireFunc
	//     or [Tx.Conn], nor when the arguments hold a [pgx.QueryRewriter]
	//     such as [pgx.NamedArgs];
	//   - from many goroutines at once, before every statement: it must be
	//     safe for concurrent use and cache its answers.
	//
	// Rewrite returns the SQL to send and N, the number of the parameter
	// $N that the rewritten SQL adds: the pool binds the unit's tenant (as
	// text) to it, after the statement's own arguments. N must be one more
	// than the number of arguments the statement takes; otherwise, or when
	// N is 0, the pool sends the original SQL with the original arguments.
	// A rewrite must not change what a statement means: isolation stays
	// with row level security, whatever the rewriter does.
	Rewriter Rewriter

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

	// Observer, when not nil, is told about every unit of work when it
	// ends (observe.Unit: tenant, kind, rows, error, duration):
	//   - Exec, CopyFrom and AcquireFunc when they return;
	//   - Query and QueryRow when their rows close (Scan for QueryRow);
	//   - SendBatch when its results close;
	//   - a transaction of Begin or BeginTx when it commits or rolls back;
	//   - work refused before any I/O (no tenant, ErrKeyType) too, with
	//     the zero Tenant when the context had none.
	// It is called on the unit's goroutine with the unit's context: it
	// must be quick and must not run work on the pool. observe.Metrics
	// keeps per-tenant totals; tenantotel turns units into spans and
	// OpenTelemetry metrics. Without an Observer the pool does not read
	// the clock.
	Observer observe.Observer

	// MaxConnsPerTenant, when above 0, is the most connections that the
	// units of work of one tenant hold at once, so that one tenant's burst
	// cannot take every connection of the pool:
	//   - a unit of work waits for one of its tenant's connections to
	//     return before it asks pgxpool for one, in arrival order as
	//     the Go runtime wakes waiters (no strict FIFO);
	//   - the wait ends with the unit's context: the error matches
	//     ErrTenantWait and the context's error;
	//   - a transaction, open rows, open batch results and AcquireFunc
	//     hold their connection, and so their tenant's slot, until they
	//     end;
	//   - the limit is per Pool: two Pools that wrap one pgxpool count
	//     separately, and work run on the pgxpool directly (a job
	//     queue's) is not counted.
	// Set it below the pgxpool's MaxConns (e.g. a quarter of it). 0 means
	// no limit.
	MaxConnsPerTenant int32
}

// Rewriter rewrites SQL before the pool sends it. See [Config.Rewriter].
type Rewriter interface {
	// Rewrite returns the SQL to send for sql and the number of the
	// parameter it adds for the tenant, or sql and 0.
	Rewrite(sql string) (rewritten string, tenantParam int)
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
	if cfg.Rewriter != nil {
		t.Rewriter = cfg.Rewriter
	}
	if cfg.MaxConnsPerTenant < 0 {
		return nil, fmt.Errorf("%w: MaxConnsPerTenant %d is negative", ErrConfig, cfg.MaxConnsPerTenant)
	}
	if cfg.Signer != nil {
		if cfg.Citus {
			return nil, fmt.Errorf("%w: %w", ErrConfig, rls.ErrSignedCitus)
		}
		t.Signer = cfg.Signer
	}
	return t, nil
}
