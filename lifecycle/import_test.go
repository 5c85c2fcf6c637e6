package lifecycle_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// exported exports tenant 1 of a fresh shop and returns the directory.
func exported(t *testing.T) string {
	t.Helper()
	src := pgtenancytest.NewDB(t, shop)
	dir := filepath.Join(t.TempDir(), "export")
	_, err := lifecycle.Export(t.Context(), src.OwnerPool(t), shopModel(), tenant1, dir, lifecycle.ExportOptions{})
	require.NoError(t, err)
	return dir
}

// empty asserts that the target holds no row of tenant 1.
func empty(t *testing.T, p *pgxpool.Pool) {
	t.Helper()
	for name, c := range sums(t, p, tenant1) {
		assert.Zero(t, c.Rows, "%s holds rows of tenant 1", name)
	}
}

func TestImportRefuses(t *testing.T) {
	t.Parallel()
	dir := exported(t)

	t.Run("a target that holds the tenant", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		p := dst.OwnerPool(t)
		_, err := lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{})
		require.NoError(t, err)
		before := sums(t, p, tenant1)
		_, err = lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{})
		var e *lifecycle.TargetNotEmptyError
		require.ErrorAs(t, err, &e)
		assert.ErrorIs(t, err, lifecycle.ErrTargetNotEmpty)
		assert.Equal(t, int64(40), e.Rows["public.products"])
		assert.Equal(t, before, sums(t, p, tenant1))
	})

	t.Run("a target of another schema", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err := dst.OwnerConn(t).Exec(t.Context(), `ALTER TABLE purchases ADD COLUMN coupon text;
			ALTER TABLE products DROP COLUMN weight; ALTER TABLE products ALTER COLUMN photo TYPE text`)
		require.NoError(t, err)
		_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
		var e *lifecycle.SchemaMismatchError
		require.ErrorAs(t, err, &e)
		assert.ErrorIs(t, err, lifecycle.ErrSchemaMismatch)
		assert.ElementsMatch(t, []string{
			`public.products: column "photo" is text in the target, bytea in the export`,
			`public.products: no column "weight" (double precision) in the target`,
			`public.purchases: the target has column "coupon" (text), which the export lacks`,
		}, e.Problems)
		empty(t, dst.OwnerPool(t))
	})

	t.Run("a key another tenant holds", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err := dst.AdminConn(t).Exec(t.Context(), "UPDATE stores SET slug = 'store-1' WHERE id = 9")
		require.NoError(t, err)
		_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
		var e *lifecycle.ConflictError
		require.ErrorAs(t, err, &e)
		assert.ErrorIs(t, err, lifecycle.ErrConflict)
		assert.Equal(t, "public.stores", e.Table)
		assert.Equal(t, "stores_slug_key", e.Constraint)
		assert.Equal(t, []string{"(slug)=(store-1)"}, e.Keys)
		assert.Equal(t, int64(1), e.Conflicting)
		empty(t, dst.OwnerPool(t))
	})

	t.Run("a conflict in batches", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		p := dst.OwnerPool(t)
		admin := dst.AdminConn(t)
		_, err := admin.Exec(t.Context(), "DELETE FROM purchases WHERE currency = 'USD'; DELETE FROM currencies WHERE code = 'USD'")
		require.NoError(t, err)
		_, err = lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{BatchRows: 4})
		var e *lifecycle.ConflictError
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "public.purchases", e.Table)
		got := sums(t, p, tenant1)
		assert.Equal(t, int64(40), got["public.products"].Rows, "the batches before the conflict stay")
		assert.Zero(t, got["public.purchases"].Rows, "nothing of the batch that conflicts")

		// Resolved, the same command continues.
		_, err = admin.Exec(t.Context(), "INSERT INTO currencies VALUES ('USD')")
		require.NoError(t, err)
		res, err := lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{BatchRows: 4})
		require.NoError(t, err)
		assert.True(t, res.Resumed)
		man, err := lifecycle.ReadManifest(dir)
		require.NoError(t, err)
		for _, mt := range man.Tables {
			assert.Equal(t, mt.Checksum, sums(t, p, tenant1)[mt.Name], mt.Name)
		}
	})

	t.Run("a reference to a global row the target lacks", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err := dst.AdminConn(t).Exec(t.Context(), "DELETE FROM purchases WHERE currency = 'USD'; DELETE FROM currencies WHERE code = 'USD'")
		require.NoError(t, err)
		_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
		var e *lifecycle.ConflictError
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "public.purchases", e.Table)
		assert.Contains(t, e.Detail, `is not present in table "currencies"`)
		empty(t, dst.OwnerPool(t))
	})

	t.Run("a changed file", func(t *testing.T) {
		t.Parallel()
		bad := filepath.Join(t.TempDir(), "bad")
		require.NoError(t, os.CopyFS(bad, os.DirFS(dir)))
		file := filepath.Join(bad, "03_public.products.bin")
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		b[len(b)-10] ^= 1
		require.NoError(t, os.WriteFile(file, b, 0o600))
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), bad, lifecycle.ImportOptions{})
		require.ErrorIs(t, err, lifecycle.ErrManifest)
		assert.Contains(t, err.Error(), "the file changed")
		empty(t, dst.OwnerPool(t))
	})

	t.Run("rows of another tenant", func(t *testing.T) {
		t.Parallel()
		// A manifest edited to say tenant 2: the policies refuse the
		// files' rows, which are tenant 1's.
		bad := filepath.Join(t.TempDir(), "bad")
		require.NoError(t, os.CopyFS(bad, os.DirFS(dir)))
		b, err := os.ReadFile(filepath.Join(bad, lifecycle.ManifestFile))
		require.NoError(t, err)
		b = []byte(strings.Replace(string(b), `"tenant": "1"`, `"tenant": "2"`, 1))
		require.NoError(t, os.WriteFile(filepath.Join(bad, lifecycle.ManifestFile), b, 0o600))
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), bad, lifecycle.ImportOptions{})
		var e *lifecycle.ConflictError
		require.ErrorAs(t, err, &e)
		assert.Equal(t, "public.stores", e.Table)
		assert.Contains(t, e.Detail, "the policies refuse the file's rows")
		empty(t, dst.OwnerPool(t))
	})

	t.Run("no manifest", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err := lifecycle.Import(t.Context(), dst.OwnerPool(t), t.TempDir(), lifecycle.ImportOptions{})
		require.ErrorIs(t, err, lifecycle.ErrManifest)
	})

	t.Run("a role that bypasses row level security", func(t *testing.T) {
		t.Parallel()
		dst := pgtenancytest.NewDB(t, emptyShop)
		_, err := lifecycle.Import(t.Context(), newPool(t, dst.AdminURL), dir, lifecycle.ImportOptions{})
		require.ErrorIs(t, err, lifecycle.ErrNoRLS)
		empty(t, dst.OwnerPool(t))
	})
}

// TestImportKilled: an import that dies halfway, its context cancelled or
// its backend terminated, leaves nothing, and runs again from scratch.
func TestImportKilled(t *testing.T) {
	t.Parallel()
	dir := exported(t)
	for _, how := range []string{"cancel", "terminate"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dst := pgtenancytest.NewDB(t, emptyShop)
			p := dst.OwnerPool(t)
			admin := dst.AdminConn(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var killed atomic.Bool
			_, err := lifecycle.Import(ctx, p, dir, lifecycle.ImportOptions{Progress: func(pr lifecycle.Progress) {
				if pr.Table != "public.products" || !pr.Done || killed.Swap(true) {
					return
				}
				if how == "cancel" {
					cancel()
					return
				}
				_, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
					WHERE datname = current_database() AND usename = $1`, pgtenancytest.OwnerRole)
				require.NoError(t, err)
			}})
			require.Error(t, err)
			require.True(t, killed.Load())
			empty(t, dst.OwnerPool(t))

			_, err = lifecycle.Import(t.Context(), dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
			require.NoError(t, err)
		})
	}
}

// TestImportBatchesResume: an import in batches that stops continues where
// it stopped, and once finished does nothing more.
func TestImportBatchesResume(t *testing.T) {
	t.Parallel()
	dir := exported(t)
	man, err := lifecycle.ReadManifest(dir)
	require.NoError(t, err)
	dst := pgtenancytest.NewDB(t, emptyShop)
	p := dst.OwnerPool(t)

	// The import fails in the batch of product 1014.
	admin := dst.AdminConn(t)
	_, err = admin.Exec(t.Context(), `CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN RAISE EXCEPTION 'disk full'; END$$;
		CREATE TRIGGER fail BEFORE INSERT ON products FOR EACH ROW WHEN (NEW.id = 1014) EXECUTE FUNCTION fail()`)
	require.NoError(t, err)
	_, err = lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{BatchRows: 4})
	require.ErrorContains(t, err, "disk full")
	_, err = admin.Exec(t.Context(), "DROP TRIGGER fail ON products")
	require.NoError(t, err)
	got := sums(t, p, tenant1)
	assert.Equal(t, man.Tables[1].Checksum, got["public.categories"], "categories were imported")
	n := got["public.products"].Rows
	assert.True(t, n < 40 && n%4 == 0, "whole batches of products were imported, not all: %d", n)
	var journal int64
	require.NoError(t, dst.OwnerConn(t).QueryRow(t.Context(),
		"SELECT rows_done FROM pgtenancy.import_progress WHERE table_name = 'public.products'").Scan(&journal))
	assert.Equal(t, got["public.products"].Rows, journal, "the journal matches the target")

	res, err := lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{BatchRows: 4})
	require.NoError(t, err)
	assert.True(t, res.Resumed)
	for _, mt := range man.Tables {
		assert.Equal(t, mt.Checksum, sums(t, p, tenant1)[mt.Name], mt.Name)
	}

	res, err = lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{BatchRows: 4})
	require.NoError(t, err)
	assert.True(t, res.AlreadyDone)
	assert.Empty(t, res.Tables)

	// The journal does not hide rows written since: a single-transaction
	// import still refuses the target.
	_, err = lifecycle.Import(t.Context(), p, dir, lifecycle.ImportOptions{})
	require.ErrorIs(t, err, lifecycle.ErrTargetNotEmpty)
}

// TestImportAnalyzes: a referenced table analyzed when it held few rows is
// analyzed again once the import has put many more into it, so that the
// foreign key checks of the tables after it use its indexes instead of
// scanning it for every row.
func TestImportAnalyzes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := pgtenancytest.NewDB(t, shop)
	_, err := src.AdminConn(t).Exec(ctx, seedStore(7, 2500))
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "export")
	_, err = lifecycle.Export(ctx, src.OwnerPool(t), shopModel(), rls.Int64(7), dir, lifecycle.ExportOptions{})
	require.NoError(t, err)

	dst := pgtenancytest.NewDB(t, emptyShop)
	admin := dst.AdminConn(t)
	_, err = admin.Exec(ctx, "ANALYZE")
	require.NoError(t, err)
	reltuples := func() float64 {
		var n float64
		require.NoError(t, admin.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = 'products'::regclass").Scan(&n))
		return n
	}
	require.Less(t, reltuples(), float64(10))
	_, err = lifecycle.Import(ctx, dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, reltuples(), float64(2500))
}
