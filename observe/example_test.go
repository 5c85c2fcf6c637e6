package observe_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pgtenancy/pgtenancy/observe"
	"github.com/pgtenancy/pgtenancy/rls"
)

// A logger whose records carry the tenant of their context.
func ExampleNewLogHandler() {
	text := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output for the example
			}
			return a
		},
	})
	log := slog.New(observe.NewLogHandler(text, nil))
	ctx := rls.WithTenant(context.Background(), rls.Int64(42))
	log.InfoContext(ctx, "order placed", "order", 7)
	log.InfoContext(context.Background(), "tick")
	// Output:
	// level=INFO msg="order placed" order=7 tenant=42
	// level=INFO msg=tick
}

// Per-tenant totals, the noisy tenants by name and the rest as "other".
func ExampleMetrics() {
	m := observe.NewMetrics(observe.GuardOptions{TopN: 1})
	ctx := context.Background()
	m.ObserveUnit(ctx, observe.Unit{Tenant: rls.Int64(1), Kind: observe.Query, Rows: 10, Duration: 3 * time.Millisecond})
	m.ObserveUnit(ctx, observe.Unit{Tenant: rls.Int64(2), Kind: observe.Exec, Rows: 1, Duration: time.Millisecond})
	m.ObserveUnit(ctx, observe.Unit{Tenant: rls.Int64(3), Kind: observe.Exec, Err: fmt.Errorf("boom"), Duration: time.Millisecond})
	for _, s := range m.Snapshot() {
		fmt.Printf("%s: %d units, %d errors, %d rows, %v\n", s.Tenant, s.Units, s.Errors, s.Rows, s.Time)
	}
	// Output:
	// 1: 1 units, 0 errors, 10 rows, 3ms
	// other: 2 units, 1 errors, 1 rows, 2ms
}
