package snapshot_test

import (
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// TestReadAudit reads what Options.Audit adds from a database that has one
// of each: inheritance, a partition in another schema, default
// privileges, a getter function, a LEAKPROOF function, a user mapping, a
// large object, sequences used by a default and a trigger, custom settings.
func TestReadAudit(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	admin := db.AdminConn(t)
	ctx := t.Context()
	app := pgtenancytest.AppRole
	_, err := admin.Exec(ctx, `
CREATE SCHEMA archive;
CREATE TABLE accounts (id bigint PRIMARY KEY);
CREATE SEQUENCE note_seq;
CREATE SEQUENCE trig_seq;
CREATE TABLE notes (account_id bigint NOT NULL REFERENCES accounts, id bigint DEFAULT nextval('note_seq'), body text);
CREATE TABLE old_notes (x int) INHERITS (notes);
CREATE TABLE events (account_id bigint NOT NULL, at date) PARTITION BY RANGE (at);
CREATE TABLE archive.events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE FUNCTION current_account() RETURNS bigint LANGUAGE sql STABLE RETURN current_setting('app.account')::bigint;
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.id := nextval('trig_seq'); RETURN NEW; END$$;
CREATE TRIGGER bump BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION bump();
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON notes TO `+app+` USING (account_id = current_account());
GRANT SELECT ON notes TO `+app+`;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC;
CREATE FUNCTION eq_leaky(int, int) RETURNS bool LANGUAGE sql LEAKPROOF IMMUTABLE RETURN $1 = $2;
CREATE FOREIGN DATA WRAPPER dummy;
CREATE SERVER other FOREIGN DATA WRAPPER dummy;
CREATE USER MAPPING FOR PUBLIC SERVER other;
CREATE FOREIGN TABLE remote_notes (id int) SERVER other;
GRANT SELECT ON remote_notes TO PUBLIC;
SELECT lo_create(4242);
GRANT SELECT ON LARGE OBJECT 4242 TO PUBLIC;
ALTER ROLE `+app+` IN DATABASE "`+db.Name+`" SET app.account = '1';
`)
	require.NoError(t, err)

	var s *snapshot.Snapshot
	require.NoError(t, pgx.BeginFunc(ctx, db.OwnerConn(t), func(tx pgx.Tx) error {
		var err error
		s, err = snapshot.Read(ctx, tx, snapshot.Options{AppRole: app, Audit: true})
		return err
	}))
	a := s.Audit
	require.NotNil(t, a)
	assert.Equal(t, db.Name, a.Database)

	notes := s.Lookup(snapshot.QName{Schema: "public", Name: "notes"})
	require.NotNil(t, notes)
	old := s.Lookup(snapshot.QName{Schema: "public", Name: "old_notes"})
	require.NotNil(t, old)
	assert.Equal(t, []uint32{notes.OID}, old.Parents)
	part := s.Lookup(snapshot.QName{Schema: "archive", Name: "events_2020"})
	require.NotNil(t, part, "a partition in another schema is read")
	assert.True(t, part.Partition)
	assert.Contains(t, notes.ACL, snapshot.ACLItem{Grantee: appOID(t, a, app), Priv: "SELECT"})
	assert.True(t, notes.AppSchemaUsage)
	assert.Equal(t, int16(3), notes.Column("body").Num)

	p := notes.Policy("own")
	require.NotNil(t, p)
	assert.Contains(t, p.UsingTree, "{OPEXPR")
	assert.Empty(t, p.CheckTree)
	assert.Equal(t, []uint32{appOID(t, a, app)}, p.RoleOIDs)
	var getter *snapshot.ExprFunc
	for _, f := range a.Funcs {
		if f.Name == "current_account" {
			getter = f
		}
	}
	require.NotNil(t, getter, "the function a policy calls")
	assert.Equal(t, "s", getter.Volatile)
	assert.Contains(t, getter.Body, "{QUERY")
	assert.Equal(t, "=", a.Operators[410])

	require.Len(t, a.DefaultACLs, 1)
	d := a.DefaultACLs[0]
	d.Owner = "" // the admin role's name
	assert.Equal(t, snapshot.DefaultACL{Schema: "public", ObjType: "r", GranteeStr: "public", Privs: []string{"SELECT"}}, d)
	assert.Equal(t, []string{"public.eq_leaky(integer,integer)"}, a.Leakproof)
	require.Len(t, a.ForeignTables, 1)
	assert.True(t, a.ForeignTables[0].AppSelect)
	require.Len(t, a.UserMappings, 1)
	assert.True(t, a.UserMappings[0].AppApplies)
	assert.Equal(t, int64(1), a.LargeObjects.Readable)
	assert.Equal(t, []uint32{4242}, a.LargeObjects.Sample)
	var uses []string
	for _, u := range a.SeqUses {
		uses = append(uses, s.Table(u.Table).Name.Name+" "+u.Seq+" "+u.Via)
		assert.False(t, u.AppUsage)
	}
	slices.Sort(uses)
	assert.Equal(t, []string{"notes public.note_seq default of column id", "notes public.trig_seq trigger bump", "old_notes public.note_seq default of column id"}, uses)
	assert.Contains(t, a.CustomSettings, snapshot.RoleSetting{PerDatabase: true, PerRole: true, Role: app, Name: "app.account", Value: "1"})
}

func appOID(t *testing.T, a *snapshot.Audit, name string) uint32 {
	t.Helper()
	for _, r := range a.Roles {
		if r.Name == name {
			return r.OID
		}
	}
	t.Fatalf("no role %s", name)
	return 0
}
