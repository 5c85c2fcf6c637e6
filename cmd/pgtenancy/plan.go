package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pgtenancy/pgtenancy/catalog"
)

const planSynopsis = `[flags]

Prints the SQL that would bring the database to the schema model, without
applying it: what generate prints, less what is already in place. Policies
that differ from the generated ones are dropped and created again. Prints
nothing (and says so on stderr) when the database matches the model. The
model comes from --model or --table flags, or from discovery (--root with
--tenant-column).

Examples:
  pgtenancy plan --database-url $DATABASE_URL --model model.json
  pgtenancy plan --tenant-column store_id --root stores --app-role app --down`

func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("plan", stderr, planSynopsis)
	var f generateFlags
	addModelFlags(fs, &f, "database to inspect (default $DATABASE_URL)")
	down := fs.Bool("down", false, "print the down SQL (which undoes the plan) instead of the up SQL")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	conn, err := connectFor(ctx, &f)
	if err != nil {
		return fail(stderr, "plan", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	model, err := liveModel(ctx, conn, &f)
	if err != nil {
		return fail(stderr, "plan", err)
	}
	if model == nil {
		return fail(stderr, "plan", errors.New("no model: pass --model, --table flags, or --root with --tenant-column to discover"))
	}
	m, err := catalog.Plan(ctx, conn, model)
	if err != nil {
		return fail(stderr, "plan", err)
	}
	if m.IsEmpty() {
		fmt.Fprintln(stderr, "pgtenancy plan: the database matches the model; nothing to do")
		return exitOK
	}
	if *down {
		io.WriteString(stdout, m.Down)
	} else {
		io.WriteString(stdout, m.Up)
	}
	return exitOK
}
