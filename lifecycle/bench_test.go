package lifecycle_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// benchRows is the size of the benchmark's tenant: a quarter in products,
// the rest in purchases. PGTENANCY_BENCH_ROWS overrides it.
const benchRows = 1_000_000

func benchSize(b *testing.B) int {
	if s := os.Getenv("PGTENANCY_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(b, err)
		return n
	}
	return benchRows
}

func benchModel() *policy.Model {
	return &policy.Model{
		KeyType: rls.BigInt,
		Tables: []policy.Table{
			{Name: "stores", TenantColumn: "id", Root: true},
			{Name: "products", TenantColumn: "store_id"},
			{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{
				{Columns: []string{"product_id"}, RefTable: "products"},
			}},
		},
	}
}

// benchSetup fills a database with tenant 1 of n rows and tenant 2 of n/4,
// isolated, and returns it.
func benchSetup(b *testing.B, n int) *pgtenancytest.DB {
	ctx := b.Context()
	db := pgtenancytest.NewDB(b, nil)
	conn := db.OwnerConn(b)
	start := time.Now()
	_, err := conn.Exec(ctx, `
CREATE TABLE stores (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (store_id bigint NOT NULL REFERENCES stores, id bigserial, name text NOT NULL,
    price numeric(12, 2), created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (store_id, id));
CREATE TABLE purchases (store_id bigint NOT NULL REFERENCES stores, id bigserial, product_id bigint NOT NULL,
    quantity int NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (store_id, id),
    FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id));
CREATE INDEX ON purchases (store_id, product_id);
INSERT INTO stores VALUES (1, 'big'), (2, 'small');`)
	require.NoError(b, err)
	for _, s := range []struct{ store, rows int }{{1, n}, {2, n / 4}} {
		p := s.rows / 4
		_, err := conn.Exec(ctx, fmt.Sprintf(`
INSERT INTO products (store_id, id, name, price, created)
SELECT %[1]d, %[1]d * 100000000 + i, 'product ' || i, i * 0.25, '2024-01-01'::timestamptz + i * interval '1 minute'
FROM generate_series(1, %[2]d) i;
INSERT INTO purchases (store_id, id, product_id, quantity, at, note)
SELECT %[1]d, %[1]d * 100000000 + i, %[1]d * 100000000 + 1 + i %% %[2]d, i %% 7 + 1,
       '2024-06-01'::timestamptz + i * interval '1 second', CASE WHEN i %% 3 = 0 THEN NULL ELSE 'note ' || i END
FROM generate_series(1, %[3]d) i;`, s.store, p, s.rows-p))
		require.NoError(b, err)
	}
	mig, err := catalog.Plan(ctx, conn, benchModel())
	require.NoError(b, err)
	_, err = conn.Exec(ctx, mig.Up)
	require.NoError(b, err)
	_, err = conn.Exec(ctx, "VACUUM ANALYZE stores, products, purchases")
	require.NoError(b, err)
	b.Logf("setup: %d + %d rows in %v", n, n/4, time.Since(start).Round(time.Millisecond))
	return db
}

// rawCopy copies tenant 1's rows of each table to files with plain COPY
// as the admin role, which row level security does not apply to: the
// baseline.
func rawCopy(ctx context.Context, conn *pgx.Conn, dir string) (time.Duration, error) {
	start := time.Now()
	for i, table := range []string{"stores", "products", "purchases"} {
		col := "store_id"
		if table == "stores" {
			col = "id"
		}
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)+".bin"))
		if err != nil {
			return 0, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		_, err = conn.PgConn().CopyTo(ctx, w, fmt.Sprintf("COPY (SELECT * FROM %s WHERE %s = 1) TO STDOUT (FORMAT binary)", table, col))
		if err == nil {
			err = w.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkLifecycle measures, on one tenant of PGTENANCY_BENCH_ROWS rows
// (1,000,000 by default): export against a plain COPY of the same rows by
// a role without row level security (medians of 5 interleaved runs),
// import into a second database, and a delete in batches, with its
// longest batch. Run it with make bench-lifecycle.
func BenchmarkLifecycle(b *testing.B) {
	n := benchSize(b)
	ctx := b.Context()
	src := benchSetup(b, n)
	admin := src.AdminConn(b)
	owner := src.OwnerPool(b)
	var raw, exp []time.Duration
	var dir string
	for i := range 5 {
		d, err := rawCopy(ctx, admin, b.TempDir())
		require.NoError(b, err)
		raw = append(raw, d)
		dir = filepath.Join(b.TempDir(), "export")
		start := time.Now()
		_, err = lifecycle.Export(ctx, owner, benchModel(), rls.Int64(1), dir, lifecycle.ExportOptions{})
		require.NoError(b, err)
		exp = append(exp, time.Since(start))
		b.Logf("run %d: COPY %v, export %v", i+1, d.Round(time.Millisecond), exp[i].Round(time.Millisecond))
	}
	rawMed, expMed := median(raw), median(exp)
	fmt.Printf("export of %d rows: %v (%.0f rows/s); plain COPY: %v\n", n, expMed.Round(time.Millisecond),
		float64(n)/expMed.Seconds(), rawMed.Round(time.Millisecond))
	fmt.Printf("RATIO export/COPY speed %.2f (want >= 0.5)\n", rawMed.Seconds()/expMed.Seconds())

	start := time.Now()
	csvDir := filepath.Join(b.TempDir(), "csv")
	_, err := lifecycle.Export(ctx, owner, benchModel(), rls.Int64(1), csvDir, lifecycle.ExportOptions{Format: lifecycle.CSV})
	require.NoError(b, err)
	fmt.Printf("export of %d rows as CSV: %v\n", n, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	_, err = lifecycle.Checksums(ctx, owner, benchModel(), rls.Int64(1))
	require.NoError(b, err)
	fmt.Printf("checksums of %d rows on the server: %v\n", n, time.Since(start).Round(time.Millisecond))

	dst := pgtenancytest.NewDB(b, nil)
	_, err = dst.OwnerConn(b).Exec(ctx, `
CREATE TABLE stores (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (store_id bigint NOT NULL REFERENCES stores, id bigserial, name text NOT NULL,
    price numeric(12, 2), created timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (store_id, id));
CREATE TABLE purchases (store_id bigint NOT NULL REFERENCES stores, id bigserial, product_id bigint NOT NULL,
    quantity int NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (store_id, id),
    FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id));
CREATE INDEX ON purchases (store_id, product_id);`)
	require.NoError(b, err)
	mig, err := catalog.Plan(ctx, dst.OwnerConn(b), benchModel())
	require.NoError(b, err)
	_, err = dst.OwnerConn(b).Exec(ctx, mig.Up)
	require.NoError(b, err)
	start = time.Now()
	_, err = lifecycle.Import(ctx, dst.OwnerPool(b), dir, lifecycle.ImportOptions{})
	require.NoError(b, err)
	imp := time.Since(start)
	fmt.Printf("import of %d rows (one transaction, checksums compared): %v (%.0f rows/s)\n", n, imp.Round(time.Millisecond), float64(n)/imp.Seconds())

	res, err := lifecycle.Delete(ctx, owner, benchModel(), rls.Int64(1), lifecycle.DeleteOptions{})
	require.NoError(b, err)
	batches := 0
	for _, t := range res.Tables {
		batches += t.Batches
	}
	fmt.Printf("delete of %d rows: %v in %d batches (%.0f rows/s)\n", n, res.Elapsed.Round(time.Millisecond), batches, float64(n)/res.Elapsed.Seconds())
	fmt.Printf("LONGEST delete batch (lock held at most) %v (want <= 1s)\n", res.Longest.Round(time.Millisecond))
}
