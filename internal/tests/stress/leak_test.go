package stress_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestCloseLeavesNoGoroutines serves requests through the middleware and a
// pgtenancy pool (queries, batches, transactions, CopyFrom, requests cancelled
// mid-query, malformed tenants), closes the server, the client and the
// pool, and waits for the process's goroutine count to return to what it
// was before the pool existed.
//
// It does not call t.Parallel: it counts every goroutine of the process.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	db := pgtenancytest.NewDB(t, storeTemplate)
	ctx := context.Background()
	baseline := settledGoroutines()

	p, err := pool.New(ctx, db.AppURL)
	require.NoError(t, err)
	mw, err := middleware.New(middleware.Config{KeyType: rls.BigInt, Resolver: middleware.Header(""), Authorize: testCallerMayUseAny})
	require.NoError(t, err)
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		tenant, _ := rls.FromContext(ctx)
		var n int64
		var err error
		switch r.URL.Path {
		case "/query":
			err = p.QueryRow(ctx, "SELECT count(*) FROM products, pg_sleep(0.002)").Scan(&n)
		case "/batch":
			b := &pgx.Batch{}
			b.Queue("SELECT count(*) FROM products").QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
			err = p.SendBatch(ctx, b).Close()
		case "/tx":
			err = p.BeginFunc(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO products (name, price_cents, currency) VALUES ('leak test', 1, 'EUR')"); err != nil {
					return err
				}
				return tx.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n)
			})
		case "/copy":
			rows := make([][]any, 50)
			for i := range rows {
				rows[i] = []any{tenant.String(), fmt.Sprintf("copied %d", i), int64(1), "EUR"}
			}
			n, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"store_id", "name", "price_cents", "currency"}, pgx.CopyFromRows(rows))
		}
		if err != nil {
			http.Error(w, "db", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, n)
	})))
	client := &http.Client{Transport: &http.Transport{}}

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	cancelled := 0
	paths := []string{"/query", "/batch", "/tx", "/copy"}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				rctx, cancel := context.WithCancel(ctx)
				if i%5 == 4 {
					// Cancelled while the handler is in the database.
					time.AfterFunc(time.Millisecond, cancel)
				}
				req, err := http.NewRequestWithContext(rctx, http.MethodGet, srv.URL+paths[(g+i)%len(paths)], nil)
				if err != nil {
					cancel()
					t.Error(err)
					return
				}
				tenant := fmt.Sprint(firstTenant + (g*40+i)%numTenants)
				if i%7 == 6 {
					tenant = "1; DROP TABLE products"
				}
				req.Header.Set("X-Tenant-ID", tenant)
				resp, err := client.Do(req)
				mu.Lock()
				if err != nil {
					if errors.Is(err, context.Canceled) {
						cancelled++
					} else {
						t.Error(err)
					}
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					statuses[resp.StatusCode]++
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	t.Logf("statuses %v, %d requests cancelled by the client", statuses, cancelled)
	require.Positive(t, statuses[http.StatusOK])
	require.Positive(t, statuses[http.StatusBadRequest])
	open := runtime.NumGoroutine()

	srv.Close()
	client.CloseIdleConnections()
	p.Close()

	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	t.Logf("goroutines: %d before, %d after the requests, %d after closing", baseline, open, n)
	if n > baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines left behind after closing the server and the pool:\n%s", n-baseline, ours(string(buf)))
	}
}

// settledGoroutines waits until the goroutine count stops changing (for
// up to 5 s) and returns it.
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n && i >= 5 {
			return n
		}
		n = m
	}
	return n
}

// ours keeps the goroutine stacks that mention pgx, pgtenancy or net/http.
func ours(stacks string) string {
	var keep []string
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "jackc/") || strings.Contains(g, "pgtenancy/pgtenancy/pool") ||
			strings.Contains(g, "pgtenancy/pgtenancy/middleware") || strings.Contains(g, "net/http") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}

// testCallerMayUseAny is the Authorize hook of tests whose one caller may
// act for every tenant (an application checks membership here).
func testCallerMayUseAny(*http.Request, rls.Tenant) error { return nil }
