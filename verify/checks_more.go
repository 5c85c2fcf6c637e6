package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/nodetree"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// checkGetters reports the IMMUTABLE functions through which policies of
// tenant tables read the tenant: the planner may evaluate such a call once,
// when it plans a statement, and a cached plan then serves the next tenant
// the rows of the first (pgx #2053).
func (c *checker) checkGetters() {
	tables := map[string][]string{}
	for _, t := range c.s.tenants {
		for _, p := range t.pols {
			for _, v := range []*verdict{p.using, p.check} {
				if v == nil {
					continue
				}
				for _, f := range v.immutable {
					if !slices.Contains(tables[f], t.Name.String()) {
						tables[f] = append(tables[f], t.Name.String())
					}
				}
			}
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range tables {
			if !yield(k) {
				return
			}
		}
	}) {
		fix := ""
		if f := c.s.res.named[name]; f != nil {
			fix = fmt.Sprintf("ALTER FUNCTION %s() STABLE;", sqlquote.Qualified(f.Schema, f.Name))
		}
		ts := tables[name]
		slices.Sort(ts)
		c.add(SeverityError, CodeTenantGetterImmutable, "function", name, "", fix,
			"the policies of %s read the tenant through %s, which is IMMUTABLE: the planner may fold it into a constant when it plans a statement, and a cached plan then shows one tenant's rows to the next; declare it STABLE",
			firstFive(ts), name)
	}
}

// tenantSchemas returns the schemas that hold tenant tables.
func (s *state) tenantSchemas() map[string]bool {
	out := map[string]bool{}
	for _, t := range s.tenants {
		out[t.Name.Schema] = true
	}
	return out
}

// usableBy reports whether a grantee's privileges reach the application
// role, or without one one of the roles judged; PUBLIC's reach everyone.
func (s *state) usableBy(grantee uint32) bool {
	if grantee == 0 {
		return true
	}
	if s.app != nil {
		return s.app.usage[grantee]
	}
	return slices.ContainsFunc(s.grantees, func(u *subject) bool { return u.usage[grantee] })
}

// checkDefaultPrivileges reports default privileges that grant the tables
// or sequences created later, in a schema that holds tenant tables (or in
// every schema), to PUBLIC or the application role: the next table is
// readable before anyone turns row level security on for it.
func (c *checker) checkDefaultPrivileges() {
	schemas := c.s.tenantSchemas()
	if len(schemas) == 0 {
		return
	}
	for _, d := range c.s.audit.DefaultACLs {
		if d.Schema != "" && !schemas[d.Schema] || !c.s.usableBy(d.Grantee) {
			continue
		}
		objs, kind := "TABLES", "tables"
		if d.ObjType == "S" {
			objs, kind = "SEQUENCES", "sequences"
		}
		where, in := "every schema", ""
		if d.Schema != "" {
			where, in = "schema "+d.Schema, " IN SCHEMA "+sqlquote.Ident(d.Schema)
		}
		grantee := sqlquote.Ident(d.GranteeStr)
		who := "role " + d.GranteeStr
		if d.Grantee == 0 {
			grantee, who = "PUBLIC", "PUBLIC"
		}
		sev := SeverityWarning
		tail := "make sure each new table gets row level security in the migration that creates it"
		if d.Grantee == 0 && d.ObjType == "r" {
			sev, tail = SeverityError, "every role can read the next table created there, tenant data or not, before anyone turns row level security on"
		}
		c.add(sev, CodeDefaultPrivileges, "default privileges", fmt.Sprintf("%s on %s in %s to %s", d.Owner, kind, where, who), "",
			fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s%s REVOKE ALL ON %s FROM %s;", sqlquote.Ident(d.Owner), in, objs, grantee),
			"the %s that %s creates in %s are granted %s to %s by default: %s", kind, d.Owner, where, strings.Join(d.Privs, ", "), who, tail)
	}
}

// checkForeign reports foreign tables the application role can read and
// user mappings it can use: foreign data has no row level security, and a
// mapping may log in to the remote server as a role that bypasses it.
func (c *checker) checkForeign() {
	s := c.s
	readable := map[string]bool{}
	for _, ft := range s.audit.ForeignTables {
		var who []string
		switch {
		case s.app != nil:
			if ft.AppSelect {
				who = append(who, s.app.label())
			}
		default:
			for _, it := range ft.ACL {
				if it.Priv == "SELECT" && it.Grantee != ft.OwnerOID && s.usableBy(it.Grantee) {
					who = append(who, granteeName(s, it.Grantee))
				}
			}
		}
		if len(who) == 0 {
			continue
		}
		readable[ft.Server] = true
		c.add(SeverityWarning, CodeForeignTable, "foreign table", ft.Name.String(), "",
			fmt.Sprintf("REVOKE SELECT ON %s FROM %s;", ft.Name.SQL(), s.revokeFrom(nil)),
			"%s can read this foreign table of server %s, which row level security does not cover: verify cannot tell which tenants' rows it returns", strings.Join(uniq(who), " and "), ft.Server)
	}
	for _, m := range s.audit.UserMappings {
		applies := m.AppApplies
		usage := m.AppUsage
		if s.app == nil {
			applies = m.UserOID == 0 || s.usableBy(m.UserOID)
			usage = m.PublicUsage
		}
		if !applies || !usage && !readable[m.Server] {
			continue
		}
		who := "the application role"
		if s.app == nil {
			who = "the roles judged"
		}
		c.add(SeverityWarning, CodeUserMapping, "user mapping", m.User+" on "+m.Server, "",
			fmt.Sprintf("DROP USER MAPPING FOR %s SERVER %s;", userName(m.User), sqlquote.Ident(m.Server)),
			"%s can reach foreign server %s through the user mapping for %s: queries there run as the mapped remote user, outside this database's row level security", who, m.Server, m.User)
	}
}

func userName(u string) string {
	if u == "public" {
		return "PUBLIC"
	}
	return sqlquote.Ident(u)
}

func granteeName(s *state, oid uint32) string {
	if oid == 0 {
		return "PUBLIC"
	}
	if r := s.audit.Roles[oid]; r != nil {
		return "role " + r.Name
	}
	return fmt.Sprintf("role %d", oid)
}

// checkLargeObjects reports large objects the application role (without
// one, PUBLIC) can read: they have no row level security.
func (c *checker) checkLargeObjects() {
	lo := c.s.audit.LargeObjects
	if lo.Compat && lo.Total > 0 {
		c.add(SeverityWarning, CodeLargeObjects, "large object", "lo_compat_privileges", "",
			"ALTER SYSTEM SET lo_compat_privileges = off;\nSELECT pg_catalog.pg_reload_conf();",
			"lo_compat_privileges is on, so every role reads all %d large objects, which row level security does not cover", lo.Total)
		return
	}
	if lo.Readable == 0 {
		return
	}
	who, from := "PUBLIC", "PUBLIC"
	if c.s.app != nil {
		who, from = "the application role", "PUBLIC, "+c.role()
	}
	var sample []string
	for _, o := range lo.Sample {
		sample = append(sample, fmt.Sprint(o))
	}
	c.add(SeverityWarning, CodeLargeObjects, "large object", strings.Join(sample, ", "), "",
		fmt.Sprintf("DO $pgtenancy$DECLARE o oid; BEGIN\n    FOR o IN SELECT oid FROM pg_catalog.pg_largeobject_metadata LOOP\n        EXECUTE pg_catalog.format('REVOKE ALL ON LARGE OBJECT %%s FROM %s', o);\n    END LOOP;\nEND$pgtenancy$;", strings.ReplaceAll(from, "'", "''")),
		"%s can read %d large object(s) (such as %s), which row level security does not cover", who, lo.Readable, strings.Join(sample, ", "))
}

// tenantSettingNames returns the tenant settings: those the policies read
// (a JSON claim counts as its setting) and pgtenancy's.
func (s *state) tenantSettingNames() []string {
	var out []string
	for _, st := range s.settings {
		if st == pseudoSetting {
			continue
		}
		base, _, _ := strings.Cut(st, "->>")
		out = append(out, base)
	}
	if s.exp.model != nil || s.exp.settingGiven || s.snap.Library != nil {
		out = append(out, s.exp.setting)
	}
	return uniq(out)
}

// checkSettingDefaults reports a default value of a tenant setting for the
// application role (or, without one, any role) or the database, or in the
// server's configuration: a connection that sets no tenant then reads that
// tenant's rows instead of none.
func (c *checker) checkSettingDefaults() {
	s := c.s
	names := s.tenantSettingNames()
	if len(names) == 0 {
		return
	}
	for _, rs := range s.audit.CustomSettings {
		if !slices.Contains(names, rs.Name) {
			continue
		}
		if s.app != nil && rs.Role != "" && rs.Role != s.app.name {
			continue
		}
		setting := settingIdent(rs.Name)
		var fix, where string
		db := sqlquote.Ident(s.audit.Database)
		switch {
		case rs.PerRole && rs.PerDatabase:
			fix, where = fmt.Sprintf("ALTER ROLE %s IN DATABASE %s RESET %s;", sqlquote.Ident(rs.Role), db, setting), "ALTER ROLE "+rs.Role+" IN DATABASE ... SET"
		case rs.PerRole:
			fix, where = fmt.Sprintf("ALTER ROLE %s RESET %s;", sqlquote.Ident(rs.Role), setting), "ALTER ROLE "+rs.Role+" SET"
		case rs.PerDatabase:
			fix, where = fmt.Sprintf("ALTER DATABASE %s RESET %s;", db, setting), "ALTER DATABASE ... SET"
		default:
			fix, where = fmt.Sprintf("ALTER ROLE ALL RESET %s;", setting), "ALTER ROLE ALL SET"
		}
		c.add(SeverityError, CodeTenantSettingDefault, "setting", rs.Name, "", fix,
			"the tenant setting %s defaults to %q (%s): a connection that sets no tenant reads that tenant's rows instead of none", rs.Name, rs.Value, where)
	}
	for _, ss := range s.audit.ServerSettings {
		if slices.Contains(names, ss.Name) && ss.Value != "" {
			c.add(SeverityError, CodeTenantSettingDefault, "setting", ss.Name, "", "",
				"the tenant setting %s defaults to %q in the server's configuration (%s): a connection that sets no tenant reads that tenant's rows instead of none; remove it there", ss.Name, ss.Value, ss.Source)
		}
	}
}

// settingIdent writes a setting name for SET and RESET.
func settingIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = sqlquote.Ident(p)
	}
	return strings.Join(parts, ".")
}

// checkStamp warns about pgtenancy's policies on plain PostgreSQL in the
// older form, policy.CitusPolicyExpr's, without the transaction stamp:
// they still limit rows to the tenant, but to a tenant left at session
// level too. A drifted policy is already an error.
func (c *checker) checkStamp(t *table) {
	for _, p := range t.pols {
		if !isPgtenancyPolicy(p.Name) || p.using == nil || p.using.cls != clsTenant {
			continue
		}
		if c.s.signed != nil && c.s.signed.installed && c.s.callsSigned(p.Policy) {
			// pgtenancy.tenant() checks the transaction stamp itself;
			// checkSigned reports it altered, with the right fix.
			continue
		}
		if slices.ContainsFunc(c.out, func(f Finding) bool {
			return f.Code == CodePolicyDrift && f.Object == p.Name && f.Table == t.Name.String()
		}) {
			continue
		}
		tree := c.s.res.tree(p.UsingTree)
		if !tree.ok || stamped(tree.v) {
			continue
		}
		setting := c.s.exp.setting
		if !c.s.exp.settingGiven && len(p.using.settings) == 1 {
			setting = p.using.settings[0]
		}
		expr := policy.PolicyExpr(t.column, t.key, setting)
		fix := fmt.Sprintf("ALTER POLICY %s ON %s\n    USING (%s)\n    WITH CHECK (%s);", sqlquote.Ident(p.Name), t.Name.SQL(), expr, expr)
		c.add(SeverityWarning, CodePolicyUnstamped, "policy", p.Name, t.Name.String(), fix,
			"the policy has pgtenancy's older form, without the transaction stamp (%s): a tenant that SQL leaves at session level on a pooled connection is still honoured in later transactions; generate the policies again (pgtenancy plan) to get the stamped form",
			rls.XactSetting(setting))
	}
}

// stamped reports whether a policy expression compares a setting whose
// name ends in _xact, pgtenancy's transaction stamp, with something.
func stamped(v nodetree.Value) bool {
	found := false
	nodetree.Walk(v, func(n nodetree.Value) bool {
		if s, ok := constText(n); ok && strings.HasSuffix(s, "_xact") {
			found = true
		}
		return !found
	})
	return found
}
