package riverjobs_test

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/riverjobs"
	"github.com/pgtenancy/pgtenancy/rls"
)

// CountArgs is a job that counts the items of its tenant.
type CountArgs struct{}

func (CountArgs) Kind() string { return "count_items" }

type CountWorker struct {
	river.WorkerDefaults[CountArgs]
	Pool *pool.Pool
	Done chan string
}

// Work runs with the job's tenant in ctx: the pool's row level security
// shows it that tenant's items only.
func (w *CountWorker) Work(ctx context.Context, job *river.Job[CountArgs]) error {
	tenant, _ := rls.FromContext(ctx)
	var n int
	if err := w.Pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil {
		return err
	}
	w.Done <- fmt.Sprintf("job for tenant %s sees %d items", tenant, n)
	return nil
}

// A job inserted in a tenant's transaction (InsertTx) runs for that
// tenant.
func ExampleMiddleware() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, schema) // the application role owns nothing
	ctx := context.Background()

	tenantPool, err := pool.New(ctx, db.AppURL)
	if err != nil {
		panic(err)
	}
	defer tenantPool.Close()
	worker := &CountWorker{Pool: tenantPool, Done: make(chan string)}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	client, err := river.NewClient(riverpgxv5.New(tenantPool.Unwrap()), &river.Config{
		Middleware: []rivertype.Middleware{riverjobs.NewMiddleware(riverjobs.Options{})},
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		Workers:    workers,
		Logger:     quietLogger(),
	})
	if err != nil {
		panic(err)
	}
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()

	// Tenant 3 adds an item and enqueues the job in one transaction.
	tctx := rls.WithTenant(ctx, rls.Int64(3))
	err = tenantPool.BeginFunc(tctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(tctx, "INSERT INTO items (tenant_id, n) VALUES (3, 4)"); err != nil {
			return err
		}
		_, err := client.InsertTx(tctx, tx, CountArgs{}, nil)
		return err
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-worker.Done)
	// Output:
	// job for tenant 3 sees 4 items
}
