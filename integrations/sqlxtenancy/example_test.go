package sqlxtenancy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/integrations/sqlxtenancy"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// sqlx through pgtenancy: every Context method runs with the tenant of
// its context; without one it fails before reaching the database.
func Example() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	appURL := pgtenancytest.NewDB(tb, shoptest.Template).AppURL // the application role
	ctx := context.Background()

	cfg, err := stdlib.ParseConfig(appURL)
	if err != nil {
		panic(err)
	}
	db, err := sqlxtenancy.Open(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	for _, store := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(store)) // usually done by middleware
		var names []string
		if err := db.SelectContext(ctx, &names, "SELECT name FROM products ORDER BY id"); err != nil {
			panic(err)
		}
		fmt.Println(store, names)
	}
	// Store 2 doubles "every" price: only its own products change.
	res, err := db.NamedExecContext(rls.WithTenant(ctx, rls.Int64(2)),
		"UPDATE products SET price_cents = price_cents * :factor", map[string]any{"factor": 2})
	if err != nil {
		panic(err)
	}
	n, _ := res.RowsAffected()
	fmt.Println(n)

	_, err = db.ExecContext(ctx, "DELETE FROM products")
	fmt.Println(errors.Is(err, rls.ErrNoTenant))
	// Output:
	// 1 [A apple A banana A cherry]
	// 2 [B bread B butter]
	// 2
	// true
}
