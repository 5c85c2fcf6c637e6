package docs

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/admin"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// railsTenantTables are the tables of the Rails-shaped schema that hold
// one account's rows once docs/adopting.md ran, with the rows of account 1
// and 2 in the seed (canned_responses: the account's own, without the
// shared ones).
var railsTenantTables = map[string][2]int{
	"account_users": {2, 2}, "inboxes": {1, 1}, "contacts": {2, 1}, "contact_inboxes": {2, 1},
	"conversations": {1, 1}, "messages": {2, 1}, "teams": {1, 1}, "team_members": {2, 1},
	"taggings": {2, 1}, "notifications": {1, 1}, "canned_responses": {1, 1},
}

// checkAdopted is the isolation check through the pool that follows
// docs/adopting.md: as the application role, each account sees its rows
// only, the shared canned responses but cannot write them, inserts without
// naming the account, cannot reference or write another account's rows,
// inserts rows that reference each other in any order within a
// transaction, writes users but not tags; the admin role sees every
// account.
func checkAdopted(t *testing.T, env guideEnv) {
	ctx := context.Background()
	cfg, err := pool.ParseConfig(env.db.AppURL)
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

	// The guide's psql inserted one message for account 1.
	want := railsTenantTables
	want["messages"] = [2]int{3, 1}
	for table, rows := range want {
		for a := 1; a <= 2; a++ {
			assert.Equal(t, 0, count(acct[a], fmt.Sprintf("SELECT count(*) FROM %s WHERE account_id <> $1", table), a), "%s: account %d sees another's rows", table, a)
			assert.Equal(t, rows[a-1], count(acct[a], fmt.Sprintf("SELECT count(*) FROM %s WHERE account_id = $1", table), a), "%s, account %d", table, a)
		}
	}
	assert.Equal(t, 1, count(acct[1], "SELECT count(*) FROM accounts"))
	_, err = p.Exec(ctx, "SELECT 1")
	assert.ErrorIs(t, err, rls.ErrNoTenant)
	_, err = p.Exec(rls.WithTenant(ctx, rls.Int64(1)), "SELECT 1")
	assert.ErrorIs(t, err, pool.ErrKeyType)

	// Shared rows: read by every account, written by none.
	for a := 1; a <= 2; a++ {
		assert.Equal(t, 2, count(acct[a], "SELECT count(*) FROM canned_responses WHERE account_id IS NULL"))
		tag, err := p.Exec(acct[a], "UPDATE canned_responses SET content = 'mine now' WHERE account_id IS NULL")
		require.NoError(t, err)
		assert.Zero(t, tag.RowsAffected(), "account %d changed a shared row", a)
		tag, err = p.Exec(acct[a], "DELETE FROM canned_responses WHERE account_id IS NULL")
		require.NoError(t, err)
		assert.Zero(t, tag.RowsAffected(), "account %d deleted a shared row", a)
		_, err = p.Exec(acct[a], "INSERT INTO canned_responses (account_id, short_code, content) VALUES (NULL, 'x', 'x')")
		assert.True(t, pool.IsRLSViolation(err), "account %d inserted a shared row: %v", a, err)
		_, err = p.Exec(acct[a], "UPDATE canned_responses SET account_id = NULL WHERE account_id = $1", a)
		assert.True(t, pool.IsRLSViolation(err), "account %d made its row shared: %v", a, err)
	}

	// Inserts take the account from the transaction; another account's
	// rows can neither be written nor referenced.
	var accountID int
	require.NoError(t, p.QueryRow(acct[2], "INSERT INTO contacts (name) VALUES ('Gus') RETURNING account_id").Scan(&accountID))
	assert.Equal(t, 2, accountID)
	_, err = p.Exec(acct[1], "INSERT INTO contacts (account_id, name) VALUES (2, 'sneaky')")
	assert.True(t, pool.IsRLSViolation(err), "%v", err)
	for _, sql := range []string{
		"INSERT INTO messages (conversation_id, content) VALUES (24, 'into Globex')",         // undeclared before prepare
		"INSERT INTO contact_inboxes (contact_id, inbox_id, source_id) VALUES (12, 21, 'x')", // a join table's second parent
		"INSERT INTO team_members (team_id, user_id) VALUES (25, 1)",                         // deferred: fails at commit
	} {
		_, err := p.Exec(acct[1], sql)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, sql)
		assert.Equal(t, "23503", pgErr.Code, "%s: %v", sql, err)
	}
	_, err = p.Exec(acct[1], "INSERT INTO taggings (tag_id, taggable_type, taggable_id) VALUES (1, 'Contact', 12)")
	assert.NoError(t, err, "a polymorphic row takes the account of the transaction")

	// Rows that reference each other, inserted in any order in one
	// transaction (the deferrable key stayed deferrable); the trigger's
	// and the default's sequences are granted.
	require.NoError(t, p.BeginFunc(acct[1], func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO conversations (inbox_id, contact_id) VALUES (11, 900)"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO contacts (id, name) VALUES (900, 'later')")
		return err
	}))
	assert.Equal(t, 1, count(acct[1], "SELECT count(*) FROM conversations WHERE contact_id = 900 AND display_id > 0"))

	// Globals: users written by every sign-in, tags read-only.
	tag, err := p.Exec(acct[2], "UPDATE users SET sign_in_count = sign_in_count + 1, last_sign_in_at = now() WHERE id = 3")
	require.NoError(t, err)
	assert.EqualValues(t, 1, tag.RowsAffected())
	_, err = p.Exec(acct[1], "INSERT INTO users (email) VALUES ('new@acme.test')")
	assert.NoError(t, err)
	assert.Equal(t, 2, count(acct[1], "SELECT count(*) FROM tags"))
	_, err = p.Exec(acct[1], "INSERT INTO tags (name) VALUES ('new')")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42501", pgErr.Code)
	assert.False(t, pool.IsRLSViolation(err), "a missing grant, not a policy")

	// The admin path sees every account.
	adm, err := admin.New(ctx, env.adminURL)
	require.NoError(t, err)
	defer adm.Close()
	var accounts int
	require.NoError(t, adm.QueryRow(admin.WithReason(ctx, "docs test: count the accounts with contacts"),
		"SELECT count(DISTINCT account_id) FROM contacts").Scan(&accounts))
	assert.Equal(t, 2, accounts)
}
