// Command pgtenancy generates and installs PostgreSQL row-level security for
// multi-tenant applications.
//
// Usage:
//
//	pgtenancy prepare  [flags]   plan the migrations that give tables without it the tenant column
//	pgtenancy generate [flags]   print or write the SQL that isolates tenant tables
//	pgtenancy install  [flags]   install the library's own objects (schema pgtenancy)
//	pgtenancy verify   [flags]   audit a live database for holes in tenant isolation
//	pgtenancy plan     [flags]   print the SQL that would bring a database to the model
//	pgtenancy citus-placement    show where a tenant's rows live on Citus
//	pgtenancy citus-isolate      move a large tenant onto shards of its own on Citus
//	pgtenancy tenant <verb>      export, import, delete or move one tenant's data
//	pgtenancy key rotate|retire|list   manage the keys of signed mode
//
// Run `pgtenancy <command> -h` for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

// Exit codes.
const (
	exitOK       = 0
	exitFindings = 1 // verify found errors
	exitError    = 2 // could not run: bad flags, no connection, bad model
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"prepare", "plan the migrations that give the tables that need it the tenant column, its keys and index, without long locks", runPrepare},
		{"generate", "print or write the SQL that isolates the tenant tables", runGenerate},
		{"install", "install the library's own objects (schema pgtenancy) through tern, or print their SQL", runInstall},
		{"verify", "audit a live database for holes in tenant isolation (exit 1 on errors)", runVerify},
		{"plan", "print the SQL that would bring the database to the model, without applying it", runPlan},
		{"citus-placement", "show the shards and nodes that hold a tenant's rows on Citus", runPlacement},
		{"citus-isolate", "move a large tenant onto shards of its own on Citus", runIsolate},
		{"tenant", "export, import, delete, move or checksum one tenant's data (tenant -h lists the verbs)", runTenant},
		{"key", "manage the keys of signed mode: rotate, retire, list", runKey},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return exitError
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "pgtenancy: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "pgtenancy makes PostgreSQL enforce tenant isolation with row-level security.")
	fmt.Fprintln(w, "\nUsage: pgtenancy <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'pgtenancy <command> -h' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: pgtenancy %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns the exit code to use and false when the
// command must stop (help asked for, or bad flags).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitError, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "pgtenancy %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitError, false
	}
	return 0, true
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// databaseURL returns the flag's value, or DATABASE_URL.
func databaseURL(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("DATABASE_URL")
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "pgtenancy %s: %v\n", cmd, err)
	return exitError
}
