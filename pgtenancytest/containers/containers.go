// Package containers runs the pgtenancytest harness against PostgreSQL in a
// Docker container, for machines that have a Docker engine and no local
// PostgreSQL server binaries. It is a separate module so that the main
// module does not depend on testcontainers-go.
//
// Use [Main] in place of pgtenancytest.Main:
//
//	func TestMain(m *testing.M) { containers.Main(m) }
//
// Tests then use pgtenancytest as usual. When PGTENANCY_TEST_DATABASE_URL is already set, Main
// uses that server and starts no container.
package containers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// Image is the container image that [Start] runs.
const Image = "postgres:15"

// ErrNoEngine is returned (wrapped) by [Start] and [EngineAvailable] when no
// Docker engine can be reached.
var ErrNoEngine = errors.New("containers: no Docker engine reachable")

// Main starts a PostgreSQL container, points PGTENANCY_TEST_DATABASE_URL at it, runs the
// tests with pgtenancytest, stops the container and exits. Call it from TestMain.
//
// When PGTENANCY_TEST_DATABASE_URL is already set, no container is started. When no Docker
// engine is reachable, Main says so on stderr and runs the tests anyway:
// pgtenancytest then uses local server binaries if there are any, and otherwise
// skips (or, with CI=true, fails) the tests that need a database.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv("PGTENANCY_TEST_DATABASE_URL") != "" {
		return pgtenancytest.Run(m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	url, stop, err := Start(ctx)
	cancel()
	switch {
	case errors.Is(err, ErrNoEngine):
		fmt.Fprintf(os.Stderr, "pgtenancytest/containers: %v; running without a container\n", err)
		return pgtenancytest.Run(m)
	case err != nil:
		fmt.Fprintf(os.Stderr, "pgtenancytest/containers: %v\n", err)
		return 1
	}
	defer stop()
	startedURL = url
	if err := os.Setenv("PGTENANCY_TEST_DATABASE_URL", url); err != nil {
		fmt.Fprintf(os.Stderr, "pgtenancytest/containers: %v\n", err)
		return 1
	}
	return pgtenancytest.Run(m)
}

// startedURL is the URL of the container that Main started, if any.
var startedURL string

// Start runs a PostgreSQL container ([Image]) tuned for tests and returns the
// URL of its superuser "postgres" to database "postgres", and a function that
// removes the container. It returns an error wrapping [ErrNoEngine] quickly
// when no Docker engine is reachable.
func Start(ctx context.Context) (url string, stop func(), err error) {
	if err := EngineAvailable(ctx); err != nil {
		return "", nil, err
	}
	c, err := postgres.Run(ctx, Image,
		postgres.WithDatabase("postgres"),
		postgres.WithUsername("postgres"),
		postgres.WithPassword("postgres"),
		postgres.BasicWaitStrategies(),
		testcontainers.WithCmd("postgres",
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "max_connections=300"),
	)
	stop = func() {
		if c != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = testcontainers.TerminateContainer(c, testcontainers.StopContext(ctx))
		}
	}
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("containers: start %s: %w", Image, err)
	}
	url, err = c.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("containers: %w", err)
	}
	return url, stop, nil
}

// EngineAvailable reports, within a few seconds, whether a Docker engine
// answers. Its error wraps [ErrNoEngine].
func EngineAvailable(ctx context.Context) (err error) {
	defer func() {
		// testcontainers panics when it finds no Docker host at all.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrNoEngine, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	p, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	if err := p.Health(ctx); err != nil { // Health closes p
		return fmt.Errorf("%w: %v", ErrNoEngine, err)
	}
	return nil
}
