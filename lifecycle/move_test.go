package lifecycle_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMove(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := pgtenancytest.NewDB(t, shop)
	dst := pgtenancytest.NewDB(t, emptyShop)
	srcPool, dstPool := src.OwnerPool(t), dst.OwnerPool(t)
	want := sums(t, srcPool, tenant1)
	other := sums(t, srcPool, tenant2)
	dir := filepath.Join(t.TempDir(), "move")

	var steps []string
	res, err := lifecycle.Move(ctx, srcPool, dstPool, shopModel(), tenant1, dir, lifecycle.MoveOptions{
		Step: func(s string) { steps = append(steps, s) },
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"export", "import", "verify", "delete"}, steps)
	assert.Equal(t, want, sums(t, dstPool, tenant1))
	for name, c := range sums(t, srcPool, tenant1) {
		assert.Zero(t, c.Rows, name)
	}
	assert.Equal(t, other, sums(t, srcPool, tenant2))
	assert.NotNil(t, res.Delete)
	assert.Len(t, res.Target, 4)

	// Run again: every step is done.
	steps = nil
	_, err = lifecycle.Move(ctx, srcPool, dstPool, shopModel(), tenant1, dir, lifecycle.MoveOptions{
		Step: func(s string) { steps = append(steps, s) },
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"skip export", "skip import", "verify", "skip delete"}, steps)

	_, err = lifecycle.Move(ctx, srcPool, srcPool, shopModel(), tenant2, t.TempDir(), lifecycle.MoveOptions{})
	require.ErrorIs(t, err, lifecycle.ErrSameDatabase)
}

// TestMoveRestarts stops a move at each step and runs it again: it goes on
// from where it stopped, and the result is the same.
func TestMoveRestarts(t *testing.T) {
	t.Parallel()
	for _, stop := range []string{"import", "verify", "delete"} {
		t.Run(stop, func(t *testing.T) {
			t.Parallel()
			src := pgtenancytest.NewDB(t, shop)
			dst := pgtenancytest.NewDB(t, emptyShop)
			srcPool, dstPool := src.OwnerPool(t), dst.OwnerPool(t)
			want := sums(t, srcPool, tenant1)
			dir := filepath.Join(t.TempDir(), "move")

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			opts := lifecycle.MoveOptions{BatchRows: 8, Delete: lifecycle.DeleteOptions{MaxBatchRows: 8}}
			if stop == "verify" {
				opts.Step = func(s string) {
					if s == "verify" {
						cancel()
					}
				}
			} else {
				// Stop inside the step, once it has done some of its work.
				opts.Progress = func(p lifecycle.Progress) {
					if p.Op == stop && p.Table == "public.products" && p.Done {
						cancel()
					}
				}
			}
			_, err := lifecycle.Move(ctx, srcPool, dstPool, shopModel(), tenant1, dir, opts)
			require.ErrorIs(t, err, context.Canceled)

			var steps []string
			opts.Step = func(s string) { steps = append(steps, s) }
			opts.Progress = nil
			_, err = lifecycle.Move(t.Context(), srcPool, dstPool, shopModel(), tenant1, dir, opts)
			require.NoError(t, err, "steps %v", steps)
			assert.Equal(t, "skip export", steps[0])
			assert.Equal(t, want, sums(t, dstPool, tenant1))
			for name, c := range sums(t, srcPool, tenant1) {
				assert.Zero(t, c.Rows, name)
			}
		})
	}
}

// TestMoveStopsWhenTheSourceChanged: a row written to the source after the
// export stops the move before it deletes anything.
func TestMoveStopsWhenTheSourceChanged(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := pgtenancytest.NewDB(t, shop)
	dst := pgtenancytest.NewDB(t, emptyShop)
	srcPool := src.OwnerPool(t)
	admin := src.AdminConn(t)
	_, err := lifecycle.Move(ctx, srcPool, dst.OwnerPool(t), shopModel(), tenant1, filepath.Join(t.TempDir(), "move"), lifecycle.MoveOptions{
		Step: func(s string) {
			if s == "verify" {
				_, err := admin.Exec(ctx, "UPDATE purchases SET note = 'late' WHERE store_id = 1 AND id = 1001")
				require.NoError(t, err)
			}
		},
	})
	require.ErrorIs(t, err, lifecycle.ErrSourceChanged)
	assert.Equal(t, int64(40), sums(t, srcPool, tenant1)["public.purchases"].Rows, "nothing deleted")
}

// TestMoveClearsAPartialExport: files that an export left before it wrote
// its manifest are replaced; any other file stops the move.
func TestMoveClearsAPartialExport(t *testing.T) {
	t.Parallel()
	src := pgtenancytest.NewDB(t, shop)
	dst := pgtenancytest.NewDB(t, emptyShop)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "01_public.stores.bin"), []byte("partial"), 0o600))
	_, err := lifecycle.Move(t.Context(), src.OwnerPool(t), dst.OwnerPool(t), shopModel(), tenant3, dir, lifecycle.MoveOptions{})
	require.NoError(t, err)

	dir = t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600))
	_, err = lifecycle.Move(t.Context(), src.OwnerPool(t), dst.OwnerPool(t), shopModel(), tenant2, dir, lifecycle.MoveOptions{})
	require.ErrorIs(t, err, lifecycle.ErrDirNotEmpty)
}
