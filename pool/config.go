package pool

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// ErrConfig matches, with errors.Is, every error about an invalid [Config] or
// [Options].
var ErrConfig = errors.New("pool: invalid configuration")

// Config configures a [Pool]. Create it with [ParseConfig]; a Config built by
// hand needs a PoolConfig from [pgxpool.ParseConfig].
type Config struct {
	// PoolConfig configures the underlying pgxpool. Every pgxpool and pgx
	// option applies, hooks included. The query exec mode is
	// PoolConfig.ConnConfig.DefaultQueryExecMode; behind PgBouncer in
	// transaction pooling mode before 1.21, use [pgx.QueryExecModeExec],
	// [pgx.QueryExecModeCacheDescribe], [pgx.QueryExecModeDescribeExec] or
	// [pgx.QueryExecModeSimpleProtocol] (docs/pgbouncer.md).
	PoolConfig *pgxpool.Config

	// Setting is the name of the setting that holds the current tenant;
	// [policy.DefaultSetting] ("app.current_tenant") when empty. It must
	// match the Setting of the schema model the policies were generated
	// from.
	Setting string

	// Citus makes every unit of work run in an explicit transaction that sets
	// the tenant with SET LOCAL through pgtenancy.set_tenant (installed by the
	// migrations package) after setting citus.propagate_set_commands to
	// 'local' for the transaction, the only way the tenant reaches the
	// shards. Still one round trip per unit of work. With Citus, the Setting
	// must be the one pgtenancy.set_tenant was installed with. It works on plain
	// PostgreSQL too, a little slower.
	Citus bool

	// Verify, when not nil, makes [NewWithConfig] audit the database with
	// [policy.Verify] before it returns, and refuse to start when the report
	// has errors: it closes the pool and returns the report's
	// [*policy.VerifyError] (errors.Is [policy.ErrVerifyFailed]). Without
	// an AppRole (there or in the Model), the role the pool connects as is
	// checked; without a Setting, the pool's. The audit connects like any other unit of work and needs
	// the TEMPORARY privilege (PUBLIC has it by default).
	Verify *policy.VerifyOptions
}

// Options configure [Wrap]: the tenant-related fields of [Config].
type Options struct {
	// Setting is as [Config.Setting].
	Setting string
	// Citus is as [Config.Citus].
	Citus bool
}

// ParseConfig parses connString as [pgxpool.ParseConfig] does (a URL or
// key=value string, pool_* parameters included) and returns a Config with
// the default Setting.
func ParseConfig(connString string) (*Config, error) {
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return &Config{PoolConfig: pc, Setting: policy.DefaultSetting}, nil
}

// setSQL returns the statement that sets the tenant, its only parameter, for
// the rest of the current transaction.
func (o Options) setSQL() (string, error) {
	setting := o.Setting
	if setting == "" {
		setting = policy.DefaultSetting
	}
	if err := policy.CheckSetting(setting); err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if o.Citus {
		// The FROM item is evaluated before the target list, so the
		// propagation is on when set_tenant runs SET LOCAL.
		return "SELECT pgtenancy.set_tenant($1) FROM pg_catalog.set_config('citus.propagate_set_commands', 'local', true)", nil
	}
	// set_config with is_local = true is SET LOCAL with the value as a bind
	// parameter. The setting name is validated above and quoted.
	return "SELECT pg_catalog.set_config(" + sqlquote.Literal(setting) + ", $1, true)", nil
}
