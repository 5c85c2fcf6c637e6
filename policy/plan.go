package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgrls/pgrls/internal/sqlquote"
)

const planSequencesSQL = `
SELECT count(*)
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype IN ('a', 'i')
  AND d.refobjid = ANY ($1::regclass[])
  AND NOT (pg_catalog.has_sequence_privilege($2::text, s.oid, 'USAGE')
           AND pg_catalog.has_sequence_privilege($2::text, s.oid, 'SELECT'))`

// Plan returns the SQL that would bring the database to the model, without
// applying it: what [Generate] returns for the model completed by
// [Resolve], less what is already in place.
//
//   - Unique keys and composite foreign keys that exist are left out (as
//     Generate does for a resolved model).
//   - ENABLE and FORCE ROW LEVEL SECURITY are left out where they are on.
//   - A pgrls policy identical to the generated one (as [Verify] compares
//     them) is left out; a missing one is created; one that differs is
//     dropped and created again, and Down restores its old definition.
//   - The application role's table privileges are stated for a table when
//     it lacks one of SELECT, INSERT, UPDATE, DELETE or holds one of
//     TRUNCATE, REFERENCES, TRIGGER; SELECT on a global table when it lacks
//     it; sequence privileges when it lacks one, or when any table's
//     privileges are stated.
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
	seqMissing := true
	if s.appRole != "" {
		tables := make([]string, len(p.tables))
		for i, t := range p.tables {
			tables[i] = t.q.sql()
		}
		var n int64
		if err := tx.QueryRow(ctx, planSequencesSQL, tables, s.appRole).Scan(&n); err != nil {
			return nil, fmt.Errorf("policy: plan: reading sequence privileges: %w", err)
		}
		seqMissing = n > 0
	}
	return p.render(s, seqMissing)
}

// render writes the plan as Generate writes its SQL, with only the
// statements whose effect is not in place.
func (p *plan) render(s *snapshot, seqMissing bool) (*Migration, error) {
	names := p.constraintNames()
	keys := section{
		up:   "Unique keys that the composite foreign keys reference.",
		down: "Unique keys that the composite foreign keys referenced.",
	}
	fks := section{
		up:   "Composite foreign keys, the tenant column first on both sides.",
		down: "Composite foreign keys.",
	}
	for _, t := range p.tables {
		for _, k := range p.keysFor(t) {
			name := sqlquote.Ident(names[keyID(t, k)])
			keys.pairs = append(keys.pairs, pair{
				up:   fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE (%s);", t.q.sql(), name, identList(k)),
				down: fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", t.q.sql(), name),
			})
		}
		for _, fk := range t.fks {
			if fk.exists {
				continue
			}
			name := sqlquote.Ident(names[fkID(t, fk)])
			up := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
				t.q.sql(), name, identList(prepend(t.column, fk.cols)),
				fk.ref.q.sql(), identList(prepend(fk.ref.column, fk.refCols)))
			switch fk.onDelete {
			case "", "NO ACTION":
			case "SET NULL", "SET DEFAULT":
				up += fmt.Sprintf(" ON DELETE %s (%s)", fk.onDelete, identList(fk.cols))
			default:
				up += " ON DELETE " + fk.onDelete
			}
			fks.pairs = append(fks.pairs, pair{
				up:   up + ";",
				down: fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", t.q.sql(), name),
			})
		}
	}

	rlsOn := section{
		up:   "Row level security, enforced for the table owner too.",
		down: "Row level security.",
	}
	policies := section{
		up:   "Tenant isolation: the permissive policy admits the current tenant's rows; the restrictive one keeps any other policy from admitting more.",
		down: "Tenant isolation policies.",
	}
	grants := section{
		up:   "Privileges of the application role.",
		down: "Privileges of the application role (what Up revoked is not granted back).",
	}
	anyTableGrant := false
	var tables []string
	for _, pt := range p.tables {
		t := s.byName[pt.q]
		if t == nil {
			return nil, fmt.Errorf("policy: plan: table %s vanished while planning", pt.q)
		}
		tbl := pt.q.sql()
		tables = append(tables, tbl)
		if !t.rls {
			rlsOn.pairs = append(rlsOn.pairs, pair{"ALTER TABLE " + tbl + " ENABLE ROW LEVEL SECURITY;", "ALTER TABLE " + tbl + " DISABLE ROW LEVEL SECURITY;"})
		}
		if !t.force {
			rlsOn.pairs = append(rlsOn.pairs, pair{"ALTER TABLE " + tbl + " FORCE ROW LEVEL SECURITY;", "ALTER TABLE " + tbl + " NO FORCE ROW LEVEL SECURITY;"})
		}
		for _, pol := range []struct {
			name       string
			permissive bool
		}{{IsolationPolicy, true}, {GuardPolicy, false}} {
			create := policySQL(t, s, pol.name, pol.permissive)
			drop := fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(pol.name), tbl)
			switch old := findPolicy(t, pol.name); {
			case old == nil:
				policies.pairs = append(policies.pairs, pair{create, drop})
			case t.expected == "" || len(policyDiff(old, pol.permissive, t.expected)) > 0:
				policies.pairs = append(policies.pairs, pair{drop + "\n" + create, drop + "\n" + oldPolicySQL(old, tbl)})
			}
		}
		if p.appRole == "" {
			continue
		}
		role := sqlquote.Ident(p.appRole)
		lacks := slices.ContainsFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, func(priv string) bool { return !t.has(priv) })
		extra := slices.ContainsFunc([]string{"TRUNCATE", "REFERENCES", "TRIGGER"}, t.has)
		if lacks || extra {
			anyTableGrant = true
			grants.pairs = append(grants.pairs,
				pair{
					up:   fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s;", tbl, role),
					down: fmt.Sprintf("REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLE %s FROM %s;", tbl, role),
				},
				pair{up: fmt.Sprintf("REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM %s, PUBLIC;", tbl, role)},
			)
		}
	}
	if p.appRole != "" {
		role := sqlquote.Ident(p.appRole)
		for _, g := range p.global {
			if t := s.byName[g]; t != nil && t.has("SELECT") {
				continue
			}
			grants.pairs = append(grants.pairs, pair{
				up:   fmt.Sprintf("GRANT SELECT ON TABLE %s TO %s;", g.sql(), role),
				down: fmt.Sprintf("REVOKE SELECT ON TABLE %s FROM %s;", g.sql(), role),
			})
		}
		if seqMissing || anyTableGrant {
			grants.pairs = append(grants.pairs, pair{
				up:   sequenceGrants(tables, "GRANT USAGE, SELECT ON SEQUENCE %s TO %I", p.appRole),
				down: sequenceGrants(tables, "REVOKE USAGE, SELECT ON SEQUENCE %s FROM %I", p.appRole),
			})
		}
	}

	sections := []section{keys, fks, rlsOn, policies, grants}
	if !slices.ContainsFunc(sections, func(s section) bool { return len(s.pairs) > 0 }) {
		return &Migration{}, nil
	}
	header := fmt.Sprintf("-- Generated by pgrls. Tenant key: %s; setting: %s.\n", p.key, p.setting)
	var up, down strings.Builder
	up.WriteString(header)
	for _, s := range sections {
		if len(s.pairs) == 0 {
			continue
		}
		fmt.Fprintf(&up, "\n-- %s\n", s.up)
		for _, pr := range s.pairs {
			up.WriteString(pr.up)
			up.WriteByte('\n')
		}
	}
	down.WriteString(header)
	for i := len(sections) - 1; i >= 0; i-- {
		s := sections[i]
		if len(s.pairs) == 0 {
			continue
		}
		fmt.Fprintf(&down, "\n-- %s\n", s.down)
		for j := len(s.pairs) - 1; j >= 0; j-- {
			if d := s.pairs[j].down; d != "" {
				down.WriteString(d)
				down.WriteByte('\n')
			}
		}
	}
	return &Migration{Up: up.String(), Down: down.String()}, nil
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
