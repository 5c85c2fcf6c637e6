package gormtenancy_test

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/pgtenancy/pgtenancy/integrations/gormtenancy"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// GORM through pgtenancy: every chain runs with the tenant of its
// context; without one it fails before reaching the database.
func Example() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	appURL := pgtenancytest.NewDB(tb, shoptest.Template).AppURL // the application role
	ctx := context.Background()

	cfg, err := stdlib.ParseConfig(appURL)
	if err != nil {
		panic(err)
	}
	db, err := gormtenancy.Open(ctx, cfg, &gorm.Config{})
	if err != nil {
		panic(err)
	}

	type Product struct {
		StoreID    int64
		ID         int64
		Name       string
		PriceCents int64
	}
	for _, store := range []int64{1, 2} {
		ctx := rls.WithTenant(ctx, rls.Int64(store)) // usually done by middleware
		var names []string
		if err := db.WithContext(ctx).Model(&Product{}).Order("id").Pluck("name", &names).Error; err != nil {
			panic(err)
		}
		fmt.Println(store, names)
	}
	// Store 2 doubles "every" price: only its own products change.
	res := db.WithContext(rls.WithTenant(ctx, rls.Int64(2))).Model(&Product{}).Where("true").
		Update("price_cents", gorm.Expr("price_cents * 2"))
	fmt.Println(res.RowsAffected, res.Error)

	err = db.WithContext(ctx).Where("true").Delete(&Product{}).Error
	fmt.Println(errors.Is(err, rls.ErrNoTenant))
	// Output:
	// 1 [A apple A banana A cherry]
	// 2 [B bread B butter]
	// 2 <nil>
	// true
}
