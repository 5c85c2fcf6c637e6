package enttenancy_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgtenancy/pgtenancy/integrations/enttenancy"
	"github.com/pgtenancy/pgtenancy/integrations/enttenancy/internal/ent"
	"github.com/pgtenancy/pgtenancy/integrations/enttenancy/internal/ent/product"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// ent through pgtenancy: every query runs with the tenant of the context
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
	drv, err := enttenancy.Open(ctx, cfg)
	if err != nil {
		panic(err)
	}
	client := ent.NewClient(ent.Driver(drv)) // your generated client
	defer client.Close()

	for _, store := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(store)) // usually done by middleware
		names, err := client.Product.Query().Order(ent.Asc(product.FieldID)).Select(product.FieldName).Strings(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(store, names)
	}
	// Store 2 raises "every" price: only its own products change.
	n, err := client.Product.Update().Where(product.PriceCentsGT(0)).AddPriceCents(100).Save(rls.WithTenant(ctx, rls.Int64(2)))
	fmt.Println(n, err)

	_, err = client.Product.Delete().Exec(ctx)
	fmt.Println(errors.Is(err, rls.ErrNoTenant))
	// Output:
	// 1 [A apple A banana A cherry]
	// 2 [B bread B butter]
	// 2 <nil>
	// true
}
