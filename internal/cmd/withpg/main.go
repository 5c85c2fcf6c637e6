// Command withpg starts a throwaway PostgreSQL cluster, runs a command with
// PGTENANCY_TEST_DATABASE_URL pointing at it, stops the cluster and exits
// with the command's status. `make test-shared` uses it to run the test
// binaries of every package against one shared server, as on a CI database
// that several jobs share:
//
//	go run ./internal/cmd/withpg -- go test -count=1 ./...
//
// The server binaries are chosen as for the tests (PGTENANCY_PG_VERSION,
// PGTENANCY_PG_BIN, ...; see internal/pgcluster). With -clean, withpg
// fails when the command succeeded but left databases behind.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/pgcluster"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: withpg -- command [args...]")
		flag.PrintDefaults()
	}
	clean := flag.Bool("clean", false, "fail when the command leaves databases behind")
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(flag.Args(), *clean))
}

func run(args []string, clean bool) int {
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "withpg: "+format+"\n", a...) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	c, err := pgcluster.Start(ctx, pgcluster.Options{Logf: logf})
	cancel()
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer func() {
		if err := c.Stop(); err != nil {
			logf("stop: %v", err)
		}
	}()
	version, _ := c.ServerVersion()
	logf("PostgreSQL %s from %s on port %d", version, c.BinDir(), c.Port())

	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "PGTENANCY_TEST_DATABASE_URL="+c.URL("postgres"))
	if err := cmd.Start(); err != nil {
		logf("%v", err)
		return 1
	}
	// Pass interrupts on, and stop the cluster after the command ends.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if code := exit.ExitCode(); code > 0 {
			return code
		}
		return 1 // killed by a signal
	}
	if err != nil {
		logf("%v", err)
		return 1
	}
	if clean {
		left, err := databases(c.URL("postgres"))
		if err != nil {
			logf("%v", err)
			return 1
		}
		if len(left) > 0 {
			logf("the command left %d databases behind: %v", len(left), left)
			return 1
		}
		logf("no databases left behind")
	}
	return 0
}

// databases lists the databases of the server other than postgres and the
// templates template0 and template1.
func databases(url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
