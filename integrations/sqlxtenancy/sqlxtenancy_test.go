package sqlxtenancy_test

import (
	"context"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/integrations/internal/shoptest"
	"github.com/pgtenancy/pgtenancy/integrations/sqlxtenancy"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

type product struct {
	StoreID    int64  `db:"store_id"`
	ID         int64  `db:"id"`
	Name       string `db:"name"`
	PriceCents int64  `db:"price_cents"`
}

// TestIsolation runs the isolation proof list through sqlx.
func TestIsolation(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shoptest.Template)
	cfg, err := stdlib.ParseConfig(db.AppURL)
	require.NoError(t, err)
	x, err := sqlxtenancy.Open(context.Background(), cfg)
	require.NoError(t, err)
	defer x.Close()

	type txKey struct{}
	// ext returns the transaction of ctx, if any, or the DB.
	ext := func(ctx context.Context) sqlx.ExtContext {
		if tx, ok := ctx.Value(txKey{}).(*sqlx.Tx); ok {
			return tx
		}
		return x
	}
	shoptest.Run(t, shoptest.Ops{
		ProductIDs: func(ctx context.Context) ([]int64, error) {
			var ps []product
			err := sqlx.SelectContext(ctx, ext(ctx), &ps, "SELECT * FROM products ORDER BY id")
			var ids []int64
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			return ids, err
		},
		Rename: func(ctx context.Context, id int64, name string) (int64, error) {
			res, err := sqlx.NamedExecContext(ctx, ext(ctx), "UPDATE products SET name = :name WHERE id = :id", product{ID: id, Name: name})
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		Delete: func(ctx context.Context, id int64) (int64, error) {
			query, args, err := sqlx.In("DELETE FROM products WHERE id IN (?)", []int64{id})
			if err != nil {
				return 0, err
			}
			res, err := ext(ctx).ExecContext(ctx, x.Rebind(query), args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		InsertProduct: func(ctx context.Context, store int64, name string) error {
			_, err := sqlx.NamedExecContext(ctx, ext(ctx),
				"INSERT INTO products (store_id, name, price_cents) VALUES (:store_id, :name, :price_cents)",
				product{StoreID: store, Name: name, PriceCents: 1})
			return err
		},
		InsertPurchase: func(ctx context.Context, store, product int64) error {
			_, err := ext(ctx).ExecContext(ctx, "INSERT INTO purchases (store_id, product_id, quantity) VALUES ($1, $2, 1)", store, product)
			return err
		},
		RawCount: func(ctx context.Context) (int64, error) {
			var n int64
			err := sqlx.GetContext(ctx, ext(ctx), &n, "SELECT count(*) FROM products")
			return n, err
		},
		InTx: func(ctx context.Context, fn func(context.Context) error) error {
			tx, err := x.BeginTxx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit
			if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
				return err
			}
			return tx.Commit()
		},
	})
}
