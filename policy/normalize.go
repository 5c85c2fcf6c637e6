package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/rls"
)

// maxIdentLen is the longest identifier PostgreSQL keeps (NAMEDATALEN-1);
// longer ones are silently truncated, which would make generated SQL and the
// catalog disagree.
const maxIdentLen = 63

// The ON DELETE actions a [ForeignKey] accepts.
var onDeleteActions = []string{"", "NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"}

// qname is a schema-qualified table name.
type qname struct{ schema, name string }

// sql returns the quoted, qualified name.
func (q qname) sql() string { return sqlquote.Qualified(q.schema, q.name) }

func (q qname) String() string { return q.schema + "." + q.name }

func compareQname(a, b qname) int {
	return cmp.Or(strings.Compare(a.schema, b.schema), strings.Compare(a.name, b.name))
}

// splitName splits a model table name at its first dot; an unqualified name
// is in schema def.
func splitName(def, s string) qname {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return qname{s[:i], s[i+1:]}
	}
	return qname{def, s}
}

// IntegerKey reports whether k is bigint, integer or smallint: the key
// types whose tenant columns may mix ([Table.TenantType]).
func IntegerKey(k rls.KeyType) bool {
	return k == rls.BigInt || k == rls.Integer || k == rls.SmallInt
}

// spec is a validated, normalized model, with the facts of an [Existing]
// applied: defaults filled, tables and foreign keys in canonical order.
// Generate and Plan work from it only.
type spec struct {
	key     rls.KeyType
	setting string
	appRole string
	schema  string // the model's default schema
	tables  []*ptable
	global  []qname
	// writable are the global tables of Model.WritableGlobal.
	writable map[qname]bool
	citus    bool
	signed   bool
	cons     []pcons // with citus: the constraints, by table and name
	// Without citus: the plain foreign keys that composite keys replace,
	// dropped after them (their violations would tell a writer whether a
	// key exists in another tenant).
	plainFKs []pcons
}

type ptable struct {
	q        qname
	column   string
	key      rls.KeyType // the tenant column's type: the model's, or Table.TenantType
	root     bool
	shared   bool
	fks      []pfk
	existing [][]string
}

type pfk struct {
	cols     []string
	ref      *ptable
	refCols  []string
	onDelete string
	exists   bool
	// deferrable and deferred: DEFERRABLE, INITIALLY DEFERRED.
	deferrable, deferred bool
}

// Validate checks the model without a database: the key type, the setting
// and role names, that there is exactly one root table, that names are
// unique and well formed, and that every foreign key is between tenant
// tables and can be made composite. It returns nil or every problem found,
// joined; each is a [*ModelError] that matches [ErrInvalidModel].
func (m *Model) Validate() error {
	_, err := normalize(m, nil)
	return err
}

func checkIdent(s string) string {
	switch {
	case s == "":
		return "empty name"
	case len(s) > maxIdentLen:
		return fmt.Sprintf("name longer than %d bytes", maxIdentLen)
	case strings.IndexByte(s, 0) >= 0:
		return "name contains a NUL byte"
	case !utf8.ValidString(s):
		return "name is not valid UTF-8"
	}
	return ""
}

func checkTableName(def, s string) string {
	if s == "" {
		return "empty table name"
	}
	q := splitName(def, s)
	if r := checkIdent(q.schema); r != "" {
		return "schema: " + r
	}
	if r := checkIdent(q.name); r != "" {
		return r
	}
	return ""
}

func checkRole(s string) string {
	if r := checkIdent(s); r != "" {
		return r
	}
	switch {
	case s == "public" || s == "none":
		return fmt.Sprintf("%q is a reserved role name", s)
	case strings.HasPrefix(s, "pg_"):
		return "role names starting with pg_ are reserved for predefined roles"
	}
	return ""
}

// normalize validates m and applies the facts of e (nil: a database with
// none of the model's objects).
func normalize(m *Model, e *Existing) (*spec, error) {
	if m == nil {
		return nil, &ModelError{Reason: "nil model"}
	}
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &ModelError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}

	schema := cmp.Or(m.Schema, "public")
	p := &spec{key: m.KeyType, appRole: m.AppRole, schema: schema, writable: map[qname]bool{}, signed: m.Signed}
	if m.Signed && m.Citus {
		errs = append(errs, &ModelError{Reason: ErrSignedCitus.Error(), err: ErrSignedCitus})
	}
	if !m.KeyType.Valid() {
		bad("", "", "key type %v is not %s", m.KeyType, rls.ValidKeyTypes)
	}
	if r := checkIdent(schema); r != "" {
		bad("", "", "default schema: %s", r)
	}
	setting, err := rls.Setting(m.Setting)
	if err != nil {
		errs = append(errs, &ModelError{Reason: err.Error(), err: err})
	}
	p.setting = setting
	if m.AppRole != "" {
		if r := checkRole(m.AppRole); r != "" {
			bad("", "", "app role %q: %s", m.AppRole, r)
		}
	}

	byName := make(map[qname]*ptable, len(m.Tables))
	written := make(map[*ptable]string, len(m.Tables))
	var roots []string
	for i := range m.Tables {
		t := &m.Tables[i]
		if r := checkTableName(schema, t.Name); r != "" {
			bad(t.Name, "", "%s", r)
			continue
		}
		pt := &ptable{q: splitName(schema, t.Name), column: t.TenantColumn, root: t.Root, shared: t.SharedRows, key: cmp.Or(t.TenantType, m.KeyType)}
		switch {
		case t.TenantType == 0 || t.TenantType == m.KeyType:
		case !t.TenantType.Valid():
			bad(t.Name, t.TenantColumn, "tenant type %v is not %s", t.TenantType, rls.ValidKeyTypes)
		case !IntegerKey(t.TenantType) || !IntegerKey(m.KeyType):
			bad(t.Name, t.TenantColumn, "tenant type %s differs from the key type %s: only integer types (bigint, integer, smallint) mix", t.TenantType, m.KeyType)
		case t.Root:
			bad(t.Name, t.TenantColumn, "tenant type %s differs from the key type %s: the root table's key is the key type", t.TenantType, m.KeyType)
		case m.Citus:
			bad(t.Name, t.TenantColumn, "tenant type %s differs from the key type %s: Citus co-locates only tables whose distribution columns have the same type", t.TenantType, m.KeyType)
		}
		if r := checkIdent(t.TenantColumn); r != "" {
			bad(t.Name, t.TenantColumn, "tenant column: %s", r)
		}
		switch {
		case t.SharedRows && t.Root:
			bad(t.Name, "", "the root table cannot have shared rows: its tenant column is its key")
		case t.SharedRows && m.Citus:
			bad(t.Name, "", "shared rows (a NULL tenant) are not possible with Citus, which refuses NULL in a distribution column: make the table a global one, or give the shared rows a tenant of their own")
		}
		if prev, dup := byName[pt.q]; dup {
			bad(t.Name, "", "declared twice (also as %q)", written[prev])
			continue
		}
		if t.Root {
			roots = append(roots, t.Name)
		}
		byName[pt.q] = pt
		written[pt] = t.Name
		p.tables = append(p.tables, pt)
	}
	switch len(roots) {
	case 0:
		bad("", "", "no root table (the table whose rows are the tenants, such as stores, with Root: true)")
	case 1:
	default:
		bad(roots[1], "", "more than one root table (%s)", strings.Join(roots, ", "))
	}

	globals := make(map[qname]bool, len(m.Global))
	for _, g := range m.Global {
		if r := checkTableName(schema, g); r != "" {
			bad(g, "", "global table: %s", r)
			continue
		}
		q := splitName(schema, g)
		if _, ok := byName[q]; ok {
			bad(g, "", "declared both as a tenant table and as a global table")
			continue
		}
		if globals[q] {
			bad(g, "", "global table declared twice")
			continue
		}
		globals[q] = true
		p.global = append(p.global, q)
	}
	for _, g := range m.WritableGlobal {
		if r := checkTableName(schema, g); r != "" {
			bad(g, "", "writable global table: %s", r)
			continue
		}
		q := splitName(schema, g)
		if _, ok := byName[q]; ok {
			bad(g, "", "declared both as a tenant table and as a writable global table")
			continue
		}
		if p.writable[q] {
			bad(g, "", "writable global table declared twice")
			continue
		}
		p.writable[q] = true
		if !globals[q] {
			globals[q] = true
			p.global = append(p.global, q)
		}
	}

	for i := range m.Tables {
		t := &m.Tables[i]
		pt := byName[splitName(schema, t.Name)]
		if pt == nil || written[pt] != t.Name {
			continue // already reported
		}
		for _, fk := range t.ForeignKeys {
			if f, ok := normalizeFK(t, fk, schema, byName, globals, bad); ok {
				pt.fks = append(pt.fks, f)
			}
		}
		slices.SortFunc(pt.fks, compareFK)
		for j := 1; j < len(pt.fks); j++ {
			if compareFK(pt.fks[j-1], pt.fks[j]) == 0 || sameFK(pt.fks[j-1], pt.fks[j]) {
				bad(t.Name, strings.Join(pt.fks[j].cols, ", "), "foreign key to %q declared twice", written[pt.fks[j].ref])
			}
		}
	}

	if len(errs) == 0 && e != nil {
		p.applyExisting(e, byName, globals, bad)
	}
	if len(errs) == 0 && m.Citus {
		p.normalizeCitus(e, byName, globals, bad)
	}
	if len(errs) == 0 && !m.Citus && e != nil {
		p.normalizePlainFKs(e, byName)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(p.tables, func(a, b *ptable) int { return compareQname(a.q, b.q) })
	slices.SortFunc(p.global, compareQname)
	return p, nil
}

func normalizeFK(t *Table, fk ForeignKey, schema string, byName map[qname]*ptable,
	globals map[qname]bool, bad func(table, column, format string, args ...any)) (pfk, bool) {
	colList := strings.Join(fk.Columns, ", ")
	ok := true
	if len(fk.Columns) == 0 {
		bad(t.Name, "", "foreign key to %q has no columns", fk.RefTable)
		return pfk{}, false
	}
	if r := checkTableName(schema, fk.RefTable); r != "" {
		bad(t.Name, colList, "foreign key target %q: %s", fk.RefTable, r)
		return pfk{}, false
	}
	rq := splitName(schema, fk.RefTable)
	ref := byName[rq]
	switch {
	case ref == nil && globals[rq]:
		bad(t.Name, colList, "foreign key target %q is a global table: reference it with a plain foreign key, not a tenant ForeignKey", fk.RefTable)
		return pfk{}, false
	case ref == nil:
		bad(t.Name, colList, "foreign key target %q is not a declared tenant table", fk.RefTable)
		return pfk{}, false
	case ref.root:
		bad(t.Name, colList, "foreign key to the root table %q: reference the root through the tenant column with a plain foreign key; a reference through other columns cannot be made tenant-safe", fk.RefTable)
		return pfk{}, false
	case ref.shared:
		bad(t.Name, colList, "foreign key target %q has shared rows, which a composite key cannot reference (their tenant is NULL): keep a plain foreign key to it, not a tenant ForeignKey", fk.RefTable)
		return pfk{}, false
	}
	refCols := fk.RefColumns
	if len(refCols) == 0 {
		refCols = []string{"id"}
	}
	if len(refCols) != len(fk.Columns) {
		bad(t.Name, colList, "foreign key has %d columns but references %d (%s) in %q", len(fk.Columns), len(refCols), strings.Join(refCols, ", "), fk.RefTable)
		ok = false
	}
	seen := map[string]bool{}
	for _, c := range fk.Columns {
		switch r := checkIdent(c); {
		case r != "":
			bad(t.Name, c, "foreign key column: %s", r)
			ok = false
		case c == t.TenantColumn:
			bad(t.Name, c, "foreign key to %q lists the tenant column, which pgtenancy adds itself in first position", fk.RefTable)
			ok = false
		case seen[c]:
			bad(t.Name, c, "foreign key to %q lists the column twice", fk.RefTable)
			ok = false
		}
		seen[c] = true
	}
	seen = map[string]bool{}
	for _, c := range refCols {
		switch r := checkIdent(c); {
		case r != "":
			bad(t.Name, colList, "foreign key referenced column of %q: %s", fk.RefTable, r)
			ok = false
		case c == ref.column:
			bad(t.Name, colList, "foreign key references the tenant column %q of %q, which pgtenancy adds itself in first position", c, fk.RefTable)
			ok = false
		case seen[c]:
			bad(t.Name, colList, "foreign key references column %q of %q twice", c, fk.RefTable)
			ok = false
		}
		seen[c] = true
	}
	if !slices.Contains(onDeleteActions, fk.OnDelete) {
		bad(t.Name, colList, "foreign key ON DELETE %q is not one of NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT (or empty)", fk.OnDelete)
		ok = false
	}
	if fk.InitiallyDeferred && !fk.Deferrable {
		bad(t.Name, colList, "foreign key to %q is InitiallyDeferred but not Deferrable", fk.RefTable)
		ok = false
	}
	return pfk{
		cols: slices.Clone(fk.Columns), ref: ref, refCols: slices.Clone(refCols),
		onDelete: fk.OnDelete, deferrable: fk.Deferrable, deferred: fk.InitiallyDeferred,
	}, ok
}

// compareFK orders foreign keys canonically: by columns, target, referenced
// columns and action.
func compareFK(a, b pfk) int {
	return cmp.Or(
		slices.Compare(a.cols, b.cols),
		compareQname(a.ref.q, b.ref.q),
		slices.Compare(a.refCols, b.refCols),
		strings.Compare(a.onDelete, b.onDelete),
		compareBool(a.exists, b.exists),
	)
}

// sameFK reports whether two foreign keys would be the same constraint.
func sameFK(a, b pfk) bool {
	return slices.Equal(a.cols, b.cols) && a.ref == b.ref && slices.Equal(a.refCols, b.refCols)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// applyExisting records the facts of e that Generate needs on the model's
// tables: their unique keys, and the foreign keys whose composite form is
// there. Each constraint of e is checked, since e may be built by hand.
func (p *spec) applyExisting(e *Existing, byName map[qname]*ptable, globals map[qname]bool,
	bad func(table, column, format string, args ...any)) {
	seen := map[[3]string]bool{}
	for _, c := range e.Constraints {
		if r := checkTableName(p.schema, c.Table); r != "" {
			bad(c.Table, "", "existing constraint %q: %s", c.Name, r)
			continue
		}
		q := splitName(p.schema, c.Table)
		t := byName[q]
		if t == nil && !globals[q] {
			bad(c.Table, "", "existing constraint %q is on a table that is neither a tenant table nor a global table of the model", c.Name)
			continue
		}
		key := [3]string{q.schema, q.name, c.Name}
		switch r := checkIdent(c.Name); {
		case r != "":
			bad(c.Table, "", "existing constraint name: %s", r)
			continue
		case seen[key]:
			bad(c.Table, "", "existing constraint %q listed twice", c.Name)
			continue
		}
		seen[key] = true
		if !slices.Contains([]string{ConstraintPrimaryKey, ConstraintUnique, ConstraintForeignKey}, c.Type) {
			bad(c.Table, "", "existing constraint %q: type %q is not PRIMARY KEY, UNIQUE or FOREIGN KEY", c.Name, c.Type)
			continue
		}
		ok := len(c.Columns) > 0 && (c.Type != ConstraintForeignKey || len(c.RefColumns) == len(c.Columns))
		for _, col := range slices.Concat(c.Columns, c.RefColumns) {
			if checkIdent(col) != "" {
				ok = false
			}
		}
		if c.Type == ConstraintForeignKey && checkTableName(p.schema, c.RefTable) != "" {
			ok = false
		}
		if !ok {
			bad(c.Table, "", "existing constraint %q: bad or missing column names or referenced table", c.Name)
			continue
		}
		if t == nil {
			continue
		}
		if c.Type != ConstraintForeignKey {
			if !slices.ContainsFunc(t.existing, func(k []string) bool { return slices.Equal(k, c.Columns) }) {
				t.existing = append(t.existing, slices.Clone(c.Columns))
			}
			continue
		}
		ref := byName[splitName(p.schema, c.RefTable)]
		if ref == nil || len(c.Columns) < 2 || c.Columns[0] != t.column || c.RefColumns[0] != ref.column {
			continue
		}
		for i := range t.fks {
			f := &t.fks[i]
			if f.ref == ref && slices.Equal(f.cols, c.Columns[1:]) && slices.Equal(f.refCols, c.RefColumns[1:]) {
				f.exists = true
			}
		}
	}
}

// normalizePlainFKs records, for a model without Citus, the foreign keys of
// e that a composite key of the model replaces as they are: same table,
// columns and referenced table and columns as one of its foreign keys,
// the same ON DELETE action, and [Constraint.Replaceable]. Generate drops
// them after creating the composite keys and restores them in Down from
// those fields and the foreign key's OnDelete, never from a Definition.
// The composite key takes the deferrability of the key it replaces.
func (p *spec) normalizePlainFKs(e *Existing, byName map[qname]*ptable) {
	for _, c := range e.Constraints {
		if c.Type != ConstraintForeignKey || !c.Replaceable {
			continue
		}
		pc := pcons{table: splitName(p.schema, c.Table), name: c.Name, typ: c.Type,
			cols: slices.Clone(c.Columns), refCols: slices.Clone(c.RefColumns), replaced: true}
		pc.tenant = byName[pc.table]
		pc.ref = splitName(p.schema, c.RefTable)
		ref := byName[pc.ref]
		if pc.tenant == nil || ref == nil {
			continue
		}
		i := pc.replacing(ref)
		if i < 0 || !sameOnDelete(pc.tenant.fks[i].onDelete, c.OnDelete) {
			continue
		}
		pc.onDelete = pc.tenant.fks[i].onDelete
		pc.deferrable, pc.deferred = c.Deferrable, c.Deferrable && c.InitiallyDeferred
		if f := &pc.tenant.fks[i]; pc.deferrable && !f.exists {
			f.deferrable, f.deferred = true, pc.deferred
		}
		p.plainFKs = append(p.plainFKs, pc)
	}
	slices.SortFunc(p.plainFKs, func(a, b pcons) int {
		return cmp.Or(compareQname(a.table, b.table), strings.Compare(a.name, b.name))
	})
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
