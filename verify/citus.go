package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// pickSetting applies PostgreSQL's precedence to the values of a setting
// that the application role gets at login: database and role, then role,
// then database, then all roles everywhere, then the server's value.
func pickSetting(settings []snapshot.RoleSetting, name string) (value, source string) {
	rank := func(r snapshot.RoleSetting) (int, string) {
		switch {
		case r.Default:
			return 4, "the server's configuration"
		case r.PerDatabase && r.PerRole:
			return 0, "ALTER ROLE ... IN DATABASE ... SET"
		case r.PerRole:
			return 1, "ALTER ROLE ... SET"
		case r.PerDatabase:
			return 2, "ALTER DATABASE ... SET"
		}
		return 3, "ALTER ROLE ALL SET"
	}
	best := 5
	for _, r := range settings {
		n, src := rank(r)
		if r.Name != name || n >= best {
			continue
		}
		best, value, source = n, strings.Trim(strings.ToLower(r.Value), `"' `), src
	}
	return value, source
}

// citusFindings checks the tenant tables against Citus's metadata: each one
// distributed by its tenant column, all co-located with the root (or the
// first table), and every shard with RLS forced and the coordinator's
// policies.
func citusFindings(s *state, role string) []Finding {
	tenants := s.tenants
	var out []Finding
	add := func(sev Severity, code Code, t *table, fix, format string, args ...any) {
		name := t.Name.String()
		out = append(out, Finding{Severity: sev, Code: code, Kind: "table", Object: name, Table: name,
			Message: fmt.Sprintf(format, args...), Fix: fix})
	}
	// The co-location group all tenant tables should share: the root's.
	var group uint32
	var groupOf *table
	for _, t := range tenants {
		ct, ok := s.snap.CitusTables[t.OID]
		if ok && ct.Method == "h" && (groupOf == nil || t.isRoot && !groupOf.isRoot) {
			group, groupOf = ct.Colocation, t
		}
	}
	for _, t := range tenants {
		ct, ok := s.snap.CitusTables[t.OID]
		lit := sqlquote.Literal(t.Name.SQL())
		switch {
		case !ok:
			fix := ""
			if t.column != "" {
				fix = fmt.Sprintf("SELECT create_distributed_table(%s, %s);", lit, sqlquote.Literal(t.column))
				if groupOf != nil && groupOf != t {
					fix = fmt.Sprintf("SELECT create_distributed_table(%s, %s, colocate_with => %s);", lit, sqlquote.Literal(t.column), sqlquote.Literal(groupOf.Name.SQL()))
				}
			}
			add(SeverityError, CodeCitusNotDistrib, t, fix,
				"the tenant table is not distributed: it stays on the coordinator, apart from the tenant's other rows")
			continue
		case ct.Method != "h":
			what := "is a reference table, copied to every node"
			if ct.ReplModel != "t" {
				what = fmt.Sprintf("is not hash-distributed (method %s)", ct.Method)
			}
			add(SeverityError, CodeCitusNotDistrib, t, "",
				"the tenant table %s, not distributed by its tenant column", what)
			continue
		case t.column != "" && ct.Column != t.column:
			add(SeverityError, CodeCitusDistColumn, t, "",
				"the tenant table is distributed by %q, not by its tenant column %q: composite keys and tenant-local joins need the tenant column", ct.Column, t.column)
		}
		if groupOf != nil && ct.Colocation != group {
			add(SeverityError, CodeCitusNotColocated, t,
				fmt.Sprintf("SELECT update_distributed_table_colocation(%s, colocate_with => %s);", lit, sqlquote.Literal(groupOf.Name.SQL())),
				"the tenant table is not co-located with %s: foreign keys and joins between them cannot stay on one node", groupOf.Name)
		}
		var bad, flipped []string
		for _, sh := range s.snap.Shards[t.OID] {
			switch why := shardProblem(sh, t); {
			case why == guardFlipped:
				flipped = append(flipped, fmt.Sprint(sh.ID))
			case why != "":
				bad = append(bad, fmt.Sprintf("%d (%s)", sh.ID, why))
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
			if slices.ContainsFunc(t.Policies, func(p snapshot.Policy) bool {
				return p.Permissive && p.Name != policy.IsolationPolicy && p.Name != policy.GuardPolicy
			}) {
				sev, what = SeverityError, "another permissive policy is on the table, and on the shards nothing restricts it to the tenant's rows"
			}
			add(sev, CodeCitusShard, t, "",
				"on %d shard(s) the restrictive %s policy is permissive (Citus creates policies on shards without AS RESTRICTIVE): %s; %s",
				len(flipped), policy.GuardPolicy, what, firstFive(flipped))
		}
	}
	if node := s.snap.CitusNode; len(tenants) > 0 && node.HasShards {
		where, fix := "the coordinator", ""
		if node.Group != 0 {
			where = fmt.Sprintf("a worker (group %d)", node.Group)
		}
		if node.Host != "" && node.Group == 0 {
			fix = fmt.Sprintf("SELECT citus_set_node_property(%s, %d, 'shouldhaveshards', false);\nSELECT citus_drain_node(%s, %d);",
				sqlquote.Literal(node.Host), node.Port, sqlquote.Literal(node.Host), node.Port)
		}
		out = append(out, Finding{Severity: SeverityWarning, Code: CodeCitusNodeHasShards, Kind: "node",
			Object:  nodeName(node),
			Message: fmt.Sprintf("verify is connected to %s, which holds shards of tenant tables (or has shouldhaveshards set): the Citus policies carry no transaction stamp, and a tenant that SQL leaves at session level on this node reaches the shards it holds in the same backend; connect the application to a coordinator without shards (docs/citus.md)", where),
			Fix:     fix})
	}
	propagate, source := pickSetting(s.snap.RoleSettings, "citus.propagate_set_commands")
	if len(tenants) > 0 && propagate != "local" {
		val := propagate
		if val == "" {
			val = "none"
		}
		out = append(out, Finding{Severity: SeverityWarning, Code: CodeCitusPropagateSet, Kind: "setting",
			Object:  "citus.propagate_set_commands",
			Message: fmt.Sprintf("citus.propagate_set_commands is %q for the application role (from %s): SET LOCAL of the tenant does not reach the shards, so queries see no rows, unless the pool's Citus option sets it per transaction", val, source),
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
func shardProblem(sh snapshot.Shard, t *table) string {
	switch {
	case !sh.OK:
		return "not checked: " + sh.Result
	case !sh.RLS:
		return "row level security off"
	case !sh.Force:
		return "not forced"
	}
	want := make([]snapshot.ShardPolicy, len(t.Policies))
	for i, p := range t.Policies {
		want[i] = snapshot.ShardPolicy{Name: p.Name, Permissive: fmt.Sprint(p.Permissive), Cmd: p.Cmd, Using: p.Using, Check: p.Check}
	}
	if slices.Equal(want, sh.Policies) {
		return ""
	}
	for i := range want {
		if want[i].Name == policy.GuardPolicy && want[i].Permissive == "false" {
			want[i].Permissive = "true"
		}
	}
	if slices.Equal(want, sh.Policies) {
		return guardFlipped
	}
	return "policies differ from the coordinator's"
}

// nodeName names a Citus node: host:port, or its group when pg_dist_node
// does not list it.
func nodeName(n snapshot.CitusNode) string {
	if n.Host == "" {
		return fmt.Sprintf("group %d", n.Group)
	}
	return fmt.Sprintf("%s:%d", n.Host, n.Port)
}
