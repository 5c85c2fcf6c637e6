package gormtenancy_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/pgtenancy/pgtenancy/integrations/gormtenancy"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

type Product struct {
	StoreID    int64
	ID         int64 `gorm:"primaryKey"`
	Name       string
	PriceCents int64
}

type Purchase struct {
	StoreID   int64
	ID        int64 `gorm:"primaryKey"`
	ProductID int64
	Quantity  int
}

// TestIsolation runs the isolation proof list through GORM, in its default
// mode (writes in a transaction of their own) and with
// SkipDefaultTransaction.
func TestIsolation(t *testing.T) {
	t.Parallel()
	for _, skip := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "SkipDefaultTransaction"}[skip], func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, shoptest.Template)
			cfg, err := stdlib.ParseConfig(db.AppURL)
			require.NoError(t, err)
			g, err := gormtenancy.Open(context.Background(), cfg, &gorm.Config{
				SkipDefaultTransaction: skip,
				Logger:                 logger.Discard,
			})
			require.NoError(t, err)
			sqlDB, err := g.DB()
			require.NoError(t, err)
			defer sqlDB.Close()

			type txKey struct{}
			// with returns the transaction of ctx, if any, or g, with ctx.
			with := func(ctx context.Context) *gorm.DB {
				if tx, ok := ctx.Value(txKey{}).(*gorm.DB); ok {
					return tx
				}
				return g.WithContext(ctx)
			}
			shoptest.Run(t, shoptest.Ops{
				ProductIDs: func(ctx context.Context) ([]int64, error) {
					var ps []Product
					err := with(ctx).Order("id").Find(&ps).Error
					var ids []int64
					for _, p := range ps {
						ids = append(ids, p.ID)
					}
					return ids, err
				},
				Rename: func(ctx context.Context, id int64, name string) (int64, error) {
					res := with(ctx).Model(&Product{ID: id}).Update("name", name)
					return res.RowsAffected, res.Error
				},
				Delete: func(ctx context.Context, id int64) (int64, error) {
					res := with(ctx).Delete(&Product{ID: id})
					return res.RowsAffected, res.Error
				},
				InsertProduct: func(ctx context.Context, store int64, name string) error {
					return with(ctx).Create(&Product{StoreID: store, Name: name, PriceCents: 1}).Error
				},
				InsertPurchase: func(ctx context.Context, store, product int64) error {
					return with(ctx).Create(&Purchase{StoreID: store, ProductID: product, Quantity: 1}).Error
				},
				RawCount: func(ctx context.Context) (int64, error) {
					var n int64
					err := with(ctx).Raw("SELECT count(*) FROM products").Scan(&n).Error
					return n, err
				},
				InTx: func(ctx context.Context, fn func(context.Context) error) error {
					return g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
						return fn(context.WithValue(ctx, txKey{}, tx))
					})
				},
			})
		})
	}
}
