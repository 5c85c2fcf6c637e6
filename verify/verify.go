package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Options tell [Run] what to expect. Without any, Run infers everything
// from the database: the tenant settings and columns from the policies
// there (pgtenancy's or hand-written), the tenant tables from those, and the
// roles to judge from the grants.
type Options struct {
	// Model is the schema model the database should match; pgtenancy's
	// own policies are then checked by name as well as by meaning. When
	// nil, the tenant tables are inferred: the tables with a tenant
	// column (a column that a policy compares with a setting, or
	// TenantColumn), the tables whose policies compare a column with a
	// setting, the tables that reference those by foreign key (directly
	// or through others), and the partitions and inheritance children of
	// all of them, in any schema.
	Model *policy.Model
	// AppRole is the role the application connects as; Model.AppRole when
	// empty. Without either, the roles that hold privileges on the tables
	// are judged in its place (or the owner, for a table no other role
	// can use), and the report says so ([CodeNoAppRole]).
	AppRole string
	// TenantColumn is the tenant column, such as "store_id", in place of
	// the columns inferred from the policies. With a Model it is one more
	// name for the [CodeTableNotInModel] check.
	TenantColumn string
	// Schemas are the schemas whose tables are checked when there is no
	// Model; every user schema when empty (partitions and children of
	// tenant tables are checked in any schema). With a Model they are
	// added to the schemas of its tables for the [CodeTableNotInModel]
	// check.
	Schemas []string
	// Setting is the setting the policies read when there is no Model;
	// when empty, any setting a policy compares a column with counts as a
	// tenant setting. pgtenancy's library is checked against it, or
	// [rls.DefaultSetting].
	Setting string
	// Global are the tables, such as "currencies" or "public.plans", that
	// all tenants share, when there is no Model (Model.Global otherwise):
	// they are not warned about as undeclared ([CodeTableUnclassified])
	// and never inferred to be tenant tables.
	Global []string
	// AdminRole, when set, is the role for cross-tenant work (package
	// admin): Run checks that it exists, bypasses row level security, and
	// that the application role cannot become it (admin.go).
	AdminRole string
}

// ErrInvalidOptions matches every [*OptionsError] with errors.Is.
var ErrInvalidOptions = catalog.ErrInvalidOptions

// OptionsError is a problem with [Options]; it matches ErrInvalidOptions.
type OptionsError = catalog.OptionsError

// expectation is what Run expects, from the options and model.
type expectation struct {
	model        *policy.Model // nil without a model
	schema       string        // the model's default schema
	appRole      string
	adminRole    string
	setting      string      // the setting of pgtenancy's library and fixes
	settingGiven bool        // Options.Setting or a model: policies must read it
	key          rls.KeyType // the model's
	schemas      []string    // schemas whose tables are checked; nil for all
	unlisted     []string    // tenant column names of tables a model must list
	column       string      // Options.TenantColumn
	declared     map[snapshot.QName]bool
	global       map[snapshot.QName]bool
}

func (o Options) expect() (*expectation, error) {
	bad := func(field, format string, args ...any) error {
		return &OptionsError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	e := &expectation{appRole: o.AppRole, adminRole: o.AdminRole, column: o.TenantColumn, declared: map[snapshot.QName]bool{}, global: map[snapshot.QName]bool{}}
	if o.AdminRole != "" {
		if r := checkRole(o.AdminRole); r != "" {
			return nil, bad("AdminRole", "%q: %s", o.AdminRole, r)
		}
	}
	if o.TenantColumn != "" {
		if r := snapshot.CheckIdent(o.TenantColumn); r != "" {
			return nil, bad("TenantColumn", "%s", r)
		}
		e.unlisted = append(e.unlisted, o.TenantColumn)
	}
	if o.AppRole != "" {
		if r := checkRole(o.AppRole); r != "" {
			return nil, bad("AppRole", "%q: %s", o.AppRole, r)
		}
	}
	for _, s := range o.Schemas {
		if r := snapshot.CheckIdent(s); r != "" {
			return nil, bad("Schemas", "schema %q: %s", s, r)
		}
	}
	e.schemas = slices.Clone(o.Schemas)
	if o.Model == nil {
		setting, err := rls.Setting(o.Setting)
		if err != nil {
			return nil, catalog.NewOptionsError("Setting", err)
		}
		e.setting, e.settingGiven = setting, o.Setting != ""
		for _, g := range o.Global {
			q := snapshot.SplitName("public", g)
			if r := cmp.Or(snapshot.CheckIdent(q.Schema), snapshot.CheckIdent(q.Name)); r != "" {
				return nil, bad("Global", "table %q: %s", g, r)
			}
			e.global[q] = true
		}
	} else {
		m := o.Model
		if err := m.Validate(); err != nil {
			return nil, err
		}
		e.model, e.key = m, m.KeyType
		e.schema = cmp.Or(m.Schema, "public")
		e.appRole = cmp.Or(o.AppRole, m.AppRole)
		e.setting, _ = rls.Setting(m.Setting)
		e.settingGiven = true
		for _, t := range m.Tables {
			q := snapshot.SplitName(e.schema, t.Name)
			e.schemas = append(e.schemas, q.Schema)
			if !t.Root {
				e.unlisted = append(e.unlisted, t.TenantColumn)
			}
			e.declared[q] = true
		}
		for _, g := range m.Global {
			q := snapshot.SplitName(e.schema, g)
			e.schemas = append(e.schemas, q.Schema)
			e.declared[q] = true
			e.global[q] = true
		}
	}
	for _, s := range []*[]string{&e.schemas, &e.unlisted} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return e, nil
}

// state is what the checks work on: the snapshot, and which tables are
// tenant tables.
type state struct {
	exp     *expectation
	snap    *snapshot.Snapshot
	audit   *snapshot.Audit
	tables  map[uint32]*table
	order   []*table // every table read, by name
	tenants []*table // the tenant tables, by name
	absent  []string // model tables that do not exist
	// roots are the tables the tenant columns reference: the tenants
	// themselves.
	roots map[uint32]bool
	// names are the tenant column names.
	names []string
	// settings are the tenant settings the policies read.
	settings []string
	res      *exprResolver
	// app is the application role as a subject; nil without one.
	app *subject
	// grantees are the subjects judged without an application role, and
	// bypassers the roles left out because they are superusers or have
	// BYPASSRLS and hold privileges on tenant tables.
	grantees  []*subject
	bypassers []*snapshot.RoleInfo
	// signed is what Run read of signed mode's objects.
	signed *signedState
}

// table is a table of the snapshot with what Run made of it.
type table struct {
	*snapshot.Table
	tenant  bool
	isRoot  bool
	column  string
	colType string // "" when the column is missing
	key     rls.KeyType
	// inScope reports that the table is in the schemas checked.
	inScope bool
	// model reports that the model declares it.
	model bool
	// why says why it holds tenant data, for messages: "has the tenant
	// column store_id".
	why string
	// parent is, for a table inferred from a foreign key or
	// inheritance, the tenant table it hangs from.
	parent *table
	fk     *snapshot.Constraint // the foreign key to parent
	pols   []*polInfo
	// colsKey names its columns and their positions: tables with the same
	// one print the same parse tree the same.
	colsKey string
	// unlisted says, with a model, why a table it leaves out holds
	// tenant data; "" otherwise.
	unlisted string
	// shared reports that it has shared rows (shared.go).
	shared bool
}

// polInfo is a policy with the classification of its expressions.
type polInfo struct {
	*snapshot.Policy
	using, check *verdict
}

// colType returns the type of a column of t, or "".
func (t *table) typeOf(name string) string {
	if c := t.Column(name); c != nil {
		return c.Type
	}
	return ""
}

// Run inspects a live database for every hole that makes row level
// security inert for tenant data, and reports them as findings with a fix
// each (docs/verify.md lists them):
//
//   - the application role is a superuser, has BYPASSRLS (itself or through
//     a role it can become) or CREATEROLE, or owns a tenant table (or can
//     become its owner);
//   - a table holding tenant data (see [Options.Model]) that the
//     application role can reach without effective row level security:
//     RLS off, not forced for an owner, or policies that do not limit
//     every command the role holds to the tenant's rows. Policies are
//     judged by meaning, from the server's own parse of them: a permissive
//     policy that is always true, compares with a constant or admits rows
//     by a flag; an INSERT or UPDATE without a tenant WITH CHECK; a
//     restrictive policy that restricts nothing; whatever they are called;
//   - with a model, pgtenancy's own policies missing or different from what
//     policy.Generate creates, and tables with tenant data it leaves out;
//   - a foreign key between tenant tables without the tenant column, a
//     unique key without it, no index leading with it, a nullable one;
//   - views that read tenant tables without security_invoker, materialized
//     views over them the application role can read, SECURITY DEFINER
//     functions it can execute or without a pinned search_path, LEAKPROOF
//     functions, foreign tables, user mappings and large objects;
//   - TRUNCATE, REFERENCES or TRIGGER on tenant tables held by the
//     application role, default privileges that grant future tables to
//     it or PUBLIC, sequences its inserts need and cannot use;
//   - a default value of the tenant setting for the role or database;
//   - the library function pgtenancy.set_tenant missing, altered, or not
//     executable by the application role, when pgtenancy's setup is there;
//   - with the citus extension: tenant tables not distributed by their tenant
//     column, not co-located, shards without RLS or the policies, and
//     citus.propagate_set_commands not 'local' for the application role.
//
// Run reads the catalog in two round trips of batched queries, inside one
// transaction that it rolls back; with a model, to obtain the expected
// policy text it creates a temporary table there, so the role needs the
// TEMPORARY privilege on the database (PUBLIC has it by default), and Run
// cannot run on a read-only standby. Any role can run it; the application
// role itself will do. It returns an error only when it could not run (a
// bad model or options, a failed query); what it finds is in the report.
func Run(ctx context.Context, conn catalog.Conn, opts Options) (*Report, error) {
	exp, err := opts.expect()
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	snap, err := snapshot.Read(ctx, tx, snapshot.Options{AppRole: exp.appRole, AdminRole: exp.adminRole, Audit: true})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	signed, err := readSigned(ctx, tx, exp.appRole)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	s := newState(exp, snap, signed)
	want := snapshot.Want{Setting: exp.setting, Signed: s.signed.installed}
	for _, t := range s.tenants {
		if exp.model != nil && t.column != "" && t.colType != "" && t.key != 0 {
			want.Columns = append(want.Columns, snapshot.ColumnKey{Name: t.column, Type: t.colType})
		}
		if t.column != "" {
			want.CitusTables = append(want.CitusTables, t.OID)
		}
	}
	var copies []policyCopy
	want.Policies, want.Constraints, want.Indexes, copies = s.textsNeeded()
	if err := snap.Expect(ctx, tx, want); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, c := range copies {
		c.to.Using, c.to.Check = c.from.Using, c.from.Check
	}
	r := &Report{Findings: append([]Finding{}, runChecks(s)...), Tables: []string{}}
	for _, t := range s.tenants {
		r.Tables = append(r.Tables, t.Name.String())
	}
	r.sort()
	return r, nil
}

// newState marks the tenant tables, with signed what Run read of signed
// mode's objects (pgtenancy.tenant() as installed reads the tenant
// setting, so policies comparing a tenant column with it are tenant
// predicates);: the model's, or without a model those
// that inference finds (infer.go).
func newState(e *expectation, snap *snapshot.Snapshot, signed *signedState) *state {
	s := &state{exp: e, snap: snap, audit: snap.Audit, tables: map[uint32]*table{}, roots: map[uint32]bool{}, signed: signed}
	if s.audit == nil {
		s.audit = &snapshot.Audit{}
	}
	if !e.settingGiven && snap.Library != nil {
		// The library installed for another setting names it: it is the
		// setting the library's functions and checks are about.
		if st := librarySettingOf(snap.Library.Source); st != "" {
			e.setting = st
		}
	}
	s.res = newResolver(s.audit)
	s.res.signedTenant = s.signedTenantSettings
	if app := snap.AppRole; app != "" && snap.Role != nil {
		// The application role runs as another role by SET ROLE, and as
		// the owner of any SECURITY DEFINER function (which it may reach
		// through triggers, aggregates, other such functions); and its
		// rights are used under the names of the roles that are its
		// members (a login role that SET ROLEs to it, or inherits it).
		can := map[string]bool{}
		for _, m := range slices.Concat(snap.Role.Member, snap.Role.Members, snap.Role.DefinerOwners) {
			can[m] = true
		}
		s.res.role = func(name string) (is, canBe bool) { return name == app, can[name] }
	}
	for _, st := range snap.Tables {
		t := &table{Table: st}
		// pgtenancy's own schema holds the library's version table, no
		// tenant data, unless asked for by name.
		t.inScope = !st.Extension && (len(e.schemas) == 0 && st.Name.Schema != policy.LibrarySchema || slices.Contains(e.schemas, st.Name.Schema))
		s.tables[st.OID] = t
		s.order = append(s.order, t)
	}
	s.subjects()
	s.classify(nil)
	if e.model != nil {
		for _, mt := range e.model.Tables {
			q := snapshot.SplitName(e.schema, mt.Name)
			st := snap.Lookup(q)
			if st == nil || st.Partition {
				s.absent = append(s.absent, q.String())
				continue
			}
			t := s.tables[st.OID]
			t.tenant, t.model, t.isRoot, t.column, t.colType = true, true, mt.Root, mt.TenantColumn, t.typeOf(mt.TenantColumn)
			// An integer tenant column of another width than the key
			// (policy.Table.TenantType) has policies cast to its type.
			t.key = cmp.Or(snapshot.TenantKeyOf(t.colType, e.key), e.key)
			if t.isRoot {
				s.roots[t.OID] = true
			}
			s.tenants = append(s.tenants, t)
		}
		s.names = slices.Clone(e.unlisted)
		s.settings = []string{e.setting}
		s.inferRoots()
	} else {
		s.infer()
	}
	s.classify(func(oid uint32) bool { t := s.tables[oid]; return t != nil && t.tenant })
	slices.SortFunc(s.tenants, func(a, b *table) int { return a.Name.Compare(b.Name) })
	s.markShared()
	return s
}

// librarySettingOf returns the setting that pgtenancy.set_tenant's body,
// as pgtenancy installs it for that setting, sets; "" for any other body.
func librarySettingOf(source string) string {
	const prefix = "SET LOCAL "
	i := strings.Index(source, prefix)
	if i < 0 {
		return ""
	}
	st, _, ok := strings.Cut(source[i+len(prefix):], " = %L")
	if !ok {
		return ""
	}
	if body, err := policy.SetTenantBody(st); err != nil || !sameBody(source, body) {
		return ""
	}
	return st
}

// textsNeeded returns the policies, constraints and indexes whose texts the
// checks print or compare, for Expect to read: the snapshot leaves them
// out, since printing all of them costs more than the rest of the read.
// The policies of model tables and, with Citus, of tenant tables (their
// texts are compared); those of any table with a policy that does not
// limit rows to the tenant (printed, with the table's tenant expression
// for the fix); the unique keys without the tenant column of tenant
// tables, with the foreign keys that reference them, and the foreign keys
// between tenant tables that do not pair the tenant columns.
//
// Policies whose trees are the same, on tables with the same columns,
// print the same: one of each is read, and its texts copied to the others.
func (s *state) textsNeeded() (pols, cons, idxs []uint32, copies []policyCopy) {
	type polKey struct {
		using, check *parsedTree
		cols         string
	}
	first := map[polKey]*snapshot.Policy{}
	referrers := map[uint32][]snapshot.Constraint{}
	for _, t := range s.order {
		for _, fk := range foreignKeys(t) {
			referrers[fk.Ref] = append(referrers[fk.Ref], fk)
		}
	}
	for _, t := range s.order {
		all := t.model || s.snap.Citus && t.tenant
		for _, p := range t.pols {
			for _, v := range []*verdict{p.using, p.check} {
				if v != nil && v.cls != clsTenant && v.cls != clsNever {
					all = true
				}
			}
		}
		if all {
			for i := range t.Policies {
				p := &t.Policies[i]
				k := polKey{cols: t.colsKey}
				if p.UsingTree != "" {
					k.using = s.res.tree(p.UsingTree)
				}
				if p.CheckTree != "" {
					k.check = s.res.tree(p.CheckTree)
				}
				if f, ok := first[k]; ok {
					copies = append(copies, policyCopy{from: f, to: p})
					continue
				}
				first[k] = p
				pols = append(pols, p.OID)
			}
		}
		if !t.tenant || t.column == "" || t.colType == "" {
			continue
		}
		for _, ix := range t.Indexes {
			if t.isRoot || !ix.Unique || slices.Contains(ix.Columns, t.column) {
				continue
			}
			idxs = append(idxs, ix.OID)
			for _, k := range t.Constraints {
				if k.Name == ix.Constraint {
					cons = append(cons, k.OID)
				}
			}
			for _, fk := range referrers[t.OID] {
				cons = append(cons, fk.OID)
			}
		}
		for _, fk := range foreignKeys(t) {
			if ref := s.tables[fk.Ref]; ref != nil && ref.tenant && ref.column != "" {
				if safe, _ := fkCovered(t, ref, fk); !safe {
					cons = append(cons, fk.OID)
				}
			}
		}
	}
	return uniqOIDs(pols), uniqOIDs(cons), uniqOIDs(idxs), copies
}

// policyCopy copies the texts of one policy to another that prints the
// same.
type policyCopy struct{ from, to *snapshot.Policy }

// accepted returns the texts of the policy expressions that are right for
// the tenant table t: both forms, or on a Citus database only
// CitusPolicyExpr's (Citus cannot distribute a policy with a subquery).
func (s *state) accepted(t *table) []string {
	forms := snapshot.Stamped | snapshot.PerRow
	switch {
	case s.snap.Citus:
		forms = snapshot.PerRow
	case s.exp.model != nil && s.exp.model.Signed:
		forms = snapshot.Signed
	case s.signed != nil && s.signed.installed:
		forms |= snapshot.Signed
	}
	return s.snap.Accepted(snapshot.ColumnKey{Name: t.column, Type: t.colType}, t.key, forms)
}

func checkRole(s string) string {
	if r := snapshot.CheckIdent(s); r != "" {
		return r
	}
	switch {
	case s == "public" || s == "none":
		return fmt.Sprintf("%q is a reserved role name", s)
	case len(s) >= 3 && s[:3] == "pg_":
		return "role names starting with pg_ are reserved for predefined roles"
	}
	return ""
}

// quoteRole quotes the application role for fixes, or gives a placeholder.
func (s *state) quoteRole() string {
	if s.exp.appRole == "" {
		return "<app_role>"
	}
	return sqlquote.Ident(s.exp.appRole)
}
