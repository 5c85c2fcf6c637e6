package lifecycle_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestExportRefuses(t *testing.T) {
	t.Parallel()
	src := pgtenancytest.NewDB(t, shop)
	ctx := t.Context()
	owner := src.OwnerPool(t)
	export := func(t *testing.T, tenant rls.Tenant) error {
		dir := filepath.Join(t.TempDir(), "x")
		_, err := lifecycle.Export(ctx, owner, shopModel(), tenant, dir, lifecycle.ExportOptions{})
		if err != nil {
			_, statErr := os.Stat(dir)
			assert.ErrorIs(t, statErr, os.ErrNotExist, "a refused export writes nothing")
		}
		return err
	}

	t.Run("unknown tenant", func(t *testing.T) {
		err := export(t, rls.Int64(404))
		require.ErrorIs(t, err, lifecycle.ErrUnknownTenant)
		assert.Contains(t, err.Error(), "tenant 404 has no row in public.stores")
	})

	t.Run("a role that bypasses row level security", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "x")
		_, err := lifecycle.Export(ctx, newPool(t, src.AdminURL), shopModel(), tenant1, dir, lifecycle.ExportOptions{})
		var e *lifecycle.NoRLSError
		require.ErrorAs(t, err, &e)
		assert.ErrorIs(t, err, lifecycle.ErrNoRLS)
		assert.Len(t, e.Tables, 4)
	})

	t.Run("the application role may export", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "x")
		man, err := lifecycle.Export(ctx, src.AppPool(t), shopModel(), tenant2, dir, lifecycle.ExportOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(7), man.Tables[2].Rows)
	})

	t.Run("a directory that is not empty", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "keep.txt"), nil, 0o600))
		_, err := lifecycle.Export(ctx, owner, shopModel(), tenant1, dir, lifecycle.ExportOptions{})
		require.ErrorIs(t, err, lifecycle.ErrDirNotEmpty)
	})

	t.Run("a tenant of another key type", func(t *testing.T) {
		err := export(t, rls.MustParse(rls.Text, "acme"))
		require.Error(t, err)
	})
}

// TestExportRefusesUncoveredTables: a table the model leaves out that holds
// tenant data, by a tenant column or a foreign key to a tenant table, stops
// export and delete before they read or delete a row.
func TestExportRefusesUncoveredTables(t *testing.T) {
	t.Parallel()
	for name, ddl := range map[string]string{
		"tenant column":                   "CREATE TABLE coupons (store_id bigint NOT NULL, code text)",
		"foreign key":                     "CREATE TABLE reviews (product_store bigint, product_id bigint, body text, FOREIGN KEY (product_store, product_id) REFERENCES products (store_id, id))",
		"foreign key from another schema": "CREATE SCHEMA audit; CREATE TABLE audit.trail (store bigint REFERENCES public.stores (id), at timestamptz)",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			src := pgtenancytest.NewDB(t, shop)
			_, err := src.OwnerConn(t).Exec(ctx, ddl)
			require.NoError(t, err)
			owner := src.OwnerPool(t)
			before := sums(t, owner, tenant1)

			_, err = lifecycle.Export(ctx, owner, shopModel(), tenant1, filepath.Join(t.TempDir(), "x"), lifecycle.ExportOptions{})
			var e *lifecycle.UncoveredError
			require.ErrorAs(t, err, &e)
			assert.ErrorIs(t, err, lifecycle.ErrUncovered)
			require.Len(t, e.Tables, 1, "%v", e)
			assert.Contains(t, []string{"public.coupons", "public.reviews", "audit.trail"}, e.Tables[0].Table)

			_, err = lifecycle.Delete(ctx, owner, shopModel(), tenant1, lifecycle.DeleteOptions{})
			require.ErrorIs(t, err, lifecycle.ErrUncovered)
			assert.Equal(t, before, sums(t, owner, tenant1), "nothing deleted")
		})
	}
}
