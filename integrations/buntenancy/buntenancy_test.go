package buntenancy_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/pgtenancy/pgtenancy/integrations/buntenancy"
	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

type Product struct {
	bun.BaseModel `bun:"table:products"`
	StoreID       int64  `bun:"store_id"`
	ID            int64  `bun:"id,pk,autoincrement"`
	Name          string `bun:"name"`
	PriceCents    int64  `bun:"price_cents"`
}

type Purchase struct {
	bun.BaseModel `bun:"table:purchases"`
	StoreID       int64 `bun:"store_id"`
	ID            int64 `bun:"id,pk,autoincrement"`
	ProductID     int64 `bun:"product_id"`
	Quantity      int   `bun:"quantity"`
}

// TestIsolation runs the isolation proof list through bun.
func TestIsolation(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shoptest.Template)
	cfg, err := stdlib.ParseConfig(db.AppURL)
	require.NoError(t, err)
	b, err := buntenancy.Open(context.Background(), cfg)
	require.NoError(t, err)
	defer b.Close()

	type txKey struct{}
	// idb returns the transaction of ctx, if any, or the DB.
	idb := func(ctx context.Context) bun.IDB {
		if tx, ok := ctx.Value(txKey{}).(bun.Tx); ok {
			return tx
		}
		return b
	}
	affected := func(res sql.Result, err error) (int64, error) {
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	shoptest.Run(t, shoptest.Ops{
		ProductIDs: func(ctx context.Context) ([]int64, error) {
			var ids []int64
			err := idb(ctx).NewSelect().Model((*Product)(nil)).Column("id").Order("id").Scan(ctx, &ids)
			return ids, err
		},
		Rename: func(ctx context.Context, id int64, name string) (int64, error) {
			return affected(idb(ctx).NewUpdate().Model(&Product{ID: id, Name: name}).Column("name").WherePK().Exec(ctx))
		},
		Delete: func(ctx context.Context, id int64) (int64, error) {
			return affected(idb(ctx).NewDelete().Model(&Product{ID: id}).WherePK().Exec(ctx))
		},
		InsertProduct: func(ctx context.Context, store int64, name string) error {
			_, err := idb(ctx).NewInsert().Model(&Product{StoreID: store, Name: name, PriceCents: 1}).Exec(ctx)
			return err
		},
		InsertPurchase: func(ctx context.Context, store, product int64) error {
			_, err := idb(ctx).NewInsert().Model(&Purchase{StoreID: store, ProductID: product, Quantity: 1}).Exec(ctx)
			return err
		},
		RawCount: func(ctx context.Context) (int64, error) {
			var n int64
			err := idb(ctx).NewRaw("SELECT count(*) FROM products").Scan(ctx, &n)
			return n, err
		},
		InTx: func(ctx context.Context, fn func(context.Context) error) error {
			return b.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				return fn(context.WithValue(ctx, txKey{}, tx))
			})
		},
	})
}
