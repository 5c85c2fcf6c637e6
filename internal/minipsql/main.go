// Command minipsql runs the psql command lines that the guides show, on
// machines without psql: the docs test puts it on PATH as "psql" only when
// no working psql is installed (the pinned server builds that the tests
// download have no client programs).
//
// It understands a connection URL (positional, or -d), -c (repeatable; the
// commands run in order in one session, through the simple protocol, like
// psql's), -A, -t, -X and -q, also combined (-Atc). Output is psql's
// unaligned format: fields separated by "|", NULL as an empty string,
// with a header and a row count unless -t. It stops at the first error,
// printed as psql prints it, and exits 1. Any other option is refused
// (exit 2), so a guide that needs more fails loudly instead of running
// something else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	conninfo   string
	commands   []string
	tuplesOnly bool
}

func parse(args []string) (options, error) {
	var o options
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if o.conninfo != "" {
				return o, fmt.Errorf("unexpected argument %q", a)
			}
			o.conninfo = a
			continue
		}
		flags := strings.TrimPrefix(a, "-")
		for j := 0; j < len(flags); j++ {
			switch f := flags[j]; f {
			case 'A', 'X', 'q':
				// unaligned output is the only output; no psqlrc; quiet
			case 't':
				o.tuplesOnly = true
			case 'c', 'd':
				// The value is the rest of this argument, or the next one.
				v := flags[j+1:]
				if v == "" {
					if i+1 == len(args) {
						return o, fmt.Errorf("option -%c needs a value", f)
					}
					i++
					v = args[i]
				}
				if f == 'c' {
					o.commands = append(o.commands, v)
				} else {
					o.conninfo = v
				}
				j = len(flags)
			default:
				return o, fmt.Errorf("unsupported option -%c in %q (minipsql knows -A, -t, -X, -q, -c and -d)", f, a)
			}
		}
	}
	if o.conninfo == "" {
		return o, errors.New("no connection URL")
	}
	if len(o.commands) == 0 {
		return o, errors.New("no -c command (minipsql runs commands, it has no interactive mode)")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "minipsql:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgconn.Connect(ctx, o.conninfo)
	if err != nil {
		fmt.Fprintln(stderr, "psql: error:", err)
		return 2
	}
	defer conn.Close(context.Background())
	for _, sql := range o.commands {
		results, err := conn.Exec(ctx, sql).ReadAll()
		for _, r := range results {
			printResult(stdout, r, o.tuplesOnly)
		}
		if err == nil {
			for _, r := range results {
				if r.Err != nil {
					err = r.Err
					break
				}
			}
		}
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				fmt.Fprintf(stderr, "ERROR:  %s\n", pgErr.Message)
			} else {
				fmt.Fprintln(stderr, "psql: error:", err)
			}
			return 1
		}
	}
	return 0
}

// printResult writes the rows of r in psql's unaligned format.
func printResult(w io.Writer, r *pgconn.Result, tuplesOnly bool) {
	if r.Err != nil || len(r.FieldDescriptions) == 0 {
		return
	}
	if !tuplesOnly {
		names := make([]string, len(r.FieldDescriptions))
		for i, fd := range r.FieldDescriptions {
			names[i] = fd.Name
		}
		fmt.Fprintln(w, strings.Join(names, "|"))
	}
	for _, row := range r.Rows {
		fields := make([]string, len(row))
		for i, v := range row {
			fields[i] = string(v) // text format; NULL is nil, printed empty
		}
		fmt.Fprintln(w, strings.Join(fields, "|"))
	}
	if !tuplesOnly {
		if len(r.Rows) == 1 {
			fmt.Fprintln(w, "(1 row)")
		} else {
			fmt.Fprintf(w, "(%d rows)\n", len(r.Rows))
		}
	}
}
