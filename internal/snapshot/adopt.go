package snapshot

import (
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/policy"
)

// What adopting an existing schema needs beyond the audit: the columns'
// defaults, the sequences that inserts use through a column default or a
// trigger, and the admin role. Read adds these queries to its batch.

// AdminRole is the role for cross-tenant work ([Options.AdminRole]).
type AdminRole struct {
	Name   string
	Exists bool
	Super  bool
	Bypass bool
	Login  bool
	// AppMember reports that the application role is a member of it (can
	// SET ROLE to it, or inherits its rights).
	AppMember bool
	// AppVia are the roles through which the application role is a
	// member of it, the one granted to the application role first: empty
	// for a direct member.
	AppVia []string
	// AppAdminOption: the application role holds ADMIN OPTION on it, so
	// it can grant it, to itself too.
	AppAdminOption bool
	// AppCreateRole: the application role has CREATEROLE, which before
	// PostgreSQL 16 lets it grant itself any role that is not a
	// superuser; ServerVersion is server_version_num.
	AppCreateRole bool
	ServerVersion int
	// AppTriggerFuncs are the trigger functions that the application
	// role owns: it can change their code, which runs with the rights of
	// whoever writes the table, the admin role included.
	AppTriggerFuncs []string
}

const defaultsSQL = `
SELECT d.adrelid, a.attname::text, pg_catalog.pg_get_expr(d.adbin, d.adrelid)
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum AND NOT a.attisdropped
JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')`

// defaultSequencesSQL lists the sequences that column defaults name
// (nextval('x'), serial columns' included): pg_depend records them.
const defaultSequencesSQL = `
SELECT DISTINCT pg_catalog.format('%I.%I', sn.nspname, s.relname), d.adrelid,
    coalesce(pg_catalog.has_sequence_privilege(r.app, s.oid, 'USAGE'), false), '', ''
FROM pg_catalog.pg_attrdef d
JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
    AND dep.refclassid = 'pg_catalog.pg_class'::regclass
JOIN pg_catalog.pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = d.adrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT ` + appOID + ` AS app) r
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')`

// triggerSequencesSQL lists the sequences that the trigger functions of
// the tables name in nextval calls, which pg_depend does not record: a
// literal name, qualified or in the table's schema (nextval('seq')), or a
// literal prefix of the sequences of the table's schema whose names start
// with it (nextval('seq_' || NEW.account_id), sequences a trigger creates
// per tenant). Names built otherwise (format, concat) are not found.
const triggerSequencesSQL = `
SELECT DISTINCT pg_catalog.format('%I.%I', sn.nspname, s.relname), t.tgrelid,
    coalesce(pg_catalog.has_sequence_privilege(r.app, s.oid, 'USAGE'), false),
    CASE WHEN m[2] IS NULL THEN '' ELSE n.nspname::text END, CASE WHEN m[2] IS NULL THEN '' ELSE m[1] END
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
CROSS JOIN LATERAL regexp_matches(p.prosrc, 'nextval\s*\(\s*''([A-Za-z0-9_.]+)''(\s*\|\|)?', 'gi') m
JOIN pg_catalog.pg_class s ON s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
CROSS JOIN (SELECT ` + appOID + ` AS app) r
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p') AND NOT t.tgisinternal
  AND CASE WHEN m[2] IS NULL
      THEN s.oid = coalesce(pg_catalog.to_regclass(m[1]),
                            pg_catalog.to_regclass(pg_catalog.quote_ident(n.nspname) || '.' || m[1]))
      ELSE sn.oid = n.oid AND pg_catalog.starts_with(s.relname::text, m[1])
  END`

const checksSQL = `
SELECT k.conrelid, k.conname::text, k.convalidated
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ` + inScope + ` AND k.contype = 'c' AND c.relkind IN ('r', 'p')
ORDER BY 1, 2`

const invalidIndexesSQL = `
SELECT i.indrelid, ic.relname::text
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ` + inScope + ` AND NOT i.indisvalid AND c.relkind IN ('r', 'p')
ORDER BY 1, 2`

const adminRoleSQL = `
SELECT a.rolsuper, a.rolbypassrls, a.rolcanlogin,
    coalesce(pg_catalog.pg_has_role(` + appOID1 + `, a.oid, 'MEMBER'), false),
    coalesce(pg_catalog.pg_has_role(` + appOID1 + `, a.oid, 'MEMBER WITH ADMIN OPTION'), false),
    coalesce((SELECT r.rolcreaterole FROM pg_catalog.pg_roles r WHERE r.rolname = $1::text), false),
    pg_catalog.current_setting('server_version_num')::int,
    ARRAY(SELECT DISTINCT pg_catalog.format('%I.%I', pn.nspname, p.proname)
          FROM pg_catalog.pg_trigger tg
          JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
          JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
          WHERE NOT tg.tgisinternal AND p.proowner = ` + appOID1 + `
          ORDER BY 1),
    coalesce((WITH RECURSIVE m (role, path) AS (
                  SELECT g.roleid, ARRAY[g.roleid] FROM pg_catalog.pg_auth_members g WHERE g.member = ` + appOID1 + `
                  UNION
                  SELECT g.roleid, m.path || g.roleid FROM pg_catalog.pg_auth_members g JOIN m ON g.member = m.role
                  WHERE g.roleid <> ALL (m.path) AND pg_catalog.cardinality(m.path) < 16)
              SELECT ARRAY(SELECT r.rolname::text FROM unnest(m.path[1:pg_catalog.cardinality(m.path) - 1]) WITH ORDINALITY AS x (oid, n)
                           JOIN pg_catalog.pg_roles r ON r.oid = x.oid ORDER BY x.n)
              FROM m WHERE m.role = a.oid ORDER BY pg_catalog.cardinality(m.path) LIMIT 1), '{}')
FROM pg_catalog.pg_roles a
WHERE a.rolname = $2::text`

// addAdoption queues the queries of this file on b.
func addAdoption(b *batch, s *Snapshot, schemas []string, opts Options) {
	var oid uint32
	var col, def string
	b.add(defaultsSQL, each([]any{&oid, &col, &def}, func() error {
		if t := s.byOID[oid]; t != nil {
			if c := t.Column(col); c != nil {
				c.Default = def
			}
		}
		return nil
	}), schemas)
	var chk Check
	b.add(checksSQL, each([]any{&oid, &chk.Name, &chk.Validated}, func() error {
		if t := s.byOID[oid]; t != nil {
			t.Checks = append(t.Checks, chk)
		}
		return nil
	}), schemas)
	var ix string
	b.add(invalidIndexesSQL, each([]any{&oid, &ix}, func() error {
		if t := s.byOID[oid]; t != nil {
			t.InvalidIndexes = append(t.InvalidIndexes, ix)
		}
		return nil
	}), schemas)
	var seq Sequence
	for _, q := range []string{defaultSequencesSQL, triggerSequencesSQL} {
		b.add(q, each([]any{&seq.Name, &seq.Table, &seq.AppUsage, &seq.PrefixSchema, &seq.Prefix}, func() error {
			s.Sequences = append(s.Sequences, seq)
			return nil
		}), schemas, opts.AppRole)
	}
	if opts.AdminRole != "" {
		s.Admin = &AdminRole{Name: opts.AdminRole}
		b.add(adminRoleSQL, each([]any{&s.Admin.Super, &s.Admin.Bypass, &s.Admin.Login, &s.Admin.AppMember,
			&s.Admin.AppAdminOption, &s.Admin.AppCreateRole, &s.Admin.ServerVersion, &s.Admin.AppTriggerFuncs, &s.Admin.AppVia}, func() error {
			s.Admin.Exists = true
			return nil
		}), opts.AppRole, opts.AdminRole)
	}
}

// finishAdoption sorts the sequences and drops duplicates (a serial
// column's sequence is also its default's).
func finishAdoption(s *Snapshot) {
	slices.SortFunc(s.Sequences, func(a, b Sequence) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return int(a.Table) - int(b.Table)
	})
	s.Sequences = slices.CompactFunc(s.Sequences, func(a, b Sequence) bool { return a.Name == b.Name && a.Table == b.Table })
}

// PolicyIs reports whether p is the policy d that pgtenancy writes for the
// tenant column col: the same name, kind, command, TO PUBLIC, and USING and
// WITH CHECK the server's text of d's (an ALL policy without WITH CHECK,
// when d checks what it admits, is the same). It compares expressions that
// [Snapshot.Expect] prepared for col; false when it did not.
func (s *Snapshot) PolicyIs(p *Policy, col ColumnKey, d policy.PolicyDef) bool {
	if p.Name != d.Name || p.Permissive != d.Permissive || CommandNames[p.Cmd] != d.Command ||
		!slices.Equal(p.Roles, []string{"public"}) {
		return false
	}
	using := s.Rendered(col, d.Using)
	if using == "" || p.Using != using {
		return false
	}
	switch {
	case d.Check == "":
		return p.Check == ""
	case p.Check == "":
		return d.Command == "ALL" && d.Check == d.Using
	}
	return p.Check == s.Rendered(col, d.Check)
}
