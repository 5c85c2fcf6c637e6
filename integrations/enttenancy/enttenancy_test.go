package enttenancy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/integrations/enttenancy"
	"github.com/pgtenancy/pgtenancy/integrations/enttenancy/internal/ent"
	"github.com/pgtenancy/pgtenancy/integrations/enttenancy/internal/ent/product"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// TestIsolation runs the isolation proof list through an ent client
// generated from internal/ent/schema.
func TestIsolation(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shoptest.Template)
	cfg, err := stdlib.ParseConfig(db.AppURL)
	require.NoError(t, err)
	drv, err := enttenancy.Open(context.Background(), cfg)
	require.NoError(t, err)
	client := ent.NewClient(ent.Driver(drv))
	defer client.Close()

	type txKey struct{}
	// c returns the client of the transaction of ctx, if any, or client.
	c := func(ctx context.Context) *ent.Client {
		if tx, ok := ctx.Value(txKey{}).(*ent.Tx); ok {
			return tx.Client()
		}
		return client
	}
	shoptest.Run(t, shoptest.Ops{
		ProductIDs: func(ctx context.Context) ([]int64, error) {
			return c(ctx).Product.Query().Order(ent.Asc(product.FieldID)).IDs(ctx)
		},
		Rename: func(ctx context.Context, id int64, name string) (int64, error) {
			n, err := c(ctx).Product.Update().Where(product.ID(id)).SetName(name).Save(ctx)
			return int64(n), err
		},
		Delete: func(ctx context.Context, id int64) (int64, error) {
			n, err := c(ctx).Product.Delete().Where(product.ID(id)).Exec(ctx)
			return int64(n), err
		},
		InsertProduct: func(ctx context.Context, store int64, name string) error {
			return c(ctx).Product.Create().SetStoreID(store).SetName(name).SetPriceCents(1).Exec(ctx)
		},
		InsertPurchase: func(ctx context.Context, store, productID int64) error {
			return c(ctx).Purchase.Create().SetStoreID(store).SetProductID(productID).SetQuantity(1).Exec(ctx)
		},
		RawCount: func(ctx context.Context) (int64, error) {
			rows, err := drv.QueryContext(ctx, "SELECT count(*) FROM products")
			if err != nil {
				return 0, err
			}
			defer rows.Close()
			var n int64
			if rows.Next() {
				err = rows.Scan(&n)
			}
			if err == nil {
				err = rows.Err()
			}
			return n, err
		},
		InTx: func(ctx context.Context, fn func(context.Context) error) error {
			tx, err := client.Tx(ctx)
			if err != nil {
				return err
			}
			if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		},
	})
}
