package lifecycle_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestDeleteDryRun(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shop)
	p := db.OwnerPool(t)
	before := sums(t, p, tenant1)
	res, err := lifecycle.Delete(t.Context(), p, shopModel(), tenant1, lifecycle.DeleteOptions{DryRun: true})
	require.NoError(t, err)
	assert.True(t, res.DryRun)
	got := map[string]int64{}
	var order []string
	for _, dt := range res.Tables {
		got[dt.Table] = dt.Rows
		order = append(order, dt.Table)
	}
	assert.Equal(t, []string{"public.purchases", "public.products", "public.categories", "public.stores"}, order)
	assert.Equal(t, map[string]int64{"public.purchases": 40, "public.products": 40, "public.categories": 3, "public.stores": 1}, got)
	assert.Empty(t, res.Warnings)
	assert.Equal(t, before, sums(t, p, tenant1), "a dry run deletes nothing")

	_, err = lifecycle.Delete(t.Context(), p, shopModel(), rls.Int64(404), lifecycle.DeleteOptions{DryRun: true})
	require.ErrorIs(t, err, lifecycle.ErrUnknownTenant)
}

// TestDeleteBatches deletes in batches of 4 rows at most, as the
// application role: many batches, each a short transaction, and nothing
// of the other tenants.
func TestDeleteBatches(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shop)
	owner := db.OwnerPool(t)
	other := []map[string]lifecycle.Checksum{sums(t, owner, tenant2), sums(t, owner, tenant3)}
	var reports int
	res, err := lifecycle.Delete(t.Context(), db.AppPool(t), shopModel(), tenant1, lifecycle.DeleteOptions{
		MaxBatchRows: 4,
		Progress:     func(lifecycle.Progress) { reports++ },
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.Tables[0].Batches, 10)
	assert.Positive(t, res.Longest)
	assert.Equal(t, "public.categories", res.Tables[2].Table)
	assert.Equal(t, 3, res.Tables[2].Batches, "a category tree of 3 levels, leaves first")
	assert.False(t, res.Tables[2].Unbatched)
	assert.GreaterOrEqual(t, reports, 8, "a start and a done report per table")
	for name, c := range sums(t, owner, tenant1) {
		assert.Zero(t, c.Rows, name)
	}
	assert.Equal(t, other, []map[string]lifecycle.Checksum{sums(t, owner, tenant2), sums(t, owner, tenant3)})
	assert.Zero(t, dangling(t, db.AdminConn(t)))

	_, err = lifecycle.Delete(t.Context(), owner, shopModel(), tenant1, lifecycle.DeleteOptions{})
	require.ErrorIs(t, err, lifecycle.ErrUnknownTenant, "a second delete finds nothing")
}

// TestDeleteCycle: rows of a table that references itself that reference
// each other in a cycle have no leaf to delete first: they go in one
// statement.
func TestDeleteCycle(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shop)
	_, err := db.AdminConn(t).Exec(t.Context(), "UPDATE categories SET parent_id = 103 WHERE store_id = 1 AND id = 101")
	require.NoError(t, err)
	res, err := lifecycle.Delete(t.Context(), db.OwnerPool(t), shopModel(), tenant1, lifecycle.DeleteOptions{})
	require.NoError(t, err)
	assert.Equal(t, "public.categories", res.Tables[2].Table)
	assert.True(t, res.Tables[2].Unbatched)
	assert.Equal(t, int64(3), res.Tables[2].Rows)
}

// TestDeleteWaitsForLocks: a batch that waits for a row another
// transaction holds gives up after lock_timeout and is retried; the delete
// finishes once the row is free.
func TestDeleteWaitsForLocks(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shop)
	admin := db.AdminConn(t)
	tx, err := admin.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "SELECT * FROM purchases WHERE store_id = 1 AND id = 1001 FOR UPDATE")
	require.NoError(t, err)
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(300 * time.Millisecond)
		_ = tx.Rollback(t.Context())
	}()
	defer func() { <-released }()
	res, err := lifecycle.Delete(t.Context(), db.OwnerPool(t), shopModel(), tenant1, lifecycle.DeleteOptions{LockTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, int64(40), res.Tables[0].Rows)
	assert.Less(t, res.Longest, 300*time.Millisecond, "no batch waited for the lock")
}

// TestDeleteRefusesUnindexedForeignKeys warns about a foreign key without
// an index.
func TestDeleteWarnsUnindexedForeignKeys(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, shop)
	_, err := db.OwnerConn(t).Exec(t.Context(), "DROP INDEX purchases_store_id_product_id_idx")
	require.NoError(t, err)
	res, err := lifecycle.Delete(t.Context(), db.OwnerPool(t), shopModel(), tenant1, lifecycle.DeleteOptions{DryRun: true})
	require.NoError(t, err)
	require.Len(t, res.Warnings, 1)
	assert.Contains(t, res.Warnings[0], "public.purchases: no index leads with the columns of foreign key purchases_store_id_product_id_fkey")
}
