package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

var chatwootSchema = &pgtenancytest.Template{
	Name: "cli_chatwoot",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.ChatwootDDL+testschema.ChatwootSeed)
		return err
	},
}

var chatwootFlags = []string{"--tenant-column", "account_id", "--root", "accounts",
	"--global", "tags,installation_configs,platform_apps,access_tokens", "--writable-global", "users",
	"--shared", "agent_bots,email_templates"}

// TestAdoptChatwoot adopts the Chatwoot-shaped schema through the commands
// of docs/adopting.md, the proposals of --infer-references taken as
// printed: prepare, tern, prepare again (nothing to do), generate, tern,
// generate again (nothing to do), verify (exit 0); then, through the pool
// as the application role (NOSUPERUSER NOBYPASSRLS, owning nothing), each
// account sees only its rows and the shared ones, and writes work without
// naming the account.
func TestAdoptChatwoot(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, chatwootSchema)
	owner := db.OwnerConn(t)
	base := append([]string{"--database-url", db.OwnerURL}, chatwootFlags...)

	code, stdout, stderr := pgtenancy(t, append(append([]string{"prepare"}, base...), "--infer-references")...)
	require.Equal(t, exitOK, code, stderr)
	var flags []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "--") {
			flags = append(flags, strings.Fields(l)...)
		}
	}
	joined := strings.Join(flags, " ")
	for _, want := range []string{
		"--reference contact_inboxes.contact_id=contacts.id", // bigint to an integer key
		"--reference portals_members.portal_id=portals.id",   // a table without a primary key
		"--reference messages.conversation_id=conversations.id",
		"--polymorphic taggings.taggable_type+taggable_id=Contact:contacts,Conversation:conversations",
	} {
		assert.Contains(t, joined, want)
	}
	assert.NotContains(t, joined, "access_tokens", "a global table")

	dir := t.TempDir()
	prepare := append(append(append([]string{"prepare"}, base...), flags...), "--out", dir, "--batch-size", "50")
	code, _, stderr = pgtenancy(t, prepare...)
	require.Equal(t, exitOK, code, stderr)
	assert.NotContains(t, stderr, "(account_id, agent_bot_id) -> agent_bots", "shared rows stay referenced plainly")
	require.NoError(t, tern(t, owner, dir))
	code, stdout, stderr = pgtenancy(t, prepare...)
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "nothing to do")
	assert.NotContains(t, stderr, "schema_version", "tern's own table is not the application's")

	gen := append(append([]string{"generate"}, base...), "--app-role", pgtenancytest.AppRole, "--out", dir)
	code, stdout, stderr = pgtenancy(t, gen...)
	require.Equal(t, exitOK, code, stderr)
	body, err := os.ReadFile(strings.TrimSpace(stdout))
	require.NoError(t, err)
	assert.Contains(t, string(body), "pg_catalog.starts_with(c.relname::text, 'conv_dpid_seq_')", "per-tenant sequences granted by prefix")
	assert.NotContains(t, string(body), "conv_dpid_seq_1", "not by the names of this database's tenants")
	code, _, stderr = pgtenancy(t, "install", "--database-url", db.OwnerURL)
	require.Equal(t, exitOK, code, stderr)
	require.NoError(t, tern(t, owner, dir))
	code, stdout, stderr = pgtenancy(t, gen...)
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "nothing to do")

	code, stdout, stderr = pgtenancy(t, append(append([]string{"verify"}, base...), "--app-role", pgtenancytest.AppRole)...)
	require.Equal(t, exitOK, code, "%s\n%s", stdout, stderr)
	assert.Contains(t, stdout, "0 error(s)")

	checkChatwootIsolation(t, db)
}

// tern runs the migrations of dir as tern does.
func tern(t *testing.T, conn *pgx.Conn, dir string) error {
	t.Helper()
	m, err := migrate.NewMigrator(t.Context(), conn, "public.schema_version")
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(os.DirFS(dir)))
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return m.Migrate(t.Context())
}

func checkChatwootIsolation(t *testing.T, db *pgtenancytest.DB) {
	ctx := t.Context()
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.KeyType = rls.Integer
	p, err := pool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer p.Close()
	acct := [3]context.Context{ctx, rls.WithTenant(ctx, rls.Int32(1)), rls.WithTenant(ctx, rls.Int32(2))}
	count := func(ctx context.Context, sql string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, p.QueryRow(ctx, sql, args...).Scan(&n), sql)
		return n
	}
	var owner int
	require.NoError(t, db.OwnerConn(t).QueryRow(ctx, "SELECT count(*) FROM messages").Scan(&owner))
	assert.Zero(t, owner, "FORCE: the owner sees no tenant rows")

	// Every tenant table, those that got account_id included: each account
	// sees its rows only, and has some.
	for _, table := range []string{"account_users", "inboxes", "contacts", "contact_inboxes", "inbox_members",
		"conversations", "messages", "attachments", "teams", "team_members", "campaigns", "campaign_messages",
		"portals", "portals_members", "taggings", "notifications", "agent_bot_inboxes", "reporting_events",
		"webhooks", "labels", "channel_web_widgets"} {
		for a := 1; a <= 2; a++ {
			assert.Zero(t, count(acct[a], fmt.Sprintf("SELECT count(*) FROM %s WHERE account_id IS DISTINCT FROM $1", table), a), "%s: account %d", table, a)
			assert.Positive(t, count(acct[a], fmt.Sprintf("SELECT count(*) FROM %s", table)), "%s: account %d", table, a)
		}
	}
	assert.Equal(t, 150, count(acct[1], "SELECT count(*) FROM contact_inboxes"))
	assert.Equal(t, 1500, count(acct[2], "SELECT count(*) FROM messages"))
	// Shared rows: read by both, written by neither.
	for a := 1; a <= 2; a++ {
		assert.Equal(t, 1, count(acct[a], "SELECT count(*) FROM agent_bots WHERE account_id IS NULL"))
		assert.Equal(t, 1, count(acct[a], "SELECT count(*) FROM email_templates WHERE account_id IS NULL"))
		tag, err := p.Exec(acct[a], "UPDATE agent_bots SET name = 'mine' WHERE account_id IS NULL")
		require.NoError(t, err)
		assert.Zero(t, tag.RowsAffected())
	}

	// Writes without naming the account: the trigger's per-account
	// sequence is granted; a join table row, a row without a primary key,
	// a polymorphic row take the account of the transaction; a reference
	// to a shared bot is fine, one to another account's contact is not.
	require.NoError(t, p.BeginFunc(acct[1], func(tx pgx.Tx) error {
		var display, account int
		if err := tx.QueryRow(ctx, "INSERT INTO conversations (inbox_id, contact_id) VALUES (1, 2) RETURNING display_id, account_id").Scan(&display, &account); err != nil {
			return err
		}
		assert.Equal(t, 1, account)
		assert.Positive(t, display)
		for _, sql := range []string{
			"INSERT INTO contact_inboxes (contact_id, inbox_id, source_id) VALUES (2, 1, 'new')",
			"INSERT INTO portals_members (portal_id, user_id) VALUES (1, 2)",
			"INSERT INTO taggings (tag_id, taggable_type, taggable_id, context) VALUES (2, 'Contact', 2, 'labels')",
			"INSERT INTO agent_bot_inboxes (inbox_id, agent_bot_id) VALUES (1, 1)",
			"UPDATE users SET sign_in_count = sign_in_count + 1 WHERE id = 1",
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
		return nil
	}))
	theirs := count(acct[2], "SELECT min(id) FROM conversations")
	for _, sql := range []string{
		"INSERT INTO conversations (inbox_id, contact_id) VALUES (1, 1)",                   // contact 1 is account 2's
		"INSERT INTO contact_inboxes (contact_id, inbox_id, source_id) VALUES (1, 1, 'x')", // bigint to integer, composite
		fmt.Sprintf("INSERT INTO messages (inbox_id, conversation_id, message_type) VALUES (1, %d, 0)", theirs),
	} {
		_, err := p.Exec(acct[1], sql)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, sql)
		assert.Equal(t, "23503", pgErr.Code, "%s: %v", sql, err)
	}
	_, err = p.Exec(acct[1], "INSERT INTO email_templates (account_id, name, body) VALUES (NULL, 'x', 'x')")
	assert.True(t, pool.IsRLSViolation(err), "a shared row written by an account: %v", err)
	_, err = p.Exec(acct[1], "INSERT INTO installation_configs (name) VALUES ('x')")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42501", pgErr.Code, "a read-only global")
}
