package pgcluster

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/ci"
)

func startPgBouncerOrSkip(t *testing.T, c *Cluster, opts PgBouncerOptions) *PgBouncer {
	t.Helper()
	b, err := StartPgBouncer(context.Background(), "127.0.0.1", c.Port(), opts)
	if errors.Is(err, ErrNoPgBouncer) {
		if ci.On() {
			t.Fatalf("%v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// TestPgBouncerTransactionPooling checks that pgbouncer forwards to the
// cluster and really shares one server connection between two clients.
func TestPgBouncerTransactionPooling(t *testing.T) {
	c := startOrSkip(t)
	b := startPgBouncerOrSkip(t, c, PgBouncerOptions{PoolSize: 1})
	ctx := context.Background()
	u, err := b.URL(c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	var pids [2]int32
	for i := range pids {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if pids[0] != pids[1] {
		t.Fatalf("two clients got server backends %d and %d; want one shared backend with pool size 1", pids[0], pids[1])
	}
	// A session setting made by one client is visible to the other: the
	// hazard of transaction pooling.
	c1, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if _, err := c1.Exec(ctx, "SELECT set_config('app.leak', 'from c1', false)"); err != nil {
		t.Fatal(err)
	}
	var got *string
	if err := c2.QueryRow(ctx, "SELECT current_setting('app.leak', true)").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got == nil || *got != "from c1" {
		t.Fatalf("second client read %v; want the first client's session setting", got)
	}
}

func TestPgBouncerUsersAndStop(t *testing.T) {
	c := startOrSkip(t)
	ctx := context.Background()
	admin := connect(t, c.URL("postgres"))
	if _, err := admin.Exec(ctx, "CREATE ROLE bouncer_user LOGIN PASSWORD 'secret'"); err != nil {
		t.Fatal(err)
	}
	b := startPgBouncerOrSkip(t, c, PgBouncerOptions{Users: map[string]string{"bouncer_user": "secret"}})
	good, _ := b.URL("postgres://bouncer_user:secret@x/postgres?sslmode=disable")
	conn, err := pgx.Connect(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user", pgx.QueryExecModeSimpleProtocol).Scan(&user); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if user != "bouncer_user" {
		t.Fatalf("current_user = %q", user)
	}
	bad, _ := b.URL("postgres://bouncer_user:wrong@x/postgres?sslmode=disable")
	if conn, err := pgx.Connect(ctx, bad); err == nil {
		conn.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left after Stop: %v", b.dir, err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
}
