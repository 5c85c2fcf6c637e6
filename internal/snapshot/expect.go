package snapshot

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ColumnKey is a tenant column's name and type, as [Column] has them.
type ColumnKey struct{ Name, Type string }

// tempTypeRE matches the column types whose names Expect writes into SQL:
// the types a tenant column may have, as format_type prints them.
var tempTypeRE = regexp.MustCompile(`^(bigint|uuid|text|character varying(\([0-9]+\))?)$`)

// KeyTypeOf maps a column type, as format_type prints it, to a key type; 0
// when none fits. Text keys accept text and varchar columns (any length):
// varchar compares with text without a cast that would stop index use.
func KeyTypeOf(typ string) rls.KeyType {
	switch {
	case typ == "bigint":
		return rls.BigInt
	case typ == "uuid":
		return rls.UUID
	case typ == "text", typ == "character varying", strings.HasPrefix(typ, "character varying("):
		return rls.Text
	}
	return 0
}

// Want is what [Snapshot.Expect] prepares.
type Want struct {
	// Setting is the tenant setting of the expected policies.
	Setting string
	// Columns are the tenant columns whose expected policy texts are
	// wanted; those of a type that is no key type are skipped.
	Columns []ColumnKey
	// Signed adds the form of policy.SignedPolicyExpr, which needs
	// pgtenancy.tenant() installed.
	Signed bool
	// CitusTables are the tables whose Citus metadata and shards are read,
	// when the citus extension is installed.
	CitusTables []uint32
}

// The statements of Expect's temporary tables and policies.
const (
	expectedTable = "pg_temp.pgtenancy_expected_%d"
	readExpected  = `
SELECT p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relname LIKE 'pgtenancy\_expected\_%'`
)

const citusTablesSQL = `
SELECT p.logicalrelid::oid, p.partmethod::text, p.repmodel::text,
    coalesce(column_to_column_name(p.logicalrelid, p.partkey), ''), p.colocationid
FROM pg_catalog.pg_dist_partition p
WHERE p.logicalrelid = ANY ($1::oid[])`

// shardCommand prints, for one shard, its RLS flags and policies: fields
// separated by U+001F and records by U+001E, so names cannot break the
// format. run_command_on_shards replaces %s with the shard's name.
const shardCommand = `SELECT c.relrowsecurity::text || chr(31) || c.relforcerowsecurity::text || coalesce((
    SELECT string_agg(chr(30) || p.polname || chr(31) || p.polpermissive::text || chr(31) || p.polcmd::text || chr(31)
        || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') || chr(31)
        || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''), '' ORDER BY p.polname)
    FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid), '')
FROM pg_catalog.pg_class c WHERE c.oid = '%s'::regclass`

const citusShardsSQL = `
SELECT p.logicalrelid::oid, r.shardid, r.success, coalesce(r.result, '')
FROM pg_catalog.pg_dist_partition p
CROSS JOIN LATERAL run_command_on_shards(p.logicalrelid, $2::text) r
WHERE p.logicalrelid = ANY ($1::oid[])`

// Expect asks the server, in one batch (one round trip) in tx, how it
// prints the expected policy expressions of the tenant columns w.Columns:
// it creates the pgtenancy policies on temporary tables with the same
// column names and types, and reads them back. That text is exactly what
// pg_get_expr gives for a correct policy, whatever the server version and
// the column's type (a varchar column gets a cast, say). The role needs
// the TEMPORARY privilege on the database. With Citus, the same batch
// reads the metadata and shards of w.CitusTables. The caller rolls tx back.
func (s *Snapshot) Expect(ctx context.Context, tx pgx.Tx, w Want) error {
	s.expected = map[ColumnKey][3]string{}
	byType := map[string][]string{}
	seen := map[ColumnKey]bool{}
	for _, c := range w.Columns {
		if c.Name == "" || !tempTypeRE.MatchString(c.Type) || seen[c] {
			continue
		}
		seen[c] = true
		byType[c.Type] = append(byType[c.Type], c.Name)
	}
	types := make([]string, 0, len(byType))
	for typ := range byType {
		types = append(types, typ)
	}
	slices.Sort(types)
	b := &batch{}
	type expectedPolicy struct {
		col  ColumnKey
		form int
	}
	polName := map[string]expectedPolicy{}
	for i, typ := range types {
		cols := byType[typ]
		slices.Sort(cols)
		tbl := fmt.Sprintf(expectedTable, i)
		defs := make([]string, len(cols))
		for j, c := range cols {
			defs[j] = sqlquote.Ident(c) + " " + typ
		}
		b.add(fmt.Sprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", tbl, strings.Join(defs, ", ")), nil)
		for j, c := range cols {
			key := KeyTypeOf(typ)
			// Both forms are right: PolicyExpr, and CitusPolicyExpr,
			// which Generate writes for Citus; SignedPolicyExpr too when
			// asked.
			forms := []string{policy.PolicyExpr(c, key, w.Setting), policy.CitusPolicyExpr(c, key, w.Setting)}
			if w.Signed {
				forms = append(forms, policy.SignedPolicyExpr(c, key))
			}
			for f, expr := range forms {
				name := fmt.Sprintf("e_%d_%d_%d", i, j, f)
				polName[name] = expectedPolicy{ColumnKey{c, typ}, f}
				b.add(fmt.Sprintf("CREATE POLICY %s ON %s USING (%s)", name, tbl, expr), nil)
			}
		}
	}
	if len(types) > 0 {
		var name, text string
		b.add(readExpected, each([]any{&name, &text}, func() error {
			if e, ok := polName[name]; ok {
				texts := s.expected[e.col]
				texts[e.form] = text
				s.expected[e.col] = texts
			}
			return nil
		}))
	}
	citus := s.Citus && len(w.CitusTables) > 0
	if citus {
		s.CitusTables = map[uint32]CitusTable{}
		s.Shards = map[uint32][]Shard{}
		var oid uint32
		var ct CitusTable
		b.add(citusTablesSQL, each([]any{&oid, &ct.Method, &ct.ReplModel, &ct.Column, &ct.Colocation}, func() error {
			s.CitusTables[oid] = ct
			return nil
		}), w.CitusTables)
		var sh Shard
		b.add(citusShardsSQL, each([]any{&oid, &sh.ID, &sh.OK, &sh.Result}, func() error {
			st := sh
			if st.OK {
				st.OK = parseShardResult(&st)
			}
			s.Shards[oid] = append(s.Shards[oid], st)
			return nil
		}), w.CitusTables, shardCommand)
	}
	if err := b.send(ctx, tx); err != nil {
		if len(types) > 0 {
			return fmt.Errorf("creating the expected policies on a temporary table (the role needs the TEMPORARY privilege) or reading Citus's metadata: %w", err)
		}
		return fmt.Errorf("reading Citus's metadata: %w", err)
	}
	return nil
}

// parseShardResult parses the output of shardCommand into st; false when it
// is not in that form.
func parseShardResult(st *Shard) bool {
	records := strings.Split(st.Result, "\x1e")
	flags := strings.Split(records[0], "\x1f")
	if len(flags) != 2 {
		return false
	}
	st.RLS, st.Force = flags[0] == "true", flags[1] == "true"
	st.Policies = nil
	for _, r := range records[1:] {
		f := strings.Split(r, "\x1f")
		if len(f) != 5 {
			return false
		}
		st.Policies = append(st.Policies, ShardPolicy{f[0], f[1], f[2], f[3], f[4]})
	}
	return true
}

// Forms says which policy expressions [Snapshot.Accepted] accepts.
type Forms int

// The forms of the pgtenancy policy expression.
const (
	// Stamped is [policy.PolicyExpr], what Generate writes for PostgreSQL.
	Stamped Forms = 1 << iota
	// PerRow is [policy.CitusPolicyExpr], what Generate writes for Citus
	// (and for PostgreSQL before 2026-11-26), without the transaction
	// stamp.
	PerRow
	// Signed is [policy.SignedPolicyExpr], what Generate writes for a
	// signed model; [Snapshot.Expect] prepares it only when asked.
	Signed
)

// Accepted returns the server's texts of the policy expressions of forms
// for a tenant column of key type key. It returns none when Expect did not
// prepare the column or its type is not key's.
func (s *Snapshot) Accepted(col ColumnKey, key rls.KeyType, forms Forms) []string {
	if KeyTypeOf(col.Type) != key {
		return nil
	}
	var out []string
	for i, e := range s.expected[col] {
		if e != "" && forms&(1<<i) != 0 {
			out = append(out, e)
		}
	}
	return out
}

// PolicyDiff lists how p differs from a pgtenancy policy: permissive or
// restrictive, FOR ALL, TO PUBLIC, and USING and WITH CHECK one of the
// expected expressions (an ALL policy without WITH CHECK applies USING to
// new rows, which is the same). No expected texts skips the expressions;
// the first one is named in the difference.
func PolicyDiff(p *Policy, permissive bool, expected []string) []string {
	var diff []string
	switch {
	case p.Permissive && !permissive:
		diff = append(diff, "it is PERMISSIVE, not RESTRICTIVE")
	case !p.Permissive && permissive:
		diff = append(diff, "it is RESTRICTIVE, not PERMISSIVE")
	}
	if p.Cmd != "*" {
		diff = append(diff, fmt.Sprintf("it applies to %s only, not ALL", CommandNames[p.Cmd]))
	}
	if !slices.Equal(p.Roles, []string{"public"}) {
		diff = append(diff, fmt.Sprintf("it applies to %s, not PUBLIC", strings.Join(p.Roles, ", ")))
	}
	if len(expected) > 0 {
		if !slices.Contains(expected, p.Using) {
			diff = append(diff, fmt.Sprintf("USING is %s, not %s", orNone(p.Using), expected[0]))
		}
		if p.Check != "" && !slices.Contains(expected, p.Check) {
			diff = append(diff, fmt.Sprintf("WITH CHECK is %s, not %s", p.Check, expected[0]))
		}
	}
	return diff
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
