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
	c.checkAdmin() // admin.go
	for _, name := range s.absent {
		c.add(SeverityError, CodeTableMissing, "table", name, name, "",
			"the model declares this tenant table but it does not exist (or is a partition)")
	}
	for _, t := range s.tenants {
		c.checkTable(t)
	}
	c.checkUnlisted()
	c.checkPartitions()
	c.checkUnclassified()
	c.checkViews()
	c.checkFunctions()
	c.checkLeakproof()
	c.checkGetters()
	c.checkDefaultPrivileges()
	c.checkForeign()
	c.checkLargeObjects()
	c.checkSettingDefaults()
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
		var names []string
		for _, g := range c.s.grantees {
			names = append(names, g.name)
		}
		judged := "the roles that hold privileges on the tables: " + strings.Join(names, ", ")
		if len(names) == 0 {
			judged = "no role holds privileges on the tables, so each table's owner"
		}
		c.add(SeverityWarning, CodeNoAppRole, "role", "", "", "",
			"no application role given (--app-role, Options.AppRole or Model.AppRole): verify judged %s in its place; name the role the application connects as for an exact judgment", judged)
		for _, b := range c.s.bypassers {
			u := newSubject(b)
			if !slices.ContainsFunc(c.s.tenants, func(t *table) bool { return len(c.s.commands(u, t)) > 0 }) {
				continue
			}
			code, what := CodeAppRoleBypassRLS, "has BYPASSRLS"
			if b.Super {
				code, what = CodeAppRoleSuperuser, "is a superuser"
			}
			c.add(SeverityWarning, code, "role", b.Name, "", "",
				"role %q holds privileges on tenant tables and %s, so no policy applies to it: if the application connects as it, nothing isolates tenants (an administrative role is fine; pass --app-role to judge the application's)", b.Name, what)
		}
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
		why := "a superuser or BYPASSRLS role, and can SET ROLE to it"
		if strings.HasPrefix(m, "pg_") {
			why = "which reads the server's files or runs programs on it (COPY ... FROM PROGRAM, pg_read_binary_file): the data files of every tenant, around row level security"
		}
		c.add(SeverityError, CodeAppRoleBypassRLS, "role", r.Name, "", fmt.Sprintf("REVOKE %s FROM %s;", sqlquote.Ident(m), role),
			"the application role is a member of %q, %s", m, why)
	}
	if r.CreateRole && !r.Super {
		c.add(SeverityError, CodeAppRoleCreateRole, "role", r.Name, "", "ALTER ROLE "+role+" NOCREATEROLE;",
			"the application role has CREATEROLE: it can grant itself membership in any role that is not a superuser, the tables' owner included, and so turn row level security off")
	}
}

// pgtenancyBuilt reports whether t carries pgtenancy's policies.
func pgtenancyBuilt(t *table) bool {
	return slices.ContainsFunc(t.Policies, func(p snapshot.Policy) bool { return isPgtenancyPolicy(p.Name) })
}

// isPgtenancyPolicy reports whether a policy has one of the names pgtenancy
// generates.
func isPgtenancyPolicy(name string) bool {
	return name == policy.IsolationPolicy || name == policy.GuardPolicy
}

func (c *checker) checkTable(t *table) {
	name, tbl := t.Name.String(), t.Name.SQL()
	model := c.s.exp.model != nil
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
	case !model:
		colOK = t.column != "" && t.colType != ""
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

	subs, cmds, known := c.s.audience(t)
	j := c.s.judge(t, subs, cmds)
	c.checkRLS(t, subs, cmds, known, j)
	if model {
		if t.shared {
			c.checkShared(t, colOK) // shared.go
		} else {
			c.checkPolicy(t, policy.GuardPolicy, false, colOK)
		}
		c.checkPolicy(t, policy.IsolationPolicy, true, colOK)
	}
	c.checkPolicies(t, j)
	if !c.s.snap.Citus && colOK {
		c.checkStamp(t)
	}

	if colOK {
		c.checkKeys(t)
		c.checkNullable(t)
	}
	c.checkSequences(t)
	// REFERENCES matters to a role that can create a table whose foreign
	// key probes this one; temporary tables cannot reference it.
	refSev, refWhy := SeverityError, "REFERENCES lets foreign keys of tables it creates probe every tenant's keys, which row level security does not cover"
	if r := c.s.snap.Role; r != nil && !r.CanCreate {
		refSev, refWhy = SeverityWarning, "REFERENCES lets foreign keys probe every tenant's keys, which row level security does not cover; the role can create no table today to declare one"
	}
	if c.s.snap.AppRole == "" {
		c.checkGranteePrivileges(t)
	}
	if c.s.snap.AppRole != "" {
		for _, p := range []struct {
			priv string
			code Code
			sev  Severity
			why  string
		}{
			{"TRUNCATE", CodeTruncateGranted, SeverityError, "TRUNCATE ignores row level security and empties every tenant's rows"},
			{"REFERENCES", CodeReferencesGranted, refSev, refWhy},
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

// reachText says who can do what on a table: "the application role can
// SELECT, INSERT".
func reachText(subs []*subject, cmds [][]string, known bool) string {
	if !known {
		return "no role bound by row level security holds privileges on it today, but any role granted them later would see every tenant's rows"
	}
	var parts []string
	for i, u := range subs {
		parts = append(parts, fmt.Sprintf("%s can %s", u.label(), strings.Join(cmds[i], ", ")))
	}
	return strings.Join(parts, "; ")
}

// checkRLS reports a tenant table whose row level security is off, or not
// forced for a role that owns it.
func (c *checker) checkRLS(t *table, subs []*subject, cmds [][]string, known bool, j *judgment) {
	name, tbl := t.Name.String(), t.Name.SQL()
	model := t.model
	why := ""
	if t.why != "" {
		why = " It holds tenant data: " + t.why + c.s.refText(t) + "."
	}
	if !t.RLS {
		sev := SeverityError
		reach := reachText(subs, cmds, known)
		switch {
		case c.s.app != nil && len(subs) == 0:
			sev, reach = SeverityWarning, "the application role cannot use it today, but a GRANT would expose every tenant's rows"
		case len(subs) == 0:
			sev, reach = SeverityWarning, "no role that holds privileges on the other tables can use it today, but a GRANT would expose every tenant's rows"
		}
		msg := "row level security is not enabled: every policy is inert"
		if !model {
			msg = "row level security is not enabled, so every tenant's rows are open: " + reach + "."
		}
		c.add(sev, CodeRLSDisabled, "table", name, name, c.s.enableFix(t, subs), "%s%s", msg, why)
	}
	var owners []string
	for _, u := range subs {
		if owns(u, t) {
			owners = append(owners, u.label())
		}
	}
	switch {
	case t.Force:
	case model || pgtenancyBuilt(t):
		// pgtenancy always forces: without a model, its policies on the
		// table say that pgtenancy set it up.
		c.add(SeverityError, CodeRLSNotForced, "table", name, name, "ALTER TABLE "+tbl+" FORCE ROW LEVEL SECURITY;",
			"row level security is not forced: the table owner bypasses every policy")
	case len(owners) > 0 && t.RLS:
		c.add(SeverityError, CodeRLSNotForced, "table", name, name, "ALTER TABLE "+tbl+" FORCE ROW LEVEL SECURITY;",
			"row level security is not forced, and %s owns the table, so every policy is bypassed.%s", strings.Join(owners, " and "), why)
	}
}

// refText names, for a table that holds tenant data for its own column,
// the tenant table or root it references: ", and references public.stores".
func (s *state) refText(t *table) string {
	if t.parent != nil {
		return ""
	}
	for _, root := range []bool{true, false} {
		for _, fk := range foreignKeys(t) {
			if ref := s.tables[fk.Ref]; ref != nil && ref != t && (s.roots[ref.OID] || !root && ref.tenant) {
				return ", and it references " + ref.Name.String()
			}
		}
	}
	return ""
}

// enableFix turns row level security on for t, forced when a role that
// uses it owns it, with a tenant policy when it has none.
func (s *state) enableFix(t *table, subs []*subject) string {
	tbl := t.Name.SQL()
	// On a database that pgtenancy set up, the new table gets what
	// Generate writes: forced, its two policies with the stamp.
	pgtenancySetup := s.snap.Library != nil || slices.ContainsFunc(s.tenants, func(o *table) bool { return pgtenancyBuilt(o) })
	if len(t.Policies) == 0 && !t.model && pgtenancySetup && t.column != "" && t.key != 0 && s.fixSetting() == s.exp.setting {
		return "ALTER TABLE " + tbl + " ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\n" +
			policySQL(t, s, policy.IsolationPolicy, true) + "\n" + policySQL(t, s, policy.GuardPolicy, false)
	}
	fix := "ALTER TABLE " + tbl + " ENABLE ROW LEVEL SECURITY"
	if t.model || slices.ContainsFunc(subs, func(u *subject) bool { return owns(u, t) }) {
		fix += ", FORCE ROW LEVEL SECURITY"
	}
	fix += ";"
	if len(t.Policies) == 0 && !t.model {
		if expr := s.tenantExpr(t); expr != "" {
			fix += fmt.Sprintf("\nCREATE POLICY tenant_isolation ON %s USING (%s) WITH CHECK (%s);", tbl, expr, expr)
		}
	}
	return fix
}

// policySQL returns the CREATE POLICY statement that Generate writes.
func policySQL(t *table, s *state, name string, permissive bool) string {
	kind := "RESTRICTIVE"
	if permissive {
		kind = "PERMISSIVE"
	}
	expr := policy.PolicyExpr(t.column, t.key, s.exp.setting)
	switch {
	case s.snap.Citus:
		expr = policy.CitusPolicyExpr(t.column, t.key, s.exp.setting)
	case s.signedPolicies():
		expr = policy.SignedPolicyExpr(t.column, t.key)
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
		// A partial index serves only the queries that imply its
		// predicate, which the policy's check does not.
		if len(ix.Columns) > 0 && ix.Columns[0] == t.column && !ix.Partial {
			indexed = true
		}
		if t.isRoot || !ix.Unique || slices.Contains(ix.Columns, t.column) {
			continue
		}
		key := strings.Join(ix.Columns, ", ")
		if len(ix.KeyDefs) == len(ix.Columns) {
			key = strings.Join(ix.KeyDefs, ", ")
		}
		if ix.Partial {
			if _, pred, ok := strings.Cut(ix.Definition, " WHERE "); ok {
				key += ") WHERE (" + pred
			}
		}
		kind, obj := "index", ix.Name
		if ix.Constraint != "" {
			kind, obj = "constraint", ix.Constraint
		}
		fix := c.s.keyFix(t, ix)
		if t.shared && ix.Primary {
			// A primary key cannot hold the NULL tenant of shared rows.
			fix = "-- the table has shared rows (a NULL tenant), which a primary key cannot hold: keep it"
		}
		c.add(SeverityWarning, CodeKeyWithoutTenant, kind, obj, name, fix,
			"unique key (%s) does not include the tenant column %q: a write that collides reveals that another tenant's row exists",
			key, t.column)
	}
	if !indexed {
		c.add(SeverityWarning, CodeTenantNotIndexed, "table", name, name,
			fmt.Sprintf("CREATE INDEX ON %s (%s);", t.Name.SQL(), sqlquote.Ident(t.column)),
			"no index leads with the tenant column %q (a partial one does not count): every policy check scans the table", t.column)
	}

	fkSev := SeverityError
	if !t.model {
		// A hand-written schema's plain keys let a row point at another
		// tenant's row, which reveals only that it exists: like a unique
		// key, a weakness rather than an open door.
		fkSev = SeverityWarning
	}
	for _, fk := range foreignKeys(t) {
		ref := c.s.tables[fk.Ref]
		if ref == nil || !ref.tenant || ref.column == "" || ref.colType == "" {
			continue
		}
		if safe, comp := fkCovered(t, ref, fk); safe {
			if comp != nil {
				c.fkBeside(t, ref, fk, *comp)
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
			fmt.Fprintf(&b, "ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s;",
				t.Name.SQL(), sqlquote.Ident(fk.Name), sqlquote.Ident(fk.Name), compositeFK(fk, t.column, ref.column))
			fix = b.String()
		}
		c.add(fkSev, CodeFKWithoutTenant, "constraint", fk.Name, name, fix,
			"foreign key (%s) -> %s (%s) does not pair the tenant columns (%s -> %s): key checks bypass row level security, so a row can reference another tenant's row",
			strings.Join(fk.Columns, ", "), ref.Name, strings.Join(fk.RefCols, ", "), t.column, ref.column)
	}
}

// fkBeside reports a plain foreign key left beside the composite one comp
// that covers it, and says truly which of the two PostgreSQL checks first:
// the immediate one before a deferred one, and among keys checked at the
// same time the one whose check trigger's name sorts first.
func (c *checker) fkBeside(t, ref *table, fk, comp snapshot.Constraint) {
	name := t.Name.String()
	plainFirst := fk.Deferred == comp.Deferred && fk.CheckTrigger != "" && comp.CheckTrigger != "" && fk.CheckTrigger < comp.CheckTrigger ||
		!fk.Deferred && comp.Deferred
	head := fmt.Sprintf("foreign key (%s) -> %s (%s) is redundant beside the composite key %q that pairs the tenant columns",
		strings.Join(fk.Columns, ", "), ref.Name, strings.Join(fk.RefCols, ", "), comp.Name)
	var tail string
	switch {
	case plainFirst:
		tail = "PostgreSQL checks it first, so its violation tells a writer whether the id exists in another tenant"
	case fk.Deferrable:
		tail = "PostgreSQL checks it after the composite key, so its violation reveals nothing, unless a transaction runs SET CONSTRAINTS ... IMMEDIATE, which changes the order"
	default:
		tail = "PostgreSQL checks it after the composite key, so its violation reveals nothing today; drop it anyway"
	}
	c.add(SeverityWarning, CodeFKBesideComposite, "constraint", fk.Name, name,
		fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", t.Name.SQL(), sqlquote.Ident(fk.Name)),
		"%s; %s", head, tail)
}

// compositeFK writes the definition of fk with the tenant columns paired
// first, keeping its actions, match type, deferral and validation; SET
// NULL and SET DEFAULT on delete get a column list, so the tenant column
// is never changed.
func compositeFK(fk snapshot.Constraint, col, refCol string) string {
	tail := ""
	if _, after, ok := strings.Cut(fk.Definition, " REFERENCES "); ok {
		if i := strings.Index(after, ")"); i >= 0 {
			tail = after[i+1:]
		}
	}
	for _, act := range []string{"SET NULL", "SET DEFAULT"} {
		if strings.Contains(tail, "ON DELETE "+act) && !strings.Contains(tail, "ON DELETE "+act+" (") {
			tail = strings.Replace(tail, "ON DELETE "+act, "ON DELETE "+act+" ("+identList(fk.Columns)+")", 1)
		}
	}
	return fmt.Sprintf("FOREIGN KEY (%s) REFERENCES %s (%s)%s", identList(prepend(col, fk.Columns)), fk.RefName.SQL(),
		identList(prepend(refCol, fk.RefCols)), tail)
}

// keyFix returns SQL that puts the tenant column first in a unique key of
// t, keeping everything else of it (expressions, predicate, INCLUDE,
// deferral), and remakes the foreign keys that reference it as composite
// keys; "" when one of those comes from a table without the tenant
// column, which cannot keep its key.
func (s *state) keyFix(t *table, ix snapshot.Index) string {
	var refs []struct {
		from *table
		fk   snapshot.Constraint
	}
	for _, o := range s.order {
		for _, fk := range foreignKeys(o) {
			if fk.Ref == t.OID && slices.Equal(slices.Sorted(slices.Values(fk.RefCols)), slices.Sorted(slices.Values(ix.Columns))) {
				refs = append(refs, struct {
					from *table
					fk   snapshot.Constraint
				}{o, fk})
			}
		}
	}
	var before, after []string
	for _, r := range refs {
		before = append(before, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", r.from.Name.SQL(), sqlquote.Ident(r.fk.Name)))
		if safe, comp := fkCovered(r.from, t, r.fk); safe && comp != nil {
			continue // the composite key beside it stays
		}
		col := r.from.column
		if col == "" || !r.from.tenant || r.from.Column(col) == nil {
			return ""
		}
		after = append(after, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s;", r.from.Name.SQL(), sqlquote.Ident(r.fk.Name),
			compositeFK(r.fk, col, t.column)))
	}
	var mid string
	if ix.Constraint != "" {
		var def string
		for _, k := range t.Constraints {
			if k.Name == ix.Constraint && (k.Type == 'p' || k.Type == 'u') {
				def = k.Definition
			}
		}
		i := strings.IndexByte(def, '(')
		if i < 0 {
			return ""
		}
		mid = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s%s, %s;", t.Name.SQL(), sqlquote.Ident(ix.Constraint),
			sqlquote.Ident(ix.Constraint), def[:i+1], sqlquote.Ident(t.column), def[i+1:])
	} else {
		marker := " USING " + ix.Method + " ("
		i := strings.Index(ix.Definition, marker)
		if i < 0 {
			return ""
		}
		i += len(marker)
		// An index on a partitioned table prints ON ONLY, which would
		// leave it invalid until each partition's is attached.
		def := strings.Replace(ix.Definition[:i], " ON ONLY ", " ON ", 1)
		mid = fmt.Sprintf("DROP INDEX %s;\n%s%s, %s;", sqlquote.Qualified(t.Name.Schema, ix.Name), def,
			sqlquote.Ident(t.column), ix.Definition[i:])
	}
	return strings.Join(slices.Concat(before, []string{mid}, after), "\n")
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
// tenants: it pairs the tenant columns itself, or another foreign key
// between the same tables (comp) pairs them along with all of its column
// pairs (a plain key left next to the composite one that pgtenancy added).
func fkCovered(t, ref *table, fk snapshot.Constraint) (safe bool, comp *snapshot.Constraint) {
	pairs := func(f snapshot.Constraint) map[[2]string]bool {
		m := make(map[[2]string]bool, len(f.Columns))
		for i := range f.Columns {
			if i < len(f.RefCols) {
				m[[2]string{f.Columns[i], f.RefCols[i]}] = true
			}
		}
		return m
	}
	tenantPair := [2]string{t.column, ref.column}
	if pairs(fk)[tenantPair] {
		return true, nil
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
			if i >= len(fk.RefCols) || !gp[[2]string{fk.Columns[i], fk.RefCols[i]}] {
				covered = false
			}
		}
		if covered {
			return true, &g
		}
	}
	return false, nil
}

// checkNullable reports a tenant column that allows NULL: such rows belong
// to no tenant, and a policy with OR tenant_id IS NULL shows them to all.
func (c *checker) checkNullable(t *table) {
	col := t.Column(t.column)
	if t.isRoot || t.shared || col == nil || col.NotNull {
		return // a table with shared rows holds them with a NULL tenant
	}
	name := t.Name.String()
	c.add(SeverityWarning, CodeTenantColumnNullable, "column", name+"."+t.column, name,
		fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;", t.Name.SQL(), sqlquote.Ident(t.column)),
		"the tenant column %q allows NULL: a row without a tenant is either hidden from every tenant or, under a policy that admits NULL, shown to all", t.column)
}

// checkSequences reports the sequences that t's column defaults or
// triggers draw from and that the application role cannot use: its
// inserts fail.
func (c *checker) checkSequences(t *table) {
	if c.s.snap.AppRole == "" || !t.HasSome("INSERT") {
		return
	}
	for _, u := range c.s.audit.SeqUses {
		if u.Table != t.OID || u.AppUsage {
			continue
		}
		name := t.Name.String()
		c.add(SeverityWarning, CodeSequenceNotUsable, "sequence", u.Seq, name,
			fmt.Sprintf("GRANT USAGE ON SEQUENCE %s TO %s;", u.Seq, c.role()),
			"the %s of the table calls nextval on %s, which the application role cannot use: its inserts fail", u.Via, u.Seq)
	}
}

// checkUnlisted reports, with a model, tables that hold tenant data and
// that the model leaves out: a tenant column, a foreign key to a tenant
// table, inheritance from one.
func (c *checker) checkUnlisted() {
	s, e := c.s, c.s.exp
	if e.model == nil {
		return
	}
	eligible := func(t *table) bool { return t.inScope && !e.declared[t.Name] && !t.tenant }
	for _, t := range s.order {
		if t.Partition || !eligible(t) {
			continue
		}
		for _, n := range e.unlisted {
			if t.Column(n) != nil {
				t.unlisted, t.column, t.colType = "it has the tenant column "+n, n, t.typeOf(n)
				break
			}
		}
	}
	s.closure(eligible, func(t *table, col, why string, _ *table, _ *snapshot.Constraint) {
		if t.unlisted == "" && !t.Partition && eligible(t) {
			t.unlisted = why
		}
	})
	for _, t := range s.order {
		if t.unlisted == "" {
			continue
		}
		name := t.Name.String()
		if t.RLS && t.Force {
			c.add(SeverityWarning, CodeTableNotInModel, "table", name, name, "",
				"the table holds tenant data (%s) but is not in the model; it has row level security of its own, which pgtenancy does not generate: add it to the model", t.unlisted)
		} else {
			c.add(SeverityError, CodeTableNotInModel, "table", name, name, "",
				"the table holds tenant data (%s) but is not in the model, and nothing isolates its rows: add it to the model's tables, then generate", t.unlisted)
		}
	}
}

// checkPartitions reports partitions of tenant tables that a role can
// query directly without row level security of their own: the parent's
// policies do not apply then.
func (c *checker) checkPartitions() {
	for _, t := range c.s.order {
		if !t.Partition {
			continue
		}
		root := c.s.tables[t.PartRoot]
		if root == nil || !root.tenant {
			continue
		}
		subs, cmds, known := c.s.audience(t)
		if !known || len(subs) == 0 {
			continue
		}
		j := c.s.judge(t, subs, cmds)
		bypass := slices.ContainsFunc(subs, func(u *subject) bool { return owns(u, t) && !t.Force })
		if t.RLS && !bypass && len(j.open) == 0 {
			continue
		}
		name := t.Name.String()
		var who []string
		for _, u := range subs {
			who = append(who, u.label())
		}
		c.add(SeverityError, CodePartitionExposed, "table", name, root.Name.String(),
			fmt.Sprintf("REVOKE ALL ON TABLE %s FROM %s;", t.Name.SQL(), c.s.revokeFrom(subs)),
			"%s can query this partition of %s directly, where the parent's policies do not apply and its own do not limit rows to the tenant", strings.Join(who, " and "), root.Name)
	}
}

// revokeFrom lists the roles to revoke privileges from: the subjects, and
// PUBLIC.
func (s *state) revokeFrom(subs []*subject) string {
	var names []string
	for _, u := range subs {
		if u.oid != 0 && !u.owner {
			names = append(names, sqlquote.Ident(u.name))
		}
	}
	if s.app != nil && !slices.Contains(names, sqlquote.Ident(s.app.name)) {
		names = append(names, sqlquote.Ident(s.app.name))
	}
	if len(names) == 0 && s.app == nil && len(s.grantees) == 0 {
		names = append(names, "<app_role>")
	}
	return strings.Join(append(names, "PUBLIC"), ", ")
}

// checkUnclassified warns about tables that the application role (or,
// without one, a role that holds privileges) can read and that verify
// found no tenant data in, unless they are declared global: declaring them
// says that all tenants share them.
func (c *checker) checkUnclassified() {
	s, e := c.s, c.s.exp
	var inScope int
	for _, t := range s.order {
		if t.inScope && !t.Partition {
			inScope++
		}
	}
	if len(s.tenants) == 0 {
		if e.model == nil && inScope > 0 {
			c.add(SeverityWarning, CodeNoTenantTables, "table", "", "", "",
				"verify found no tenant data: no policy compares a column with a setting and no table has a tenant column; pass --tenant-column (Options.TenantColumn) or a model")
		}
		return
	}
	for _, t := range s.order {
		if !t.inScope || t.Partition || t.tenant || t.unlisted != "" || e.global[t.Name] || e.declared[t.Name] {
			continue
		}
		var readers []string
		switch {
		case s.app != nil:
			if slices.Contains(s.commands(s.app, t), "SELECT") && !s.protected(t, s.app) {
				readers = append(readers, s.app.label())
			}
		default:
			for _, g := range s.grantees {
				if slices.Contains(s.commands(g, t), "SELECT") && !s.protected(t, g) {
					readers = append(readers, g.label())
				}
			}
		}
		if len(readers) == 0 {
			continue
		}
		name := t.Name.String()
		what := "verify found no tenant data in it (no tenant column, no foreign key to a tenant table, no tenant policy)"
		if t.isRoot {
			what = "it is the table of the tenants (tenant columns reference it), and each tenant can read every tenant's row of it"
		}
		c.add(SeverityWarning, CodeTableUnclassified, "table", name, name, "",
			"%s can read this table, and %s: if all tenants share it, declare it global (--global, Options.Global or Model.Global); if not, protect it", strings.Join(readers, " and "), what)
	}
}

// protected reports whether u's reads of t are limited to the tenant.
func (s *state) protected(t *table, u *subject) bool {
	if !t.RLS || owns(u, t) && !t.Force {
		return false
	}
	return len(s.judge(t, []*subject{u}, [][]string{{"SELECT"}}).open) == 0
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
		what := "so the owner's exemption from row level security applies"
		if bypass := c.s.ownerBypasses(v); bypass == "" {
			// The owner is held to the policies today: the view shows
			// the session's tenant only, until the owner changes or a
			// table's FORCE goes.
			sev = SeverityWarning
			what = fmt.Sprintf("and its owner %q is held to the policies today (no superuser, no BYPASSRLS, the tables it owns forced), but one ALTER from being exempt", v.Owner)
		} else {
			what += " (" + bypass + ")"
		}
		c.add(sev, CodeViewNotInvoker, "view", name, "",
			fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true);", v.Name.SQL()),
			"the view reads %s with its owner's rights (no security_invoker), %s; %s", reads, what, who)
	}
}

// ownerBypasses says why the owner of a view escapes the policies of the
// tenant tables it reads: a superuser or BYPASSRLS, or the owner of one
// that is not forced; "" when it escapes none.
func (s *state) ownerBypasses(v snapshot.View) string {
	r := s.audit.Roles[v.OwnerOID]
	switch {
	case r == nil:
		return "its owner is unknown"
	case r.Super:
		return fmt.Sprintf("its owner %q is a superuser", r.Name)
	case r.Bypass:
		return fmt.Sprintf("its owner %q has BYPASSRLS", r.Name)
	}
	owner := newSubject(r)
	for _, o := range v.Reads {
		if t := s.tables[o]; t != nil && t.tenant && owns(owner, t) && !t.Force {
			return fmt.Sprintf("its owner %q owns %s, which does not force row level security", r.Name, t.Name)
		}
	}
	return ""
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
		if f.Signature == signedFunction && (c.s.signedUnaltered() || !c.s.signedInUse() && c.s.signedAsInstalled()) {
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
		if !slices.ContainsFunc(f.Config, func(cfg string) bool { return strings.HasPrefix(cfg, "search_path=") }) {
			c.add(SeverityWarning, CodeSecurityDefinerPath, "function", f.Signature, "",
				fmt.Sprintf("ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;", f.Signature),
				"SECURITY DEFINER function runs as %q with the caller's search_path: a caller who can create objects in a schema on that path can run code as %q (pin it with SET search_path)", f.Owner, f.Owner)
		}
		if f.Trigger {
			// A trigger function cannot be called, only fired by a
			// write to its table, which that table's policies judge
			// (Supabase's handle_new_user pattern).
			continue
		}
		fix := fmt.Sprintf("REVOKE EXECUTE ON ROUTINE %s FROM PUBLIC, %s;", f.Signature, c.role())
		if c.s.audit.Funcs[f.OID] != nil {
			// A helper that policies call to look past other tables'
			// policies (the way Supabase's guides avoid recursion): the
			// role must be able to execute it, and verify cannot read
			// what it returns.
			c.add(SeverityWarning, CodeSecurityDefiner, "function", f.Signature, "", "",
				"SECURITY DEFINER function runs as %q, and policies call it, so the application role must execute it; it can also call it directly with arguments of its choosing: make sure it reveals nothing beyond the tenant's own rows", f.Owner)
			continue
		}
		var reaches string
		// (pgtenancy.set_tenant runs SET LOCAL by EXECUTE: altered into
		// SECURITY DEFINER, library_altered says so.)
		if len(c.s.tenants) > 0 && f.Signature != "pgtenancy.set_tenant(text)" && c.s.mayReachTenants(f.Owner) {
			code := sqlCode(src)
			if mentions(code, "execute") {
				reaches = "it runs SQL that it builds (EXECUTE)"
			}
			for _, g := range c.s.snap.Funcs {
				name, _, _ := strings.Cut(g.Signature, "(")
				if g.OID != f.OID && mentions(code, strings.ToLower(name[strings.LastIndexByte(name, '.')+1:])) {
					reaches = "it calls the SECURITY DEFINER function " + g.Signature
				}
			}
		}
		switch {
		case len(touched) > 0:
			c.add(SeverityError, CodeSecurityDefiner, "function", f.Signature, "", fix,
				"SECURITY DEFINER function runs as %q, which may bypass row level security, mentions %s, and the application role can execute it",
				f.Owner, strings.Join(touched, ", "))
		case reaches != "":
			c.add(SeverityError, CodeSecurityDefiner, "function", f.Signature, "", fix,
				"SECURITY DEFINER function runs as %q, which may bypass row level security, and the application role can execute it; %s, so verify cannot tell which tenant tables it reaches",
				f.Owner, reaches)
		default:
			c.add(SeverityWarning, CodeSecurityDefiner, "function", f.Signature, "", fix,
				"SECURITY DEFINER function runs as %q and the application role can execute it; its body names no tenant table", f.Owner)
		}
	}
}

// mayReachTenants reports whether the role named owner may reach tenant
// rows: a superuser, BYPASSRLS, the owner of a tenant table (or a member
// of its owner), or a role holding a privilege on one; true when verify
// does not know the role.
func (s *state) mayReachTenants(owner string) bool {
	var r *snapshot.RoleInfo
	for _, ri := range s.audit.Roles {
		if ri.Name == owner {
			r = ri
		}
	}
	if r == nil || r.Super || r.Bypass {
		return true
	}
	u := newSubject(r)
	for _, t := range s.tenants {
		if owns(u, t) || slices.ContainsFunc(t.ACL, func(it snapshot.ACLItem) bool { return it.Grantee != 0 && u.usage[it.Grantee] }) {
			return true
		}
	}
	return false
}

// sqlCode returns src without its comments and with its string constants
// emptied, for word searches in a function's code.
func sqlCode(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		switch {
		case strings.HasPrefix(src[i:], "--"):
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				return b.String()
			}
			i += j
		case strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return b.String()
			}
			i += j + 3
			b.WriteByte(' ')
		case src[i] == '\'':
			j := i + 1
			for j < len(src) {
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j
			b.WriteString("''")
		default:
			b.WriteByte(src[i])
		}
	}
	return b.String()
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

// checkLeakproof reports user-defined LEAKPROOF functions.
func (c *checker) checkLeakproof() {
	for _, sig := range c.s.audit.Leakproof {
		c.add(SeverityWarning, CodeLeakproofFunction, "function", sig, "",
			fmt.Sprintf("ALTER FUNCTION %s NOT LEAKPROOF;", sig),
			"the function is LEAKPROOF, so the planner may run it on rows before the policies filter them: if it can raise an error or otherwise reveal its arguments, it shows other tenants' values")
	}
}

// usesLibrary reports whether pgtenancy's library belongs to the setup: a
// model, Citus, the library installed, or pgtenancy's policies.
func (s *state) usesLibrary() bool {
	if s.exp.model != nil || s.snap.Citus || s.snap.Library != nil {
		return true
	}
	for _, t := range s.order {
		for _, p := range t.Policies {
			if isPgtenancyPolicy(p.Name) {
				return true
			}
		}
	}
	return false
}

// librarySetting is the setting pgtenancy.set_tenant should set: the one
// given or the model's, else the one the policies read.
func (s *state) librarySetting() string {
	if !s.exp.settingGiven {
		if st := s.fixSetting(); st != "" {
			return st
		}
	}
	return s.exp.setting
}

func (c *checker) checkLibrary() {
	if !c.s.usesLibrary() {
		return
	}
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
	setting := c.s.librarySetting()
	body, err := policy.SetTenantBody(setting)
	var diff []string
	if err != nil || strings.Join(strings.Fields(lib.Source), " ") != strings.Join(strings.Fields(body), " ") {
		diff = append(diff, fmt.Sprintf("its body is not the one pgtenancy installs for setting %s", setting))
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

// checkGranteePrivileges reports, without an application role, TRUNCATE,
// REFERENCES and TRIGGER on a tenant table held by the roles judged in its
// place (directly, through PUBLIC or a membership), not its owner: the
// same holes as for the application role.
func (c *checker) checkGranteePrivileges(t *table) {
	name, tbl := t.Name.String(), t.Name.SQL()
	for _, p := range []struct {
		priv string
		code Code
		sev  Severity
		why  string
	}{
		{"TRUNCATE", CodeTruncateGranted, SeverityError, "TRUNCATE ignores row level security and empties every tenant's rows"},
		{"REFERENCES", CodeReferencesGranted, SeverityWarning, "REFERENCES lets foreign keys of tables it creates probe every tenant's keys, which row level security does not cover"},
		{"TRIGGER", CodeTriggerGranted, SeverityWarning, "TRIGGER lets the role attach code that runs on every tenant's writes"},
	} {
		var holders, from []string
		for _, g := range c.s.grantees {
			if g.usage[t.OwnerOID] {
				continue
			}
			for _, it := range t.ACL {
				if it.Priv == p.priv && it.Grantee != t.OwnerOID && g.usage[it.Grantee] {
					holders = append(holders, g.name)
					if it.Grantee == 0 {
						from = append(from, "PUBLIC")
					} else if r := c.s.audit.Roles[it.Grantee]; r != nil {
						from = append(from, sqlquote.Ident(r.Name))
					}
				}
			}
		}
		if len(holders) == 0 {
			continue
		}
		holders, from = uniq(holders), uniq(from)
		c.add(p.sev, p.code, "table", name, name,
			fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s;", p.priv, tbl, strings.Join(from, ", ")),
			"%s held by %s, judged in place of the application role (none given): %s", p.priv, strings.Join(holders, ", "), p.why)
	}
}
