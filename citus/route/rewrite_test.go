package route_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/citus/route"
	"github.com/pgtenancy/pgtenancy/policy"
)

// storeTables: the storefront, plus a quoted table in another schema.
var storeTables = []route.Table{
	{Schema: "public", Name: "stores", Column: "id", Visible: true},
	{Schema: "public", Name: "products", Column: "store_id", Visible: true},
	{Schema: "public", Name: "purchases", Column: "store_id", Visible: true},
	{Schema: "Shop", Name: "Order Lines", Column: "Store", Visible: false},
}

func newRewriter(t testing.TB) *route.Rewriter {
	t.Helper()
	r, err := route.New(storeTables, route.Options{})
	require.NoError(t, err)
	return r
}

const eq = " OPERATOR(pg_catalog.=) "

// TestRewrite: what is rewritten, and how.
func TestRewrite(t *testing.T) {
	r := newRewriter(t)
	for _, tc := range []struct {
		name, in, out string
		param         int
	}{
		{"point query", "SELECT * FROM products WHERE id = $1",
			"SELECT * FROM products WHERE id = $1 AND products.store_id" + eq + "$2", 2},
		{"no params (simple protocol)", "SELECT count(*) FROM products",
			"SELECT count(*) FROM products WHERE products.store_id" + eq + "$1", 1},
		{"param numbering skips gaps", "SELECT * FROM products WHERE id = $3 OR id = $1",
			"SELECT * FROM products WHERE (id = $3 OR id = $1) AND products.store_id" + eq + "$4", 4},
		{"sqlc comment and existing AND", "-- name: GetProduct :one\nSELECT id, name FROM products\nWHERE id = $1 AND price_cents > $2",
			"SELECT id, name FROM products WHERE id = $1 AND price_cents > $2 AND products.store_id" + eq + "$3", 3},
		{"alias", "SELECT p.name FROM products AS p WHERE p.id = $1",
			"SELECT p.name FROM products p WHERE p.id = $1 AND p.store_id" + eq + "$2", 2},
		{"schema-qualified", "SELECT * FROM public.products WHERE id = 7",
			"SELECT * FROM public.products WHERE id = 7 AND public.products.store_id" + eq + "$1", 1},
		{"quoted identifiers", `SELECT * FROM "Shop"."Order Lines" ol WHERE ol."Qty" > 1`,
			`SELECT * FROM "Shop"."Order Lines" ol WHERE ol."Qty" > 1 AND ol."Store"` + eq + "$1", 1},
		{"quoted alias", `SELECT * FROM "products" AS "P q"`,
			`SELECT * FROM products "P q" WHERE "P q".store_id` + eq + "$1", 1},
		{"join", "SELECT p.name, u.qty FROM products p JOIN purchases u ON u.product_id = p.id WHERE u.id = $1",
			"SELECT p.name, u.qty FROM products p JOIN purchases u ON u.product_id = p.id WHERE u.id = $1 AND p.store_id" + eq + "$2 AND u.store_id" + eq + "$2", 2},
		{"comma join", "SELECT 1 FROM products p, purchases u WHERE u.product_id = p.id",
			"SELECT 1 FROM products p, purchases u WHERE u.product_id = p.id AND p.store_id" + eq + "$1 AND u.store_id" + eq + "$1", 1},
		{"self-join", "SELECT a.id, b.id FROM products a JOIN products b ON a.price_cents = b.price_cents AND a.id < b.id",
			"SELECT a.id, b.id FROM products a JOIN products b ON a.price_cents = b.price_cents AND a.id < b.id WHERE a.store_id" + eq + "$1 AND b.store_id" + eq + "$1", 1},
		{"left join: nullable side in ON", "SELECT s.name, p.id FROM stores s LEFT JOIN products p ON p.store_id = s.id WHERE s.id = $1",
			"SELECT s.name, p.id FROM stores s LEFT JOIN products p ON p.store_id = s.id AND p.store_id" + eq + "$2 WHERE s.id = $1 AND s.id" + eq + "$2", 2},
		{"right join", "SELECT 1 FROM products p RIGHT JOIN stores s ON p.store_id = s.id",
			"SELECT 1 FROM products p RIGHT JOIN stores s ON p.store_id = s.id AND p.store_id" + eq + "$1 WHERE s.id" + eq + "$1", 1},
		{"nested outer joins: innermost nullable join", "SELECT 1 FROM stores s LEFT JOIN (products p JOIN purchases u ON u.product_id = p.id) ON p.store_id = s.id",
			"SELECT 1 FROM stores s LEFT JOIN (products p JOIN purchases u ON u.product_id = p.id) ON p.store_id = s.id AND p.store_id" + eq + "$1 AND u.store_id" + eq + "$1 WHERE s.id" + eq + "$1", 1},
		{"subquery in WHERE", "SELECT * FROM products WHERE id IN (SELECT product_id FROM purchases WHERE qty > $1)",
			"SELECT * FROM products WHERE id IN (SELECT product_id FROM purchases WHERE qty > $1 AND purchases.store_id" + eq + "$2) AND products.store_id" + eq + "$2", 2},
		{"subquery in FROM", "SELECT x.n FROM (SELECT count(*) AS n FROM products) x",
			"SELECT x.n FROM (SELECT count(*) AS n FROM products WHERE products.store_id" + eq + "$1) x", 1},
		{"lateral", "SELECT s.id, l.n FROM stores s, LATERAL (SELECT count(*) AS n FROM products p WHERE p.store_id = s.id) l",
			"SELECT s.id, l.n FROM stores s, LATERAL (SELECT count(*) AS n FROM products p WHERE p.store_id = s.id AND p.store_id" + eq + "$1) l WHERE s.id" + eq + "$1", 1},
		{"CTE", "WITH x AS (SELECT * FROM products) SELECT * FROM x",
			"WITH x AS (SELECT * FROM products WHERE products.store_id" + eq + "$1) SELECT * FROM x", 1},
		{"union", "SELECT id FROM products UNION ALL SELECT product_id FROM purchases ORDER BY 1",
			"SELECT id FROM products WHERE products.store_id" + eq + "$1 UNION ALL SELECT product_id FROM purchases WHERE purchases.store_id" + eq + "$1 ORDER BY 1", 1},
		{"update returning", "UPDATE products SET price_cents = $2 WHERE id = $1 RETURNING id, price_cents",
			"UPDATE products SET price_cents = $2 WHERE id = $1 AND products.store_id" + eq + "$3 RETURNING id, price_cents", 3},
		{"update from", "UPDATE products p SET name = u.note FROM purchases u WHERE u.product_id = p.id",
			"UPDATE products p SET name = u.note FROM purchases u WHERE u.product_id = p.id AND p.store_id" + eq + "$1 AND u.store_id" + eq + "$1", 1},
		{"delete using returning", "DELETE FROM purchases u USING products p WHERE p.id = u.product_id AND p.id = $1 RETURNING u.id",
			"DELETE FROM purchases u USING products p WHERE p.id = u.product_id AND p.id = $1 AND u.store_id" + eq + "$2 AND p.store_id" + eq + "$2 RETURNING u.id", 2},
		{"delete without where", "DELETE FROM products",
			"DELETE FROM products WHERE products.store_id" + eq + "$1", 1},
		{"insert select", "INSERT INTO purchases (store_id, product_id, qty) SELECT store_id, id, 1 FROM products WHERE id = $1",
			"INSERT INTO purchases (store_id, product_id, qty) SELECT store_id, id, 1 FROM products WHERE id = $1 AND products.store_id" + eq + "$2", 2},
		{"data-modifying CTE", "WITH d AS (DELETE FROM purchases WHERE qty = 0 RETURNING id) SELECT count(*) FROM d",
			"WITH d AS (DELETE FROM purchases WHERE qty = 0 AND purchases.store_id" + eq + "$1 RETURNING id) SELECT count(*) FROM d", 1},
		{"explain", "EXPLAIN SELECT * FROM products WHERE id = $1",
			"EXPLAIN SELECT * FROM products WHERE id = $1 AND products.store_id" + eq + "$2", 2},
		{"for update", "SELECT * FROM products WHERE id = $1 FOR UPDATE",
			"SELECT * FROM products WHERE id = $1 AND products.store_id" + eq + "$2 FOR UPDATE", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.Analyze(tc.in)
			require.Equal(t, route.Rewritten, res.Outcome, res.Reason)
			assert.Equal(t, tc.out, res.SQL)
			assert.Equal(t, tc.param, res.Param)
			sql, param := r.Rewrite(tc.in)
			assert.Equal(t, res.SQL, sql)
			assert.Equal(t, res.Param, param)
			_, err := pg_query.Parse(res.SQL)
			require.NoError(t, err)
		})
	}
}

// TestUnchanged: what runs unchanged, with its outcome.
func TestUnchanged(t *testing.T) {
	r := newRewriter(t)
	for _, tc := range []struct {
		name, in string
		outcome  route.Outcome
		reason   string
	}{
		{"no table", "SELECT 1", route.NoTenantTable, ""},
		{"other table", "SELECT * FROM currencies", route.NoTenantTable, ""},
		{"insert values", "INSERT INTO products (store_id, id, name) VALUES ($1, $2, $3) RETURNING id", route.NoTenantTable, ""},
		{"not visible unqualified", `SELECT * FROM "Order Lines"`, route.NoTenantTable, ""},
		{"other schema", "SELECT * FROM other.products", route.NoTenantTable, ""},
		{"prepared statement name", "getproduct", route.Unparsed, "syntax error"},
		{"syntax error", "SELEC * FROM products", route.Unparsed, "syntax error"},
		{"two statements", "SELECT 1 FROM products; SELECT 2", route.Unparsed, "2 statements"},
		{"full join", "SELECT 1 FROM products p FULL JOIN purchases u ON u.product_id = p.id", route.LeftAlone, "FULL join"},
		{"join alias", "SELECT j.id FROM (products p JOIN purchases u ON u.product_id = p.id) AS j(id)", route.LeftAlone, "join with an alias"},
		{"column aliases", "SELECT * FROM products p(a, b)", route.LeftAlone, "renames its columns"},
		{"outer join USING", "SELECT 1 FROM stores s LEFT JOIN products p USING (id)", route.LeftAlone, "without ON"},
		{"CTE shadows", "WITH products AS (SELECT 1 AS id) SELECT * FROM products", route.LeftAlone, "named \"products\""},
		{"current of", "UPDATE products SET name = 'x' WHERE CURRENT OF c", route.LeftAlone, "CURRENT OF"},
		{"merge", "MERGE INTO products p USING purchases u ON u.product_id = p.id WHEN MATCHED THEN DELETE", route.LeftAlone, "MergeStmt"},
		{"select into", "SELECT * INTO TEMP t FROM products", route.LeftAlone, "SELECT INTO"},
		{"copy", "COPY products TO STDOUT", route.LeftAlone, "CopyStmt"},
		{"truncate", "TRUNCATE products", route.LeftAlone, "TruncateStmt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.Analyze(tc.in)
			require.Equal(t, tc.outcome, res.Outcome, res.Reason)
			assert.Equal(t, tc.in, res.SQL)
			assert.Zero(t, res.Param)
			assert.Contains(t, res.Reason, tc.reason)
			sql, param := r.Rewrite(tc.in)
			assert.Equal(t, tc.in, sql)
			assert.Zero(t, param)
		})
	}
	var reasons []string
	for _, res := range r.LeftAlone() {
		reasons = append(reasons, res.Reason)
	}
	assert.Len(t, reasons, 10, "%q", reasons)
}

// TestCacheAndStats: each distinct text is analysed once; Stats counts
// texts by outcome and calls by cache hit; the cache is bounded.
func TestCacheAndStats(t *testing.T) {
	r, err := route.New(storeTables, route.Options{CacheSize: 3})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				r.Rewrite("SELECT * FROM products WHERE id = $1")
			}
		}()
	}
	wg.Wait()
	s := r.Stats()
	assert.LessOrEqual(t, s.Misses, int64(8), "analysed at most once per goroutine racing on the first call")
	assert.Equal(t, int64(800), s.Hits+s.Misses)
	assert.Equal(t, s.Misses, s.Rewritten)

	r, err = route.New(storeTables, route.Options{CacheSize: 3})
	require.NoError(t, err)
	r.Rewrite("SELECT 1")
	r.Rewrite("SELECT 1 FROM products p FULL JOIN stores s ON true")
	r.Rewrite("nonsense")
	r.Rewrite("SELECT 1")
	assert.Equal(t, route.Stats{Rewritten: 0, NoTenantTable: 1, LeftAlone: 1, Unparsed: 1, Hits: 1, Misses: 3}, r.Stats())
	for i := range 10 {
		r.Rewrite(fmt.Sprintf("SELECT %d FROM products", i))
	}
	s = r.Stats()
	assert.Equal(t, int64(10), s.Rewritten)
	// The cache holds 3 texts: of the first 3 texts, at most... all
	// evicted or not, but the number of texts analysed again is bounded by
	// what was evicted; calling the last 3 again hits.
	before := r.Stats().Hits
	r.Rewrite("SELECT 9 FROM products")
	assert.Equal(t, before+1, r.Stats().Hits, "the newest text is cached")

	r, err = route.New(storeTables, route.Options{MaxSQL: 10})
	require.NoError(t, err)
	r.Rewrite("SELECT * FROM products")
	r.Rewrite("SELECT * FROM products")
	assert.Equal(t, int64(2), r.Stats().Misses, "texts longer than MaxSQL are not cached")
}

func TestNewErrors(t *testing.T) {
	for _, ts := range [][]route.Table{
		{{Schema: "public", Name: "products"}},
		{{Name: "products", Column: "store_id"}},
		{{Schema: "public", Name: "p", Column: "c"}, {Schema: "public", Name: "p", Column: "c"}},
		{{Schema: "a", Name: "p", Column: "c", Visible: true}, {Schema: "b", Name: "p", Column: "c", Visible: true}},
	} {
		_, err := route.New(ts, route.Options{})
		require.ErrorIs(t, err, route.ErrConfig, "%+v", ts)
	}
	_, err := route.New(nil, route.Options{CacheSize: -1})
	require.ErrorIs(t, err, route.ErrConfig)
}

func TestFromModel(t *testing.T) {
	m := &policy.Model{Citus: true, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "billing.invoices", TenantColumn: "store_id"},
	}}
	ts, err := route.FromModel(m)
	require.NoError(t, err)
	assert.Equal(t, []route.Table{
		{Schema: "public", Name: "stores", Column: "id", Visible: true},
		{Schema: "billing", Name: "invoices", Column: "store_id", Visible: false},
	}, ts)
	_, err = route.FromModel(&policy.Model{})
	require.True(t, errors.Is(err, route.ErrConfig))
}

// FuzzRewrite: on any input, a rewrite parses, adds exactly one new
// parameter number, and a text left unchanged is returned as given.
func FuzzRewrite(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM products WHERE id = $1",
		"SELECT 1 FROM stores s LEFT JOIN products p ON p.store_id = s.id",
		"WITH x AS (UPDATE products SET name = $1 RETURNING id) SELECT * FROM x JOIN purchases u ON u.product_id = x.id",
		"DELETE FROM purchases WHERE id IN (SELECT id FROM purchases ORDER BY id LIMIT 10)",
	} {
		f.Add(s)
	}
	r := newRewriter(f)
	f.Fuzz(func(t *testing.T, sql string) {
		res := r.Analyze(sql)
		if res.Outcome != route.Rewritten {
			require.Equal(t, sql, res.SQL)
			return
		}
		require.Positive(t, res.Param)
		require.Contains(t, res.SQL, fmt.Sprintf("$%d", res.Param))
		_, err := pg_query.Parse(res.SQL)
		require.NoError(t, err)
		again := r.Analyze(res.SQL)
		if again.Outcome == route.Rewritten {
			require.Equal(t, res.Param+1, again.Param)
		}
	})
}
