package main

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/policy"
)

func runInstall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("install", stderr, "[--database-url URL] [--setting NAME] [--print]")
	url := fs.String("database-url", "", "database to install into, as the role that owns the application's tables (default $DATABASE_URL)")
	setting := fs.String("setting", "", "name of the setting that holds the tenant (default app.current_tenant)")
	print := fs.Bool("print", false, "print the SQL (up, then down after the tern separator) instead of installing")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	opts := migrations.Options{Setting: *setting}
	if *print {
		m, err := policy.LibrarySQL(*setting)
		if err != nil {
			return fail(stderr, "install", err)
		}
		fmt.Fprintf(stdout, "%s\n---- create above / drop below ----\n\n%s", m.Up, m.Down)
		return exitOK
	}
	dsn := databaseURL(*url)
	if dsn == "" {
		return fail(stderr, "install", fmt.Errorf("no database: pass --database-url or set DATABASE_URL (or use --print)"))
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fail(stderr, "install", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := migrations.Install(ctx, conn, opts); err != nil {
		return fail(stderr, "install", err)
	}
	fmt.Fprintln(stdout, "pgtenancy: library objects installed (schema pgtenancy, version table "+migrations.VersionTable+")")
	return exitOK
}
