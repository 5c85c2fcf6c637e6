package pool_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// exampleDB returns a test database with the store schema (stores 1, 2 and
// 3 with their products, tenant isolation applied) for an example, and a
// function that drops it.
func exampleDB() (*pgtenancytest.DB, func()) {
	tb := pgtenancytest.NewExampleTB()
	return pgtenancytest.NewDB(tb, storeTemplate), tb.Done
}

// Each statement runs with the tenant of its context; without one it
// fails before reaching the database.
func Example() {
	db, drop := exampleDB()
	defer drop()
	ctx := context.Background()

	p, err := pool.New(ctx, db.AppURL) // the application role: no BYPASSRLS
	if err != nil {
		panic(err)
	}
	defer p.Close()

	for _, id := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(id)) // usually done by middleware
		rows, _ := p.Query(ctx, "SELECT name FROM products ORDER BY id")
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			panic(err)
		}
		fmt.Println(id, names)
	}

	_, err = p.Exec(ctx, "DELETE FROM products")
	fmt.Println(errors.Is(err, rls.ErrNoTenant), err)
	// Output:
	// 1 [A apple A banana A cherry]
	// 2 [B bread B butter]
	// true rls: no tenant in context
}

// A transaction holds its tenant from BEGIN to COMMIT; writing another
// tenant's row fails the policy and rolls everything back.
func ExamplePool_BeginFunc() {
	db, drop := exampleDB()
	defer drop()
	p, err := pool.New(context.Background(), db.AppURL)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	ctx := rls.WithTenant(context.Background(), rls.Int64(2))

	err = p.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE products SET price_cents = price_cents * 2"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES (1, 'sneaky', 1, 'EUR')")
		return err
	})
	fmt.Println(err)

	var total int64
	if err := p.QueryRow(ctx, "SELECT sum(price_cents) FROM products").Scan(&total); err != nil {
		panic(err)
	}
	fmt.Println("store 2 total:", total)
	// Output:
	// ERROR: new row violates row-level security policy for table "products" (SQLSTATE 42501)
	// store 2 total: 3000
}

// CopyFrom works on tables under row level security, and refuses the whole
// input when one row belongs to another tenant.
func ExamplePool_CopyFrom() {
	db, drop := exampleDB()
	defer drop()
	p, err := pool.New(context.Background(), db.AppURL)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	ctx := rls.WithTenant(context.Background(), rls.Int64(3))
	columns := []string{"store_id", "name", "price_cents", "currency"}

	n, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, columns, pgx.CopyFromRows([][]any{
		{3, "C cocoa", 700, "EUR"},
		{3, "C cream", 150, "EUR"},
	}))
	fmt.Println(n, err)

	n, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, columns, pgx.CopyFromRows([][]any{
		{3, "C cake", 400, "EUR"},
		{1, "into store 1", 1, "EUR"},
	}))
	fmt.Println(n, err)

	var count int
	if err := p.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&count); err != nil {
		panic(err)
	}
	fmt.Println("store 3 products:", count)
	// Output:
	// 2 <nil>
	// 0 ERROR: new row violates row-level security policy for table "products" (SQLSTATE 42501)
	// store 3 products: 3
}
