package buntenancy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/pgtenancy/pgtenancy/integrations/buntenancy"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// bun through pgtenancy: every query runs with the tenant of the context
// it is run with; without one it fails before reaching the database.
func Example() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	appURL := pgtenancytest.NewDB(tb, shoptest.Template).AppURL // the application role
	ctx := context.Background()

	cfg, err := stdlib.ParseConfig(appURL)
	if err != nil {
		panic(err)
	}
	db, err := buntenancy.Open(ctx, cfg)
	if err != nil {
		panic(err)
	}
	defer db.Close()

	type Product struct {
		bun.BaseModel `bun:"table:products"`
		StoreID       int64
		ID            int64 `bun:",pk,autoincrement"`
		Name          string
		PriceCents    int64
	}
	for _, store := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(store)) // usually done by middleware
		var names []string
		if err := db.NewSelect().Model((*Product)(nil)).Column("name").Order("id").Scan(ctx, &names); err != nil {
			panic(err)
		}
		fmt.Println(store, names)
	}
	// Store 2 doubles "every" price: only its own products change.
	res, err := db.NewUpdate().Model((*Product)(nil)).Set("price_cents = price_cents * 2").Where("true").
		Exec(rls.WithTenant(ctx, rls.Int64(2)))
	if err != nil {
		panic(err)
	}
	n, _ := res.RowsAffected()
	fmt.Println(n)

	_, err = db.NewDelete().Model((*Product)(nil)).Where("true").Exec(ctx)
	fmt.Println(errors.Is(err, rls.ErrNoTenant))
	// Output:
	// 1 [A apple A banana A cherry]
	// 2 [B bread B butter]
	// 2
	// true
}
