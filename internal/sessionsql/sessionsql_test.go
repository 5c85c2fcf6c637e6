package sessionsql

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// scanCases are SQL texts and the state that Scan must find, settings by
// name. The database test runs the runnable ones and checks that the
// server agrees.
var scanCases = []struct {
	sql      string
	kinds    Kind
	settings []string
}{
	// Temporary objects.
	{"CREATE TEMP TABLE report AS SELECT id, name FROM products", TempObjects, nil},
	{"create temporary table t (a int)", TempObjects, nil},
	{"CREATE GLOBAL TEMPORARY TABLE t (a int)", TempObjects, nil},
	{"CREATE LOCAL TEMP TABLE IF NOT EXISTS t (a int)", TempObjects, nil},
	{"CREATE TEMP TABLE products AS SELECT * FROM public.products", TempObjects, nil},
	{"CREATE TEMP TABLE t (a int) ON COMMIT DELETE ROWS", TempObjects, nil},
	{"CREATE TEMP TABLE t (a int) ON COMMIT PRESERVE ROWS", TempObjects, nil},
	{"CREATE TEMP TABLE t AS SELECT 'ON COMMIT DROP' AS x", TempObjects, nil},
	{"CREATE TEMP TABLE t /* ON COMMIT DROP */ AS SELECT 1 AS x", TempObjects, nil},
	{"CREATE TEMP TABLE t (a int) ON COMMIT DROP", 0, nil},
	{"create temp table t on commit drop as select 1 as x", 0, nil},
	{"CREATE TEMP TABLE t (a int DEFAULT 1, CHECK (a > 0)) WITH (fillfactor = 50) ON COMMIT DROP", 0, nil},
	{"CREATE TEMP VIEW v AS SELECT 1 AS x", TempObjects, nil},
	{"CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1 AS x", TempObjects, nil},
	{"CREATE TEMP SEQUENCE s", TempObjects, nil},
	{"CREATE TABLE pg_temp.t (a int)", TempObjects, nil},
	{`CREATE VIEW "pg_temp".v AS SELECT 1 AS x`, TempObjects, nil},
	{"CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", TempObjects, nil},
	{"CREATE TABLE pg_temp.t (a int) ON COMMIT DROP", 0, nil},
	{"SELECT id, name INTO TEMP report FROM products", TempObjects, nil},
	{"SELECT 1 AS x INTO TEMPORARY TABLE t", TempObjects, nil},
	{"select 1 as x into local temp t", TempObjects, nil},
	{"SELECT 1 AS x INTO pg_temp.t", TempObjects, nil},
	{"WITH x AS (SELECT 1 AS a) SELECT a INTO TEMP t FROM x", TempObjects, nil},
	{"EXPLAIN (ANALYZE, COSTS OFF) CREATE TEMP TABLE t AS SELECT 1 AS x", TempObjects, nil},
	{"explain analyze select 1 as x into temp t", TempObjects, nil},
	{"SELECT 'into temp t' AS x", 0, nil},
	{"SELECT 1 AS temp", 0, nil},
	{"CREATE TABLE IF NOT EXISTS permanent (a int)", 0, nil},
	{"SELECT id INTO permanent2 FROM products", 0, nil},

	// Cursors.
	{"DECLARE export CURSOR WITH HOLD FOR SELECT id FROM products", HoldCursors, nil},
	{"declare c binary no scroll cursor with hold for select 1", HoldCursors, nil},
	{"DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", 0, nil},
	{"DECLARE c CURSOR FOR SELECT 'with hold'", 0, nil},
	{"DECLARE c CURSOR FOR WITH hold AS (SELECT 1) SELECT * FROM hold", 0, nil},

	// LISTEN.
	{"LISTEN store_events", Listen, nil},
	{`listen "Store Events"`, Listen, nil},
	{"UNLISTEN *", 0, nil},
	{"NOTIFY store_events, 'x'", 0, nil},

	// Settings.
	{"SET search_path = public", Settings, []string{"search_path"}},
	{"SET SESSION app.user_email TO 'a@example.com'", Settings, []string{"app.user_email"}},
	{`SET "App"."User_Email" = 'a'`, Settings, []string{"app.user_email"}},
	{"SET extra_float_digits=-1", Settings, []string{"extra_float_digits"}},
	{"SET work_mem TO DEFAULT", Settings, []string{"work_mem"}},
	{"SET TIME ZONE 'Asia/Tokyo'", Settings, []string{"timezone"}},
	{"SET SESSION TIME ZONE 'Europe/Paris'", Settings, []string{"timezone"}},
	{"SET NAMES 'UTF8'", Settings, []string{"client_encoding"}},
	{"SET SCHEMA 'public'", Settings, []string{"search_path"}},
	{"SET XML OPTION DOCUMENT", Settings, []string{"xmloption"}},
	{"SET ROLE NONE", Settings, []string{"role"}},
	{"SET SESSION AUTHORIZATION DEFAULT", Settings, []string{"session_authorization"}},
	{"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", Settings,
		[]string{"default_transaction_isolation", "default_transaction_read_only", "default_transaction_deferrable"}},
	{"SET LOCAL app.user_email = 'a'", 0, nil},
	{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0, nil},
	{"SET CONSTRAINTS ALL DEFERRED", 0, nil},
	{"SET 1 = 2", AllSettings, nil},
	{"SELECT set_config('app.user_email', 'a@example.com', false)", Settings, []string{"app.user_email"}},
	{"SELECT pg_catalog.set_config('App.User_Email'::text, $1, false)", Settings, []string{"app.user_email"}},
	{"SELECT set_config ( 'a.b' , 'x' , 'f' ), set_config('a.c', 'y', 0 = 1)", Settings, []string{"a.b", "a.c"}},
	{"SELECT set_config('app.user_email', $1, $2)", Settings, []string{"app.user_email"}},
	{"SELECT set_config('app.user_email', $1, true)", 0, nil},
	{"SELECT set_config('app.user_email', $1, 'on'), set_config('a.b', 'x', true::boolean)", 0, nil},
	{"SELECT set_config($1, $2, false)", AllSettings, nil},
	{"SELECT set_config('app.' || 'x', 'v', false)", AllSettings, nil},
	{`SELECT set_config(E'app.\x75ser', 'v', false)`, AllSettings, nil},
	{"SELECT 'set_config(''a.b'', ''x'', false)' AS x", 0, nil},
	{"UPDATE products SET name = 'x' WHERE false", 0, nil},
	{"ALTER TABLE products SET (fillfactor = 90)", 0, nil},
	{"RESET app.user_email", 0, nil},

	// Advisory locks.
	{"SELECT pg_advisory_lock(4242)", AdvisoryLocks, nil},
	{"SELECT pg_catalog.pg_try_advisory_lock_shared(1, 2)", AdvisoryLocks, nil},
	{`SELECT "pg_advisory_lock_shared"(7)`, AdvisoryLocks, nil},
	{"SELECT pg_try_advisory_lock(8)", AdvisoryLocks, nil},
	{"SELECT pg_advisory_xact_lock(4242)", 0, nil},
	{"SELECT pg_advisory_unlock(4242)", 0, nil},
	{"SELECT 'pg_advisory_lock(1)' AS x", 0, nil},

	// Opaque.
	{"DO $$BEGIN CREATE TEMP TABLE x (a int); END$$", Opaque, nil},
	{"EXECUTE p(1)", Opaque, nil},
	{"PREPARE p AS SELECT pg_advisory_lock($1)", AdvisoryLocks, nil},

	// Lexing: what hides a statement and what does not.
	{"SELECT 1; LISTEN x", Listen, nil},
	{"SELECT 1 -- ; LISTEN x", 0, nil},
	{"SELECT 1 -- comment\n; LISTEN x", Listen, nil},
	{"SELECT 1 /* /* nested */ ; LISTEN x */", 0, nil},
	{"SELECT 1 /* /* nested */ */ ; LISTEN x", Listen, nil},
	{"SELECT $$; LISTEN x$$", 0, nil},
	{"SELECT $a$ $$ ; LISTEN x $a$", 0, nil},
	{"SELECT $a$ $$ $a$; LISTEN x", Listen, nil},
	{"SELECT $1; LISTEN x", Listen, nil},
	{"SELECT 1 AS a$b$c; LISTEN x", Listen, nil},
	{"SELECT 'a''; LISTEN x'", 0, nil},
	{`SELECT E'a\'; LISTEN x'`, 0, nil},
	{`SELECT e'\\'; LISTEN x`, Listen, nil},
	{`SELECT U&'\0041'; LISTEN x`, Listen, nil},
	{`SELECT 1 AS "a""; LISTEN x"`, 0, nil},
	{`SELECT x'1F'; LISTEN x`, Listen, nil},
	{"SELECT 1 *//*; LISTEN x*/ 1", 0, nil},
	// With standard_conforming_strings off the string ends later; Scan
	// reads both ways.
	{`SELECT 'a\'; LISTEN x; --'`, Listen, nil},
	{`SELECT 'a\''; LISTEN x; --'`, Listen, nil},
	{`SELECT "select", "listen" FROM t`, 0, nil},
	{"", 0, nil},
	{"   ;;  ", 0, nil},
	{"SELECT 'unterminated", 0, nil},
	{"SELECT $$unterminated; LISTEN x", 0, nil},
	{"/* unterminated LISTEN x", 0, nil},
}

func TestScan(t *testing.T) {
	for _, tc := range scanCases {
		st := Scan(tc.sql)
		assert.Equal(t, tc.kinds, st.Kinds, "%q", tc.sql)
		assert.Equal(t, tc.settings, st.Settings, "%q", tc.sql)
	}
}

func TestUnion(t *testing.T) {
	a := State{Kinds: Settings | Listen, Settings: []string{"a.b"}}
	b := State{Kinds: Settings, Settings: []string{"a.c", "a.b"}}
	u := a.Union(b)
	assert.Equal(t, Settings|Listen, u.Kinds)
	assert.Equal(t, []string{"a.b", "a.c"}, u.Settings)
	assert.Equal(t, []string{"a.b"}, a.Settings, "Union changed its receiver")
	assert.True(t, State{}.Empty())
	assert.Equal(t, a, a.Union(State{}))
	assert.Equal(t, b, State{}.Union(b))
}

// FuzzScan: Scan never panics, and what a statement leaves is found
// whatever complete SQL comes before it: nothing in the prefix hides it.
func FuzzScan(f *testing.F) {
	var prefixes []string
	for _, tc := range scanCases {
		f.Add(tc.sql, uint8(len(prefixes)))
		if !strings.Contains(tc.sql, "unterminated") && !strings.Contains(tc.sql, `\`) {
			prefixes = append(prefixes, tc.sql)
		}
	}
	f.Fuzz(func(t *testing.T, sql string, pick uint8) {
		st := Scan(sql)
		if (st.Kinds&Settings == 0) != (len(st.Settings) == 0) {
			t.Fatalf("Scan(%q) = %+v: settings and kind disagree", sql, st)
		}
		prefix := prefixes[int(pick)%len(prefixes)]
		both := Scan(prefix + "\n;\n" + sql)
		if want := st.Kinds | Scan(prefix).Kinds; both.Kinds&want != want {
			t.Fatalf("Scan(%q + %q) = %v, want at least %v", prefix, sql, both.Kinds, want)
		}
		for _, name := range st.Settings {
			if !slices.Contains(both.Settings, name) {
				t.Fatalf("Scan(%q + %q) lost setting %q", prefix, sql, name)
			}
		}
	})
}
