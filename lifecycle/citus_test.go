package lifecycle_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// TestCitusRefuses: on a Citus cluster (CITUS_URL) every operation refuses
// before it writes anything, and points to tenant isolation.
func TestCitusRefuses(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewCitusDB(t)
	ctx := t.Context()
	_, err := db.OwnerConn(t).Exec(ctx, shopDDL+seedStore(1, 3))
	require.NoError(t, err)
	p := db.OwnerPool(t)
	count := func() (n int64) {
		require.NoError(t, db.AdminConn(t).QueryRow(ctx, "SELECT count(*) FROM products WHERE store_id = 1").Scan(&n))
		return n
	}

	dir := filepath.Join(t.TempDir(), "export")
	_, err = lifecycle.Export(ctx, p, shopModel(), tenant1, dir, lifecycle.ExportOptions{})
	require.ErrorIs(t, err, lifecycle.ErrCitus)
	assert.ErrorContains(t, err, "pgtenancy citus-isolate")
	_, statErr := os.Stat(dir)
	assert.ErrorIs(t, statErr, os.ErrNotExist, "no directory left behind")

	_, err = lifecycle.Delete(ctx, p, shopModel(), tenant1, lifecycle.DeleteOptions{})
	require.ErrorIs(t, err, lifecycle.ErrCitus)
	assert.Equal(t, int64(3), count(), "nothing deleted")

	_, err = lifecycle.Import(ctx, p, exported(t), lifecycle.ImportOptions{})
	require.ErrorIs(t, err, lifecycle.ErrCitus)
	assert.Equal(t, int64(3), count(), "nothing imported")

	_, err = lifecycle.Checksums(ctx, p, shopModel(), tenant1)
	require.ErrorIs(t, err, lifecycle.ErrCitus)
}
