package catalog_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// TestPrepareKilledMidway: the backfill, killed while it waits for a row
// (pg_terminate_backend of its connection), has committed the batches
// before it; run again, it fills the rest, the later migrations complete,
// and a third prepare plans nothing.
func TestPrepareKilledMidway(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	ctx := t.Context()
	owner := db.OwnerConn(t)
	opts := railsPrepareOptions()
	opts.BatchSize = 1
	dir := t.TempDir()
	writeTern(t, dir, mustPrepare(t, owner, opts))

	runner, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer runner.Close(context.WithoutCancel(ctx))
	var pid int
	require.NoError(t, runner.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
	m, err := migrate.NewMigrator(ctx, runner, "public.schema_version")
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(os.DirFS(dir)))
	require.NoError(t, m.MigrateTo(ctx, 1), "the columns")
	// Hold the last contact_inboxes row, so that the backfill blocks on it
	// after the batches before it committed.
	locker, err := pgx.Connect(ctx, db.OwnerURL)
	require.NoError(t, err)
	defer locker.Close(context.WithoutCancel(ctx))
	lockTx, err := locker.Begin(ctx)
	require.NoError(t, err)
	var last int
	require.NoError(t, lockTx.QueryRow(ctx, "SELECT max(id) FROM contact_inboxes").Scan(&last))
	_, err = lockTx.Exec(ctx, "SELECT 1 FROM contact_inboxes WHERE id = $1 FOR UPDATE", last)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- m.Migrate(ctx) }()

	// Wait until the backfill waits for the row, then kill it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var waiting bool
		require.NoError(t, owner.QueryRow(ctx, "SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&waiting))
		if waiting {
			break
		}
		require.True(t, time.Now().Before(deadline), "the backfill never waited for the locked row")
		time.Sleep(20 * time.Millisecond)
	}
	var killed bool
	require.NoError(t, owner.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&killed))
	require.True(t, killed)
	require.Error(t, <-done, "the killed run fails")
	require.NoError(t, lockTx.Rollback(ctx))

	var filled, total int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(account_id), count(*) FROM contact_inboxes").Scan(&filled, &total))
	assert.Equal(t, total-1, filled, "the batches before the locked row committed")
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM pg_constraint WHERE conname LIKE '%pgtenancy_not_null'"), "the later migrations did not run")

	require.NoError(t, ternMigrate(t, owner, dir), "run again")
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM contact_inboxes WHERE account_id IS NULL"))
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM information_schema.columns WHERE column_name = 'account_id' AND is_nullable = 'YES' AND table_name <> 'canned_responses'"))
	assert.True(t, mustPrepare(t, owner, opts).IsEmpty(), "nothing left to do")
}
