package route_test

import (
	"fmt"

	"github.com/pgtenancy/pgtenancy/citus/route"
)

// A rewriter for two distributed tenant tables: a point query gets the
// tenant predicate as a new parameter, $2, that the pool binds to the
// context's tenant; an INSERT needs none; a FULL JOIN is left alone (and
// still isolated by row level security).
func ExampleRewriter() {
	rw, err := route.New([]route.Table{
		{Schema: "public", Name: "products", Column: "store_id", Visible: true},
		{Schema: "public", Name: "purchases", Column: "store_id", Visible: true},
	}, route.Options{})
	if err != nil {
		panic(err)
	}
	sql, param := rw.Rewrite("SELECT name FROM products WHERE id = $1")
	fmt.Println(sql, "--", param)
	sql, param = rw.Rewrite("INSERT INTO products (store_id, id, name) VALUES ($1, $2, $3)")
	fmt.Println(sql, "--", param)
	res := rw.Analyze("SELECT 1 FROM products p FULL JOIN purchases u ON u.product_id = p.id")
	fmt.Println(res.Outcome, "--", res.Reason)
	fmt.Printf("%+v\n", rw.Stats())
	// Output:
	// SELECT name FROM products WHERE id = $1 AND products.store_id OPERATOR(pg_catalog.=) $2 -- 2
	// INSERT INTO products (store_id, id, name) VALUES ($1, $2, $3) -- 0
	// left alone -- a FULL join is not rewritten
	// {Rewritten:1 NoTenantTable:1 LeftAlone:1 Unparsed:0 Hits:0 Misses:3}
}
