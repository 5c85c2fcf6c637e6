package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// checker collects findings.
type checker struct {
	s   *snapshot
	out []Finding
}

func (c *checker) add(sev Severity, code Code, kind, object, table, fix, format string, args ...any) {
	c.out = append(c.out, Finding{
		Severity: sev, Code: code, Kind: kind, Object: object, Table: table,
		Message: fmt.Sprintf(format, args...), Fix: fix,
	})
}

// role returns the quoted application role for fixes, or a placeholder.
func (c *checker) role() string {
	if c.s.exp.appRole == "" {
		return "<app_role>"
	}
	return sqlquote.Ident(c.s.exp.appRole)
}

// runChecks turns a snapshot into findings. It reads nothing: every check
// works on what loadSnapshot read.
func runChecks(s *snapshot) []Finding {
	c := &checker{s: s}
	c.checkRole()
	for _, name := range s.absent {
		c.add(SeverityError, CodeTableMissing, "table", name, name, "",
			"the model declares this tenant table but it does not exist (or is a partition)")
	}
	for _, t := range s.tenants {
		c.checkTable(t)
	}
	c.checkUnlisted()
	c.checkPartitions()
	c.checkViews()
	c.checkFunctions()
	c.checkLibrary()
	if s.citusSet != nil {
		c.out = append(c.out, citusFindings(s.citusSet, s.tenants, c.role())...)
	}
	return c.out
}

func (c *checker) checkRole() {
	r := c.s.role
	switch {
	case r == nil:
		c.add(SeverityWarning, CodeNoAppRole, "role", "", "", "",
			"no application role given (VerifyOptions.AppRole or Model.AppRole): the role and privilege checks were skipped, and views, materialized views and functions are reported as if it could use them")
		return
	case !r.exists:
		c.add(SeverityError, CodeAppRoleMissing, "role", r.name, "",
			fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS;", sqlquote.Ident(r.name)),
			"the application role does not exist")
		return
	}
	role := sqlquote.Ident(r.name)
	if r.super {
		c.add(SeverityError, CodeAppRoleSuperuser, "role", r.name, "", "ALTER ROLE "+role+" NOSUPERUSER;",
			"the application role is a superuser, which ignores every policy")
	}
	if r.bypass {
		c.add(SeverityError, CodeAppRoleBypassRLS, "role", r.name, "", "ALTER ROLE "+role+" NOBYPASSRLS;",
			"the application role has BYPASSRLS, which ignores every policy")
	}
	for _, m := range r.canBecome {
		c.add(SeverityError, CodeAppRoleBypassRLS, "role", r.name, "", fmt.Sprintf("REVOKE %s FROM %s;", sqlquote.Ident(m), role),
			"the application role is a member of %q, a superuser or BYPASSRLS role, and can SET ROLE to it", m)
	}
}

func (c *checker) checkTable(t *vtable) {
	name, tbl := t.q.String(), t.q.sql()
	if c.s.appRole != "" && t.appOwns {
		if t.owner == c.s.appRole {
			c.add(SeverityError, CodeAppRoleOwnsTable, "table", name, name,
				fmt.Sprintf("ALTER TABLE %s OWNER TO <migration_role>;", tbl),
				"the application role owns the table: an owner can turn row level security off")
		} else {
			c.add(SeverityError, CodeAppRoleOwnsTable, "table", name, name,
				fmt.Sprintf("REVOKE %s FROM %s;", sqlquote.Ident(t.owner), c.role()),
				"the application role is a member of the table's owner %q: an owner can turn row level security off", t.owner)
		}
	}

	colOK := false
	switch {
	case t.column == "":
		c.add(SeverityError, CodeTenantColumn, "table", name, name, "",
			"row level security is on but the tenant column is unknown: give a model or a tenant column")
	case t.colType == "":
		c.add(SeverityError, CodeTenantColumn, "column", name+"."+t.column, name, "",
			"the tenant column %q does not exist", t.column)
	case t.key == 0 || keyTypeOf(t.colType) != t.key:
		c.add(SeverityError, CodeTenantColumnType, "column", name+"."+t.column, name, "",
			"the tenant column has type %s; the tenant key type is %s", t.colType, t.key)
	default:
		colOK = true
	}

	if !t.rls {
		c.add(SeverityError, CodeRLSDisabled, "table", name, name, "ALTER TABLE "+tbl+" ENABLE ROW LEVEL SECURITY;",
			"row level security is not enabled: every policy is inert")
	}
	if !t.force {
		c.add(SeverityError, CodeRLSNotForced, "table", name, name, "ALTER TABLE "+tbl+" FORCE ROW LEVEL SECURITY;",
			"row level security is not forced: the table owner bypasses every policy")
	}

	guardOK := c.checkPolicy(t, GuardPolicy, false, colOK)
	c.checkPolicy(t, IsolationPolicy, true, colOK)
	for _, p := range t.policies {
		if !p.permissive || p.name == IsolationPolicy || p.name == GuardPolicy {
			continue
		}
		sev, why := SeverityError, "and no restrictive pgtenancy guard limits it"
		if guardOK {
			sev, why = SeverityWarning, "though the restrictive pgtenancy guard still limits every row to the current tenant"
		}
		c.add(sev, CodePermissivePolicy, "policy", p.name, name,
			fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(p.name), tbl),
			"permissive policy %q is OR'ed with the tenant policy and can admit other tenants' rows, %s", p.name, why)
	}

	if colOK {
		c.checkKeys(t)
	}
	if c.s.appRole != "" {
		for _, p := range []struct {
			priv string
			code Code
			sev  Severity
			why  string
		}{
			{"TRUNCATE", CodeTruncateGranted, SeverityError, "TRUNCATE ignores row level security and empties every tenant's rows"},
			{"REFERENCES", CodeReferencesGranted, SeverityError, "REFERENCES lets foreign keys probe every tenant's keys, which row level security does not cover"},
			{"TRIGGER", CodeTriggerGranted, SeverityWarning, "TRIGGER lets the role attach code that runs on every tenant's writes"},
		} {
			if t.hasSome(p.priv) {
				c.add(p.sev, p.code, "table", name, name,
					fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s, PUBLIC;", p.priv, tbl, c.role()),
					"the application role holds %s (directly, through PUBLIC or a membership): %s", p.priv, p.why)
			}
		}
	}
}

// policySQL returns the CREATE POLICY statement that Generate writes.
func policySQL(t *vtable, s *snapshot, name string, permissive bool) string {
	kind := "RESTRICTIVE"
	if permissive {
		kind = "PERMISSIVE"
	}
	expr := PolicyExpr(t.column, t.key, s.exp.setting)
	if s.citus {
		expr = CitusPolicyExpr(t.column, t.key, s.exp.setting)
	}
	return fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR ALL TO PUBLIC\n    USING (%s)\n    WITH CHECK (%s);",
		sqlquote.Ident(name), t.q.sql(), kind, expr, expr)
}

func findPolicy(t *vtable, name string) *vpolicy {
	for i := range t.policies {
		if t.policies[i].name == name {
			return &t.policies[i]
		}
	}
	return nil
}

// policyDiff lists how p differs from the pgtenancy policy: permissive or
// restrictive, FOR ALL, TO PUBLIC, and USING and WITH CHECK the expected
// expression (an ALL policy without WITH CHECK applies USING to new rows,
// which is the same). No expected texts skips the expressions; the first
// one is named in the difference.
func policyDiff(p *vpolicy, permissive bool, expected []string) []string {
	var diff []string
	switch {
	case p.permissive && !permissive:
		diff = append(diff, "it is PERMISSIVE, not RESTRICTIVE")
	case !p.permissive && permissive:
		diff = append(diff, "it is RESTRICTIVE, not PERMISSIVE")
	}
	if p.cmd != "*" {
		diff = append(diff, fmt.Sprintf("it applies to %s only, not ALL", cmdNames[p.cmd]))
	}
	if !slices.Equal(p.roles, []string{"public"}) {
		diff = append(diff, fmt.Sprintf("it applies to %s, not PUBLIC", strings.Join(p.roles, ", ")))
	}
	if len(expected) > 0 {
		if !slices.Contains(expected, p.qual) {
			diff = append(diff, fmt.Sprintf("USING is %s, not %s", orNone(p.qual), expected[0]))
		}
		if p.check != "" && !slices.Contains(expected, p.check) {
			diff = append(diff, fmt.Sprintf("WITH CHECK is %s, not %s", p.check, expected[0]))
		}
	}
	return diff
}

var cmdNames = map[string]string{"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// checkPolicy checks one pgtenancy policy and reports whether it is there as
// generated.
func (c *checker) checkPolicy(t *vtable, name string, permissive, colOK bool) bool {
	tname := t.q.String()
	create := ""
	if colOK {
		create = policySQL(t, c.s, name, permissive)
	}
	p := findPolicy(t, name)
	if p == nil {
		if permissive {
			c.add(SeverityError, CodePolicyMissing, "policy", name, tname, create,
				"the tenant isolation policy is missing: with row level security on, no row is visible; with it off, every row is")
		} else {
			c.add(SeverityWarning, CodeGuardMissing, "policy", name, tname, create,
				"the restrictive tenant guard is missing: any other permissive policy widens access")
		}
		return false
	}
	var expected []string
	if colOK {
		expected = t.accepted(c.s.citus)
	}
	diff := policyDiff(p, permissive, expected)
	if len(diff) == 0 {
		return colOK && len(expected) > 0
	}
	fix := ""
	if create != "" {
		fix = fmt.Sprintf("DROP POLICY %s ON %s;\n%s", sqlquote.Ident(name), t.q.sql(), create)
	}
	c.add(SeverityError, CodePolicyDrift, "policy", name, tname, fix,
		"the policy differs from what pgtenancy generates: %s", strings.Join(diff, "; "))
	return false
}

func (c *checker) checkKeys(t *vtable) {
	name := t.q.String()
	indexed := false
	for _, ix := range t.indexes {
		if len(ix.cols) > 0 && ix.cols[0] == t.column {
			indexed = true
		}
		if t.isRoot || !ix.unique || slices.Contains(ix.cols, t.column) {
			continue
		}
		cols := prepend(t.column, ix.cols)
		fix := ""
		if !slices.Contains(ix.cols, "") {
			if ix.constraint != "" {
				kind := "UNIQUE"
				if ix.primary {
					kind = "PRIMARY KEY"
				}
				fix = fmt.Sprintf("-- make foreign keys that reference it composite first\nALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s);",
					t.q.sql(), sqlquote.Ident(ix.constraint), sqlquote.Ident(ix.constraint), kind, identList(cols))
			} else {
				fix = fmt.Sprintf("DROP INDEX %s;\nCREATE UNIQUE INDEX %s ON %s (%s);",
					sqlquote.Qualified(t.q.schema, ix.name), sqlquote.Ident(ix.name), t.q.sql(), identList(cols))
			}
		}
		kind, obj := "index", ix.name
		if ix.constraint != "" {
			kind, obj = "constraint", ix.constraint
		}
		c.add(SeverityWarning, CodeKeyWithoutTenant, kind, obj, name, fix,
			"unique key (%s) does not include the tenant column %q: a write that collides reveals that another tenant's row exists",
			strings.Join(ix.cols, ", "), t.column)
	}
	if !indexed {
		c.add(SeverityWarning, CodeTenantNotIndexed, "table", name, name,
			fmt.Sprintf("CREATE INDEX ON %s (%s);", t.q.sql(), sqlquote.Ident(t.column)),
			"no index leads with the tenant column %q: every policy check scans the table", t.column)
	}

	for _, fk := range t.fks {
		ref := c.s.tables[fk.ref]
		if ref == nil || !ref.tenant || ref.column == "" || ref.colType == "" {
			continue
		}
		if safe, beside := fkCovered(t, ref, fk); safe {
			if beside {
				c.add(SeverityWarning, CodeFKBesideComposite, "constraint", fk.name, name,
					fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", t.q.sql(), sqlquote.Ident(fk.name)),
					"foreign key (%s) -> %s (%s) is redundant beside the composite key that pairs the tenant columns, and PostgreSQL checks it first: its violation tells a writer whether the id exists in another tenant",
					strings.Join(fk.cols, ", "), ref.q, strings.Join(fk.refCols, ", "))
			}
			continue
		}
		fix := ""
		if !ref.isRoot && !slices.Contains(fk.cols, t.column) && !slices.Contains(fk.refCols, ref.column) {
			refKey := prepend(ref.column, fk.refCols)
			var b strings.Builder
			if !slices.ContainsFunc(ref.indexes, func(ix vindex) bool {
				return ix.unique && !ix.partial && slices.Equal(ix.cols, refKey)
			}) {
				fmt.Fprintf(&b, "ALTER TABLE %s ADD UNIQUE (%s);\n", ref.q.sql(), identList(refKey))
			}
			fmt.Fprintf(&b, "-- keep the key's ON DELETE and ON UPDATE actions\nALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s);",
				t.q.sql(), sqlquote.Ident(fk.name), sqlquote.Ident(fk.name), identList(prepend(t.column, fk.cols)),
				ref.q.sql(), identList(refKey))
			fix = b.String()
		}
		c.add(SeverityError, CodeFKWithoutTenant, "constraint", fk.name, name, fix,
			"foreign key (%s) -> %s (%s) does not pair the tenant columns (%s -> %s): key checks bypass row level security, so a row can reference another tenant's row",
			strings.Join(fk.cols, ", "), ref.q, strings.Join(fk.refCols, ", "), t.column, ref.column)
	}
}

// fkCovered reports whether a foreign key from t to ref cannot cross
// tenants: it pairs the tenant columns itself, or (beside) another foreign
// key between the same tables pairs them along with all of its column pairs
// (a plain key left next to the composite one that pgtenancy added).
func fkCovered(t, ref *vtable, fk vfk) (safe, beside bool) {
	pairs := func(f vfk) map[[2]string]bool {
		m := make(map[[2]string]bool, len(f.cols))
		for i := range f.cols {
			m[[2]string{f.cols[i], f.refCols[i]}] = true
		}
		return m
	}
	tenantPair := [2]string{t.column, ref.column}
	if pairs(fk)[tenantPair] {
		return true, false
	}
	for _, g := range t.fks {
		if g.ref != fk.ref {
			continue
		}
		gp := pairs(g)
		if !gp[tenantPair] {
			continue
		}
		covered := true
		for i := range fk.cols {
			if !gp[[2]string{fk.cols[i], fk.refCols[i]}] {
				covered = false
			}
		}
		if covered {
			return true, true
		}
	}
	return false, false
}

// checkUnlisted reports tables with a tenant column that the model leaves
// out.
func (c *checker) checkUnlisted() {
	e := c.s.exp
	if e.plan == nil {
		return
	}
	for _, t := range c.s.order {
		if t.partition || e.declared[t.q] {
			continue
		}
		col := ""
		for _, n := range e.unlisted {
			if _, ok := t.cols[n]; ok {
				col = n
				break
			}
		}
		if col == "" {
			continue
		}
		name := t.q.String()
		if t.rls && t.force {
			c.add(SeverityWarning, CodeTableNotInModel, "table", name, name, "",
				"the table has the tenant column %q but is not in the model; it has row level security of its own, which pgtenancy does not check: add it to the model", col)
		} else {
			c.add(SeverityError, CodeTableNotInModel, "table", name, name, "",
				"the table has the tenant column %q but is not in the model, and nothing isolates its rows: add it to the model's tables, then generate", col)
		}
	}
}

// checkPartitions reports partitions of tenant tables that the application
// role can query directly: the parent's policies do not apply then.
func (c *checker) checkPartitions() {
	if c.s.appRole == "" {
		return
	}
	for _, t := range c.s.order {
		root := c.s.tables[t.partRoot]
		if !t.partition || root == nil || !root.tenant {
			continue
		}
		reach := slices.ContainsFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, t.hasSome)
		if !reach || (t.rls && t.force && findPolicy(t, IsolationPolicy) != nil) {
			continue
		}
		name := t.q.String()
		c.add(SeverityError, CodePartitionExposed, "table", name, root.q.String(),
			fmt.Sprintf("REVOKE ALL ON TABLE %s FROM %s, PUBLIC;", t.q.sql(), c.role()),
			"the application role can query this partition of %s directly, where the parent's policies do not apply", root.q)
	}
}

func (c *checker) tenantNames(oids []uint32) []string {
	var names []string
	for _, o := range oids {
		if t := c.s.tables[o]; t != nil && t.tenant {
			names = append(names, t.q.String())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (c *checker) checkViews() {
	for _, v := range c.s.views {
		name := v.q.String()
		reads := strings.Join(c.tenantNames(v.reads), ", ")
		if v.matview {
			if v.appSelect {
				c.add(SeverityError, CodeMatviewReadable, "materialized view", name, "",
					fmt.Sprintf("REVOKE SELECT ON %s FROM %s, PUBLIC;", v.q.sql(), c.role()),
					"the application role can read this materialized view of %s, which holds every tenant's rows (materialized views have no row level security)", reads)
			}
			continue
		}
		if securityInvoker(v.options) {
			continue
		}
		sev, who := SeverityError, "the application role can read it"
		if !v.appSelect {
			sev, who = SeverityWarning, "the application role cannot read it, other roles may"
		}
		c.add(sev, CodeViewNotInvoker, "view", name, "",
			fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true);", v.q.sql()),
			"the view reads %s with its owner's rights (no security_invoker), so the owner's exemption from row level security applies; %s", reads, who)
	}
}

// securityInvoker reports whether reloptions turn security_invoker on.
func securityInvoker(options []string) bool {
	on := false
	for _, o := range options {
		k, v, _ := strings.Cut(o, "=")
		if strings.EqualFold(k, "security_invoker") {
			on = pgBool(v)
		}
	}
	return on
}

// pgBool parses a boolean option as PostgreSQL does (parse_bool): true,
// yes, on, 1 and their unique prefixes, case-insensitively.
func pgBool(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return false
	case strings.HasPrefix("true", s), strings.HasPrefix("yes", s):
		return true
	case s == "on", s == "1":
		return true
	}
	return false
}

func (c *checker) checkFunctions() {
	for _, f := range c.s.funcs {
		touched := c.tenantNames(f.deps)
		src := strings.ToLower(f.src)
		for _, t := range c.s.tenants {
			if mentions(src, strings.ToLower(t.q.name)) {
				touched = append(touched, t.q.String())
			}
		}
		slices.Sort(touched)
		touched = slices.Compact(touched)
		fix := fmt.Sprintf("REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC, %s;", f.signature, c.role())
		if len(touched) > 0 {
			c.add(SeverityError, CodeSecurityDefiner, "function", f.signature, "", fix,
				"SECURITY DEFINER function runs as %q, which may bypass row level security, mentions %s, and the application role can execute it",
				f.owner, strings.Join(touched, ", "))
		} else {
			c.add(SeverityWarning, CodeSecurityDefiner, "function", f.signature, "", fix,
				"SECURITY DEFINER function runs as %q and the application role can execute it; its body names no tenant table", f.owner)
		}
	}
}

// mentions reports whether src holds word as an identifier (not inside a
// longer one).
func mentions(src, word string) bool {
	isIdent := func(b byte) bool {
		return b == '_' || b == '$' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
	}
	for i := 0; ; {
		j := strings.Index(src[i:], word)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(word)
		if (j == 0 || !isIdent(src[j-1])) && (end == len(src) || !isIdent(src[end])) {
			return true
		}
		i = j + 1
	}
}

// setTenantBody is the body of pgtenancy.set_tenant that the migrations package
// installs (library/001_set_tenant.sql) for a setting. A test in
// migrations keeps the two in step.
func setTenantBody(setting string) string {
	return `
BEGIN
    IF tenant IS NULL OR tenant = '' THEN
        RAISE EXCEPTION 'pgtenancy: tenant must not be null or empty' USING ERRCODE = '22023';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL ` + setting + ` = %L', tenant);
END
`
}

func (c *checker) checkLibrary() {
	const name = "pgtenancy.set_tenant(text)"
	sev := SeverityWarning
	need := "the pool sets the tenant with set_config on plain PostgreSQL, so this matters for Citus and for code that calls it"
	if c.s.citus {
		sev, need = SeverityError, "with Citus the pool sets the tenant through it"
	}
	lib := c.s.library
	if lib == nil {
		c.add(sev, CodeLibraryMissing, "function", name, "", "",
			"the library function is not installed (run pgtenancy install, or apply migrations.LibrarySQL); %s", need)
		return
	}
	body := setTenantBody(c.s.exp.setting)
	var diff []string
	if strings.Join(strings.Fields(lib.src), " ") != strings.Join(strings.Fields(body), " ") {
		diff = append(diff, fmt.Sprintf("its body is not the one pgtenancy installs for setting %s", c.s.exp.setting))
	}
	if lib.secdef {
		diff = append(diff, "it is SECURITY DEFINER")
	}
	if lib.language != "plpgsql" {
		diff = append(diff, "its language is "+lib.language)
	}
	if len(diff) > 0 {
		c.add(SeverityError, CodeLibraryAltered, "function", name, "",
			"CREATE OR REPLACE FUNCTION pgtenancy.set_tenant(tenant text) RETURNS void\nLANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER\nAS $pgtenancy$"+body+"$pgtenancy$;",
			"the library function was altered: %s", strings.Join(diff, "; "))
	}
	if c.s.appRole != "" && !lib.canExec {
		c.add(sev, CodeLibraryNotExec, "function", name, "",
			fmt.Sprintf("GRANT USAGE ON SCHEMA pgtenancy TO %s;\nGRANT EXECUTE ON FUNCTION pgtenancy.set_tenant(text) TO %s;", c.role(), c.role()),
			"the application role cannot execute the library function; %s", need)
	}
}
