package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgrls/pgrls/pgrlstest"
)

var productColumns = []string{"store_id", "name", "price_cents", "currency"}

func productRows(store int64, prefix string, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{store, fmt.Sprintf("%s %d", prefix, i), int64(i), "EUR"}
	}
	return rows
}

func countByName(t *testing.T, db *pgrlstest.DB, pattern string) int {
	t.Helper()
	var n int
	require.NoError(t, db.AdminConn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM products WHERE name LIKE $1", pattern).Scan(&n))
	return n
}

// TestCopyFrom copies into a table under RLS, where plain COPY is refused.
func TestCopyFrom(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		for _, citus := range []bool{false, true} {
			db := pgrlstest.NewDB(t, storeTemplate)
			p := newPool(t, db, poolOpts{mode: mode, citus: citus})
			ctx := ctxFor(tenantA)

			// The problem: COPY FROM into a table under RLS fails.
			_, err := p.Unwrap().CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "raw", 1)))
			require.Equal(t, "0A000", sqlState(err), "plain COPY: %v", err)

			n, err := p.CopyFrom(ctx, pgx.Identifier{"public", "products"}, productColumns, pgx.CopyFromRows(productRows(1, "copied", 500)))
			require.NoError(t, err)
			require.EqualValues(t, 500, n)
			require.Equal(t, 500, countByName(t, db, "copied %"))

			// One row of another tenant fails the whole copy.
			bad := productRows(1, "mixed", 300)
			bad[150][0] = int64(2)
			_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
			require.Equal(t, "42501", sqlState(err), "copy with a row of B: %v", err)
			require.Zero(t, countByName(t, db, "mixed %"), "partial copy")

			// A bad value fails the whole copy too.
			bad = productRows(1, "badvalue", 3)
			bad[2][3] = "XXX" // no such currency
			_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
			require.Equal(t, "23503", sqlState(err), "%v", err)
			require.Zero(t, countByName(t, db, "badvalue %"))

			// In a transaction: twice, then roll back; then commit.
			tx, err := p.Begin(ctx)
			require.NoError(t, err)
			for range 2 {
				n, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "txcopy", 10)))
				require.NoError(t, err)
				require.EqualValues(t, 10, n)
			}
			var inTx int
			require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM products WHERE name LIKE 'txcopy %'").Scan(&inTx))
			require.Equal(t, 20, inTx)
			require.NoError(t, tx.Rollback(ctx))
			require.Zero(t, countByName(t, db, "txcopy %"))

			tx, err = p.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(2, "txB", 2)))
			require.Equal(t, "42501", sqlState(err), "%v", err)
			require.NoError(t, tx.Rollback(ctx))
			require.Zero(t, countByName(t, db, "txB %"))

			require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "txok", 4)))
				return err
			}))
			require.Equal(t, 4, countByName(t, db, "txok %"))

			// B sees none of A's copies.
			require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
			requireClean(t, p.Unwrap(), "app.current_tenant")
		}
	})
}
