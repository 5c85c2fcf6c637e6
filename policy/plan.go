package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// planSequencesSQL returns the number of sequences owned by columns of the
// tables $1 (serial columns) and, schema-qualified and quoted, those on
// which the role $2 lacks USAGE.
const planSequencesSQL = `
SELECT count(*)::int,
    coalesce(array_agg(pg_catalog.format('%I.%I', n.nspname, s.relname) ORDER BY n.nspname, s.relname)
        FILTER (WHERE NOT pg_catalog.has_sequence_privilege($2::text, s.oid, 'USAGE')), '{}')
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype = 'a'
  AND d.refobjid = ANY ($1::regclass[])`

// Plan returns the SQL that would bring the database to the model, without
// applying it: what [Generate] returns for the model completed by
// [Resolve], less what is already in place.
//
//   - Unique keys and composite foreign keys that exist are left out (as
//     Generate does for a resolved model).
//   - ENABLE and FORCE ROW LEVEL SECURITY are left out where they are on.
//   - A pgtenancy policy identical to the generated one (as [Verify] compares
//     them) is left out; a missing one is created; one that differs is
//     dropped and created again, and Down restores its old definition.
//   - On a tenant table, the application role is granted those of SELECT,
//     INSERT, UPDATE, DELETE that it lacks (and Down revokes only those);
//     TRUNCATE, REFERENCES, TRIGGER are revoked when it lacks one of the
//     four or holds one of these three; SELECT on a global table is granted
//     when it lacks it; USAGE on the sequences of serial columns is granted
//     on those it lacks (and Down revokes only those).
//
// On a database that matches the model the plan is empty (Up and Down are
// ""). On one without any of it, the plan is exactly Generate's SQL. Down
// undoes Up. Plan checks nothing beyond what Generate would create: run
// [Verify] for the rest (other permissive policies, views, roles).
func Plan(ctx context.Context, conn TxQuerier, m *Model) (*Migration, error) {
	resolved, err := Resolve(ctx, conn, m)
	if err != nil {
		return nil, err
	}
	p, err := normalize(resolved)
	if err != nil {
		return nil, err
	}
	exp, err := VerifyOptions{Model: resolved}.expect()
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: plan: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	s, err := loadSnapshot(ctx, tx, exp)
	if err != nil {
		return nil, err
	}
	var seqs seqState
	if s.appRole != "" {
		tables := make([]string, len(p.tables))
		for i, t := range p.tables {
			tables[i] = t.q.sql()
		}
		if err := tx.QueryRow(ctx, planSequencesSQL, tables, s.appRole).Scan(&seqs.total, &seqs.lacking); err != nil {
			return nil, fmt.Errorf("policy: plan: reading sequence privileges: %w", err)
		}
	}
	var distributed map[qname]bool
	if p.citus && s.citus {
		if distributed, err = citusTables(ctx, tx); err != nil {
			return nil, err
		}
	}
	steps, err := p.pending(p.steps(), s, seqs, distributed)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		return &Migration{}, nil
	}
	return p.render(steps), nil
}

// pending returns the steps of Generate whose effect is not in place, with
// a policy that differs dropped before it is created again.
// seqState is what Plan knows of the sequences of serial columns of the
// tenant tables: how many there are, and those the role lacks USAGE on.
type seqState struct {
	total   int
	lacking []string
}

func (p *plan) pending(steps []step, s *snapshot, seqs seqState, distributed map[qname]bool) ([]step, error) {
	for _, pt := range p.tables {
		if s.byName[pt.q] == nil {
			return nil, fmt.Errorf("policy: plan: table %s vanished while planning", pt.q)
		}
	}
	anyTableGrant := slices.ContainsFunc(p.tables, func(pt *ptable) bool { return lacksTablePrivileges(s.byName[pt.q]) })
	var out []step
	for _, st := range steps {
		t := s.byName[st.table]
		switch st.kind {
		case stepCitusDetach, stepCitusKey, stepCitusDistribute, stepCitusReattach:
			if citusDone(st, distributed) {
				continue
			}
		case stepPlainFKDrop:
			if !slices.ContainsFunc(t.fks, func(f vfk) bool { return f.name == st.name }) {
				continue
			}
		case stepEnable:
			if t.rls {
				continue
			}
		case stepForce:
			if t.force {
				continue
			}
		case stepPolicy:
			accepted := t.accepted(p.citus)
			switch old := findPolicy(t, st.policy); {
			case old == nil:
			case len(accepted) == 0 || len(policyDiff(old, st.policy == IsolationPolicy, accepted)) > 0:
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
			if t != nil && t.has("SELECT") {
				continue
			}
		case stepSequences:
			switch {
			case len(seqs.lacking) == seqs.total && (seqs.total > 0 || anyTableGrant):
				// All of them (or none exist and the tables' privileges
				// are stated): Generate's statement, as on a fresh
				// database.
			case len(seqs.lacking) == 0:
				continue
			default:
				// Some: only those, so that Down takes back only those.
				list, role := strings.Join(seqs.lacking, ", "), sqlquote.Ident(p.appRole)
				st.up = fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s;", list, role)
				st.down = fmt.Sprintf("REVOKE USAGE ON SEQUENCE %s FROM %s;", list, role)
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// lacksTablePrivileges reports whether the app role lacks one of SELECT,
// INSERT, UPDATE, DELETE on a tenant table or holds one of TRUNCATE,
// REFERENCES, TRIGGER.
func lacksTablePrivileges(t *vtable) bool {
	return slices.ContainsFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, func(priv string) bool { return !t.has(priv) }) ||
		slices.ContainsFunc([]string{"TRUNCATE", "REFERENCES", "TRIGGER"}, t.has)
}

// oldPolicySQL recreates a policy from its catalog definition.
func oldPolicySQL(p *vpolicy, tbl string) string {
	kind := "PERMISSIVE"
	if !p.permissive {
		kind = "RESTRICTIVE"
	}
	roles := make([]string, len(p.roles))
	for i, r := range p.roles {
		if r == "public" {
			roles[i] = "PUBLIC"
		} else {
			roles[i] = sqlquote.Ident(r)
		}
	}
	sql := fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR %s TO %s", sqlquote.Ident(p.name), tbl, kind, cmdNames[p.cmd], strings.Join(roles, ", "))
	if p.qual != "" {
		sql += "\n    USING (" + p.qual + ")"
	}
	if p.check != "" {
		sql += "\n    WITH CHECK (" + p.check + ")"
	}
	return sql + ";"
}
