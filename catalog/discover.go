package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// DiscoverOptions tells [Discover] how to read a model from a database.
type DiscoverOptions struct {
	// TenantColumn is the tenant column, such as "store_id". Every table in
	// Schemas that has a column of this name is a tenant table. Required.
	TenantColumn string
	// TenantColumns names the tenant column of tables whose column has
	// another name, by table (as in [policy.Model]: optionally
	// qualified), such as {"tests_revenue": "acc_id"}. Each such table is
	// a tenant table, with that column.
	TenantColumns map[string]string
	// Root is the root tenant table, such as "stores", optionally
	// schema-qualified. Required.
	Root string
	// RootColumn is the root table's key column; "id" when empty.
	RootColumn string
	// Schemas are the schemas to read; ["public"] when empty. The first one
	// is the model's [policy.Model.Schema]: its tables get unqualified names.
	Schemas []string
	// Include, when not empty, limits the model to these tables (the root is
	// always included). Names are as in [policy.Model]: optionally qualified.
	Include []string
	// Exclude leaves these tables out of the model, as if they did not exist.
	Exclude []string
	// Global lists the tables without the tenant column that all tenants
	// share (such as currencies): the model grants the application role
	// SELECT on them. Other tables without the tenant column are left out of
	// the model, and one that references a tenant table is an error, since
	// no policy would protect its rows.
	Global []string
	// WritableGlobal lists global tables that the application role may
	// write too ([policy.Model.WritableGlobal]), such as users.
	WritableGlobal []string
	// Shared lists the tenant tables whose rows with a NULL tenant are
	// shared by every tenant ([policy.Table.SharedRows]).
	Shared []string
	// KeyType is the tenant key type. When 0 it is inferred from the type of
	// the root key column: bigint, integer, smallint, uuid, or text (text or
	// varchar). Every tenant column must have it.
	KeyType rls.KeyType
}

// Discover reads a model from the catalog of a live database, in one
// transaction and one round trip of queries.
//
//   - The root table is opts.Root; its tenant column is its key column.
//   - Every other ordinary or partitioned table (not a partition) in
//     opts.Schemas that has opts.TenantColumn (or its column of
//     opts.TenantColumns) is a tenant table, unless it is listed as a
//     global table. Of the remaining ones, those in opts.Global and
//     opts.WritableGlobal are global tables; the others are left out of
//     the model, unless they reference a tenant table, which is an error
//     (their rows would be readable by every tenant): [Prepare] plans the
//     migrations that give them the tenant column.
//   - A foreign key between tenant tables becomes a [policy.ForeignKey]
//     without the tenant column: T(product_id) -> U(id) gives {Columns:
//     [product_id], RefTable: U, RefColumns: [id]}, with its ON DELETE
//     action and deferrability, whether or not its composite form is
//     there already.
//   - Foreign keys to global or unmanaged tables, and those that reference
//     the root through the tenant column, stay plain and are not modeled. A
//     foreign key to the root through other columns, or one that pairs a
//     tenant column with a column that is not the other table's tenant
//     column, cannot be made tenant-safe: Discover returns an error.
//
// The model holds what a user would declare; what the database already has
// of the generated objects is for [Plan]. Set the model's Setting,
// AppRole and Citus as needed before generating. Problems with the
// database are [*SchemaError]s (errors.Is [ErrSchemaMismatch]), several
// joined; bad options are [*OptionsError]s (errors.Is [ErrInvalidOptions]).
func Discover(ctx context.Context, conn Conn, opts DiscoverOptions) (*policy.Model, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	schemas := opts.Schemas
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	var m *policy.Model
	err := read(ctx, conn, snapshot.Options{Schemas: schemas}, func(_ pgx.Tx, s *snapshot.Snapshot) error {
		var err error
		m, err = discover(s, schemas, opts)
		return err
	})
	return m, err
}

func discover(s *snapshot.Snapshot, schemas []string, opts DiscoverOptions) (*policy.Model, error) {
	def := schemas[0]
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &SchemaError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	inSchemas := func(q snapshot.QName) bool { return slices.Contains(schemas, q.Schema) }
	lookup := func(what, name string) *snapshot.Table {
		q := snapshot.SplitName(def, name)
		if t := s.Lookup(q); t != nil && !t.Partition && inSchemas(q) {
			return t
		}
		bad(name, "", "%s table does not exist in schemas %s", what, strings.Join(schemas, ", "))
		return nil
	}
	root := lookup("root", opts.Root)
	rootCol := cmp.Or(opts.RootColumn, "id")
	excluded := map[*snapshot.Table]bool{}
	for _, n := range opts.Exclude {
		if t := lookup("excluded", n); t != nil {
			excluded[t] = true
		}
	}
	global := map[*snapshot.Table]bool{}
	for _, n := range opts.Global {
		if t := lookup("global", n); t != nil {
			global[t] = true
		}
	}
	writable := map[*snapshot.Table]bool{}
	for _, n := range opts.WritableGlobal {
		if t := lookup("writable global", n); t != nil {
			writable[t] = true
			global[t] = true
		}
	}
	shared := map[*snapshot.Table]bool{}
	for _, n := range opts.Shared {
		if t := lookup("shared", n); t != nil {
			shared[t] = true
		}
	}
	override := map[*snapshot.Table]string{}
	for _, n := range slices.Sorted(maps.Keys(opts.TenantColumns)) {
		if t := lookup("tenant", n); t != nil {
			override[t] = opts.TenantColumns[n]
		}
	}
	var included map[*snapshot.Table]bool
	if len(opts.Include) > 0 {
		included = map[*snapshot.Table]bool{}
		for _, n := range opts.Include {
			if t := lookup("included", n); t != nil {
				included[t] = true
			}
		}
	}
	if root != nil && excluded[root] {
		bad(opts.Root, "", "the root table is excluded")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	display := func(q snapshot.QName) string {
		if q.Schema == def && !strings.Contains(q.Name, ".") {
			return q.Name
		}
		return q.Schema + "." + q.Name
	}
	key := opts.KeyType
	rc := root.Column(rootCol)
	if rc == nil {
		return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: "root key column does not exist"}
	}
	if key == 0 {
		if key = snapshot.KeyTypeOf(rc.Type); key == 0 {
			return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: fmt.Sprintf("root key column has type %s; want bigint, integer, smallint, uuid, text or varchar", rc.Type)}
		}
	}

	m := &policy.Model{KeyType: key, Schema: def}
	tenant := map[*snapshot.Table]string{} // tenant table -> its tenant column
	var order, others []*snapshot.Table
	for _, t := range s.Tables {
		if t.Partition || !inSchemas(t.Name) || excluded[t] || (included != nil && !included[t] && t != root) {
			continue
		}
		order = append(order, t)
		switch {
		case t == root:
			tenant[t] = rootCol
		case override[t] != "":
			if t.Column(override[t]) == nil {
				bad(display(t.Name), override[t], "tenant column does not exist")
				continue
			}
			tenant[t] = override[t]
		case t.Column(opts.TenantColumn) != nil:
			tenant[t] = opts.TenantColumn
		default:
			others = append(others, t)
			continue
		}
		if c := t.Column(tenant[t]); snapshot.TenantKeyOf(c.Type, key) == 0 {
			bad(display(t.Name), c.Name, "tenant column has type %s; the tenant key type is %s", c.Type, key)
		}
	}
	// A table without the tenant column is shared only when opts.Global says
	// so. One that references a tenant table holds tenant data that no
	// policy would protect: refuse it rather than guess.
	for _, t := range others {
		if f := referencesTenant(s, t, tenant); f != nil {
			bad(display(t.Name), strings.Join(f.Columns, ", "), "foreign key %s references tenant table %q, but the table has no tenant column %q: no policy would protect its rows; add the column with pgtenancy prepare (catalog.Prepare), or leave the table out with --exclude (DiscoverOptions.Exclude) and keep it away from the application role", f.Name, display(f.RefName), opts.TenantColumn)
			continue
		}
		switch {
		case writable[t]:
			m.WritableGlobal = append(m.WritableGlobal, display(t.Name))
		case global[t]:
			m.Global = append(m.Global, display(t.Name))
		}
	}

	for _, t := range order {
		col, ok := tenant[t]
		if !ok {
			continue
		}
		mt := policy.Table{Name: display(t.Name), TenantColumn: col, Root: t == root, SharedRows: shared[t]}
		if k := snapshot.TenantKeyOf(t.Column(col).Type, key); k != key {
			mt.TenantType = k // an integer column of another width
		}
		for _, f := range t.Constraints {
			if f.Type != 'f' {
				continue
			}
			ref := s.Table(f.Ref)
			refCol, isTenant := tenant[ref]
			if ref == nil || !isTenant {
				continue // a plain reference to a global or unmanaged table
			}
			if ref == root {
				if i := slices.Index(f.Columns, col); i >= 0 && f.RefCols[i] == refCol {
					continue // through the tenant column: safe as it is
				}
				bad(mt.Name, strings.Join(f.Columns, ", "), "foreign key %s references the root table %q through columns other than its tenant column; it cannot be made tenant-safe", f.Name, display(ref.Name))
				continue
			}
			if shared[ref] {
				continue // shared rows: a composite key would refuse references to them
			}
			fk, ok := splitFK(f, col, refCol)
			if !ok {
				bad(mt.Name, strings.Join(f.Columns, ", "), "foreign key %s to %q pairs the tenant column with a column that is not the other table's tenant column; it cannot be made tenant-safe", f.Name, display(ref.Name))
				continue
			}
			if len(fk.Columns) == 0 {
				continue // only the tenant columns
			}
			fk.RefTable = display(ref.Name)
			if slices.ContainsFunc(mt.ForeignKeys, func(o policy.ForeignKey) bool {
				return o.RefTable == fk.RefTable && slices.Equal(o.Columns, fk.Columns) && slices.Equal(o.RefColumns, fk.RefColumns)
			}) {
				continue // the composite form beside the plain one
			}
			mt.ForeignKeys = append(mt.ForeignKeys, fk)
		}
		m.Tables = append(m.Tables, mt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// splitFK removes the (tenant column -> referenced tenant column) pair from a
// catalog foreign key; ok is false when a tenant column is paired with
// anything else.
func splitFK(f snapshot.Constraint, col, refCol string) (fk policy.ForeignKey, ok bool) {
	for i := range f.Columns {
		isT, isR := f.Columns[i] == col, f.RefCols[i] == refCol
		switch {
		case isT && isR:
		case isT || isR:
			return policy.ForeignKey{}, false
		default:
			fk.Columns = append(fk.Columns, f.Columns[i])
			fk.RefColumns = append(fk.RefColumns, f.RefCols[i])
		}
	}
	fk.OnDelete = f.OnDelete
	fk.Deferrable, fk.InitiallyDeferred = f.Deferrable, f.Deferred
	return fk, true
}

func (o *DiscoverOptions) check() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &OptionsError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if r := snapshot.CheckIdent(o.TenantColumn); r != "" {
		bad("TenantColumn", "%s", r)
	}
	for _, t := range slices.Sorted(maps.Keys(o.TenantColumns)) {
		if r := snapshot.CheckIdent(o.TenantColumns[t]); r != "" {
			bad("TenantColumns", "table %q: %s", t, r)
		}
	}
	if o.Root == "" {
		bad("Root", "empty")
	}
	if o.RootColumn != "" {
		if r := snapshot.CheckIdent(o.RootColumn); r != "" {
			bad("RootColumn", "%s", r)
		}
	}
	for _, s := range o.Schemas {
		if r := snapshot.CheckIdent(s); r != "" || strings.Contains(s, ".") {
			bad("Schemas", "schema %q: %s", s, cmp.Or(r, "pgtenancy cannot name tables in a schema whose name holds a dot"))
		}
	}
	if o.KeyType != 0 && !o.KeyType.Valid() {
		bad("KeyType", "%v is not "+rls.ValidKeyTypes, o.KeyType)
	}
	return errors.Join(errs...)
}

// referencesTenant returns a foreign key of t to a tenant table, or nil.
func referencesTenant(s *snapshot.Snapshot, t *snapshot.Table, tenant map[*snapshot.Table]string) *snapshot.Constraint {
	for i, c := range t.Constraints {
		if c.Type != 'f' {
			continue
		}
		if _, ok := tenant[s.Table(c.Ref)]; ok {
			return &t.Constraints[i]
		}
	}
	return nil
}
