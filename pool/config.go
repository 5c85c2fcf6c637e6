package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/rls"
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
// tenant of another key type than [Config.KeyType].
var ErrKeyType = errors.New("pool: the context's tenant is of another key type than the pool's")

// tenancy applies the tenant of a context to units of work. It is the one
// owner of the invariant on the client side: every path (the direct path,
// pgx batches, transactions, CopyFrom) takes the tenant and the statement
// that sets it from here, and nothing else sets it.
//
// The statement sets, for the current transaction only, the tenant setting
// to the tenant (a bind parameter) and its companion [rls.XactSetting] to
// the transaction's stamp ([rls.XactStamp]); the generated policies admit
// rows only when both are set in the transaction that reads them.
type tenancy struct {
	key   rls.KeyType
	citus bool
	// setSQL sets the tenant, its only parameter, for the rest of the
	// current transaction.
	setSQL string
}

func newTenancy(cfg *Config) (*tenancy, error) {
	setting, err := rls.Setting(cfg.Setting)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.KeyType != 0 && !cfg.KeyType.Valid() {
		return nil, fmt.Errorf("%w: KeyType %v is not %s", ErrConfig, cfg.KeyType, rls.ValidKeyTypes)
	}
	t := &tenancy{key: cfg.KeyType, citus: cfg.Citus}
	if cfg.Citus {
		// The FROM item is evaluated before the target list, so the
		// propagation is on when set_tenant runs SET LOCAL.
		t.setSQL = "SELECT pgtenancy.set_tenant($1) FROM pg_catalog.set_config('citus.propagate_set_commands', 'local', true)"
	} else {
		// set_config with is_local = true is SET LOCAL with the value as a
		// bind parameter. The setting name is validated above, so it is a
		// plain literal.
		t.setSQL = "SELECT pg_catalog.set_config('" + setting + "', $1, true), pg_catalog.set_config('" +
			rls.XactSetting(setting) + "', " + rls.XactStamp + ", true)"
	}
	return t, nil
}

// tenant returns the tenant of ctx: [rls.ErrNoTenant] without one,
// [ErrKeyType] when it does not fit.
func (t *tenancy) tenant(ctx context.Context) (rls.Tenant, error) {
	tn, err := rls.Require(ctx)
	if err != nil {
		return tn, err
	}
	if t.key != 0 && tn.Key() != t.key {
		return rls.Tenant{}, fmt.Errorf("%w: %s tenant, %s schema", ErrKeyType, tn.Key(), t.key)
	}
	return tn, nil
}

// lead is the number of hidden statements before the first statement of a
// unit of work in a pgx batch: BEGIN with Citus, and the set statement.
func (t *tenancy) lead() int {
	if t.citus {
		return 2
	}
	return 1
}

// set returns the queued statement that sets tn.
func (t *tenancy) set(tn rls.Tenant) *pgx.QueuedQuery {
	return &pgx.QueuedQuery{SQL: t.setSQL, Arguments: []any{tn.String()}}
}
