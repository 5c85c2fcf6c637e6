package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// PrepareOptions tell [Prepare] which tables hold tenant data and how the
// ones without the tenant column reach a tenant.
type PrepareOptions struct {
	// DiscoverOptions say, as for [Discover], which tables are tenant
	// tables (those with the tenant column), global or left out.
	DiscoverOptions
	// Setting is the tenant setting of the column defaults;
	// rls.DefaultSetting when empty.
	Setting string
	// References are references that the catalog does not declare as
	// foreign keys but that the user confirmed, such as
	// messages.conversation_id -> conversations.id: Prepare treats them as
	// foreign keys, and creates their composite form.
	References []Reference
	// Polymorphic are polymorphic references (a type column and an id
	// column, as Rails' taggable_type and taggable_id), each type mapped to
	// the table it names: a table without the tenant column takes it from
	// the row each of its rows references.
	Polymorphic []Polymorphic
	// InferReferences fills [Preparation.Proposed] with the references
	// that the <name>_id convention suggests and the catalog does not
	// declare, and the polymorphic ones with the types found in the rows.
	// They are proposals: Prepare uses only References and Polymorphic.
	InferReferences bool
	// BatchSize and LockTimeout are [policy.Preparation]'s.
	BatchSize   int
	LockTimeout time.Duration
}

// Reference is a reference from Table's Columns to RefTable's RefColumns
// (["id"] when empty). Names are as in [policy.Model].
type Reference struct {
	Table      string
	Columns    []string
	RefTable   string
	RefColumns []string
}

// String returns the reference as the --reference flag of pgtenancy
// prepare takes it: table.col[+col]=reftable.col[+col].
func (r Reference) String() string {
	return r.Table + "." + strings.Join(r.Columns, "+") + "=" + r.RefTable + "." + strings.Join(refCols(r.RefColumns), "+")
}

// Polymorphic is a polymorphic reference of Table: the row with
// TypeColumn = t references the row of Types[t] whose id is IDColumn.
type Polymorphic struct {
	Table                string
	TypeColumn, IDColumn string
	Types                map[string]string
}

// String returns the reference as the --polymorphic flag of pgtenancy
// prepare takes it: table.type_column+id_column=Type:table,...
func (p Polymorphic) String() string {
	var types []string
	for _, t := range slices.Sorted(maps.Keys(p.Types)) {
		types = append(types, t+":"+p.Types[t])
	}
	return p.Table + "." + p.TypeColumn + "+" + p.IDColumn + "=" + strings.Join(types, ",")
}

// Preparation is what [Prepare] plans.
type Preparation struct {
	// Migrations are the migrations to apply in order (see
	// [policy.Prepare]); none when every table is ready.
	Migrations []policy.NamedMigration
	// Tables say, for people, what the migrations do to each table, such
	// as "contact_inboxes: add account_id, filled from contacts
	// (contact_id)".
	Tables []string
	// Proposed are, with InferReferences, the references to confirm;
	// ProposedPolymorphic the polymorphic ones.
	Proposed            []Reference
	ProposedPolymorphic []Polymorphic
	// Notes are what the user should know: rows without a tenant, tables
	// left out, types that name no tenant table.
	Notes []string
}

// IsEmpty reports whether there is nothing to migrate.
func (p *Preparation) IsEmpty() bool { return len(p.Migrations) == 0 }

// Prepare plans the migrations that make a schema ready for [Plan]
// without long locks ([policy.Prepare] writes them):
//
//   - every table without the tenant column that references a tenant
//     table, through a foreign key, a confirmed Reference or a
//     Polymorphic reference, gets the column, filled from the parent row
//     (repeatedly: a table that references such a table gets it next);
//   - every tenant table but the root gets the column's default from the
//     setting, NOT NULL (unless its rows may be shared, DiscoverOptions
//     .Shared) and an index on it;
//   - every foreign key between tenant tables, and every confirmed
//     Reference, gets its composite form (NOT VALID, then validated),
//     keeping its ON DELETE action and deferrability, with the unique key
//     it references built concurrently.
//
// It reads the catalog in one transaction, and the rows where it must: it
// counts the rows without a tenant of a nullable tenant column, and with
// InferReferences reads the types of polymorphic columns. Run it again
// once the migrations are applied: it plans nothing. Problems are
// [*SchemaError]s and [*OptionsError]s, as for [Discover].
func Prepare(ctx context.Context, conn Conn, opts PrepareOptions) (*Preparation, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	setting, err := rls.Setting(opts.Setting)
	if err != nil {
		return nil, NewOptionsError("Setting", err)
	}
	var errs []error
	for _, r := range opts.References {
		if len(r.Columns) == 0 || r.Table == "" || r.RefTable == "" || len(refCols(r.RefColumns)) != len(r.Columns) {
			errs = append(errs, &OptionsError{Field: "References", Reason: fmt.Sprintf("reference %s: want a table, columns, and as many referenced columns", r)})
		}
	}
	for _, p := range opts.Polymorphic {
		if p.Table == "" || p.TypeColumn == "" || p.IDColumn == "" || len(p.Types) == 0 {
			errs = append(errs, &OptionsError{Field: "Polymorphic", Reason: fmt.Sprintf("polymorphic reference %s: want a table, a type and an id column, and at least one type", p)})
		}
	}
	if opts.BatchSize < 0 || opts.LockTimeout < 0 {
		errs = append(errs, &OptionsError{Field: "BatchSize", Reason: "BatchSize and LockTimeout must not be negative"})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	schemas := opts.Schemas
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	var prep *Preparation
	err = read(ctx, conn, snapshot.Options{Schemas: schemas}, func(tx pgx.Tx, s *snapshot.Snapshot) error {
		pl, err := newPlanner(s, schemas, opts, setting)
		if err != nil {
			return err
		}
		prep, err = pl.plan(ctx, tx)
		return err
	})
	return prep, err
}

// planner holds what Prepare knows of the schema.
type planner struct {
	refilled map[*snapshot.Table]bool // tables whose NULL tenants plan fills from a parent
	s        *snapshot.Snapshot
	opts     PrepareOptions
	setting  string
	def      string
	key      rls.KeyType
	root     *snapshot.Table
	scope    map[*snapshot.Table]bool
	global   map[*snapshot.Table]bool
	shared   map[*snapshot.Table]bool
	override map[*snapshot.Table]string
	tenant   map[*snapshot.Table]string // tables with the tenant column -> it
	refs     map[*snapshot.Table][]edge // confirmed references, by table
	poly     map[*snapshot.Table]*Polymorphic
}

// edge is a reference from a table to another.
type edge struct {
	name                 string // the foreign key's, "" for a confirmed reference
	cols                 []string
	ref                  *snapshot.Table
	refCols              []string
	onDelete             string
	deferrable, deferred bool
}

func newPlanner(s *snapshot.Snapshot, schemas []string, opts PrepareOptions, setting string) (*planner, error) {
	pl := &planner{s: s, opts: opts, setting: setting, def: schemas[0], scope: map[*snapshot.Table]bool{},
		global: map[*snapshot.Table]bool{}, shared: map[*snapshot.Table]bool{}, override: map[*snapshot.Table]string{},
		tenant: map[*snapshot.Table]string{}, refs: map[*snapshot.Table][]edge{}, poly: map[*snapshot.Table]*Polymorphic{}}
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &SchemaError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	inSchemas := func(q snapshot.QName) bool { return slices.Contains(schemas, q.Schema) }
	lookup := func(what, name string) *snapshot.Table {
		q := snapshot.SplitName(pl.def, name)
		if t := s.Lookup(q); t != nil && !t.Partition && inSchemas(q) {
			return t
		}
		bad(name, "", "%s table does not exist in schemas %s", what, strings.Join(schemas, ", "))
		return nil
	}
	pl.root = lookup("root", opts.Root)
	excluded := map[*snapshot.Table]bool{}
	for _, n := range opts.Exclude {
		if t := lookup("excluded", n); t != nil {
			excluded[t] = true
		}
	}
	for _, n := range slices.Concat(opts.Global, opts.WritableGlobal) {
		if t := lookup("global", n); t != nil {
			pl.global[t] = true
		}
	}
	for _, n := range opts.Shared {
		if t := lookup("shared", n); t != nil {
			pl.shared[t] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(opts.TenantColumns)) {
		if t := lookup("tenant", n); t != nil {
			pl.override[t] = opts.TenantColumns[n]
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
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	rootCol := cmp.Or(opts.RootColumn, "id")
	rc := pl.root.Column(rootCol)
	if rc == nil {
		return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: "root key column does not exist"}
	}
	if pl.key = opts.KeyType; pl.key == 0 {
		if pl.key = snapshot.KeyTypeOf(rc.Type); pl.key == 0 {
			return nil, &SchemaError{Table: opts.Root, Column: rootCol, Reason: fmt.Sprintf("root key column has type %s; want bigint, integer, smallint, uuid, text or varchar", rc.Type)}
		}
	}
	for _, t := range s.Tables {
		if t.Partition || !inSchemas(t.Name) || excluded[t] || (included != nil && !included[t] && t != pl.root) {
			continue
		}
		pl.scope[t] = true
		switch col := pl.columnOf(t); {
		case t == pl.root:
			pl.tenant[t] = rootCol
		case pl.global[t]:
		case t.Column(col) != nil:
			pl.tenant[t] = col
			if typ := t.Column(col).Type; snapshot.TenantKeyOf(typ, pl.key) == 0 {
				bad(pl.display(t), col, "tenant column has type %s; the tenant key type is %s", typ, pl.key)
			}
		}
	}
	for _, r := range opts.References {
		t, ref := lookup("referencing", r.Table), lookup("referenced", r.RefTable)
		if t == nil || ref == nil {
			continue
		}
		for _, c := range r.Columns {
			if t.Column(c) == nil {
				bad(r.Table, c, "column of reference %s does not exist", r)
			}
		}
		for _, c := range refCols(r.RefColumns) {
			if ref.Column(c) == nil {
				bad(r.RefTable, c, "column referenced by %s does not exist", r)
			}
		}
		pl.refs[t] = append(pl.refs[t], edge{cols: slices.Clone(r.Columns), ref: ref, refCols: slices.Clone(refCols(r.RefColumns))})
	}
	for i := range opts.Polymorphic {
		p := &opts.Polymorphic[i]
		t := lookup("polymorphic", p.Table)
		if t == nil {
			continue
		}
		for _, c := range []string{p.TypeColumn, p.IDColumn} {
			if t.Column(c) == nil {
				bad(p.Table, c, "column of polymorphic reference %s does not exist", p)
			}
		}
		for _, n := range slices.Sorted(maps.Keys(p.Types)) {
			lookup("polymorphic target", p.Types[n])
		}
		pl.poly[t] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pl, nil
}

// columnOf returns the name of t's tenant column, whether it exists or not.
func (pl *planner) columnOf(t *snapshot.Table) string {
	if c := pl.override[t]; c != "" {
		return c
	}
	return pl.opts.TenantColumn
}

func (pl *planner) display(t *snapshot.Table) string {
	if t.Name.Schema == pl.def && !strings.Contains(t.Name.Name, ".") {
		return t.Name.Name
	}
	return t.Name.Schema + "." + t.Name.Name
}

func (pl *planner) lookupName(name string) *snapshot.Table {
	return pl.s.Lookup(snapshot.SplitName(pl.def, name))
}

// edges returns t's foreign keys to tables in scope, and its confirmed
// references.
func (pl *planner) edges(t *snapshot.Table) []edge {
	var out []edge
	for _, c := range t.Constraints {
		if ref := pl.s.Table(c.Ref); c.Type == 'f' && ref != nil && pl.scope[ref] {
			out = append(out, edge{name: c.Name, cols: c.Columns, ref: ref, refCols: c.RefCols,
				onDelete: c.OnDelete, deferrable: c.Deferrable, deferred: c.Deferred})
		}
	}
	return append(out, pl.refs[t]...)
}

// notNull reports whether every column of cols is NOT NULL in t.
func notNull(t *snapshot.Table, cols []string) bool {
	for _, c := range cols {
		if col := t.Column(c); col == nil || !col.NotNull {
			return false
		}
	}
	return true
}

// plan works out what each table lacks and has policy.Prepare write it.
func (pl *planner) plan(ctx context.Context, tx pgx.Tx) (*Preparation, error) {
	prep := &Preparation{}
	p := &policy.Preparation{KeyType: pl.key, Schema: pl.def, Setting: pl.opts.Setting,
		BatchSize: pl.opts.BatchSize, LockTimeout: pl.opts.LockTimeout}

	// The tables that get the column, parents first.
	type added struct {
		t       *snapshot.Table
		sources []policy.TenantSource
		desc    string
	}
	var adds []added
	gets := map[*snapshot.Table]bool{}
	hasTenant := func(t *snapshot.Table) bool { return pl.tenant[t] != "" || gets[t] }
	tenantOf := func(t *snapshot.Table) string {
		if c := pl.tenant[t]; c != "" {
			return c
		}
		return pl.columnOf(t)
	}
	// source finds where t takes its tenant from: the types of its
	// polymorphic reference, or a reference to a table with the tenant
	// (one whose columns are NOT NULL first, then by name), never a table
	// with shared rows, whose rows have no tenant to give. ok says which
	// parents may serve.
	source := func(t *snapshot.Table, ok func(*snapshot.Table) bool) *added {
		if poly := pl.poly[t]; poly != nil {
			var srcs []policy.TenantSource
			var descs []string
			for _, typ := range slices.Sorted(maps.Keys(poly.Types)) {
				ref := pl.lookupName(poly.Types[typ])
				if ref == nil || !ok(ref) {
					return nil
				}
				srcs = append(srcs, policy.TenantSource{Columns: []string{poly.IDColumn}, RefTable: pl.display(ref),
					RefTenantColumn: tenantOf(ref), TypeColumn: poly.TypeColumn, TypeValue: typ})
				descs = append(descs, fmt.Sprintf("%s (%s = '%s')", pl.display(ref), poly.TypeColumn, typ))
			}
			return &added{t, srcs, strings.Join(descs, ", ")}
		}
		var best *edge
		for _, e := range pl.edges(t) {
			if e.ref == t || !ok(e.ref) || slices.Contains(e.cols, tenantOf(t)) {
				continue // itself, or through its own tenant column
			}
			if best == nil || notNull(t, e.cols) && !notNull(t, best.cols) {
				best = &e
			}
		}
		if best == nil {
			return nil
		}
		return &added{t, []policy.TenantSource{{Columns: best.cols, RefTable: pl.display(best.ref),
			RefColumns: best.refCols, RefTenantColumn: tenantOf(best.ref)}},
			fmt.Sprintf("%s (%s)", pl.display(best.ref), strings.Join(best.cols, ", "))}
	}
	for changed := true; changed; {
		changed = false
		for _, t := range pl.s.Tables {
			if !pl.scope[t] || hasTenant(t) || pl.global[t] || t == pl.root {
				continue
			}
			a := source(t, func(ref *snapshot.Table) bool { return hasTenant(ref) && !pl.shared[ref] })
			if a == nil {
				continue
			}
			if t.Partitioned {
				prep.Notes = append(prep.Notes, fmt.Sprintf("%s is partitioned: give it the tenant column by hand (pgtenancy prepare handles ordinary tables)", pl.display(t)))
				gets[t] = true // its children may still take the tenant from it
				continue
			}
			gets[t] = true
			adds = append(adds, *a)
			changed = true
		}
	}

	// Tables that have the column, nullable, with rows still without a
	// tenant, and a parent to take it from (a backfill that stopped or
	// was killed, or a column that was never filled): filled again, rows
	// still NULL only, parents first.
	nulls := map[*snapshot.Table]int64{}
	for _, t := range pl.s.Tables {
		col := pl.tenant[t]
		if !pl.scope[t] || col == "" || t == pl.root || pl.shared[t] || t.Partitioned {
			continue
		}
		if c := t.Column(col); c == nil || c.NotNull {
			continue
		}
		var n int64
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s IS NULL", t.Name.SQL(), quoteIdent(col))
		if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
			return nil, fmt.Errorf("catalog: counting the rows of %s without a tenant: %w", pl.display(t), err)
		}
		if n > 0 {
			nulls[t] = n
		}
	}
	var refills []added
	refilled := map[*snapshot.Table]bool{}
	pl.refilled = refilled
	for changed := true; changed; {
		changed = false
		for _, t := range pl.s.Tables {
			if nulls[t] == 0 || refilled[t] {
				continue
			}
			a := source(t, func(ref *snapshot.Table) bool {
				return pl.tenant[ref] != "" && !pl.shared[ref] && (nulls[ref] == 0 || refilled[ref])
			})
			if a == nil {
				continue
			}
			refilled[t] = true
			refills = append(refills, *a)
			changed = true
		}
	}

	if err := pl.s.Expect(ctx, tx, pl.want()); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	keys := map[string]*policy.PrepareKey{}
	var keyOrder []string
	tables := map[*snapshot.Table]*policy.PrepareTable{}
	describe := map[*snapshot.Table][]string{}
	entry := func(t *snapshot.Table) *policy.PrepareTable {
		if pt := tables[t]; pt != nil {
			return pt
		}
		pt := &policy.PrepareTable{Name: pl.display(t), TenantColumn: tenantOf(t)}
		if c := t.Column(pt.TenantColumn); c != nil {
			if k := snapshot.TenantKeyOf(c.Type, pl.key); k != pl.key {
				pt.TenantType = k // an integer column of another width
			}
		}
		tables[t] = pt
		return pt
	}
	// Tenant tables first (sorted by name), then those that get the
	// column, parents first.
	var subjects []*snapshot.Table
	for _, t := range pl.s.Tables {
		if pl.scope[t] && pl.tenant[t] != "" && t != pl.root {
			subjects = append(subjects, t)
		}
	}
	for _, a := range refills {
		pt := entry(a.t)
		pt.Sources, pt.Key = a.sources, singleKey(a.t)
		describe[a.t] = append(describe[a.t], fmt.Sprintf("fill the %d row(s) without %s from %s", nulls[a.t], pt.TenantColumn, a.desc))
	}
	for _, a := range adds {
		pt := entry(a.t)
		pt.AddColumn, pt.SetDefault, pt.Sources = true, true, a.sources
		pt.Key = singleKey(a.t)
		pt.NotNull = !pl.shared[a.t]
		describe[a.t] = append(describe[a.t], fmt.Sprintf("add %s, filled from %s", pt.TenantColumn, a.desc))
	}
	for _, t := range append(subjects, func() []*snapshot.Table {
		var ts []*snapshot.Table
		for _, a := range adds {
			ts = append(ts, a.t)
		}
		return ts
	}()...) {
		col := tenantOf(t)
		if c := t.Column(col); c != nil {
			ck := snapshot.ColumnKey{Name: col, Type: c.Type}
			if want := pl.s.Rendered(ck, policy.TenantDefaultExpr(cmp.Or(snapshot.TenantKeyOf(c.Type, pl.key), pl.key), pl.setting)); c.Default != want {
				entry(t).SetDefault = true
				describe[t] = append(describe[t], "default "+col+" from the tenant setting")
			}
			if !c.NotNull && !pl.shared[t] {
				pt := entry(t)
				pt.NotNull = true
				name := policy.NotNullCheckName(t.Name.Name, col)
				pt.CheckExists = slices.ContainsFunc(t.Checks, func(k snapshot.Check) bool { return k.Name == name })
				describe[t] = append(describe[t], col+" NOT NULL")
			}
		}
		// Composite forms of the references to other tenant tables.
		for _, e := range pl.edges(t) {
			// A table with shared rows stays referenced plainly: a
			// composite key would refuse references to its shared rows.
			if e.ref == pl.root || !hasTenant(e.ref) || pl.shared[e.ref] || slices.Contains(e.cols, col) {
				continue
			}
			cols, refCols := prepend(col, e.cols), prepend(tenantOf(e.ref), e.refCols)
			existing := compositeFK(t, e.ref, cols, refCols)
			if existing != nil && existing.Validated {
				continue
			}
			pt := entry(t)
			if slices.ContainsFunc(pt.ForeignKeys, func(f policy.PrepareFK) bool {
				return f.RefTable == pl.display(e.ref) && slices.Equal(f.Columns, e.cols) && slices.Equal(refColumnsOf(f), e.refCols)
			}) {
				continue // a plain key beside a confirmed reference, say
			}
			pt.ForeignKeys = append(pt.ForeignKeys, policy.PrepareFK{Columns: e.cols, RefTable: pl.display(e.ref),
				RefTenantColumn: tenantOf(e.ref), RefColumns: e.refCols, OnDelete: e.onDelete,
				Deferrable: e.deferrable, InitiallyDeferred: e.deferred, Exists: existing != nil})
			describe[t] = append(describe[t], fmt.Sprintf("composite key (%s) -> %s (%s)", strings.Join(cols, ", "), pl.display(e.ref), strings.Join(refCols, ", ")))
			if existing == nil && !hasKey(e.ref, refCols) {
				id := pl.display(e.ref) + "\x00" + strings.Join(refCols, "\x00")
				if keys[id] == nil {
					name := policy.KeyName(e.ref.Name.Name, refCols)
					keys[id] = &policy.PrepareKey{Table: pl.display(e.ref), Columns: refCols,
						IndexExists: slices.ContainsFunc(e.ref.Indexes, func(ix snapshot.Index) bool {
							return ix.Name == name && ix.Unique && !ix.Partial && slices.Equal(ix.Columns, refCols)
						}) && !slices.Contains(e.ref.InvalidIndexes, name)}
					keyOrder = append(keyOrder, id)
					describe[e.ref] = append(describe[e.ref], fmt.Sprintf("unique key (%s)", strings.Join(refCols, ", ")))
				}
			}
		}
	}
	// An index on the tenant column where none leads with it.
	for _, t := range append(subjects, func() []*snapshot.Table {
		var ts []*snapshot.Table
		for _, a := range adds {
			ts = append(ts, a.t)
		}
		return ts
	}()...) {
		col := tenantOf(t)
		if slices.ContainsFunc(t.Indexes, func(ix snapshot.Index) bool {
			return len(ix.Columns) > 0 && ix.Columns[0] == col && !slices.Contains(t.InvalidIndexes, ix.Name)
		}) || slices.ContainsFunc(keyOrder, func(id string) bool { return strings.HasPrefix(id, pl.display(t)+"\x00") }) {
			continue
		}
		entry(t).Index = true
		describe[t] = append(describe[t], "index on "+col)
	}
	// The tenant tables first, then those filled again and those that
	// get the column, parents first.
	for _, t := range subjects {
		if pt := tables[t]; pt != nil && !refilled[t] {
			p.Tables = append(p.Tables, *pt)
		}
	}
	for _, a := range refills {
		p.Tables = append(p.Tables, *tables[a.t])
	}
	for _, a := range adds {
		p.Tables = append(p.Tables, *tables[a.t])
	}
	for _, id := range keyOrder {
		p.Keys = append(p.Keys, *keys[id])
	}
	for _, t := range pl.s.Tables {
		if d := describe[t]; len(d) > 0 {
			prep.Tables = append(prep.Tables, pl.display(t)+": "+strings.Join(d, "; "))
		}
	}
	migs, err := policy.Prepare(p)
	if err != nil {
		return nil, err
	}
	prep.Migrations = migs

	if err := pl.notes(ctx, tx, prep, hasTenant); err != nil {
		return nil, err
	}
	if pl.opts.InferReferences {
		if err := pl.infer(ctx, tx, prep, hasTenant); err != nil {
			return nil, err
		}
	}
	return prep, nil
}

// want is what Expect must render: the tenant columns' default.
func (pl *planner) want() snapshot.Want {
	w := snapshot.Want{Setting: pl.setting}
	seen := map[snapshot.ColumnKey]bool{}
	for t, col := range pl.tenant {
		if c := t.Column(col); c != nil && !seen[snapshot.ColumnKey{Name: col, Type: c.Type}] {
			seen[snapshot.ColumnKey{Name: col, Type: c.Type}] = true
			w.Columns = append(w.Columns, snapshot.ColumnKey{Name: col, Type: c.Type})
		}
	}
	slices.SortFunc(w.Columns, func(a, b snapshot.ColumnKey) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Type, b.Type))
	})
	return w
}

func refColumnsOf(f policy.PrepareFK) []string { return refCols(f.RefColumns) }

func refCols(cols []string) []string {
	if len(cols) == 0 {
		return []string{"id"}
	}
	return cols
}

func prepend(first string, rest []string) []string { return append([]string{first}, rest...) }

// singleKey returns t's single-column primary key, or "".
func singleKey(t *snapshot.Table) string {
	for _, c := range t.Constraints {
		if c.Type == 'p' && len(c.Columns) == 1 {
			return c.Columns[0]
		}
	}
	return ""
}

// compositeFK returns t's foreign key to ref on exactly these columns, or
// nil.
func compositeFK(t, ref *snapshot.Table, cols, refCols []string) *snapshot.Constraint {
	for i, c := range t.Constraints {
		if c.Type == 'f' && c.Ref == ref.OID && slices.Equal(c.Columns, cols) && slices.Equal(c.RefCols, refCols) {
			return &t.Constraints[i]
		}
	}
	return nil
}

// hasKey reports whether t has a primary key or unique constraint on
// exactly cols.
func hasKey(t *snapshot.Table, cols []string) bool {
	return slices.ContainsFunc(t.Constraints, func(c snapshot.Constraint) bool {
		return (c.Type == 'p' || c.Type == 'u') && slices.Equal(c.Columns, cols)
	})
}

// notes adds what the user should know: tenant tables with rows without a
// tenant, and tables left out.
func (pl *planner) notes(ctx context.Context, tx pgx.Tx, prep *Preparation, hasTenant func(*snapshot.Table) bool) error {
	for _, t := range pl.s.Tables {
		col := pl.tenant[t]
		if !pl.scope[t] || col == "" || t == pl.root {
			continue
		}
		if c := t.Column(col); c == nil || c.NotNull {
			continue
		}
		var n int64
		q := fmt.Sprintf("SELECT count(*) FROM %s WHERE %s IS NULL", t.Name.SQL(), quoteIdent(col))
		if err := tx.QueryRow(ctx, q).Scan(&n); err != nil {
			return fmt.Errorf("catalog: counting the rows of %s without a tenant: %w", pl.display(t), err)
		}
		switch {
		case n == 0, pl.refilled[t]:
		case pl.shared[t]:
			prep.Notes = append(prep.Notes, fmt.Sprintf("%s: %d row(s) without %s, shared by every tenant (read-only to them)", pl.display(t), n, col))
		default:
			prep.Notes = append(prep.Notes, fmt.Sprintf("%s: %d row(s) without %s are visible to no tenant once isolated: give them a tenant, or list the table with --shared (DiscoverOptions.Shared) if every tenant should read them; the backfill stops on them until then", pl.display(t), n, col))
		}
	}
	var left []string
	for _, t := range pl.s.Tables {
		if pl.scope[t] && !hasTenant(t) && !pl.global[t] && !t.Partitioned && !ternVersionTable(t) {
			left = append(left, pl.display(t))
		}
	}
	if len(left) > 0 {
		prep.Notes = append(prep.Notes, fmt.Sprintf("left out, granted nothing (no tenant column, no reference to a tenant table): %s; list those all tenants share with --global (DiscoverOptions.Global), give those with undeclared references --reference or --polymorphic (References, Polymorphic)", strings.Join(left, ", ")))
	}
	return nil
}

// ternVersionTable reports whether t looks like tern's version table
// (schema_version, one integer column named version): the migration
// tool's, which the application never reads.
func ternVersionTable(t *snapshot.Table) bool {
	return t.Name.Name == "schema_version" && len(t.Columns) == 1 && t.Columns[0].Name == "version" && t.Columns[0].Type == "integer"
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
