package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Querier runs catalog queries. *pgx.Conn, pgx.Tx and *pgxpool.Pool satisfy
// it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DiscoverOptions tells [Discover] how to read a model from a database.
type DiscoverOptions struct {
	// TenantColumn is the tenant column, such as "store_id". Every table in
	// Schemas that has a column of this name is a tenant table. Required.
	TenantColumn string
	// Root is the root tenant table, such as "stores", optionally
	// schema-qualified. Required.
	Root string
	// RootColumn is the root table's key column; "id" when empty.
	RootColumn string
	// Schemas are the schemas to read; ["public"] when empty. The first one
	// is the model's [Model.Schema]: its tables get unqualified names.
	Schemas []string
	// Include, when not empty, limits the model to these tables (the root is
	// always included). Names are as in [Model]: optionally qualified.
	Include []string
	// Exclude leaves these tables out of the model, as if they did not exist.
	Exclude []string
	// Global lists the tables without the tenant column that all tenants
	// share (such as currencies): the model grants the application role
	// SELECT on them. Other tables without the tenant column are left out of
	// the model, and one that references a tenant table is an error, since
	// no policy would protect its rows.
	Global []string
	// KeyType is the tenant key type. When 0 it is inferred from the type of
	// the root key column: bigint, uuid, or text (text or varchar). Every
	// tenant column must have it.
	KeyType rls.KeyType
	// Setting and AppRole are copied into the model.
	Setting string
	AppRole string
	// Citus sets [Model.Citus] and fills [Model.Constraints].
	Citus bool
}

// Discover reads a model from the catalog of a live database.
//
//   - The root table is opts.Root; its tenant column is its key column.
//   - Every other ordinary or partitioned table (not a partition) in
//     opts.Schemas that has opts.TenantColumn is a tenant table. Of the
//     remaining ones, those in opts.Global are global tables; the others
//     are left out of the model, unless they reference a tenant table,
//     which is an error (their rows would be readable by every tenant).
//   - A foreign key between tenant tables becomes a [ForeignKey] without the
//     tenant column: T(product_id) -> U(id) gives {Columns: [product_id],
//     RefTable: U, RefColumns: [id]}. One already in composite form, the
//     tenant column first on both sides, is recorded with Exists set.
//   - Foreign keys to global or unmanaged tables, and those that reference
//     the root through the tenant column, stay plain and are not modeled. A
//     foreign key to the root through other columns, or one that pairs a
//     tenant column with a column that is not the other table's tenant
//     column, cannot be made tenant-safe: Discover returns an error.
//   - Each tenant table's primary key and unique constraints become its
//     [Table.ExistingKeys].
//
// Problems with the database are [*SchemaError]s (errors.Is
// [ErrSchemaMismatch]), several joined; bad options are [*ModelError]s.
func Discover(ctx context.Context, conn Querier, opts DiscoverOptions) (*Model, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	schemas := opts.Schemas
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	def := schemas[0]
	cat, err := loadCatalog(ctx, conn, schemas)
	if err != nil {
		return nil, err
	}

	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &SchemaError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	inSchemas := func(q qname) bool { return slices.Contains(schemas, q.schema) }
	lookup := func(what, name string) *ctable {
		q := splitName(def, name)
		if t := cat.tables[q]; t != nil && inSchemas(q) {
			return t
		}
		bad(name, "", "%s table does not exist in schemas %s", what, strings.Join(schemas, ", "))
		return nil
	}
	root := lookup("root", opts.Root)
	rootCol := cmp.Or(opts.RootColumn, "id")
	excluded := map[*ctable]bool{}
	for _, n := range opts.Exclude {
		if t := lookup("excluded", n); t != nil {
			excluded[t] = true
		}
	}
	global := map[*ctable]bool{}
	for _, n := range opts.Global {
		if t := lookup("global", n); t != nil {
			global[t] = true
		}
	}
	var included map[*ctable]bool
	if len(opts.Include) > 0 {
		included = map[*ctable]bool{}
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

	display := func(q qname) string {
		if q.schema == def && !strings.Contains(q.name, ".") {
			return q.name
		}
		return q.schema + "." + q.name
	}
	key := opts.KeyType
	rc := root.cols[rootCol]
	if rc == nil {
		return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: "root key column does not exist"}
	}
	if key == 0 {
		if key = keyTypeOf(rc.typ); key == 0 {
			return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: fmt.Sprintf("root key column has type %s; want bigint, uuid, text or varchar", rc.typ)}
		}
	}

	m := &Model{KeyType: key, Schema: def, Setting: opts.Setting, AppRole: opts.AppRole}
	tenant := map[*ctable]string{} // tenant table -> its tenant column
	var order, others []*ctable
	for _, t := range cat.order {
		if !inSchemas(t.q) || excluded[t] || (included != nil && !included[t] && t != root) {
			continue
		}
		order = append(order, t)
		switch {
		case t == root:
			tenant[t] = rootCol
		case t.cols[opts.TenantColumn] != nil:
			tenant[t] = opts.TenantColumn
		default:
			others = append(others, t)
			continue
		}
		if c := t.cols[tenant[t]]; keyTypeOf(c.typ) != key {
			bad(display(t.q), c.name, "tenant column has type %s; the tenant key type is %s", c.typ, key)
		}
	}
	// A table without the tenant column is shared only when opts.Global says
	// so. One that references a tenant table holds tenant data that no
	// policy would protect: refuse it rather than guess.
	for _, t := range others {
		if f := referencesTenant(cat, t, tenant); f != nil {
			bad(display(t.q), strings.Join(f.cols, ", "), "foreign key %s references tenant table %q, but the table has no tenant column %q: no policy would protect its rows; add the column, or list the table in Exclude", f.name, display(f.ref), opts.TenantColumn)
			continue
		}
		if global[t] {
			m.Global = append(m.Global, display(t.q))
		}
	}

	for _, t := range order {
		col, ok := tenant[t]
		if !ok {
			continue
		}
		mt := Table{Name: display(t.q), TenantColumn: col, Root: t == root}
		for _, k := range t.keys {
			mt.ExistingKeys = append(mt.ExistingKeys, slices.Clone(k))
		}
		for _, f := range t.fks {
			ref := cat.tables[f.ref]
			refCol, isTenant := tenant[ref]
			if ref == nil || !isTenant {
				continue // a plain reference to a global or unmanaged table
			}
			if ref == root {
				if i := slices.Index(f.cols, col); i >= 0 && f.refCols[i] == refCol {
					continue // through the tenant column: safe as it is
				}
				bad(mt.Name, strings.Join(f.cols, ", "), "foreign key %s references the root table %q through columns other than its tenant column; it cannot be made tenant-safe", f.name, display(ref.q))
				continue
			}
			fk, exists, ok := splitFK(f, col, refCol)
			if !ok {
				bad(mt.Name, strings.Join(f.cols, ", "), "foreign key %s to %q pairs the tenant column with a column that is not the other table's tenant column; it cannot be made tenant-safe", f.name, display(ref.q))
				continue
			}
			if len(fk.Columns) == 0 {
				continue // only the tenant columns
			}
			fk.RefTable = display(ref.q)
			fk.Exists = exists
			if i := slices.IndexFunc(mt.ForeignKeys, func(o ForeignKey) bool {
				return o.RefTable == fk.RefTable && slices.Equal(o.Columns, fk.Columns) && slices.Equal(o.RefColumns, fk.RefColumns)
			}); i >= 0 {
				mt.ForeignKeys[i].Exists = mt.ForeignKeys[i].Exists || exists
				continue
			}
			mt.ForeignKeys = append(mt.ForeignKeys, fk)
		}
		m.Tables = append(m.Tables, mt)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if opts.Citus {
		m.Citus = true
		m.Constraints = citusConstraints(cat, m)
	} else {
		m.Constraints = plainFKConstraints(cat, m)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// splitFK removes the (tenant column -> referenced tenant column) pair from a
// catalog foreign key. exists reports that the pair was first; ok is false
// when a tenant column is paired with anything else.
func splitFK(f cfk, col, refCol string) (fk ForeignKey, exists, ok bool) {
	for i := range f.cols {
		isT, isR := f.cols[i] == col, f.refCols[i] == refCol
		switch {
		case isT && isR:
			if i == 0 {
				exists = true
			}
		case isT || isR:
			return ForeignKey{}, false, false
		default:
			fk.Columns = append(fk.Columns, f.cols[i])
			fk.RefColumns = append(fk.RefColumns, f.refCols[i])
		}
	}
	// A composite key exists only if the tenant pair is first and alone.
	exists = exists && len(fk.Columns) == len(f.cols)-1
	fk.OnDelete = f.onDelete
	return fk, exists, true
}

func (o *DiscoverOptions) check() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, &ModelError{Reason: "DiscoverOptions: " + fmt.Sprintf(format, args...)})
	}
	if r := checkIdent(o.TenantColumn); r != "" {
		bad("TenantColumn: %s", r)
	}
	if o.Root == "" {
		bad("Root is empty")
	}
	if o.RootColumn != "" {
		if r := checkIdent(o.RootColumn); r != "" {
			bad("RootColumn: %s", r)
		}
	}
	for _, s := range o.Schemas {
		if r := checkIdent(s); r != "" || strings.Contains(s, ".") {
			bad("schema %q: %s", s, cmp.Or(r, "pgtenancy cannot name tables in a schema whose name holds a dot"))
		}
	}
	if o.KeyType != 0 && !o.KeyType.Valid() {
		bad("KeyType %v is not bigint, uuid or text", o.KeyType)
	}
	return errors.Join(errs...)
}

// keyTypeOf maps a column type, as format_type prints it, to a key type; 0
// when none fits. Text keys accept text and varchar columns (any length):
// varchar compares with text without a cast that would stop index use.
func keyTypeOf(typ string) rls.KeyType {
	switch {
	case typ == "bigint":
		return rls.BigInt
	case typ == "uuid":
		return rls.UUID
	case typ == "text", typ == "character varying", strings.HasPrefix(typ, "character varying("):
		return rls.Text
	}
	return 0
}

// Check compares a model with the live database: every tenant and global
// table exists (as a table), every tenant column exists with the model's key
// type (see [DiscoverOptions.KeyType] for the accepted column types), every
// foreign key's columns exist on its table and its referenced columns on
// the referenced table, and every existing key's columns exist. It validates
// the model first. Problems are [*SchemaError]s naming the table and column,
// several joined.
func Check(ctx context.Context, conn Querier, m *Model) error {
	_, _, err := check(ctx, conn, m)
	return err
}

func check(ctx context.Context, conn Querier, m *Model) (*plan, *catalog, error) {
	p, err := normalize(m)
	if err != nil {
		return nil, nil, err
	}
	var schemas []string
	for _, t := range p.tables {
		schemas = append(schemas, t.q.schema)
	}
	for _, g := range p.global {
		schemas = append(schemas, g.schema)
	}
	slices.Sort(schemas)
	cat, err := loadCatalog(ctx, conn, slices.Compact(schemas))
	if err != nil {
		return nil, nil, err
	}

	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &SchemaError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	def := cmp.Or(m.Schema, "public")
	tenant := map[*ctable]string{}
	tenantCols := map[string]bool{}
	for _, t := range m.Tables {
		if ct := cat.tables[splitName(def, t.Name)]; ct != nil {
			tenant[ct] = t.TenantColumn
			if !t.Root {
				tenantCols[t.TenantColumn] = true
			}
		}
	}
	// A global table is granted to the application role without a policy:
	// it must not hold tenant data.
	for _, g := range m.Global {
		ct := cat.tables[splitName(def, g)]
		if ct == nil {
			bad(g, "", "global table does not exist")
			continue
		}
		for col := range tenantCols {
			if ct.cols[col] != nil {
				bad(g, col, "global table has the tenant column: its rows would be readable by every tenant; make it a tenant table")
			}
		}
		if f := referencesTenant(cat, ct, tenant); f != nil {
			bad(g, strings.Join(f.cols, ", "), "global table references tenant table %q (foreign key %s): its rows would be readable by every tenant", f.ref.String(), f.name)
		}
	}
	for _, t := range m.Tables {
		ct := cat.tables[splitName(def, t.Name)]
		if ct == nil {
			bad(t.Name, "", "table does not exist")
			continue
		}
		switch c := ct.cols[t.TenantColumn]; {
		case c == nil:
			bad(t.Name, t.TenantColumn, "tenant column does not exist")
		case keyTypeOf(c.typ) != p.key:
			bad(t.Name, t.TenantColumn, "tenant column has type %s; the tenant key type is %s", c.typ, p.key)
		}
		for _, k := range t.ExistingKeys {
			for _, c := range k {
				if ct.cols[c] == nil {
					bad(t.Name, c, "column of existing key (%s) does not exist", strings.Join(k, ", "))
				}
			}
		}
		for _, fk := range t.ForeignKeys {
			for _, c := range fk.Columns {
				if ct.cols[c] == nil {
					bad(t.Name, c, "foreign key column does not exist")
				}
			}
			rt := cat.tables[splitName(def, fk.RefTable)]
			if rt == nil {
				bad(fk.RefTable, "", "table referenced by a foreign key of %q does not exist", t.Name)
				continue
			}
			for _, c := range refColumns(fk) {
				if rt.cols[c] == nil {
					bad(fk.RefTable, c, "column referenced by foreign key %q(%s) does not exist", t.Name, strings.Join(fk.Columns, ", "))
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return p, cat, nil
}

// Resolve runs [Check] and returns a copy of m completed from the catalog,
// as [Discover] would fill it: each tenant table's [Table.ExistingKeys]
// replaced by its primary key and unique constraints, and each foreign key's
// [ForeignKey.Exists] set when its composite form is already there, and,
// [Model.Constraints] replaced by the catalog's (with Citus, the keys and
// foreign keys Citus needs to know; without, the plain foreign keys that
// the model's composite keys replace).
// So a declared model and a discovered one give the same SQL from
// [Generate].
func Resolve(ctx context.Context, conn Querier, m *Model) (*Model, error) {
	_, cat, err := check(ctx, conn, m)
	if err != nil {
		return nil, err
	}
	def := cmp.Or(m.Schema, "public")
	out := *m
	out.Global = slices.Clone(m.Global)
	out.Tables = make([]Table, len(m.Tables))
	colOf := map[qname]string{}
	for _, t := range m.Tables {
		colOf[splitName(def, t.Name)] = t.TenantColumn
	}
	for i, t := range m.Tables {
		ct := cat.tables[splitName(def, t.Name)]
		t.ExistingKeys = nil
		for _, k := range ct.keys {
			t.ExistingKeys = append(t.ExistingKeys, slices.Clone(k))
		}
		fks := make([]ForeignKey, len(t.ForeignKeys))
		for j, fk := range t.ForeignKeys {
			fk.Columns = slices.Clone(fk.Columns)
			fk.RefColumns = slices.Clone(fk.RefColumns)
			rq := splitName(def, fk.RefTable)
			cols := prepend(t.TenantColumn, fk.Columns)
			refCols := prepend(colOf[rq], refColumns(fk))
			fk.Exists = slices.ContainsFunc(ct.fks, func(f cfk) bool {
				return f.ref == rq && slices.Equal(f.cols, cols) && slices.Equal(f.refCols, refCols)
			})
			fks[j] = fk
		}
		t.ForeignKeys = fks
		out.Tables[i] = t
	}
	if m.Citus {
		out.Constraints = citusConstraints(cat, &out)
	} else {
		out.Constraints = plainFKConstraints(cat, &out)
	}
	return &out, nil
}

// catalog is what pgtenancy reads about the tables of some schemas.
type catalog struct {
	tables map[qname]*ctable
	order  []*ctable // by schema, then name
}

type ctable struct {
	q    qname
	cols map[string]*ccol
	keys [][]string // primary key and unique constraints, by name
	fks  []cfk      // by name
	cons []ccon     // primary key, unique and foreign key constraints, by name
}

// ccon is one constraint with its definition, for Citus.
type ccon struct {
	name, contype, def string
	f                  cfk
	// simple: a foreign key without ON UPDATE action, MATCH FULL,
	// DEFERRABLE, NOT VALID or a SET NULL/DEFAULT column list, which
	// FOREIGN KEY (cols) REFERENCES t (refcols) ON DELETE action restores.
	simple bool
}

type ccol struct{ name, typ string }

type cfk struct {
	name          string
	cols, refCols []string
	ref           qname
	onDelete      string
}

const tablesSQL = `
SELECT n.nspname::text, c.relname::text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition`

const columnsSQL = `
SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, NULL)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped`

const constraintsSQL = `
SELECT n.nspname::text, c.relname::text, k.conname::text, k.contype::text,
    ARRAY(SELECT a.attname::text
          FROM unnest(k.conkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
          ORDER BY u.ord),
    coalesce(rn.nspname::text, ''), coalesce(rc.relname::text, ''),
    ARRAY(SELECT a.attname::text
          FROM unnest(k.confkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
          ORDER BY u.ord),
    k.confdeltype::text, pg_catalog.pg_get_constraintdef(k.oid),
    -- a plain foreign key that a composite one can replace as it is
    k.contype = 'f' AND k.confupdtype = 'a' AND k.confmatchtype = 's' AND NOT k.condeferrable
        AND k.convalidated AND k.confdelsetcols IS NULL
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND k.contype IN ('p', 'u', 'f') AND k.conparentid = 0
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition`

var onDeleteCodes = map[string]string{"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

// loadCatalog reads the tables of schemas. When conn can begin a
// transaction (pgx.Conn, pgx.Tx, pgxpool.Pool can), it reads them in one
// with an empty search_path, so that the constraint definitions it keeps
// (which Generate copies into Down for Citus) name every table with its
// schema, whatever the search_path of the connection or of a later Down.
func loadCatalog(ctx context.Context, conn Querier, schemas []string) (*catalog, error) {
	if b, ok := conn.(interface {
		Begin(context.Context) (pgx.Tx, error)
	}); ok {
		tx, err := b.Begin(ctx)
		if err != nil {
			return nil, fmt.Errorf("policy: reading the catalog: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
		if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog, pg_temp"); err != nil {
			return nil, fmt.Errorf("policy: reading the catalog: %w", err)
		}
		conn = tx
	}
	cat := &catalog{tables: map[qname]*ctable{}}
	rows, err := conn.Query(ctx, tablesSQL, schemas)
	if err != nil {
		return nil, fmt.Errorf("policy: reading tables: %w", err)
	}
	var q qname
	_, err = pgx.ForEachRow(rows, []any{&q.schema, &q.name}, func() error {
		t := &ctable{q: q, cols: map[string]*ccol{}}
		cat.tables[q] = t
		cat.order = append(cat.order, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: reading tables: %w", err)
	}
	slices.SortFunc(cat.order, func(a, b *ctable) int { return compareQname(a.q, b.q) })

	rows, err = conn.Query(ctx, columnsSQL, schemas)
	if err != nil {
		return nil, fmt.Errorf("policy: reading columns: %w", err)
	}
	var col ccol
	_, err = pgx.ForEachRow(rows, []any{&q.schema, &q.name, &col.name, &col.typ}, func() error {
		if t := cat.tables[q]; t != nil {
			c := col
			t.cols[c.name] = &c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: reading columns: %w", err)
	}

	rows, err = conn.Query(ctx, constraintsSQL, schemas)
	if err != nil {
		return nil, fmt.Errorf("policy: reading constraints: %w", err)
	}
	type crow struct {
		table         qname
		name, contype string
		delType       string
		def           string
		simple        bool
		f             cfk
	}
	var all []crow
	var r crow
	_, err = pgx.ForEachRow(rows, []any{&r.table.schema, &r.table.name, &r.name, &r.contype, &r.f.cols, &r.f.ref.schema, &r.f.ref.name, &r.f.refCols, &r.delType, &r.def, &r.simple}, func() error {
		if cat.tables[r.table] != nil {
			all = append(all, r)
		}
		r = crow{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: reading constraints: %w", err)
	}
	slices.SortFunc(all, func(a, b crow) int {
		return cmp.Or(compareQname(a.table, b.table), strings.Compare(a.name, b.name))
	})
	for _, r := range all {
		t := cat.tables[r.table]
		if r.contype == "f" {
			r.f.name = r.name
			r.f.onDelete = onDeleteCodes[r.delType]
		}
		t.cons = append(t.cons, ccon{name: r.name, contype: r.contype, def: r.def, f: r.f, simple: r.simple})
		switch r.contype {
		case "p", "u":
			t.keys = append(t.keys, r.f.cols)
		case "f":
			t.fks = append(t.fks, r.f)
		}
	}
	return cat, nil
}

// refColumns returns fk.RefColumns, or ["id"] when it is empty.
func refColumns(fk ForeignKey) []string {
	if len(fk.RefColumns) == 0 {
		return []string{"id"}
	}
	return fk.RefColumns
}

// referencesTenant returns a foreign key of t to a tenant table, or nil.
func referencesTenant(cat *catalog, t *ctable, tenant map[*ctable]string) *cfk {
	for i := range t.fks {
		if _, ok := tenant[cat.tables[t.fks[i].ref]]; ok {
			return &t.fks[i]
		}
	}
	return nil
}

// plainFKConstraints returns the foreign keys of m's tenant tables that
// one of the model's composite keys replaces as they are: the same columns
// and referenced table and columns, without the tenant column, the same ON
// DELETE action, and nothing else that the composite key would not carry
// (ON UPDATE, MATCH FULL, DEFERRABLE, NOT VALID).
func plainFKConstraints(cat *catalog, m *Model) []Constraint {
	def := cmp.Or(m.Schema, "public")
	var out []Constraint
	for _, t := range m.Tables {
		ct := cat.tables[splitName(def, t.Name)]
		if ct == nil {
			continue
		}
		for _, c := range ct.cons {
			if c.contype != "f" || !c.simple {
				continue
			}
			for _, fk := range t.ForeignKeys {
				if splitName(def, fk.RefTable) == c.f.ref && slices.Equal(fk.Columns, c.f.cols) &&
					slices.Equal(refColumns(fk), c.f.refCols) && sameOnDelete(fk.OnDelete, c.f.onDelete) {
					out = append(out, Constraint{Table: t.Name, Name: c.name, Type: ConstraintForeignKey,
						Columns: slices.Clone(c.f.cols), RefTable: fk.RefTable, RefColumns: slices.Clone(c.f.refCols), Definition: c.def})
					break
				}
			}
		}
	}
	return out
}

// sameOnDelete reports whether two ON DELETE actions are the same ("" is
// NO ACTION).
func sameOnDelete(a, b string) bool {
	norm := func(s string) string {
		if s = strings.ToUpper(strings.TrimSpace(s)); s == "NO ACTION" {
			return ""
		}
		return s
	}
	return norm(a) == norm(b)
}
