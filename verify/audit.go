package verify

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/catalog"
)

// Audit returns a function that runs [Run] with opts on the database of a
// pool and returns the report's error ([Report.Err]: a [*FailedError]
// matching [ErrFailed]) when it has errors, or the error that kept it from
// running. Set it as pool.Config.Audit, and the pool refuses to start on a
// database with a hole:
//
//	cfg.Audit = verify.Audit(verify.Options{Model: model})
//
// Without an AppRole (in opts or its Model), it checks the role the pool
// connects as. The audit connects like any other unit of work and needs
// the TEMPORARY privilege (PUBLIC has it by default).
func Audit(opts Options) func(ctx context.Context, p *pgxpool.Pool) error {
	return func(ctx context.Context, p *pgxpool.Pool) error { return audit(ctx, p, opts) }
}

// AuditConn is [Audit] for a connection: set it as stdlib.Config.Audit
// (database/sql), which runs it on a connection of its own at startup.
func AuditConn(opts Options) func(ctx context.Context, conn *pgx.Conn) error {
	return func(ctx context.Context, conn *pgx.Conn) error { return audit(ctx, conn, opts) }
}

func audit(ctx context.Context, conn interface {
	catalog.Conn
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, opts Options) error {
	if opts.AppRole == "" && (opts.Model == nil || opts.Model.AppRole == "") {
		if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&opts.AppRole); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
	}
	report, err := Run(ctx, conn, opts)
	if err != nil {
		return err
	}
	return report.Err()
}
