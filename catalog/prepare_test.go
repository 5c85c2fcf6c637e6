package catalog_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// railsTemplate is testschema's Rails-shaped schema, seeded.
var railsTemplate = &pgtenancytest.Template{
	Name: "catalog_rails",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.RailsDDL+testschema.RailsSeed)
		return err
	},
}

func railsDiscover() catalog.DiscoverOptions {
	return catalog.DiscoverOptions{
		TenantColumn: "account_id", Root: "accounts",
		Global: []string{"tags"}, WritableGlobal: []string{"users"}, Shared: []string{"canned_responses"},
	}
}

// railsPrepareOptions are the options of the Rails schema, with the
// references that TestPrepareInfersReferences finds confirmed.
func railsPrepareOptions() catalog.PrepareOptions {
	return catalog.PrepareOptions{
		DiscoverOptions: railsDiscover(),
		References: []catalog.Reference{
			{Table: "conversations", Columns: []string{"inbox_id"}, RefTable: "inboxes"},
			{Table: "messages", Columns: []string{"conversation_id"}, RefTable: "conversations"},
		},
		Polymorphic: []catalog.Polymorphic{{Table: "taggings", TypeColumn: "taggable_type", IDColumn: "taggable_id",
			Types: map[string]string{"Contact": "contacts", "Conversation": "conversations"}}},
	}
}

// writeTern writes the migrations into dir as tern files.
func writeTern(t *testing.T, dir string, prep *catalog.Preparation) {
	t.Helper()
	for _, m := range prep.Migrations {
		_, err := migrations.WriteTernFile(dir, m.Name, &m.Migration)
		require.NoError(t, err)
	}
}

// ternMigrate runs tern on the migrations of dir.
func ternMigrate(t *testing.T, conn *pgx.Conn, dir string) error {
	t.Helper()
	m, err := migrate.NewMigrator(t.Context(), conn, "public.schema_version")
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(os.DirFS(dir)))
	return m.Migrate(t.Context())
}

func mustPrepare(t *testing.T, conn catalog.Conn, opts catalog.PrepareOptions) *catalog.Preparation {
	t.Helper()
	prep, err := catalog.Prepare(t.Context(), conn, opts)
	require.NoError(t, err)
	return prep
}

func queryStrings(t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// TestPrepareRails prepares the Rails-shaped schema in batches of two
// rows, through tern: the join and polymorphic tables get account_id from
// their parents, NOT NULL, indexed, with composite keys that keep the
// deferrability of the keys they replace; a second run plans nothing; the
// isolation planned next finds every key in place.
func TestPrepareRails(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	owner := db.OwnerConn(t)
	opts := railsPrepareOptions()
	opts.BatchSize = 2
	prep := mustPrepare(t, owner, opts)
	var names []string
	for _, m := range prep.Migrations {
		names = append(names, m.Name)
	}
	assert.Equal(t, []string{"pgtenancy_prepare_columns", "pgtenancy_prepare_backfill", "pgtenancy_prepare_indexes",
		"pgtenancy_prepare_constraints", "pgtenancy_prepare_validate"}, names)
	assert.Contains(t, prep.Tables, "contact_inboxes: add account_id, filled from contacts (contact_id); composite key (account_id, contact_id) -> contacts (account_id, id); composite key (account_id, inbox_id) -> inboxes (account_id, id); index on account_id")
	assert.Contains(t, prep.Tables, "taggings: add account_id, filled from contacts (taggable_type = 'Contact'), conversations (taggable_type = 'Conversation'); index on account_id")
	assert.Contains(t, prep.Notes, "canned_responses: 2 row(s) without account_id, shared by every tenant (read-only to them)")

	dir := t.TempDir()
	writeTern(t, dir, prep)
	require.NoError(t, ternMigrate(t, owner, dir))

	// Every row took its parent's tenant.
	for table, want := range map[string]string{
		"contact_inboxes": "12:1 13:1 22:2",
		"team_members":    "15:1 15:1 25:2",
		"taggings":        "12:1 14:1 22:2",
	} {
		col := map[string]string{"contact_inboxes": "contact_id", "team_members": "team_id", "taggings": "taggable_id"}[table]
		got := queryStrings(t, owner, "SELECT string_agg("+col+"::text || ':' || account_id::text, ' ' ORDER BY "+col+", account_id) FROM "+table)
		assert.Equal(t, []string{want}, got, table)
	}
	assert.Equal(t, []string{"canned_responses", "contact_inboxes:NOT NULL", "taggings:NOT NULL", "team_members:NOT NULL"},
		queryStrings(t, owner, `SELECT c.relname || CASE WHEN a.attnotnull THEN ':NOT NULL' ELSE '' END
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
			WHERE a.attname = 'account_id' AND c.relname IN ('contact_inboxes', 'taggings', 'team_members', 'canned_responses') ORDER BY 1`))
	assert.Empty(t, queryStrings(t, owner, "SELECT conname::text FROM pg_constraint WHERE conname LIKE '%pgtenancy_not_null' OR NOT convalidated"))
	assert.Equal(t, []string{
		"contact_inboxes_account_id_contact_id_pgtenancy_fkey:", "contact_inboxes_account_id_inbox_id_pgtenancy_fkey:",
		"conversations_account_id_contact_id_pgtenancy_fkey:DEFERRABLE INITIALLY DEFERRED", "conversations_account_id_inbox_id_pgtenancy_fkey:",
		"messages_account_id_conversation_id_pgtenancy_fkey:", "team_members_account_id_team_id_pgtenancy_fkey:DEFERRABLE INITIALLY DEFERRED",
	}, queryStrings(t, owner, `SELECT conname || ':' || CASE WHEN condeferrable THEN 'DEFERRABLE' || CASE WHEN condeferred THEN ' INITIALLY DEFERRED' ELSE '' END ELSE '' END
		FROM pg_constraint WHERE conname LIKE '%pgtenancy_fkey' ORDER BY 1`))

	again := mustPrepare(t, owner, opts)
	assert.True(t, again.IsEmpty(), "%v", again.Tables)
	assert.Empty(t, again.Tables)

	// Discovery now finds every table, and the plan creates no key.
	m, err := catalog.Discover(t.Context(), owner, railsDiscover())
	require.NoError(t, err)
	assert.Equal(t, rls.Integer, m.KeyType)
	m.AppRole = pgtenancytest.AppRole
	plan := mustPlan(t, owner, m)
	assert.NotContains(t, plan.Up, "ADD CONSTRAINT")
	assert.NotContains(t, plan.Up, "SET DEFAULT")
	assert.Contains(t, plan.Up, `ALTER TABLE "public"."team_members" DROP CONSTRAINT "team_members_team_id_fkey";`, "the deferrable plain key is replaced")
	assert.Contains(t, plan.Down, `ALTER TABLE "public"."team_members" ADD CONSTRAINT "team_members_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "public"."teams" ("id") DEFERRABLE INITIALLY DEFERRED;`)
	assert.Contains(t, plan.Up, "GRANT USAGE ON SEQUENCE public.account_users_id_seq,")
	for _, seq := range []string{"public.contact_refs", "public.conversation_display_ids", "public.users_id_seq", "public.taggings_id_seq"} {
		assert.Contains(t, plan.Up, seq, "a sequence inserts use: serial, default, trigger, writable global")
	}
	assert.NotContains(t, plan.Up, "public.tags_id_seq", "a read-only global's")
	execTx(t, owner, plan.Up)
	assert.True(t, mustPlan(t, owner, m).IsEmpty())
	assert.True(t, mustPrepare(t, owner, opts).IsEmpty(), "prepare after generate")
}

// TestPrepareResumes: a row whose parent is missing stops the backfill,
// after the batches before it committed; fixed, tern runs it again and
// goes on.
func TestPrepareResumes(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	owner := db.OwnerConn(t)
	mustExec(t, owner, "INSERT INTO taggings (id, tag_id, taggable_type, taggable_id) VALUES (1000, 1, 'Contact', 999)")
	opts := railsPrepareOptions()
	opts.BatchSize = 1
	dir := t.TempDir()
	writeTern(t, dir, mustPrepare(t, owner, opts))
	err := ternMigrate(t, owner, dir)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "23502", pgErr.Code)
	assert.Contains(t, pgErr.Message, "1 row(s) of public.taggings have no account_id")
	assert.Equal(t, []string{"3"}, queryStrings(t, owner, "SELECT count(*)::text FROM taggings WHERE account_id IS NOT NULL"), "the batches before committed")

	mustExec(t, owner, "DELETE FROM taggings WHERE id = 1000")
	require.NoError(t, ternMigrate(t, owner, dir))
	assert.True(t, mustPrepare(t, owner, opts).IsEmpty())
}

// TestPrepareInfersReferences: the <name>_id convention proposes the
// undeclared references, and the polymorphic one with the types in the
// rows; a table with none of them is reported left out.
func TestPrepareInfersReferences(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	opts := catalog.PrepareOptions{DiscoverOptions: railsDiscover(), InferReferences: true}
	prep := mustPrepare(t, db.OwnerConn(t), opts)
	var got []string
	for _, r := range prep.Proposed {
		got = append(got, r.String())
	}
	assert.Equal(t, []string{"conversations.inbox_id=inboxes.id", "messages.conversation_id=conversations.id"}, got)
	require.Len(t, prep.ProposedPolymorphic, 1)
	assert.Equal(t, "taggings.taggable_type+taggable_id=Contact:contacts,Conversation:conversations", prep.ProposedPolymorphic[0].String())
	assert.True(t, hasPrefix(prep.Notes, "left out, granted nothing (no tenant column, no reference to a tenant table): taggings;"), "%v", prep.Notes)

	// Confirmed, nothing more is proposed.
	opts = railsPrepareOptions()
	opts.InferReferences = true
	prep = mustPrepare(t, db.OwnerConn(t), opts)
	assert.Empty(t, prep.Proposed)
	assert.Empty(t, prep.ProposedPolymorphic)
}

// TestPrepareRowsWithoutTenant: a tenant table whose rows may have no
// tenant and that is not shared is reported, and its backfill step stops
// on those rows rather than let them vanish.
func TestPrepareRowsWithoutTenant(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	owner := db.OwnerConn(t)
	opts := railsPrepareOptions()
	opts.Shared = nil
	prep := mustPrepare(t, owner, opts)
	assert.True(t, hasPrefix(prep.Notes, "canned_responses: 2 row(s) without account_id are visible to no tenant once isolated"), "%v", prep.Notes)
	assert.Contains(t, prep.Tables, "canned_responses: default account_id from the tenant setting; account_id NOT NULL; index on account_id")
	dir := t.TempDir()
	writeTern(t, dir, prep)
	err := ternMigrate(t, owner, dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "2 row(s) of public.canned_responses have no account_id")
}

func TestPrepareErrors(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	for name, edit := range map[string]func(o *catalog.PrepareOptions){
		"no tenant column": func(o *catalog.PrepareOptions) { o.TenantColumn = "" },
		"bad reference":    func(o *catalog.PrepareOptions) { o.References[0].Columns = nil },
		"missing column":   func(o *catalog.PrepareOptions) { o.References[0].Columns = []string{"nosuch"} },
		"missing table":    func(o *catalog.PrepareOptions) { o.Polymorphic[0].Types["Other"] = "nosuch" },
		"bad setting":      func(o *catalog.PrepareOptions) { o.Setting = "App" },
	} {
		opts := railsPrepareOptions()
		edit(&opts)
		_, err := catalog.Prepare(t.Context(), db.OwnerConn(t), opts)
		require.Error(t, err, name)
	}
}

func hasPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestCompleteDeclaredModel: a declared model takes its key type and the
// foreign keys it does not list from the catalog, deferrability included.
func TestCompleteDeclaredModel(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, railsTemplate)
	m := &policy.Model{Tables: []policy.Table{
		{Name: "accounts", TenantColumn: "id", Root: true},
		{Name: "contacts", TenantColumn: "account_id"},
		{Name: "conversations", TenantColumn: "account_id"},
	}}
	got, err := catalog.Complete(t.Context(), db.OwnerConn(t), m)
	require.NoError(t, err)
	assert.Equal(t, rls.Integer, got.KeyType)
	assert.Equal(t, []policy.ForeignKey{{Columns: []string{"contact_id"}, RefTable: "contacts", RefColumns: []string{"id"},
		Deferrable: true, InitiallyDeferred: true}}, got.Tables[2].ForeignKeys)
	assert.Empty(t, m.Tables[2].ForeignKeys, "the model is left alone")
	assert.Zero(t, m.KeyType)
}
