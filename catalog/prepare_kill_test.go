package catalog_test

import (
	"context"
	"os"
	"slices"
	"strings"
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
// before it; prepare, run again, plans the fill of the rest from the same
// parents, which completes, and a third prepare plans nothing.
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

	// Planned again, the backfill still fills the rows from their parents.
	again := mustPrepare(t, owner, opts)
	assert.True(t, slices.ContainsFunc(again.Tables, func(s string) bool {
		return strings.HasPrefix(s, "contact_inboxes: fill the 1 row(s) without account_id from contacts (contact_id); account_id NOT NULL")
	}), "%q", again.Tables)
	dir2 := t.TempDir()
	writeTern(t, dir2, again)
	m2, err := migrate.NewMigrator(ctx, owner, "public.schema_version_again")
	require.NoError(t, err)
	require.NoError(t, m2.LoadMigrations(os.DirFS(dir2)))
	require.NoError(t, m2.Migrate(ctx), "the plan made after the kill")
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM contact_inboxes WHERE account_id IS NULL"))

	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM contact_inboxes WHERE account_id IS NULL"))
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM information_schema.columns WHERE column_name = 'account_id' AND is_nullable = 'YES' AND table_name <> 'canned_responses'"))
	assert.True(t, mustPrepare(t, owner, opts).IsEmpty(), "nothing left to do")
}

// TestPrepareSharedParent: a join table between a tenant table and a table
// with shared rows takes its tenant from the tenant side (a row may use a
// shared parent); a table whose only parent has shared rows is left out.
func TestPrepareSharedParent(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	owner := db.OwnerConn(t)
	mustExec(t, owner, `CREATE TABLE message_canned (message_id integer NOT NULL REFERENCES messages (id),
    canned_response_id integer NOT NULL REFERENCES canned_responses (id), PRIMARY KEY (message_id, canned_response_id));
CREATE TABLE canned_translations (id serial PRIMARY KEY, canned_response_id integer NOT NULL REFERENCES canned_responses (id), locale text);
INSERT INTO message_canned SELECT m.id, c.id FROM messages m CROSS JOIN canned_responses c WHERE c.account_id IS NULL OR c.account_id = m.account_id;
INSERT INTO canned_translations (canned_response_id, locale) SELECT id, 'de' FROM canned_responses`)
	opts := railsPrepareOptions()
	prep := mustPrepare(t, owner, opts)
	assert.True(t, slices.ContainsFunc(prep.Tables, func(s string) bool {
		return strings.HasPrefix(s, "message_canned: add account_id, filled from messages (message_id)")
	}), "%q", prep.Tables)
	assert.False(t, slices.ContainsFunc(prep.Tables, func(s string) bool { return strings.HasPrefix(s, "canned_translations:") }))
	assert.True(t, slices.ContainsFunc(prep.Notes, func(s string) bool {
		return strings.Contains(s, "left out") && strings.Contains(s, "canned_translations")
	}), "%q", prep.Notes)
	dir := t.TempDir()
	writeTern(t, dir, prep)
	require.NoError(t, ternMigrate(t, owner, dir))
	assert.Equal(t, []string{"0"}, queryStrings(t, owner, "SELECT count(*)::text FROM message_canned WHERE account_id IS NULL"))
	assert.True(t, mustPrepare(t, owner, opts).IsEmpty())
}
