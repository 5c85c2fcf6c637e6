package pool_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
)

// The code below is what sqlc (sql_package: pgx/v5) generates for a few
// queries on the store schema, written by hand.

// DBTX is sqlc's interface for the database handle.
type DBTX interface {
	Exec(context.Context, string, ...interface{}) (pgconn.CommandTag, error)
	Query(context.Context, string, ...interface{}) (pgx.Rows, error)
	QueryRow(context.Context, string, ...interface{}) pgx.Row
	CopyFrom(ctx context.Context, tableName pgx.Identifier, columnNames []string, rowSrc pgx.CopyFromSource) (int64, error)
}

func New(db DBTX) *Queries { return &Queries{db: db} }

type Queries struct{ db DBTX }

func (q *Queries) WithTx(tx pgx.Tx) *Queries { return &Queries{db: tx} }

type Product struct {
	StoreID    int64
	ID         int64
	Name       string
	PriceCents int64
	Currency   string
}

const listProducts = `-- name: ListProducts :many
SELECT store_id, id, name, price_cents, currency FROM products ORDER BY id
`

func (q *Queries) ListProducts(ctx context.Context) ([]Product, error) {
	rows, err := q.db.Query(ctx, listProducts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []Product
	for rows.Next() {
		var i Product
		if err := rows.Scan(&i.StoreID, &i.ID, &i.Name, &i.PriceCents, &i.Currency); err != nil {
			return nil, err
		}
		items = append(items, i)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return items, nil
}

const getProduct = `-- name: GetProduct :one
SELECT store_id, id, name, price_cents, currency FROM products WHERE id = $1
`

func (q *Queries) GetProduct(ctx context.Context, id int64) (Product, error) {
	row := q.db.QueryRow(ctx, getProduct, id)
	var i Product
	err := row.Scan(&i.StoreID, &i.ID, &i.Name, &i.PriceCents, &i.Currency)
	return i, err
}

const renameProduct = `-- name: RenameProduct :execrows
UPDATE products SET name = $2 WHERE id = $1
`

type RenameProductParams struct {
	ID   int64
	Name string
}

func (q *Queries) RenameProduct(ctx context.Context, arg RenameProductParams) (int64, error) {
	result, err := q.db.Exec(ctx, renameProduct, arg.ID, arg.Name)
	if err != nil {
		return 0, err
	}
	return result.RowsAffected(), nil
}

type CopyProductsParams struct {
	StoreID    int64
	Name       string
	PriceCents int64
	Currency   string
}

// iteratorForCopyProducts implements pgx.CopyFromSource.
type iteratorForCopyProducts struct {
	rows                 []CopyProductsParams
	skippedFirstNextCall bool
}

func (r *iteratorForCopyProducts) Next() bool {
	if len(r.rows) == 0 {
		return false
	}
	if !r.skippedFirstNextCall {
		r.skippedFirstNextCall = true
		return true
	}
	r.rows = r.rows[1:]
	return len(r.rows) > 0
}

func (r iteratorForCopyProducts) Values() ([]interface{}, error) {
	return []interface{}{r.rows[0].StoreID, r.rows[0].Name, r.rows[0].PriceCents, r.rows[0].Currency}, nil
}

func (r iteratorForCopyProducts) Err() error { return nil }

// -- name: CopyProducts :copyfrom
func (q *Queries) CopyProducts(ctx context.Context, arg []CopyProductsParams) (int64, error) {
	return q.db.CopyFrom(ctx, []string{"products"}, []string{"store_id", "name", "price_cents", "currency"}, &iteratorForCopyProducts{rows: arg})
}

// End of the sqlc-style code.

var (
	_ DBTX = (*pool.Pool)(nil)
	_ DBTX = (*pool.Tx)(nil)
	_ DBTX = (*pgxpool.Pool)(nil) // the same interface, unchanged
)

// TestSQLC runs sqlc-style generated code on a Pool and in a transaction.
func TestSQLC(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		p := newPool(t, db, poolOpts{mode: mode})
		q := New(p)
		ctxA, ctxB := ctxFor(tenantA), ctxFor(tenantB)

		list, err := q.ListProducts(ctxA)
		require.NoError(t, err)
		require.Len(t, list, 3)
		for _, pr := range list {
			require.EqualValues(t, 1, pr.StoreID)
		}
		got, err := q.GetProduct(ctxA, 101)
		require.NoError(t, err)
		require.Equal(t, "A apple", got.Name)
		_, err = q.GetProduct(ctxB, 101)
		require.ErrorIs(t, err, pgx.ErrNoRows, "B reads A's product")

		n, err := q.RenameProduct(ctxB, RenameProductParams{ID: 101, Name: "stolen"})
		require.NoError(t, err)
		require.Zero(t, n, "B renamed A's product")
		n, err = q.RenameProduct(ctxA, RenameProductParams{ID: 101, Name: "A apricot"})
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		// :copyfrom into a table under RLS.
		n, err = q.CopyProducts(ctxA, []CopyProductsParams{{1, "A copy 1", 5, "EUR"}, {1, "A copy 2", 6, "USD"}})
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		_, err = q.CopyProducts(ctxA, []CopyProductsParams{{1, "A copy 3", 5, "EUR"}, {2, "B by A", 6, "USD"}})
		require.Equal(t, "42501", sqlState(err), "copy of B's row by A: %v", err)

		// In a transaction, with WithTx, as sqlc users do.
		require.NoError(t, p.BeginFunc(ctxA, func(tx pgx.Tx) error {
			qtx := q.WithTx(tx)
			if _, err := qtx.RenameProduct(ctxA, RenameProductParams{ID: 102, Name: "A blueberry"}); err != nil {
				return err
			}
			n, err := qtx.CopyProducts(ctxA, []CopyProductsParams{{1, "A tx copy", 7, "EUR"}})
			require.EqualValues(t, 1, n)
			return err
		}))
		list, err = q.ListProducts(ctxA)
		require.NoError(t, err)
		names := map[string]bool{}
		for _, pr := range list {
			names[pr.Name] = true
			require.EqualValues(t, 1, pr.StoreID)
		}
		require.Len(t, list, 6)
		for _, name := range []string{"A apricot", "A blueberry", "A copy 1", "A copy 2", "A tx copy"} {
			require.True(t, names[name], name)
		}
		list, err = q.ListProducts(ctxB)
		require.NoError(t, err)
		require.Len(t, list, 2, "B's products changed")
	})
}
