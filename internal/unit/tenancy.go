// Package unit is the one owner of the tenant invariant on the client side,
// shared by package pool and package stdlib (database/sql): it turns a
// context's tenant into the statement that sets it for one transaction,
// builds and sends a unit of work ([set tenant, statement] in one round
// trip), reads SQL for the session state it leaves and removes that state
// before the unit's transaction ends.
//
// Nothing else in pgtenancy sets the tenant: every path of the pool and of
// the database/sql driver takes the tenant and the statement from a
// [Tenancy].
package unit

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ErrKeyType is returned, before any I/O, for work whose context carries a
// tenant of another key type than the configured one. pool.ErrKeyType and
// stdlib.ErrKeyType are this error.
var ErrKeyType = errors.New("pgtenancy: the context's tenant is of another key type than the configured KeyType")

// Tenancy applies the tenant of a context to units of work.
//
// Its statement sets, for the current transaction only, the tenant setting
// to the tenant (a bind parameter) and its companion [rls.XactSetting] to
// the transaction's stamp ([rls.XactStamp]); the generated policies admit
// rows only when both are set in the transaction that reads them.
type Tenancy struct {
	Key   rls.KeyType
	Citus bool
	Reset bool // Config.ResetSession
	// SetSQL sets the tenant, its only parameter, for the rest of the
	// current transaction.
	SetSQL string
	// Rewriter, when not nil, rewrites every statement's SQL ([Tenancy.Rewrite]).
	Rewriter Rewriter
	// Signer, when not nil, turns a tenant into the value that SetSQL
	// sets (Config.Signer): signed mode.
	Signer interface{ Sign(rls.Tenant) string }
}

// Value returns the value that SetSQL sets for tn: the tenant's text, or
// in signed mode its signed form.
func (t *Tenancy) Value(tn rls.Tenant) string {
	if t.Signer != nil {
		return t.Signer.Sign(tn)
	}
	return tn.String()
}

// New returns the Tenancy of a configuration. Its errors are about the
// configuration; callers wrap them in their own ErrConfig.
func New(setting string, key rls.KeyType, citus, reset bool) (*Tenancy, error) {
	setting, err := rls.Setting(setting)
	if err != nil {
		return nil, err
	}
	if key != 0 && !key.Valid() {
		return nil, fmt.Errorf("KeyType %v is not %s", key, rls.ValidKeyTypes)
	}
	t := &Tenancy{Key: key, Citus: citus, Reset: reset}
	if citus {
		// The FROM item is evaluated before the target list, so the
		// propagation is on when set_tenant runs SET LOCAL.
		t.SetSQL = "SELECT pgtenancy.set_tenant($1) FROM pg_catalog.set_config('citus.propagate_set_commands', 'local', true)"
	} else {
		// set_config with is_local = true is SET LOCAL with the value as a
		// bind parameter. The setting name is validated above, so it is a
		// plain literal.
		t.SetSQL = "SELECT pg_catalog.set_config('" + setting + "', $1, true), pg_catalog.set_config('" +
			rls.XactSetting(setting) + "', " + rls.XactStamp + ", true)"
	}
	return t, nil
}

// Tenant returns the tenant of ctx: [rls.ErrNoTenant] without one,
// [ErrKeyType] when it does not fit.
func (t *Tenancy) Tenant(ctx context.Context) (rls.Tenant, error) {
	tn, err := rls.Require(ctx)
	if err != nil {
		return tn, err
	}
	if t.Key != 0 && tn.Key() != t.Key {
		return rls.Tenant{}, fmt.Errorf("%w: %s tenant, %s schema", ErrKeyType, tn.Key(), t.Key)
	}
	return tn, nil
}

// State returns the session state that a unit of work running sql may
// leave: all of it with Config.ResetSession.
func (t *Tenancy) State(sql string) sessionsql.State {
	if t.Reset {
		return AllState
	}
	return ScanSQL(sql)
}

// Resets returns the statements that remove the session state of a unit
// of work running sql, or nil when it leaves none.
func (t *Tenancy) Resets(sql string) *Resets {
	if t.Reset {
		return FullResets
	}
	return ResetsFor(ScanSQL(sql))
}

// Set returns the queued statement that sets tn.
func (t *Tenancy) Set(tn rls.Tenant) *pgx.QueuedQuery {
	return &pgx.QueuedQuery{SQL: t.SetSQL, Arguments: []any{t.Value(tn)}}
}

// Explicit reports whether a unit of work with resets r runs as an
// explicit transaction (BEGIN ... COMMIT): with Citus, which needs SET
// LOCAL inside one, and when the unit leaves session state, whose resets
// run before its COMMIT. After an error, an explicit transaction keeps the
// server connection with this client (also behind PgBouncer) until
// [Rollback] removes what survives the rollback.
func (t *Tenancy) Explicit(r *Resets) bool { return t.Citus || r != nil }

// batch is one unit of work's batch in a single allocation.
type batch struct {
	b    pgx.Batch
	qqs  [4]*pgx.QueuedQuery
	qq   [4]pgx.QueuedQuery
	args [1]any
}

// Batch returns a unit of work's pgx batch: the tenant statements, sql
// with args, and with Citus a COMMIT; when r is not nil (sql leaves
// session state), an explicit transaction with r's resets before its
// COMMIT. lead is the number of statements before sql.
func (t *Tenancy) Batch(tn rls.Tenant, sql string, args []any, r *Resets) (b *pgx.Batch, lead int) {
	u := &batch{}
	u.b.QueuedQueries = u.qqs[:0]
	n := 0
	add := func(sql string, args []any) {
		if n < len(u.qq) {
			u.qq[n] = pgx.QueuedQuery{SQL: sql, Arguments: args}
			u.b.QueuedQueries = append(u.b.QueuedQueries, &u.qq[n])
		} else {
			u.b.QueuedQueries = append(u.b.QueuedQueries, &pgx.QueuedQuery{SQL: sql, Arguments: args})
		}
		n++
	}
	explicit := t.Explicit(r)
	if explicit {
		add("begin", nil)
	}
	u.args[0] = t.Value(tn)
	add(t.SetSQL, u.args[:])
	lead = n
	add(sql, args)
	if r != nil {
		for _, s := range r.Before {
			add(s, nil)
		}
	}
	if explicit {
		add("commit", nil)
	}
	return &u.b, lead
}

// Begin begins a transaction on conn and sets tn, in one round trip.
func (t *Tenancy) Begin(ctx context.Context, conn *pgx.Conn, tn rls.Tenant, opts pgx.TxOptions) (pgx.Tx, error) {
	b := &pgx.Batch{}
	b.BeginTx(opts)
	b.QueuedQueries = append(b.QueuedQueries, t.Set(tn))
	br := conn.SendBatch(ctx, b)
	if err := br.Close(); err != nil {
		return nil, err
	}
	return br.Tx(), nil
}

// Rewriter is pool.Rewriter (see its doc): it rewrites SQL before it is
// sent, and may add one parameter for the tenant.
type Rewriter interface {
	Rewrite(sql string) (rewritten string, tenantParam int)
}

// Rewrite returns the SQL and arguments to send for sql with args in a
// unit of work of tn: sql and args unchanged without a Rewriter, when the
// Rewriter leaves sql unchanged, when args hold a [pgx.QueryRewriter]
// (pgx.NamedArgs: the SQL is not PostgreSQL's until pgx rewrites it), and
// when the added parameter is not the one after the statement's own
// arguments (the statement would fail anyway: the server reports it on
// the original). Otherwise the rewritten SQL, with the tenant (as text)
// appended to a copy of args. Leading pgx options (QueryExecMode, result
// formats) stay in front.
func (t *Tenancy) Rewrite(tn rls.Tenant, sql string, args []any) (string, []any) {
	if t.Rewriter == nil {
		return sql, args
	}
	n := len(args)
options:
	for _, a := range args {
		switch a.(type) {
		case pgx.QueryExecMode, pgx.QueryResultFormats, pgx.QueryResultFormatsByOID:
			n--
		case pgx.QueryRewriter:
			return sql, args
		default:
			break options
		}
	}
	sql2, param := t.Rewriter.Rewrite(sql)
	if param <= 0 || param != n+1 {
		return sql, args
	}
	a := make([]any, len(args)+1)
	copy(a, args)
	a[len(args)] = tn.String()
	return sql2, a
}
