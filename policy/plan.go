package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// Plan returns the SQL that brings a database holding e to the model: what
// [Generate] writes, with the facts of e applied and less what is already
// in place. A nil e is a database with none of it: Plan then returns
// exactly Generate's SQL. catalog.Plan reads e from a live database.
//
//   - Unique keys and composite foreign keys that e has are left out; the
//     plain foreign keys of e that a composite key replaces as they are
//     ([Constraint.Replaceable], same ON DELETE action) are dropped after
//     it, since PostgreSQL would check them first and their violations
//     would tell a writer whether a key exists in another tenant (Down
//     restores each from its fields, never from a Definition).
//   - With Citus, the keys of tenant tables without the tenant column are
//     replaced by keys with it, and the foreign keys between the model's
//     tables are dropped while the tables are distributed, then re-created
//     or replaced by composite keys (Down restores them from their
//     Definition); tables in e.Distributed are not distributed again.
//   - ENABLE and FORCE ROW LEVEL SECURITY are left out where they are on.
//   - A pgtenancy policy that is [PolicyState.Generated] is left out; a
//     missing one is created; one that differs is dropped and created
//     again, and Down restores its old definition.
//   - A tenant column's default is set when it is not [TenantDefaultExpr]
//     (Down restores another default it replaced).
//   - pgtenancy policies that a table should not have (the shared-rows
//     ones of a table without [Table.SharedRows]) are dropped.
//   - On a tenant table, the application role is granted those of SELECT,
//     INSERT, UPDATE, DELETE that it lacks (and Down revokes only those);
//     TRUNCATE, REFERENCES, TRIGGER are revoked when it lacks one of the
//     four or holds one of these three; on a global table, SELECT (and on
//     a writable one INSERT, UPDATE, DELETE) are granted when it lacks
//     them; USAGE is granted, in plain GRANT statements, on the sequences
//     of e that it lacks it on (and Down revokes only those).
//
// On a database that matches the model the plan is empty ([Migration.IsEmpty]).
// Down undoes Up. Plan checks nothing beyond what Generate would create: run
// verify for the rest (other permissive policies, views, roles).
func Plan(m *Model, e *Existing) (*Migration, error) {
	p, err := normalize(m, e)
	if err != nil {
		return nil, err
	}
	steps := p.steps()
	if e != nil {
		steps = p.pending(steps, e)
	}
	if len(steps) == 0 {
		return &Migration{}, nil
	}
	return p.render(steps), nil
}

// pending returns the steps whose effect is not in place in e, with a
// policy that differs dropped before it is created again.
func (p *spec) pending(steps []step, e *Existing) []step {
	distributed := map[qname]bool{}
	for _, d := range e.Distributed {
		distributed[splitName(p.schema, d)] = true
	}
	state := func(q qname) *TableState {
		if t := e.tableState(p.schema, q); t != nil {
			return t
		}
		return &TableState{}
	}
	lacking := e.SequencesWithoutUsage
	var out []step
	// pgtenancy's policies that a table has but should not, such as the
	// shared-rows policies of a table that no longer has shared rows:
	// dropped, and restored by Down.
	for _, t := range p.tables {
		want := p.tablePolicies(t)
		for _, old := range state(t.q).Policies {
			if !slices.Contains(PolicyNames, old.Name) || slices.ContainsFunc(want, func(d PolicyDef) bool { return d.Name == old.Name }) {
				continue
			}
			tbl := t.q.sql()
			out = append(out, step{kind: stepPolicyDrop, table: t.q, policy: old.Name,
				up:   p.ddl(fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(old.Name), tbl)),
				down: p.ddl(oldPolicySQL(&old, tbl))})
		}
	}
	for _, st := range steps {
		t := state(st.table)
		switch st.kind {
		case stepCitusDetach, stepCitusKey, stepCitusDistribute, stepCitusReattach:
			if citusDone(st, distributed) {
				continue
			}
		case stepDefault, stepCitusDefault:
			switch {
			case st.kind == stepCitusDefault && distributed[st.table]:
				continue // Citus refuses to alter a distribution column
			case t.TenantDefaultGenerated:
				continue
			case t.TenantDefault != "":
				// Another default: Down restores it.
				col := p.tables[slices.IndexFunc(p.tables, func(pt *ptable) bool { return pt.q == st.table })].column
				st.down = p.ddl(fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;", st.table.sql(), sqlquote.Ident(col), t.TenantDefault))
			}
		case stepEnable:
			if t.RLS {
				continue
			}
		case stepForce:
			if t.ForceRLS {
				continue
			}
		case stepPolicy:
			switch old := findPolicyState(t, st.policy); {
			case old == nil:
			case !old.Generated:
				if p.citus {
					// Dropped before distribution, which fails on a
					// policy with a subquery, and created here.
					out = append(out, step{kind: stepCitusPolicyDrop, table: st.table, policy: st.policy,
						up: st.down, down: p.ddl(oldPolicySQL(old, st.table.sql()))})
				} else {
					st.up, st.down = st.down+"\n"+st.up, st.down+"\n"+oldPolicySQL(old, st.table.sql())
				}
			default:
				continue
			}
		case stepGrant:
			// Only what the role lacks, so that Down takes back only that.
			missing := slices.DeleteFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, t.has)
			if len(missing) == 0 {
				continue
			}
			privs, tbl, role := strings.Join(missing, ", "), st.table.sql(), sqlquote.Ident(p.appRole)
			st.up = fmt.Sprintf("GRANT %s ON TABLE %s TO %s;", privs, tbl, role)
			st.down = fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s;", privs, tbl, role)
		case stepRevoke:
			if !lacksTablePrivileges(t) {
				continue
			}
		case stepSelect:
			want := []string{"SELECT"}
			if p.writable[st.table] {
				want = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
			}
			missing := slices.DeleteFunc(want, t.has)
			if len(missing) == 0 {
				continue
			}
			privs, tbl, role := strings.Join(missing, ", "), st.table.sql(), sqlquote.Ident(p.appRole)
			st.up = fmt.Sprintf("GRANT %s ON TABLE %s TO %s;", privs, tbl, role)
			st.down = fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s;", privs, tbl, role)
		case stepSequences:
			if len(lacking) == 0 && len(e.SequencePatterns) == 0 {
				continue
			}
			role := sqlquote.Ident(p.appRole)
			var up, down []string
			if len(lacking) > 0 {
				// Plain statements naming the sequences the role lacks
				// USAGE on, so that Down takes back only those.
				list := strings.Join(lacking, ", ")
				up = append(up, fmt.Sprintf("-- Sequences that inserts into the tenant and writable global tables use (serial columns, column defaults, triggers).\nGRANT USAGE ON SEQUENCE %s TO %s;", list, role))
				down = append(down, fmt.Sprintf("REVOKE USAGE ON SEQUENCE %s FROM %s;", list, role))
			}
			for _, pat := range e.SequencePatterns {
				up = append(up, sequencePatternGrant(pat, p.appRole))
				down = append(down, "-- Per-tenant sequences keep their USAGE.")
			}
			st.up, st.down = strings.Join(up, "\n"), strings.Join(down, "\n")
		}
		out = append(out, st)
	}
	return out
}

// sequencePatternGrant grants the application role USAGE on the sequences
// of pat that exist when the migration runs (one per tenant, created by a
// trigger: their names differ between databases). The values are quoted
// literals; format quotes the names.
func sequencePatternGrant(pat SequencePattern, role string) string {
	body := fmt.Sprintf(`
DECLARE
    seq regclass;
BEGIN
    FOR seq IN SELECT c.oid::regclass FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND n.nspname = %s AND pg_catalog.starts_with(c.relname::text, %s)
    LOOP
        EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %%s TO %%I', seq, %s);
    END LOOP;
END
`, sqlquote.Literal(pat.Schema), sqlquote.Literal(pat.Prefix), sqlquote.Literal(role))
	return "-- Per-tenant sequences that a trigger names by a prefix: those that exist when this runs; later ones need ALTER DEFAULT PRIVILEGES for the role that creates them.\nDO " + dollarQuote(body) + ";"
}

// has reports whether the application role holds priv on the whole table.
func (t *TableState) has(priv string) bool { return slices.Contains(t.Privileges, priv) }

// lacksTablePrivileges reports whether the app role lacks one of SELECT,
// INSERT, UPDATE, DELETE on a tenant table or holds one of TRUNCATE,
// REFERENCES, TRIGGER.
func lacksTablePrivileges(t *TableState) bool {
	return slices.ContainsFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, func(priv string) bool { return !t.has(priv) }) ||
		slices.ContainsFunc([]string{"TRUNCATE", "REFERENCES", "TRIGGER"}, t.has)
}

func findPolicyState(t *TableState, name string) *PolicyState {
	for i := range t.Policies {
		if t.Policies[i].Name == name {
			return &t.Policies[i]
		}
	}
	return nil
}

// oldPolicySQL recreates a policy from its catalog definition.
func oldPolicySQL(p *PolicyState, tbl string) string {
	kind := "PERMISSIVE"
	if !p.Permissive {
		kind = "RESTRICTIVE"
	}
	roles := make([]string, len(p.Roles))
	for i, r := range p.Roles {
		if r == "public" {
			roles[i] = "PUBLIC"
		} else {
			roles[i] = sqlquote.Ident(r)
		}
	}
	sql := fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR %s TO %s", sqlquote.Ident(p.Name), tbl, kind, p.Command, strings.Join(roles, ", "))
	if p.Using != "" {
		sql += "\n    USING (" + p.Using + ")"
	}
	if p.WithCheck != "" {
		sql += "\n    WITH CHECK (" + p.WithCheck + ")"
	}
	return sql + ";"
}
