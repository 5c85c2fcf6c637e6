package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

var railsSchema = &pgtenancytest.Template{
	Name: "cli_rails",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.RailsDDL+testschema.RailsSeed)
		return err
	},
}

// djangoSchema is django-multitenant's test models, in short: integer keys,
// every foreign key DEFERRABLE INITIALLY DEFERRED, and one table whose
// tenant column has another name (revenues.acc_id).
var djangoSchema = &pgtenancytest.Template{
	Name: "cli_django",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, `
CREATE TABLE tests_account (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE tests_project (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES tests_account (id) DEFERRABLE INITIALLY DEFERRED,
    name text NOT NULL);
CREATE TABLE tests_employee (
    id serial PRIMARY KEY,
    account_id integer NOT NULL REFERENCES tests_account (id) DEFERRABLE INITIALLY DEFERRED,
    project_id integer REFERENCES tests_project (id) DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE tests_revenue (
    id serial PRIMARY KEY,
    acc_id integer NOT NULL REFERENCES tests_account (id) DEFERRABLE INITIALLY DEFERRED,
    project_id integer NOT NULL REFERENCES tests_project (id) DEFERRABLE INITIALLY DEFERRED,
    value numeric NOT NULL);
INSERT INTO tests_account VALUES (1, 'one'), (2, 'two');
INSERT INTO tests_project VALUES (10, 1, 'p1'), (20, 2, 'p2');
INSERT INTO tests_employee VALUES (100, 1, 10), (200, 2, 20);
INSERT INTO tests_revenue VALUES (1000, 1, 10, 5), (2000, 2, 20, 7);`)
		return err
	},
}

// TestTenantColumnOverride: a table whose tenant column has another name
// is discovered with --tenant-column table:column, and a declared model
// without --key takes its key type and foreign keys from the database; both
// plan the same SQL, with the composite keys deferrable like the keys they
// replace; applied, verify exits 0, and an employee can be created before
// its project in one transaction.
func TestTenantColumnOverride(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, djangoSchema)
	base := []string{"--database-url", db.OwnerURL, "--tenant-column", "account_id", "--root", "tests_account", "--app-role", pgtenancytest.AppRole}
	code, discovered, stderr := pgtenancy(t, append([]string{"plan", "--tenant-column", "tests_revenue:acc_id"}, base...)...)
	require.Equal(t, exitOK, code, stderr)
	code, declared, stderr := pgtenancy(t, append([]string{"plan", "--table", "tests_project", "--table", "tests_employee",
		"--table", "tests_revenue:acc_id"}, base...)...)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, discovered, declared)
	for _, want := range []string{
		"Tenant key: integer;",
		`FOREIGN KEY ("acc_id", "project_id") REFERENCES "public"."tests_project" ("account_id", "id") DEFERRABLE INITIALLY DEFERRED;`,
		`FOREIGN KEY ("account_id", "project_id") REFERENCES "public"."tests_project" ("account_id", "id") DEFERRABLE INITIALLY DEFERRED;`,
		`CREATE POLICY "pgtenancy_tenant_isolation" ON "public"."tests_revenue" AS PERMISSIVE FOR ALL TO PUBLIC` + "\n    USING (\"acc_id\" = ",
		`ALTER TABLE "public"."tests_revenue" ALTER COLUMN "acc_id" SET DEFAULT`,
	} {
		assert.Contains(t, discovered, want)
	}

	owner := db.OwnerConn(t)
	_, err := owner.Exec(t.Context(), discovered)
	require.NoError(t, err)
	code, _, stderr = pgtenancy(t, "install", "--database-url", db.OwnerURL)
	require.Equal(t, exitOK, code, stderr)
	code, stdout, stderr := pgtenancy(t, append([]string{"verify", "--tenant-column", "tests_revenue:acc_id"}, base...)...)
	assert.Equal(t, exitOK, code, "%s%s", stdout, stderr)

	app := db.AppConn(t)
	tx, err := app.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.WithoutCancel(t.Context()))
	_, err = tx.Exec(t.Context(), "SELECT pgtenancy.set_tenant('1')")
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "INSERT INTO tests_employee (id, project_id) VALUES (101, 11)")
	require.NoError(t, err, "the project comes later in the transaction")
	_, err = tx.Exec(t.Context(), "INSERT INTO tests_project (id, name) VALUES (11, 'later')")
	require.NoError(t, err)
	require.NoError(t, tx.Commit(t.Context()), "the deferred composite key holds at commit")
}

// TestGenerateAgainWritesNothing: generate with a database plans; on an
// adopted database it says there is nothing to do, writes no file, and
// exits 0.
func TestGenerateAgainWritesNothing(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	dir := t.TempDir()
	args := append([]string{"generate", "--database-url", db.OwnerURL, "--out", dir}, discoverFlags...)
	code, stdout, stderr := pgtenancy(t, args...)
	require.Equal(t, exitOK, code, stderr)
	body, err := os.ReadFile(strings.TrimSpace(stdout))
	require.NoError(t, err)
	up, _, _ := strings.Cut(string(body), "---- create above / drop below ----")
	_, err = db.OwnerConn(t).Exec(t.Context(), up)
	require.NoError(t, err)

	code, stdout, stderr = pgtenancy(t, args...)
	assert.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "the database matches the model; nothing to do")
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	require.NoError(t, err)
	assert.Len(t, files, 1, "no second file")
}

var railsFlags = []string{"--tenant-column", "account_id", "--root", "accounts", "--global", "tags",
	"--writable-global", "users", "--shared", "canned_responses"}

func TestPrepareCommand(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsSchema)
	base := append([]string{"prepare", "--database-url", db.OwnerURL}, railsFlags...)

	code, stdout, stderr := pgtenancy(t, append(base, "--infer-references")...)
	require.Equal(t, exitOK, code, stderr)
	var flags []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "--") {
			flags = append(flags, strings.Fields(l)...)
		}
	}
	assert.Equal(t, []string{"--reference", "conversations.inbox_id=inboxes.id", "--reference", "messages.conversation_id=conversations.id",
		"--polymorphic", "taggings.taggable_type+taggable_id=Contact:contacts,Conversation:conversations"}, flags)
	assert.Contains(t, stderr, "left out, granted nothing")

	// Without --out: the SQL of the five migrations; the proposals fed
	// back as they were printed.
	code, stdout, stderr = pgtenancy(t, append(base, flags...)...)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, 5, strings.Count(stdout, "-- Migration pgtenancy_prepare_"))
	assert.Contains(t, stdout, "-- Migration pgtenancy_prepare_indexes (outside a transaction, one statement at a time)")
	assert.Contains(t, stderr, "pgtenancy prepare: taggings: add account_id, filled from contacts (taggable_type = 'Contact'), conversations (taggable_type = 'Conversation')")

	dir := t.TempDir()
	code, stdout, stderr = pgtenancy(t, append(append(base, flags...), "--out", dir, "--batch-size", "1", "--lock-timeout", "2s")...)
	require.Equal(t, exitOK, code, stderr)
	assert.Equal(t, 5, strings.Count(stdout, ".sql\n"))
	backfill, err := os.ReadFile(filepath.Join(dir, "002_pgtenancy_prepare_backfill.sql"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(backfill), "---- tern: disable-tx ----\n"))
	assert.Contains(t, string(backfill), "LIMIT 1)")
	assert.Contains(t, string(backfill), "SET lock_timeout = '2s';")

	for name, args := range map[string][]string{
		"bad reference":   {"--reference", "messages.conversation_id"},
		"bad polymorphic": {"--polymorphic", "taggings.taggable_type=Contact:contacts"},
		"bad key":         {"--key", "serial"},
		"two columns":     {"--tenant-column", "company_id"},
		"unknown table":   {"--reference", "nosuch.x_id=accounts.id"},
	} {
		code, stdout, stderr := pgtenancy(t, append(base, args...)...)
		assert.Equal(t, exitError, code, name)
		assert.Empty(t, stdout, name)
		assert.NotEmpty(t, stderr, name)
	}
}
