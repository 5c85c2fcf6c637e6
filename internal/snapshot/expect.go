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
var tempTypeRE = regexp.MustCompile(`^(bigint|integer|smallint|uuid|text|character varying(\([0-9]+\))?)$`)

// TenantKeyOf returns the key type that the policies of a tenant column of
// type typ use in a model of key type key: key when the column has that
// type; for an integer column under an integer key (a bigint account_id
// beside an integer accounts.id), the column's own integer type
// (policy.Table.TenantType); 0 when the column cannot hold the key.
func TenantKeyOf(typ string, key rls.KeyType) rls.KeyType {
	switch k := KeyTypeOf(typ); {
	case k == key:
		return k
	case policy.IntegerKey(k) && policy.IntegerKey(key):
		return k
	}
	return 0
}

// KeyTypeOf maps a column type, as format_type prints it, to a key type; 0
// when none fits. Text keys accept text and varchar columns (any length):
// varchar compares with text without a cast that would stop index use.
func KeyTypeOf(typ string) rls.KeyType {
	switch {
	case typ == "bigint":
		return rls.BigInt
	case typ == "integer":
		return rls.Integer
	case typ == "smallint":
		return rls.SmallInt
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
	// Signed adds the forms of policy.SignedPolicyExpr and
	// policy.SignedSharedGuardExpr, and renders the column default
	// policy.SignedTenantDefaultExpr instead of policy.TenantDefaultExpr;
	// they need pgtenancy.tenant() installed.
	Signed bool
	// CitusTables are the tables whose Citus metadata and shards are read,
	// when the citus extension is installed.
	CitusTables []uint32
	// Policies, Constraints and Indexes are the objects whose texts a
	// snapshot read with [Options.Audit] still needs: the expressions of
	// the policies, the definitions of the constraints and indexes (and
	// the key columns of the latter), by OID.
	Policies, Constraints, Indexes []uint32
}

const policyExprsSQL = `
SELECT p.oid, coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),
    coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_catalog.pg_policy p WHERE p.oid = ANY ($1::oid[])`

const constraintDefsSQL = `
SELECT k.oid, pg_catalog.pg_get_constraintdef(k.oid) FROM pg_catalog.pg_constraint k WHERE k.oid = ANY ($1::oid[])`

const indexDefsSQL = `
SELECT i.indexrelid, pg_catalog.pg_get_indexdef(i.indexrelid),
    ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k::int, true) FROM generate_series(1, i.indnkeyatts) k ORDER BY k)
FROM pg_catalog.pg_index i WHERE i.indexrelid = ANY ($1::oid[])`

// addTexts queues the reads of the texts w asks for.
func (s *Snapshot) addTexts(b *batch, w Want) {
	if len(w.Policies)+len(w.Constraints)+len(w.Indexes) == 0 {
		return
	}
	pols := map[uint32]*Policy{}
	cons := map[uint32]*Constraint{}
	idxs := map[uint32]*Index{}
	for _, t := range s.Tables {
		for i := range t.Policies {
			pols[t.Policies[i].OID] = &t.Policies[i]
		}
		for i := range t.Constraints {
			cons[t.Constraints[i].OID] = &t.Constraints[i]
		}
		for i := range t.Indexes {
			idxs[t.Indexes[i].OID] = &t.Indexes[i]
		}
	}
	var oid uint32
	var a, c string
	var defs []string
	if len(w.Policies) > 0 {
		b.add(policyExprsSQL, each([]any{&oid, &a, &c}, func() error {
			if p := pols[oid]; p != nil {
				p.Using, p.Check = a, c
			}
			return nil
		}), w.Policies)
	}
	if len(w.Constraints) > 0 {
		b.add(constraintDefsSQL, each([]any{&oid, &a}, func() error {
			if k := cons[oid]; k != nil {
				k.Definition = a
			}
			return nil
		}), w.Constraints)
	}
	if len(w.Indexes) > 0 {
		b.add(indexDefsSQL, each([]any{&oid, &a, &defs}, func() error {
			if ix := idxs[oid]; ix != nil {
				ix.Definition, ix.KeyDefs = a, defs
			}
			return nil
		}), w.Indexes)
	}
}

// The statements of Expect's temporary tables and policies.
const (
	expectedTable = "pg_temp.pgtenancy_expected_%d"
	readExpected  = `
SELECT p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relname LIKE 'pgtenancy\_expected\_%'`
	readExpectedDefaults = `
SELECT c.relname::text, a.attname::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid)
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relname LIKE 'pgtenancy\_expected\_%'`
)

// expressions returns the expressions pgtenancy writes for a tenant
// column, whose server texts Expect obtains: the policy expressions of
// every form (policy.PolicyExpr, policy.CitusPolicyExpr, and those of
// shared rows; with signed, policy.SignedPolicyExpr and
// policy.SignedSharedGuardExpr too, which need pgtenancy.tenant()).
func expressions(col string, key rls.KeyType, setting string, signed bool) []string {
	exprs := []string{
		policy.PolicyExpr(col, key, setting),
		policy.CitusPolicyExpr(col, key, setting),
		policy.SharedReadExpr(col),
		policy.SharedGuardExpr(col, key, setting),
	}
	if signed {
		exprs = append(exprs, policy.SignedPolicyExpr(col, key), policy.SignedSharedGuardExpr(col, key))
	}
	return exprs
}

// tenantDefault is the tenant column default whose server text Expect
// obtains: policy.TenantDefaultExpr, or with w.Signed
// policy.SignedTenantDefaultExpr, what Generate writes for a signed model.
func tenantDefault(key rls.KeyType, w Want) string {
	if w.Signed {
		return policy.SignedTenantDefaultExpr(key)
	}
	return policy.TenantDefaultExpr(key, w.Setting)
}

const citusTablesSQL = `
SELECT p.logicalrelid::oid, p.partmethod::text, p.repmodel::text,
    coalesce(column_to_column_name(p.logicalrelid, p.partkey), ''), p.colocationid
FROM pg_catalog.pg_dist_partition p
WHERE p.logicalrelid = ANY ($1::oid[])`

// citusNodeSQL reads whether the node the session is on holds shards of
// the distributed tables among $1 (placements there, or shouldhaveshards
// set for it), with its host and port. Reference tables (partmethod 'n')
// have a placement on every node in the metadata, the coordinator
// included, by design: they do not count.
const citusNodeSQL = `
SELECT g.groupid,
    coalesce(bool_or(n.shouldhaveshards), false) OR EXISTS (
        SELECT FROM pg_catalog.pg_dist_placement p JOIN pg_catalog.pg_dist_shard sh USING (shardid)
            JOIN pg_catalog.pg_dist_partition dp ON dp.logicalrelid = sh.logicalrelid
        WHERE p.groupid = g.groupid AND sh.logicalrelid = ANY ($1::oid[]) AND dp.partmethod <> 'n'),
    coalesce(min(n.nodename), ''), coalesce(min(n.nodeport), 0)
FROM pg_catalog.pg_dist_local_group g LEFT JOIN pg_catalog.pg_dist_node n ON n.groupid = g.groupid AND n.noderole = 'primary'
GROUP BY g.groupid`

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
// prints the expressions pgtenancy writes for the tenant columns
// w.Columns: it creates the pgtenancy policies, and the tenant column's
// default, on temporary tables with the same column names and types, and
// reads them back. That text is exactly what pg_get_expr gives for a
// correct policy or default, whatever the server version and the column's
// type (a varchar column gets a cast, say). The role needs the TEMPORARY
// privilege on the database. With Citus, the same batch reads the
// metadata and shards of w.CitusTables. The caller rolls tx back.
func (s *Snapshot) Expect(ctx context.Context, tx pgx.Tx, w Want) error {
	s.rendered = map[ColumnKey]map[string]string{}
	s.setting = w.Setting
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
	type expectedExpr struct {
		col  ColumnKey
		expr string // as pgtenancy writes it
	}
	polName := map[string]expectedExpr{}
	tableType := map[string]string{} // temporary table -> its columns' type
	for i, typ := range types {
		cols := byType[typ]
		slices.Sort(cols)
		tbl := fmt.Sprintf(expectedTable, i)
		tableType[strings.TrimPrefix(tbl, "pg_temp.")] = typ
		key := KeyTypeOf(typ)
		defs := make([]string, len(cols))
		for j, c := range cols {
			defs[j] = sqlquote.Ident(c) + " " + typ + " DEFAULT " + tenantDefault(key, w)
		}
		b.add(fmt.Sprintf("CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP", tbl, strings.Join(defs, ", ")), nil)
		for j, c := range cols {
			for f, expr := range expressions(c, key, w.Setting, w.Signed) {
				name := fmt.Sprintf("e_%d_%d_%d", i, j, f)
				polName[name] = expectedExpr{ColumnKey{c, typ}, expr}
				b.add(fmt.Sprintf("CREATE POLICY %s ON %s USING (%s)", name, tbl, expr), nil)
			}
		}
	}
	if len(types) > 0 {
		var name, text string
		b.add(readExpected, each([]any{&name, &text}, func() error {
			if e, ok := polName[name]; ok {
				s.render(e.col, e.expr, text)
			}
			return nil
		}))
		var tbl, col string
		b.add(readExpectedDefaults, each([]any{&tbl, &col, &text}, func() error {
			if typ, ok := tableType[tbl]; ok {
				s.render(ColumnKey{col, typ}, tenantDefault(KeyTypeOf(typ), w), text)
			}
			return nil
		}))
	}
	s.addTexts(b, w)
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
		b.add(citusNodeSQL, each([]any{&s.CitusNode.Group, &s.CitusNode.HasShards, &s.CitusNode.Host, &s.CitusNode.Port}, func() error { return nil }), w.CitusTables)
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
		return fmt.Errorf("reading the catalog's texts or Citus's metadata: %w", err)
	}
	return nil
}

// render records the server's text of expr for col.
func (s *Snapshot) render(col ColumnKey, expr, text string) {
	m := s.rendered[col]
	if m == nil {
		m = map[string]string{}
		s.rendered[col] = m
	}
	m[expr] = text
}

// Rendered returns the server's text of expr, an expression pgtenancy
// writes for the tenant column col (a policy expression or the column
// default, for the setting Expect was given), or "" when Expect did not
// prepare it.
func (s *Snapshot) Rendered(col ColumnKey, expr string) string { return s.rendered[col][expr] }

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
	for i, expr := range []string{policy.PolicyExpr(col.Name, key, s.setting), policy.CitusPolicyExpr(col.Name, key, s.setting), policy.SignedPolicyExpr(col.Name, key)} {
		if e := s.Rendered(col, expr); e != "" && forms&(1<<i) != 0 {
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
