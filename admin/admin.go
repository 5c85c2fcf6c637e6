package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/rls"
)

// ApplicationName is the application_name of the admin pool's connections,
// unless the connection string sets another.
const ApplicationName = "pgtenancy_admin"

// ErrConfig matches every error about an invalid [Config].
var ErrConfig = errors.New("admin: invalid configuration")

// ErrNoBypass is returned by [NewWithConfig] when the role connected to
// neither has BYPASSRLS nor is a superuser.
var ErrNoBypass = errors.New("admin: the role does not bypass row level security: cross-tenant work would see no tenant rows and change none")

// ErrNoReason is returned, before any I/O, for work whose context carries
// no reason ([WithReason]).
var ErrNoReason = errors.New("admin: no reason in context (admin.WithReason)")

// Config configures a [Pool]. Create it with [ParseConfig].
type Config struct {
	// PoolConfig configures the underlying pgxpool.
	PoolConfig *pgxpool.Config
	// Logger receives one Info record per unit of work, with its reason,
	// the role, the tenant of the context if any, and the statement's
	// first line. slog.Default() when nil.
	Logger *slog.Logger
}

// ParseConfig parses connString as pgxpool.ParseConfig does and sets the
// connections' application_name to [ApplicationName] unless it sets one.
func ParseConfig(connString string) (*Config, error) {
	pc, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if pc.ConnConfig.RuntimeParams["application_name"] == "" {
		pc.ConnConfig.RuntimeParams["application_name"] = ApplicationName
	}
	return &Config{PoolConfig: pc}, nil
}

// Pool runs cross-tenant work as the admin role. It is safe for
// concurrent use.
type Pool struct {
	p    *pgxpool.Pool
	log  *slog.Logger
	role string
}

// New creates a Pool from a connection string. See [NewWithConfig].
func New(ctx context.Context, connString string) (*Pool, error) {
	cfg, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return NewWithConfig(ctx, cfg)
}

// NewWithConfig creates a Pool and checks, with one connection, that its
// role bypasses row level security (BYPASSRLS or superuser); otherwise it
// closes the pool and returns [ErrNoBypass].
func NewWithConfig(ctx context.Context, cfg *Config) (*Pool, error) {
	if cfg == nil || cfg.PoolConfig == nil {
		return nil, fmt.Errorf("%w: Config.PoolConfig is nil (create the Config with ParseConfig)", ErrConfig)
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg.PoolConfig)
	if err != nil {
		return nil, err
	}
	var role string
	var bypass bool
	err = p.QueryRow(ctx, "SELECT current_user::text, r.rolbypassrls OR r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user").Scan(&role, &bypass)
	if err == nil && !bypass {
		err = fmt.Errorf("%w (role %q): give it BYPASSRLS, or connect as the role for cross-tenant work", ErrNoBypass, role)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Pool{p: p, log: log, role: role}, nil
}

// Close closes the pool.
func (p *Pool) Close() { p.p.Close() }

// Ping checks that the database answers. It needs no reason.
func (p *Pool) Ping(ctx context.Context) error { return p.p.Ping(ctx) }

// Role returns the role the pool connects as.
func (p *Pool) Role() string { return p.role }

type reasonKey struct{}

// WithReason returns a copy of ctx carrying why the admin work it runs is
// done, such as "support ticket 4711: merge duplicate contacts". The
// reason is logged and travels with the SQL; keep secrets out of it.
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

// Reason returns the reason of ctx, and false when it has none.
func Reason(ctx context.Context) (string, bool) {
	r, _ := ctx.Value(reasonKey{}).(string)
	return r, strings.TrimSpace(r) != ""
}

// begin checks ctx for a reason, logs the unit of work and returns the
// comment that marks its SQL.
func (p *Pool) begin(ctx context.Context, what, sql string) (string, error) {
	reason, ok := Reason(ctx)
	if !ok {
		return "", ErrNoReason
	}
	attrs := []any{"reason", reason, "role", p.role, "op", what}
	if t, ok := rls.FromContext(ctx); ok {
		attrs = append(attrs, "tenant", t.String())
	}
	if sql != "" {
		first, _, _ := strings.Cut(strings.TrimSpace(sql), "\n")
		attrs = append(attrs, "sql", first)
	}
	p.log.InfoContext(ctx, "pgtenancy admin", attrs...)
	return "/* pgtenancy admin: " + clean(reason) + " */ ", nil
}

// clean makes a reason safe inside a SQL comment and an application_name:
// one line, no comment delimiters, at most 200 bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.ReplaceAll(strings.ReplaceAll(s, "*/", "* /"), "/*", "/ *")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}

// Exec runs sql as the admin role. It needs a reason in ctx.
func (p *Pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	mark, err := p.begin(ctx, "exec", sql)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.p.Exec(ctx, mark+sql, args...)
}

// Query runs sql as the admin role. It needs a reason in ctx.
func (p *Pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	mark, err := p.begin(ctx, "query", sql)
	if err != nil {
		return nil, err
	}
	return p.p.Query(ctx, mark+sql, args...)
}

// QueryRow runs sql as the admin role. It needs a reason in ctx; without
// one, Scan returns [ErrNoReason].
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	mark, err := p.begin(ctx, "query", sql)
	if err != nil {
		return errRow{err}
	}
	return p.p.QueryRow(ctx, mark+sql, args...)
}

// SendBatch runs a batch as the admin role. It needs a reason in ctx.
func (p *Pool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	mark, err := p.begin(ctx, fmt.Sprintf("batch of %d", b.Len()), "")
	if err != nil {
		return pgx.FailedBatchResults(b, err)
	}
	marked := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, len(b.QueuedQueries))}
	for i, q := range b.QueuedQueries {
		c := *q // its callbacks too
		c.SQL = mark + c.SQL
		marked.QueuedQueries[i] = &c
	}
	return p.p.SendBatch(ctx, marked)
}

// Begin starts a transaction as the admin role, its application_name set
// to the reason. It needs a reason in ctx.
func (p *Pool) Begin(ctx context.Context) (pgx.Tx, error) {
	return p.BeginTx(ctx, pgx.TxOptions{})
}

// BeginTx is Begin with options.
func (p *Pool) BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error) {
	if _, err := p.begin(ctx, "begin", ""); err != nil {
		return nil, err
	}
	tx, err := p.p.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	reason, _ := Reason(ctx)
	name := clean("pgtenancy admin: " + reason)
	if len(name) > 63 {
		name = strings.ToValidUTF8(name[:63], "")
	}
	if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('application_name', $1, true)", name); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx, nil
}

// CopyFrom copies rows into a table as the admin role (COPY, which row
// level security does not refuse to it). It needs a reason in ctx.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	if _, err := p.begin(ctx, "copy into "+table.Sanitize(), ""); err != nil {
		return 0, err
	}
	return p.p.CopyFrom(ctx, table, columns, src)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
