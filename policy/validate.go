package policy

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
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

// settingRE is what pgtenancy accepts as a setting name: a custom (dotted)
// setting in lower case, so that it needs no quoting in SET LOCAL.
var settingRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$`)

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

// plan is a validated, normalized model: defaults filled, tables and foreign
// keys in canonical order. Generate works from it only.
type plan struct {
	key     rls.KeyType
	setting string
	appRole string
	tables  []*ptable
	global  []qname
	citus   bool
	cons    []pcons // with citus: the constraints, by table and name
	// Without citus: the plain foreign keys that composite keys replace,
	// dropped after them (their violations would tell a writer whether a
	// key exists in another tenant).
	plainFKs []pcons
}

type ptable struct {
	q        qname
	column   string
	root     bool
	fks      []pfk
	existing [][]string
}

type pfk struct {
	cols     []string
	ref      *ptable
	refCols  []string
	onDelete string
	exists   bool
}

// Validate checks the model without a database: the key type, the setting
// and role names, that there is exactly one root table, that names are
// unique and well formed, and that every foreign key is between tenant
// tables and can be made composite. It returns nil or every problem found,
// joined; each is a [*ModelError] that matches [ErrInvalidModel].
func (m *Model) Validate() error {
	_, err := normalize(m)
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

// CheckSetting reports whether name is a setting name pgtenancy accepts: a
// lower-case custom setting such as "app.current_tenant". The error is a
// [*ModelError].
func CheckSetting(name string) error {
	if !settingRE.MatchString(name) {
		return &ModelError{Reason: fmt.Sprintf("setting %q is not a lower-case custom setting name like %q", name, DefaultSetting)}
	}
	return nil
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

func normalize(m *Model) (*plan, error) {
	if m == nil {
		return nil, &ModelError{Reason: "nil model"}
	}
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &ModelError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}

	p := &plan{key: m.KeyType, setting: cmp.Or(m.Setting, DefaultSetting), appRole: m.AppRole}
	schema := cmp.Or(m.Schema, "public")
	if !m.KeyType.Valid() {
		bad("", "", "key type %v is not bigint, uuid or text", m.KeyType)
	}
	if r := checkIdent(schema); r != "" {
		bad("", "", "default schema: %s", r)
	}
	if err := CheckSetting(p.setting); err != nil {
		errs = append(errs, err)
	}
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
		pt := &ptable{q: splitName(schema, t.Name), column: t.TenantColumn, root: t.Root}
		if r := checkIdent(t.TenantColumn); r != "" {
			bad(t.Name, t.TenantColumn, "tenant column: %s", r)
		}
		if prev, dup := byName[pt.q]; dup {
			bad(t.Name, "", "declared twice (also as %q)", written[prev])
			continue
		}
		if t.Root {
			roots = append(roots, t.Name)
		}
		for _, key := range t.ExistingKeys {
			if len(key) == 0 {
				bad(t.Name, "", "empty existing key")
			}
			for _, c := range key {
				if r := checkIdent(c); r != "" {
					bad(t.Name, c, "existing key column: %s", r)
				}
			}
			pt.existing = append(pt.existing, slices.Clone(key))
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

	if len(errs) == 0 && m.Citus {
		p.normalizeCitus(m, schema, byName, globals, bad)
	}
	if len(errs) == 0 && !m.Citus {
		p.normalizePlainFKs(m, schema, byName, bad)
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
	return pfk{
		cols: slices.Clone(fk.Columns), ref: ref, refCols: slices.Clone(refCols),
		onDelete: fk.OnDelete, exists: fk.Exists,
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

// normalizePlainFKs records, for a model without Citus, the foreign keys of
// m.Constraints that a composite key of the model replaces: same table,
// columns and referenced table and columns as one of its ForeignKeys. Their
// Definition is not used: Generate restores such a key in Down from those
// fields and the foreign key's OnDelete. Other constraints are for Citus
// and ignored here.
func (p *plan) normalizePlainFKs(m *Model, schema string, byName map[qname]*ptable,
	bad func(table, column, format string, args ...any)) {
	seen := map[[3]string]bool{}
	for _, c := range m.Constraints {
		if c.Type != ConstraintForeignKey || checkTableName(schema, c.Table) != "" || checkTableName(schema, c.RefTable) != "" {
			continue
		}
		pc := pcons{table: splitName(schema, c.Table), name: c.Name, typ: c.Type,
			cols: slices.Clone(c.Columns), refCols: slices.Clone(c.RefColumns), replaced: true}
		pc.tenant = byName[pc.table]
		pc.ref = splitName(schema, c.RefTable)
		ref := byName[pc.ref]
		if pc.tenant == nil || ref == nil {
			continue
		}
		i := pc.replacing(ref)
		if i < 0 {
			continue
		}
		pc.onDelete = pc.tenant.fks[i].onDelete
		key := [3]string{pc.table.schema, pc.table.name, c.Name}
		switch {
		case checkIdent(c.Name) != "":
			bad(c.Table, "", "constraint name: %s", checkIdent(c.Name))
			continue
		case seen[key]:
			bad(c.Table, "", "constraint %q declared twice", c.Name)
			continue
		}
		seen[key] = true
		p.plainFKs = append(p.plainFKs, pc)
	}
	slices.SortFunc(p.plainFKs, func(a, b pcons) int {
		return cmp.Or(compareQname(a.table, b.table), strings.Compare(a.name, b.name))
	})
}
