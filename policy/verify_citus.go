package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// citusSnapshot is what Verify reads from Citus's metadata.
type citusSnapshot struct {
	tables    map[uint32]citusTable // the Citus tables among the tenant tables
	shards    map[uint32][]shardState
	propagate string // citus.propagate_set_commands for the application role
	source    string // where that value comes from
}

type citusTable struct {
	method     string // pg_dist_partition.partmethod: h(ash), n(one), a(ppend), r(ange)
	replModel  string // repmodel: t for reference tables
	column     string // distribution column, "" when none
	colocation uint32
}

type shardState struct {
	shard    int64
	ok       bool   // the command ran on the shard
	result   string // its output, or the error
	rls      bool
	force    bool
	policies []shardPolicy
}

// shardPolicy is one policy as the shard check prints it.
type shardPolicy struct {
	name, permissive, cmd, qual, check string
}

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

const citusPropagateSQL = `
SELECT s.setdatabase <> 0, s.setrole <> 0, cfg
FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) cfg
WHERE s.setrole IN (0, coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1::text), 0))
  AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
  AND cfg LIKE 'citus.propagate\_set\_commands=%'
UNION ALL
SELECT false, false, 'default=' || coalesce((SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'citus.propagate_set_commands'), 'none')`

func loadCitus(ctx context.Context, tx pgx.Tx, s *snapshot) (*citusSnapshot, error) {
	wrap := func(what string, err error) error {
		return fmt.Errorf("policy: verify: reading Citus %s: %w", what, err)
	}
	cs := &citusSnapshot{tables: map[uint32]citusTable{}, shards: map[uint32][]shardState{}}
	oids := make([]uint32, len(s.tenants))
	for i, t := range s.tenants {
		oids[i] = t.oid
	}
	var oid uint32
	var ct citusTable
	rows, err := tx.Query(ctx, citusTablesSQL, oids)
	if err != nil {
		return nil, wrap("tables", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&oid, &ct.method, &ct.replModel, &ct.column, &ct.colocation}, func() error {
		cs.tables[oid] = ct
		return nil
	})
	if err != nil {
		return nil, wrap("tables", err)
	}

	var sh shardState
	rows, err = tx.Query(ctx, citusShardsSQL, oids, shardCommand)
	if err != nil {
		return nil, wrap("shards", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&oid, &sh.shard, &sh.ok, &sh.result}, func() error {
		st := sh
		if st.ok {
			st.ok = parseShardResult(&st)
		}
		cs.shards[oid] = append(cs.shards[oid], st)
		return nil
	})
	if err != nil {
		return nil, wrap("shards", err)
	}

	var settings []roleSetting
	var rs roleSetting
	rows, err = tx.Query(ctx, citusPropagateSQL, s.appRole)
	if err != nil {
		return nil, wrap("settings", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&rs.perDatabase, &rs.perRole, &rs.config}, func() error {
		settings = append(settings, rs)
		return nil
	})
	if err != nil {
		return nil, wrap("settings", err)
	}
	cs.propagate, cs.source = pickSetting(settings)
	return cs, nil
}

// parseShardResult parses the output of shardCommand into st; false when it
// is not in that form.
func parseShardResult(st *shardState) bool {
	records := strings.Split(st.result, "\x1e")
	flags := strings.Split(records[0], "\x1f")
	if len(flags) != 2 {
		return false
	}
	st.rls, st.force = flags[0] == "true", flags[1] == "true"
	st.policies = nil
	for _, r := range records[1:] {
		f := strings.Split(r, "\x1f")
		if len(f) != 5 {
			return false
		}
		st.policies = append(st.policies, shardPolicy{f[0], f[1], f[2], f[3], f[4]})
	}
	return true
}

// roleSetting is one citus.propagate_set_commands entry of
// pg_db_role_setting, or the server's value (config "default=...").
type roleSetting struct {
	perDatabase, perRole bool
	config               string
}

// pickSetting applies PostgreSQL's precedence to the settings the role
// gets at login: database and role, then role, then database, then the
// server's value.
func pickSetting(settings []roleSetting) (value, source string) {
	rank := func(r roleSetting) (int, string) {
		switch {
		case r.perDatabase && r.perRole:
			return 0, "ALTER ROLE ... IN DATABASE ... SET"
		case r.perRole:
			return 1, "ALTER ROLE ... SET"
		case r.perDatabase:
			return 2, "ALTER DATABASE ... SET"
		}
		return 3, "the server's configuration"
	}
	best := 4
	for _, r := range settings {
		n, src := rank(r)
		if n >= best {
			continue
		}
		_, v, ok := strings.Cut(r.config, "=")
		if !ok {
			continue
		}
		best, value, source = n, strings.Trim(strings.ToLower(v), `"' `), src
	}
	return value, source
}

// citusFindings checks the tenant tables against Citus's metadata: each one
// distributed by its tenant column, all co-located with the root (or the
// first table), and every shard with RLS forced and the coordinator's
// policies.
func citusFindings(cs *citusSnapshot, tenants []*vtable, role string) []Finding {
	var out []Finding
	add := func(sev Severity, code Code, t *vtable, fix, format string, args ...any) {
		name := t.q.String()
		out = append(out, Finding{Severity: sev, Code: code, Kind: "table", Object: name, Table: name,
			Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	// The co-location group all tenant tables should share: the root's.
	var group uint32
	var groupOf *vtable
	for _, t := range tenants {
		ct, ok := cs.tables[t.oid]
		if ok && ct.method == "h" && (groupOf == nil || t.isRoot && !groupOf.isRoot) {
			group, groupOf = ct.colocation, t
		}
	}
	for _, t := range tenants {
		ct, ok := cs.tables[t.oid]
		lit := sqlquote.Literal(t.q.sql())
		switch {
		case !ok:
			fix := ""
			if t.column != "" {
				fix = fmt.Sprintf("SELECT create_distributed_table(%s, %s);", lit, sqlquote.Literal(t.column))
				if groupOf != nil && groupOf != t {
					fix = fmt.Sprintf("SELECT create_distributed_table(%s, %s, colocate_with => %s);", lit, sqlquote.Literal(t.column), sqlquote.Literal(groupOf.q.sql()))
				}
			}
			add(SeverityError, CodeCitusNotDistrib, t, fix,
				"the tenant table is not distributed: it stays on the coordinator, apart from the tenant's other rows")
			continue
		case ct.method != "h":
			what := "is a reference table, copied to every node"
			if ct.replModel != "t" {
				what = fmt.Sprintf("is not hash-distributed (method %s)", ct.method)
			}
			add(SeverityError, CodeCitusNotDistrib, t, "",
				"the tenant table %s, not distributed by its tenant column", what)
			continue
		case t.column != "" && ct.column != t.column:
			add(SeverityError, CodeCitusDistColumn, t, "",
				"the tenant table is distributed by %q, not by its tenant column %q: composite keys and tenant-local joins need the tenant column", ct.column, t.column)
		}
		if groupOf != nil && ct.colocation != group {
			add(SeverityError, CodeCitusNotColocated, t,
				fmt.Sprintf("SELECT update_distributed_table_colocation(%s, colocate_with => %s);", lit, sqlquote.Literal(groupOf.q.sql())),
				"the tenant table is not co-located with %s: foreign keys and joins between them cannot stay on one node", groupOf.q)
		}
		var bad, flipped []string
		for _, sh := range cs.shards[t.oid] {
			switch why := shardProblem(sh, t); {
			case why == guardFlipped:
				flipped = append(flipped, fmt.Sprint(sh.shard))
			case why != "":
				bad = append(bad, fmt.Sprintf("%d (%s)", sh.shard, why))
			}
		}
		if len(bad) > 0 {
			n := len(bad)
			add(SeverityError, CodeCitusShard, t, "",
				"%d shard(s) do not enforce the coordinator's row level security, so queries routed to them see every tenant's rows: %s; recreate the RLS statements with citus.enable_ddl_propagation on",
				n, firstFive(bad))
		}
		if len(flipped) > 0 {
			// Citus 13.2 creates every policy on the shards as PERMISSIVE:
			// the guard then ORs with the isolation policy, which has the
			// same expression, so the tenant's rows are still all a
			// query sees, unless another permissive policy is there.
			sev, what := SeverityWarning, "no other permissive policy is on the table, so isolation holds, but one added later would widen access on the shards"
			if slices.ContainsFunc(t.policies, func(p vpolicy) bool { return p.permissive && p.name != IsolationPolicy && p.name != GuardPolicy }) {
				sev, what = SeverityError, "another permissive policy is on the table, and on the shards nothing restricts it to the tenant's rows"
			}
			add(sev, CodeCitusShard, t, "",
				"on %d shard(s) the restrictive %s policy is permissive (Citus creates policies on shards without AS RESTRICTIVE): %s; %s",
				len(flipped), GuardPolicy, what, firstFive(flipped))
		}
	}
	if len(tenants) > 0 && cs.propagate != "local" {
		val := cs.propagate
		if val == "" {
			val = "none"
		}
		out = append(out, Finding{Severity: SeverityWarning, Code: CodeCitusPropagateSet, Kind: "setting",
			Object:  "citus.propagate_set_commands",
			Message: fmt.Sprintf("citus.propagate_set_commands is %q for the application role (from %s): SET LOCAL of the tenant does not reach the shards, so queries see no rows, unless the pool's Citus option sets it per transaction", val, cs.source),
			Fix:     fmt.Sprintf("ALTER ROLE %s SET citus.propagate_set_commands = 'local';", role)})
	}
	return out
}

// firstFive sorts items and joins the first five.
func firstFive(items []string) string {
	slices.Sort(items)
	if len(items) > 5 {
		items = append(items[:5], "...")
	}
	return strings.Join(items, ", ")
}

// guardFlipped is what shardProblem returns when the only difference is
// that the guard policy, restrictive on the coordinator, is permissive on
// the shard.
const guardFlipped = "the guard policy is permissive"

// shardProblem says what is wrong with one shard of t, or "" when it
// enforces the coordinator's RLS flags and policies.
func shardProblem(sh shardState, t *vtable) string {
	switch {
	case !sh.ok:
		return "not checked: " + sh.result
	case !sh.rls:
		return "row level security off"
	case !sh.force:
		return "not forced"
	}
	want := make([]shardPolicy, len(t.policies))
	for i, p := range t.policies {
		want[i] = shardPolicy{p.name, fmt.Sprint(p.permissive), p.cmd, p.qual, p.check}
	}
	if slices.Equal(want, sh.policies) {
		return ""
	}
	for i := range want {
		if want[i].name == GuardPolicy && want[i].permissive == "false" {
			want[i].permissive = "true"
		}
	}
	if slices.Equal(want, sh.policies) {
		return guardFlipped
	}
	return "policies differ from the coordinator's"
}
