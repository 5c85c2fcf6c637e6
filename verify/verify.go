package verify

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Options tell [Run] what to expect.
type Options struct {
	// Model is the schema model the database should match. When nil, the
	// tenant tables are inferred: every table in Schemas that has
	// TenantColumn, row level security enabled, or a pgtenancy policy; its
	// tenant column is TenantColumn, or else the column its pgtenancy policy
	// reads, and its key type follows from the column's type.
	Model *policy.Model
	// AppRole is the role the application connects as; Model.AppRole when
	// empty. Without either, the role and privilege checks are skipped and
	// the report says so ([CodeNoAppRole]).
	AppRole string
	// TenantColumn is the tenant column when there is no Model, such as
	// "store_id". With a Model it is one more name for the
	// [CodeTableNotInModel] check.
	TenantColumn string
	// Schemas are the schemas whose tables are checked when there is no
	// Model; ["public"] when empty. With a Model they are added to the
	// schemas of its tables for the [CodeTableNotInModel] check.
	Schemas []string
	// Setting is the setting the policies read when there is no Model;
	// [rls.DefaultSetting] when empty.
	Setting string
}

// ErrInvalidOptions matches every [*OptionsError] with errors.Is.
var ErrInvalidOptions = catalog.ErrInvalidOptions

// OptionsError is a problem with [Options]; it matches ErrInvalidOptions.
type OptionsError = catalog.OptionsError

// expectation is what Run expects, from the options and model.
type expectation struct {
	model    *policy.Model // nil without a model
	schema   string        // the model's default schema
	appRole  string
	setting  string
	key      rls.KeyType // the model's
	schemas  []string    // schemas whose tables are read
	unlisted []string    // tenant column names of tables a model must list
	column   string      // Options.TenantColumn
	declared map[snapshot.QName]bool
}

func (o Options) expect() (*expectation, error) {
	bad := func(field, format string, args ...any) error {
		return &OptionsError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	e := &expectation{appRole: o.AppRole, column: o.TenantColumn, declared: map[snapshot.QName]bool{}}
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
		e.setting = setting
		if len(e.schemas) == 0 {
			e.schemas = []string{"public"}
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
	tables  map[uint32]*table
	order   []*table // every table read, by name
	tenants []*table // the tenant tables, by name
	absent  []string // model tables that do not exist
	signed  *signedState
}

// table is a table of the snapshot with what Run made of it.
type table struct {
	*snapshot.Table
	tenant  bool
	isRoot  bool
	column  string
	colType string // "" when the column is missing
	key     rls.KeyType
}

// colType returns the type of a column of t, or "".
func (t *table) typeOf(name string) string {
	if c := t.Column(name); c != nil {
		return c.Type
	}
	return ""
}

// Run inspects a live database for every hole that makes row level
// security inert for the tenant tables, and reports them as findings with a
// fix each (docs/verify.md lists them):
//
//   - the application role is a superuser, has BYPASSRLS (itself or through
//     a role it can become), or owns a tenant table (or can become its owner);
//   - a tenant table without RLS enabled, without FORCE, without the pgtenancy
//     policies, or whose policies differ from what policy.Generate creates
//     (the expected expression is printed by the server itself, so the
//     comparison does not depend on its formatting);
//   - another permissive policy on a tenant table, which widens access;
//   - a table with the tenant column that the model leaves out, and a
//     partition of a tenant table the application role can reach directly;
//   - a foreign key between tenant tables without the tenant column, a
//     unique key without it, and no index leading with it;
//   - views that read tenant tables without security_invoker, materialized
//     views over them the application role can read, and SECURITY DEFINER
//     functions it can execute;
//   - TRUNCATE, REFERENCES or TRIGGER on tenant tables held by the
//     application role (through PUBLIC or a membership too);
//   - the library function pgtenancy.set_tenant missing, altered, or not
//     executable by the application role;
//   - with the citus extension: tenant tables not distributed by their tenant
//     column, not co-located, shards without RLS or the policies, and
//     citus.propagate_set_commands not 'local' for the application role.
//
// Run reads the catalog in two round trips of batched queries, inside one
// transaction that it rolls back; to obtain the expected policy text it
// creates a temporary table there, so the role needs the TEMPORARY privilege
// on the database (PUBLIC has it by default), and Run cannot run on a
// read-only standby. Any role can run it; the application role itself
// will do. It returns an error only when it could not run (a bad model or
// options, a failed query); what it finds is in the report.
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
	snap, err := snapshot.Read(ctx, tx, snapshot.Options{Schemas: exp.schemas, AppRole: exp.appRole})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	s := newState(exp, snap)
	if s.signed, err = readSigned(ctx, tx, exp.appRole); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	want := snapshot.Want{Setting: exp.setting, Signed: s.signed.installed}
	for _, t := range s.tenants {
		if t.column != "" && t.colType != "" && t.key != 0 {
			want.Columns = append(want.Columns, snapshot.ColumnKey{Name: t.column, Type: t.colType})
		}
		want.CitusTables = append(want.CitusTables, t.OID)
	}
	if err := snap.Expect(ctx, tx, want); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	r := &Report{Findings: append([]Finding{}, runChecks(s)...), Tables: []string{}}
	for _, t := range s.tenants {
		r.Tables = append(r.Tables, t.Name.String())
	}
	r.sort()
	return r, nil
}

// newState marks the tenant tables: the model's, or without a model those
// with the tenant column, row level security or a pgtenancy policy.
func newState(e *expectation, snap *snapshot.Snapshot) *state {
	s := &state{exp: e, snap: snap, tables: map[uint32]*table{}}
	for _, st := range snap.Tables {
		t := &table{Table: st}
		s.tables[st.OID] = t
		s.order = append(s.order, t)
	}
	if e.model != nil {
		for _, mt := range e.model.Tables {
			q := snapshot.SplitName(e.schema, mt.Name)
			st := snap.Lookup(q)
			if st == nil || st.Partition {
				s.absent = append(s.absent, q.String())
				continue
			}
			t := s.tables[st.OID]
			t.tenant, t.isRoot, t.column, t.colType = true, mt.Root, mt.TenantColumn, t.typeOf(mt.TenantColumn)
			t.key = e.key
			s.tenants = append(s.tenants, t)
		}
		slices.SortFunc(s.tenants, func(a, b *table) int { return a.Name.Compare(b.Name) })
		return s
	}
	for _, t := range s.order {
		if t.Partition {
			continue
		}
		var pgtenancy *snapshot.Policy
		for i := range t.Policies {
			if p := &t.Policies[i]; p.Name == policy.IsolationPolicy || (p.Name == policy.GuardPolicy && pgtenancy == nil) {
				pgtenancy = p
			}
		}
		hasCol := e.column != "" && t.Column(e.column) != nil
		if !hasCol && !t.RLS && pgtenancy == nil {
			continue
		}
		t.tenant = true
		switch {
		case hasCol:
			t.column, t.colType = e.column, t.typeOf(e.column)
		case pgtenancy != nil && len(pgtenancy.DepColumns) == 1:
			t.column, t.colType = pgtenancy.DepColumns[0], pgtenancy.DepTypes[0]
		}
		t.key = snapshot.KeyTypeOf(t.colType)
		s.tenants = append(s.tenants, t)
	}
	return s
}

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
