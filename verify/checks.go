package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// checker collects findings.
type checker struct {
	s   *state
	out []Finding
}

func (c *checker) add(sev Severity, code Code, kind, object, table, fix, format string, args ...any) {
	c.out = append(c.out, Finding{
		Severity: sev, Code: code, Kind: kind, Object: object, Table: table,
		Message: fmt.Sprintf(format, args...), Fix: fix,
	})
}

// role returns the quoted application role for fixes, or a placeholder.
func (c *checker) role() string { return c.s.quoteRole() }

// runChecks turns the state into findings. It reads nothing: every check
// works on what Run read.
func runChecks(s *state) []Finding {
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
	c.checkSigned()
	if s.snap.Citus {
		c.out = append(c.out, citusFindings(s, c.role())...)
	}
	return c.out
}

func (c *checker) checkRole() {
	r := c.s.snap.Role
	switch {
	case r == nil:
		c.add(SeverityWarning, CodeNoAppRole, "role", "", "", "",
			"no application role given (VerifyOptions.AppRole or Model.AppRole): the role and privilege checks were skipped, and views, materialized views and functions are reported as if it could use them")
		return
	case !r.Exists:
		c.add(SeverityError, CodeAppRoleMissing, "role", r.Name, "",
			fmt.Sprintf("CREATE ROLE %s LOGIN NOSUPERUSER NOBYPASSRLS;", sqlquote.Ident(r.Name)),
			"the application role does not exist")
		return
	}
	role := sqlquote.Ident(r.Name)
	if r.Super {
		c.add(SeverityError, CodeAppRoleSuperuser, "role", r.Name, "", "ALTER ROLE "+role+" NOSUPERUSER;",
			"the application role is a superuser, which ignores every policy")
	}
	if r.Bypass {
		c.add(SeverityError, CodeAppRoleBypassRLS, "role", r.Name, "", "ALTER ROLE "+role+" NOBYPASSRLS;",
			"the application role has BYPASSRLS, which ignores every policy")
	}
	for _, m := range r.CanBecome {
		c.add(SeverityError, CodeAppRoleBypassRLS, "role", r.Name, "", fmt.Sprintf("REVOKE %s FROM %s;", sqlquote.Ident(m), role),
			"the application role is a member of %q, a superuser or BYPASSRLS role, and can SET ROLE to it", m)
	}
}

func (c *checker) checkTable(t *table) {
	name, tbl := t.Name.String(), t.Name.SQL()
	if c.s.snap.AppRole != "" && t.AppOwns {
		if t.Owner == c.s.snap.AppRole {
			c.add(SeverityError, CodeAppRoleOwnsTable, "table", name, name,
				fmt.Sprintf("ALTER TABLE %s OWNER TO <migration_role>;", tbl),
				"the application role owns the table: an owner can turn row level security off")
		} else {
			c.add(SeverityError, CodeAppRoleOwnsTable, "table", name, name,
				fmt.Sprintf("REVOKE %s FROM %s;", sqlquote.Ident(t.Owner), c.role()),
				"the application role is a member of the table's owner %q: an owner can turn row level security off", t.Owner)
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
	case t.key == 0 || snapshot.KeyTypeOf(t.colType) != t.key:
		c.add(SeverityError, CodeTenantColumnType, "column", name+"."+t.column, name, "",
			"the tenant column has type %s; the tenant key type is %s", t.colType, t.key)
	default:
		colOK = true
	}

	if !t.RLS {
		c.add(SeverityError, CodeRLSDisabled, "table", name, name, "ALTER TABLE "+tbl+" ENABLE ROW LEVEL SECURITY;",
			"row level security is not enabled: every policy is inert")
	}
	if !t.Force {
		c.add(SeverityError, CodeRLSNotForced, "table", name, name, "ALTER TABLE "+tbl+" FORCE ROW LEVEL SECURITY;",
			"row level security is not forced: the table owner bypasses every policy")
	}

	guardOK := c.checkPolicy(t, policy.GuardPolicy, false, colOK)
	c.checkPolicy(t, policy.IsolationPolicy, true, colOK)
	for _, p := range t.Policies {
		if !p.Permissive || p.Name == policy.IsolationPolicy || p.Name == policy.GuardPolicy {
			continue
		}
		sev, why := SeverityError, "and no restrictive pgtenancy guard limits it"
		if guardOK {
			sev, why = SeverityWarning, "though the restrictive pgtenancy guard still limits every row to the current tenant"
		}
		c.add(sev, CodePermissivePolicy, "policy", p.Name, name,
			fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(p.Name), tbl),
			"permissive policy %q is OR'ed with the tenant policy and can admit other tenants' rows, %s", p.Name, why)
	}

	if colOK {
		c.checkKeys(t)
	}
	if c.s.snap.AppRole != "" {
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
			if t.HasSome(p.priv) {
				c.add(p.sev, p.code, "table", name, name,
					fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s, PUBLIC;", p.priv, tbl, c.role()),
					"the application role holds %s (directly, through PUBLIC or a membership): %s", p.priv, p.why)
			}
		}
	}
}

// policySQL returns the CREATE POLICY statement that Generate writes.
func policySQL(t *table, s *state, name string, permissive bool) string {
	kind := "RESTRICTIVE"
	if permissive {
		kind = "PERMISSIVE"
	}
	expr := policy.PolicyExpr(t.column, t.key, s.exp.setting)
	if s.snap.Citus {
		expr = policy.CitusPolicyExpr(t.column, t.key, s.exp.setting)
	}
	return fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR ALL TO PUBLIC\n    USING (%s)\n    WITH CHECK (%s);",
		sqlquote.Ident(name), t.Name.SQL(), kind, expr, expr)
}

// checkPolicy checks one pgtenancy policy and reports whether it is there as
// generated.
func (c *checker) checkPolicy(t *table, name string, permissive, colOK bool) bool {
	tname := t.Name.String()
	create := ""
	if colOK {
		create = policySQL(t, c.s, name, permissive)
	}
	p := t.Policy(name)
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
		expected = c.s.accepted(t)
	}
	diff := snapshot.PolicyDiff(p, permissive, expected)
	if len(diff) == 0 {
		return colOK && len(expected) > 0
	}
	fix := ""
	if create != "" {
		fix = fmt.Sprintf("DROP POLICY %s ON %s;\n%s", sqlquote.Ident(name), t.Name.SQL(), create)
	}
	c.add(SeverityError, CodePolicyDrift, "policy", name, tname, fix,
		"the policy differs from what pgtenancy generates: %s", strings.Join(diff, "; "))
	return false
}

func (c *checker) checkKeys(t *table) {
	name := t.Name.String()
	indexed := false
	for _, ix := range t.Indexes {
		if len(ix.Columns) > 0 && ix.Columns[0] == t.column {
			indexed = true
		}
		if t.isRoot || !ix.Unique || slices.Contains(ix.Columns, t.column) {
			continue
		}
		cols := prepend(t.column, ix.Columns)
		fix := ""
		if !slices.Contains(ix.Columns, "") {
			if ix.Constraint != "" {
				kind := "UNIQUE"
				if ix.Primary {
					kind = "PRIMARY KEY"
				}
				fix = fmt.Sprintf("-- make foreign keys that reference it composite first\nALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s);",
					t.Name.SQL(), sqlquote.Ident(ix.Constraint), sqlquote.Ident(ix.Constraint), kind, identList(cols))
			} else {
				fix = fmt.Sprintf("DROP INDEX %s;\nCREATE UNIQUE INDEX %s ON %s (%s);",
					sqlquote.Qualified(t.Name.Schema, ix.Name), sqlquote.Ident(ix.Name), t.Name.SQL(), identList(cols))
			}
		}
		kind, obj := "index", ix.Name
		if ix.Constraint != "" {
			kind, obj = "constraint", ix.Constraint
		}
		c.add(SeverityWarning, CodeKeyWithoutTenant, kind, obj, name, fix,
			"unique key (%s) does not include the tenant column %q: a write that collides reveals that another tenant's row exists",
			strings.Join(ix.Columns, ", "), t.column)
	}
	if !indexed {
		c.add(SeverityWarning, CodeTenantNotIndexed, "table", name, name,
			fmt.Sprintf("CREATE INDEX ON %s (%s);", t.Name.SQL(), sqlquote.Ident(t.column)),
			"no index leads with the tenant column %q: every policy check scans the table", t.column)
	}

	for _, fk := range foreignKeys(t) {
		ref := c.s.tables[fk.Ref]
		if ref == nil || !ref.tenant || ref.column == "" || ref.colType == "" {
			continue
		}
		if safe, beside := fkCovered(t, ref, fk); safe {
			if beside {
				c.add(SeverityWarning, CodeFKBesideComposite, "constraint", fk.Name, name,
					fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", t.Name.SQL(), sqlquote.Ident(fk.Name)),
					"foreign key (%s) -> %s (%s) is redundant beside the composite key that pairs the tenant columns, and PostgreSQL checks it first: its violation tells a writer whether the id exists in another tenant",
					strings.Join(fk.Columns, ", "), ref.Name, strings.Join(fk.RefCols, ", "))
			}
			continue
		}
		fix := ""
		if !ref.isRoot && !slices.Contains(fk.Columns, t.column) && !slices.Contains(fk.RefCols, ref.column) {
			refKey := prepend(ref.column, fk.RefCols)
			var b strings.Builder
			if !slices.ContainsFunc(ref.Indexes, func(ix snapshot.Index) bool {
				return ix.Unique && !ix.Partial && slices.Equal(ix.Columns, refKey)
			}) {
				fmt.Fprintf(&b, "ALTER TABLE %s ADD UNIQUE (%s);\n", ref.Name.SQL(), identList(refKey))
			}
			fmt.Fprintf(&b, "-- keep the key's ON DELETE and ON UPDATE actions\nALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s);",
				t.Name.SQL(), sqlquote.Ident(fk.Name), sqlquote.Ident(fk.Name), identList(prepend(t.column, fk.Columns)),
				ref.Name.SQL(), identList(refKey))
			fix = b.String()
		}
		c.add(SeverityError, CodeFKWithoutTenant, "constraint", fk.Name, name, fix,
			"foreign key (%s) -> %s (%s) does not pair the tenant columns (%s -> %s): key checks bypass row level security, so a row can reference another tenant's row",
			strings.Join(fk.Columns, ", "), ref.Name, strings.Join(fk.RefCols, ", "), t.column, ref.column)
	}
}

// foreignKeys returns the foreign keys of t.
func foreignKeys(t *table) []snapshot.Constraint {
	var out []snapshot.Constraint
	for _, c := range t.Constraints {
		if c.Type == 'f' {
			out = append(out, c)
		}
	}
	return out
}

// fkCovered reports whether a foreign key from t to ref cannot cross
// tenants: it pairs the tenant columns itself, or (beside) another foreign
// key between the same tables pairs them along with all of its column pairs
// (a plain key left next to the composite one that pgtenancy added).
func fkCovered(t, ref *table, fk snapshot.Constraint) (safe, beside bool) {
	pairs := func(f snapshot.Constraint) map[[2]string]bool {
		m := make(map[[2]string]bool, len(f.Columns))
		for i := range f.Columns {
			m[[2]string{f.Columns[i], f.RefCols[i]}] = true
		}
		return m
	}
	tenantPair := [2]string{t.column, ref.column}
	if pairs(fk)[tenantPair] {
		return true, false
	}
	for _, g := range foreignKeys(t) {
		if g.Ref != fk.Ref {
			continue
		}
		gp := pairs(g)
		if !gp[tenantPair] {
			continue
		}
		covered := true
		for i := range fk.Columns {
			if !gp[[2]string{fk.Columns[i], fk.RefCols[i]}] {
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
	if e.model == nil {
		return
	}
	for _, t := range c.s.order {
		if t.Partition || e.declared[t.Name] {
			continue
		}
		col := ""
		for _, n := range e.unlisted {
			if t.Column(n) != nil {
				col = n
				break
			}
		}
		if col == "" {
			continue
		}
		name := t.Name.String()
		if t.RLS && t.Force {
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
	if c.s.snap.AppRole == "" {
		return
	}
	for _, t := range c.s.order {
		root := c.s.tables[t.PartRoot]
		if !t.Partition || root == nil || !root.tenant {
			continue
		}
		reach := slices.ContainsFunc([]string{"SELECT", "INSERT", "UPDATE", "DELETE"}, t.HasSome)
		if !reach || (t.RLS && t.Force && t.Policy(policy.IsolationPolicy) != nil) {
			continue
		}
		name := t.Name.String()
		c.add(SeverityError, CodePartitionExposed, "table", name, root.Name.String(),
			fmt.Sprintf("REVOKE ALL ON TABLE %s FROM %s, PUBLIC;", t.Name.SQL(), c.role()),
			"the application role can query this partition of %s directly, where the parent's policies do not apply", root.Name)
	}
}

func (c *checker) tenantNames(oids []uint32) []string {
	var names []string
	for _, o := range oids {
		if t := c.s.tables[o]; t != nil && t.tenant {
			names = append(names, t.Name.String())
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (c *checker) checkViews() {
	for _, v := range c.s.snap.Views {
		name := v.Name.String()
		tenants := c.tenantNames(v.Reads)
		if len(tenants) == 0 {
			continue // reads no tenant table
		}
		reads := strings.Join(tenants, ", ")
		if v.Matview {
			if v.AppSelect {
				c.add(SeverityError, CodeMatviewReadable, "materialized view", name, "",
					fmt.Sprintf("REVOKE SELECT ON %s FROM %s, PUBLIC;", v.Name.SQL(), c.role()),
					"the application role can read this materialized view of %s, which holds every tenant's rows (materialized views have no row level security)", reads)
			}
			continue
		}
		if securityInvoker(v.Options) {
			continue
		}
		sev, who := SeverityError, "the application role can read it"
		if !v.AppSelect {
			sev, who = SeverityWarning, "the application role cannot read it, other roles may"
		}
		c.add(sev, CodeViewNotInvoker, "view", name, "",
			fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true);", v.Name.SQL()),
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
	for _, f := range c.s.snap.Funcs {
		if f.Signature == signedFunction && c.s.signedUnaltered() {
			// Signed mode's own SECURITY DEFINER function, as installed,
			// which every role may execute; checkSigned checks the rest.
			continue
		}
		touched := c.tenantNames(f.Deps)
		src := strings.ToLower(f.Source)
		for _, t := range c.s.tenants {
			if mentions(src, strings.ToLower(t.Name.Name)) {
				touched = append(touched, t.Name.String())
			}
		}
		slices.Sort(touched)
		touched = slices.Compact(touched)
		fix := fmt.Sprintf("REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC, %s;", f.Signature, c.role())
		if len(touched) > 0 {
			c.add(SeverityError, CodeSecurityDefiner, "function", f.Signature, "", fix,
				"SECURITY DEFINER function runs as %q, which may bypass row level security, mentions %s, and the application role can execute it",
				f.Owner, strings.Join(touched, ", "))
		} else {
			c.add(SeverityWarning, CodeSecurityDefiner, "function", f.Signature, "", fix,
				"SECURITY DEFINER function runs as %q and the application role can execute it; its body names no tenant table", f.Owner)
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

func (c *checker) checkLibrary() {
	const name = "pgtenancy.set_tenant(text)"
	sev := SeverityWarning
	need := "the pool sets the tenant with set_config on plain PostgreSQL, so this matters for Citus and for code that calls it"
	if c.s.snap.Citus {
		sev, need = SeverityError, "with Citus the pool sets the tenant through it"
	}
	lib := c.s.snap.Library
	if lib == nil {
		c.add(sev, CodeLibraryMissing, "function", name, "", "",
			"the library function is not installed (run pgtenancy install, or apply migrations.LibrarySQL); %s", need)
		return
	}
	body, err := policy.SetTenantBody(c.s.exp.setting)
	var diff []string
	if err != nil || strings.Join(strings.Fields(lib.Source), " ") != strings.Join(strings.Fields(body), " ") {
		diff = append(diff, fmt.Sprintf("its body is not the one pgtenancy installs for setting %s", c.s.exp.setting))
	}
	if lib.SecDef {
		diff = append(diff, "it is SECURITY DEFINER")
	}
	if lib.Language != "plpgsql" {
		diff = append(diff, "its language is "+lib.Language)
	}
	if len(diff) > 0 {
		c.add(SeverityError, CodeLibraryAltered, "function", name, "",
			"CREATE OR REPLACE FUNCTION pgtenancy.set_tenant(tenant text) RETURNS void\nLANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY INVOKER\nAS $pgtenancy$"+body+"$pgtenancy$;",
			"the library function was altered: %s", strings.Join(diff, "; "))
	}
	if c.s.snap.AppRole != "" && !lib.CanExec {
		c.add(sev, CodeLibraryNotExec, "function", name, "",
			fmt.Sprintf("GRANT USAGE ON SCHEMA pgtenancy TO %s;\nGRANT EXECUTE ON FUNCTION pgtenancy.set_tenant(text) TO %s;", c.role(), c.role()),
			"the application role cannot execute the library function; %s", need)
	}
}

func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = sqlquote.Ident(c)
	}
	return strings.Join(q, ", ")
}

func prepend(first string, rest []string) []string {
	return append([]string{first}, rest...)
}
