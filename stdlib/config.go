package stdlib

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgtenancy/pgtenancy/internal/unit"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

// ErrConfig matches, with errors.Is, every error about an invalid [Config].
var ErrConfig = errors.New("stdlib: invalid configuration")

// ErrKeyType is returned, before any I/O, for work whose context carries a
// tenant of another key type than [Config.KeyType]. It is pool.ErrKeyType.
var ErrKeyType = unit.ErrKeyType

// Config configures a [Connector]. Create it with [ParseConfig]; a Config
// built by hand needs a ConnConfig from [pgx.ParseConfig]. Its fields
// Setting, KeyType, Citus, ResetSession, Rewriter, Signer and Audit mean
// what they mean in pool.Config.
type Config struct {
	// ConnConfig configures each connection. Every pgx option applies. The
	// query exec mode is ConnConfig.DefaultQueryExecMode; behind PgBouncer
	// in transaction pooling mode before 1.21, use [pgx.QueryExecModeExec],
	// [pgx.QueryExecModeCacheDescribe], [pgx.QueryExecModeDescribeExec] or
	// [pgx.QueryExecModeSimpleProtocol] (docs/pgbouncer.md).
	ConnConfig *pgx.ConnConfig

	// Options are pgx's database/sql options, passed to
	// [pgxstdlib.GetConnector]: OptionBeforeConnect, OptionAfterConnect,
	// OptionResetSession, OptionShouldPing. Work that their hooks run gets
	// no tenant.
	Options []pgxstdlib.OptionOpenDB

	// Setting is the name of the setting that holds the current tenant;
	// [rls.DefaultSetting] ("app.current_tenant") when empty. It must match
	// the Setting of the schema model the policies were generated from.
	Setting string

	// KeyType, when not 0, is the tenant key type of the schema: work whose
	// context carries a tenant of another key type fails with
	// [ErrKeyType] before any I/O.
	KeyType rls.KeyType

	// Citus makes every unit of work run in an explicit transaction that
	// sets the tenant with SET LOCAL through pgtenancy.set_tenant after
	// setting citus.propagate_set_commands to 'local' for the transaction,
	// the only way the tenant reaches the shards. Still one round trip per
	// statement.
	Citus bool

	// ResetSession makes every unit of work remove all the session state
	// it may have created, not only the state that its SQL shows
	// (temporary objects, cursors WITH HOLD, LISTEN, session settings,
	// advisory locks, the role), in its own transaction, in the same round
	// trip. Set it when functions, procedures or triggers create such
	// state. See pool.Config.ResetSession.
	ResetSession bool

	// Rewriter, when not nil, rewrites the SQL of every statement before
	// it is sent, as pool.Config.Rewriter does (package citus/route
	// provides one that routes each statement to the tenant's shard on
	// Citus): Exec and Query, in a transaction or not, and so prepared
	// statements, whose calls run through them; not when the arguments
	// hold a pgx.QueryRewriter such as pgx.NamedArgs. The tenant (as text)
	// is bound to the parameter it adds, after the statement's own.
	Rewriter Rewriter

	// Signer, when not nil, turns on signed mode (docs/security.md): every
	// unit of work sets the tenant setting to the tenant signed with the
	// Signer's key, which pgtenancy.tenant() verifies in the database. Use
	// it with policies generated with policy.Model.Signed. Not with Citus:
	// [ErrConfig] wrapping [rls.ErrSignedCitus].
	Signer *signing.Signer

	// Audit, when not nil, is called by [OpenDB] on a connection of its
	// own before OpenDB returns:
	//   - it runs once, with OpenDB's context, and the connection is
	//     closed afterwards;
	//   - a non-nil error makes OpenDB return it (and no *sql.DB);
	//   - work it runs on the connection gets no tenant.
	// verify.AuditConn returns one that refuses to start on a database
	// where row level security would be inert.
	Audit func(ctx context.Context, conn *pgx.Conn) error
}

// Rewriter rewrites SQL before it is sent. See [Config.Rewriter]; it is
// pool.Rewriter's method set, so one value serves both.
type Rewriter interface {
	// Rewrite returns the SQL to send for sql and the number of the
	// parameter it adds for the tenant, or sql and 0.
	Rewrite(sql string) (rewritten string, tenantParam int)
}

// ParseConfig parses connString as [pgx.ParseConfig] does (a URL or
// key=value string) and returns a Config with the default Setting.
func ParseConfig(connString string) (*Config, error) {
	cc, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return &Config{ConnConfig: cc, Setting: rls.DefaultSetting}, nil
}

// newTenancy returns the one owner of the tenant invariant for cfg
// (internal/unit), shared with package pool.
func newTenancy(cfg *Config) (*unit.Tenancy, error) {
	if cfg == nil || cfg.ConnConfig == nil {
		return nil, fmt.Errorf("%w: Config.ConnConfig is nil (create the Config with ParseConfig)", ErrConfig)
	}
	t, err := unit.New(cfg.Setting, cfg.KeyType, cfg.Citus, cfg.ResetSession)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Rewriter != nil {
		t.Rewriter = cfg.Rewriter
	}
	if cfg.Signer != nil {
		if cfg.Citus {
			return nil, fmt.Errorf("%w: %w", ErrConfig, rls.ErrSignedCitus)
		}
		t.Signer = cfg.Signer
	}
	return t, nil
}
