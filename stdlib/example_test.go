package stdlib_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// Each statement runs with the tenant of its context, also through a
// prepared statement; without one it fails before reaching the database.
func Example() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, storeTemplate)
	ctx := context.Background()

	sdb, err := stdlib.Open(ctx, db.AppURL) // the application role: no BYPASSRLS
	if err != nil {
		panic(err)
	}
	defer sdb.Close()

	stmt, err := sdb.PrepareContext(ctx, "SELECT count(*) FROM products")
	if err != nil {
		panic(err)
	}
	defer stmt.Close()
	for _, id := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(id)) // usually done by middleware
		var n int
		if err := stmt.QueryRowContext(ctx).Scan(&n); err != nil {
			panic(err)
		}
		fmt.Println(id, n)
	}

	_, err = sdb.ExecContext(ctx, "DELETE FROM products")
	fmt.Println(errors.Is(err, rls.ErrNoTenant), err)
	// Output:
	// 1 3
	// 2 2
	// true rls: no tenant in context
}
