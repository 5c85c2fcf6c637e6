package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/signing"
)

const keySynopsis = `rotate|retire|list [flags]

Manages the keys of signed mode (docs/security.md) in pgtenancy.signing_keys,
connected as the role that installed the library (the only one that can
read the table).

  rotate --id ID   adds a new key and prints it, as id:secret, on stdout, for
                   the application's secret store (the only time it is shown).
                   Values signed with the old key keep verifying: move the
                   application to the new key, then retire the old one.
                   Refused when two keys are held already.
  retire --id ID   deletes a key: values signed with it stop verifying at once.
                   Refused for the last key.
  list             prints the ids of the keys held, oldest first.`

func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	verb := ""
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		verb, args = args[0], args[1:]
	}
	fs := newFlagSet("key", stderr, keySynopsis)
	url := fs.String("database-url", "", "database holding the keys, as the role that installed the library (default $DATABASE_URL)")
	id := fs.String("id", "", "key id: 1 to 32 characters of a-z, 0-9 and _ (rotate: default k<UTC date and time>)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	switch verb {
	case "rotate", "retire", "list":
	default:
		fmt.Fprintf(stderr, "pgtenancy key: want rotate, retire or list, got %q\n\n", verb)
		fs.Usage()
		return exitError
	}
	dsn := databaseURL(*url)
	if dsn == "" {
		return fail(stderr, "key", fmt.Errorf("no database: pass --database-url or set DATABASE_URL"))
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fail(stderr, "key", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	switch verb {
	case "rotate":
		kid := *id
		if kid == "" {
			kid = "k" + time.Now().UTC().Format("20060102_150405")
		}
		k, err := signing.Rotate(ctx, conn, kid)
		if err != nil {
			return fail(stderr, "key rotate", err)
		}
		fmt.Fprintln(stdout, k.Encode())
		fmt.Fprintf(stderr, "pgtenancy key rotate: added key %s; sign with it (signing.ParseKey), then retire the old key\n", k.ID)
	case "retire":
		if *id == "" {
			return fail(stderr, "key retire", fmt.Errorf("pass --id"))
		}
		if err := signing.Retire(ctx, conn, *id); err != nil {
			return fail(stderr, "key retire", err)
		}
		fmt.Fprintf(stderr, "pgtenancy key retire: retired key %s\n", *id)
	case "list":
		keys, err := signing.Keys(ctx, conn)
		if err != nil {
			return fail(stderr, "key list", err)
		}
		for _, k := range keys {
			fmt.Fprintf(stdout, "%s\t%s\n", k.ID, k.Created.UTC().Format(time.RFC3339))
		}
	}
	return exitOK
}
