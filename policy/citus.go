package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// pcons is a validated [Constraint] of a Citus model.
type pcons struct {
	table   qname
	tenant  *ptable // the table, when it is a tenant table
	name    string
	typ     string
	cols    []string
	ref     qname // foreign keys
	refCols []string
	def     string
	// replaced: a foreign key that pgtenancy replaces by a composite key, or a
	// key without the tenant column that it replaces by one with it.
	replaced bool
	// onDelete: without Citus, the ON DELETE action of the plain foreign
	// key, that of the model's foreign key that replaces it; deferrable
	// and deferred, its DEFERRABLE and INITIALLY DEFERRED.
	onDelete             string
	deferrable, deferred bool
}

// replacing returns the index of the foreign key of pc's table that a
// composite key generates in place of pc (same referenced table, columns
// and referenced columns), or -1.
func (pc *pcons) replacing(ref *ptable) int {
	return slices.IndexFunc(pc.tenant.fks, func(f pfk) bool {
		return f.ref == ref && slices.Equal(f.cols, pc.cols) && slices.Equal(f.refCols, pc.refCols)
	})
}

// normalizeCitus records, for a Citus model, the constraints of e that
// Generate must handle around distribution: the keys of tenant tables
// without the tenant column, which Citus refuses (replaced by keys with
// it), and the foreign keys between the model's tables (dropped while the
// tables are distributed, then re-created or replaced by composite keys).
// applyExisting has checked them. Every problem goes to bad.
func (p *spec) normalizeCitus(e *Existing, byName map[qname]*ptable, globals map[qname]bool,
	bad func(table, column, format string, args ...any)) {
	p.citus = true
	if e == nil {
		return
	}
	for _, c := range e.Constraints {
		pc := pcons{table: splitName(p.schema, c.Table), name: c.Name, typ: c.Type,
			cols: slices.Clone(c.Columns), refCols: slices.Clone(c.RefColumns), def: c.Definition}
		pc.tenant = byName[pc.table]
		switch {
		case c.Definition == "":
			bad(c.Table, "", "existing constraint %q: with Citus, its Definition is needed to restore it in Down", c.Name)
			continue
		case !strings.HasPrefix(c.Definition, c.Type+" ") || strings.ContainsRune(c.Definition, ';'):
			// Down copies it: it must be one constraint of that type.
			bad(c.Table, "", "existing constraint %q: definition %q does not start with %s or holds a semicolon", c.Name, c.Definition, c.Type)
			continue
		}
		if c.Type != ConstraintForeignKey {
			if pc.tenant == nil || slices.Contains(pc.cols, pc.tenant.column) {
				continue // Citus accepts it: nothing to do
			}
			pc.replaced = true
			k := prepend(pc.tenant.column, pc.cols)
			if !slices.ContainsFunc(pc.tenant.existing, func(e []string) bool { return slices.Equal(e, k) }) {
				pc.tenant.existing = append(pc.tenant.existing, k)
			}
			p.cons = append(p.cons, pc)
			continue
		}
		pc.ref = splitName(p.schema, c.RefTable)
		ref := byName[pc.ref]
		switch {
		case ref == nil && !globals[pc.ref]:
			bad(c.Table, strings.Join(c.Columns, ", "), "foreign key %q references %q, which is not in the model: Citus cannot distribute a table that references a local table", c.Name, c.RefTable)
			continue
		case pc.tenant == nil && ref != nil:
			bad(c.Table, strings.Join(c.Columns, ", "), "foreign key %q from the global table to the tenant table %q: Citus refuses foreign keys from reference tables to distributed tables", c.Name, c.RefTable)
			continue
		case pc.tenant != nil && ref != nil && !pairsTenant(pc, pc.tenant, ref):
			if pc.replacing(ref) < 0 {
				bad(c.Table, strings.Join(c.Columns, ", "), "foreign key %q to %q does not pair the tenant columns, which Citus refuses between distributed tables: declare it in the table's ForeignKeys so that pgtenancy replaces it with a composite key", c.Name, c.RefTable)
				continue
			}
			pc.replaced = true
		}
		p.cons = append(p.cons, pc)
	}
	slices.SortFunc(p.cons, func(a, b pcons) int {
		return cmp.Or(compareQname(a.table, b.table), strings.Compare(a.name, b.name))
	})
}

// pairsTenant reports whether a foreign key between tenant tables pairs
// their tenant columns at the same position, which Citus requires.
func pairsTenant(c pcons, t, ref *ptable) bool {
	for i := range c.cols {
		if c.cols[i] == t.column && c.refCols[i] == ref.column {
			return true
		}
	}
	return false
}

// citusPrologue is the statement at the top of Up and Down for Citus.
func (p *spec) citusPrologue() string {
	if !p.citus {
		return ""
	}
	return "\n-- Citus: one connection per node for the DDL on the shards, which DDL on distributed and reference tables in one transaction needs.\n" +
		"SET LOCAL citus.multi_shard_modify_mode TO 'sequential';\n"
}

// ddl returns stmt, for Citus inside a DO block. Citus propagates some
// statements (ALTER TABLE, DROP POLICY, CREATE INDEX) to the shards with the text of
// the whole query string: in a string of several statements, as tern and
// other migration tools send a migration, they fail with "cannot insert
// multiple commands into a prepared statement". In a DO block each
// statement has a query string of its own.
func (p *spec) ddl(stmt string) string {
	if !p.citus {
		return stmt
	}
	return "DO " + dollarQuote("BEGIN "+stmt+" END") + ";"
}

// dollarQuote quotes body with a dollar tag that body does not contain.
func dollarQuote(body string) string {
	tag := "$pgtenancy$"
	for i := 1; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$pgtenancy%d$", i)
	}
	return tag + body + tag
}

// citusSteps returns the Citus steps of Generate: foreign keys between the
// model's tables dropped, keys given the tenant column, the tables
// distributed, and the foreign keys that Citus accepts re-created.
func (p *spec) citusSteps() []step {
	var steps []step
	for _, c := range p.cons {
		if c.typ != ConstraintForeignKey {
			continue
		}
		tbl, name := c.table.sql(), sqlquote.Ident(c.name)
		steps = append(steps, step{
			kind: stepCitusDetach, table: c.table, ref: c.ref, replaced: c.replaced,
			up:   p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s;", tbl, name)),
			down: p.ddl(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s;", tbl, name, c.def)),
		})
	}
	for _, c := range p.cons {
		if c.typ == ConstraintForeignKey {
			continue
		}
		tbl, name := c.table.sql(), sqlquote.Ident(c.name)
		steps = append(steps, step{
			kind: stepCitusKey, table: c.table, replaced: true,
			up: p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s (%s);",
				tbl, name, name, c.typ, identList(prepend(c.tenant.column, c.cols)))),
			down: p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s, ADD CONSTRAINT %s %s;", tbl, name, name, c.def)),
		})
	}
	var root *ptable
	for _, t := range p.tables {
		if t.root {
			root = t
		}
	}
	distribute := func(q qname, call string) step {
		lit := sqlquote.Literal(q.sql())
		up := fmt.Sprintf(`
DECLARE
    forced boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = %[1]s::regclass) THEN
        -- Citus copies the rows with COPY, which FORCE ROW LEVEL SECURITY
        -- refuses to a table owner that is not a superuser.
        SELECT relforcerowsecurity INTO forced FROM pg_catalog.pg_class WHERE oid = %[1]s::regclass;
        IF forced THEN
            ALTER TABLE %[2]s NO FORCE ROW LEVEL SECURITY;
        END IF;
        PERFORM %[3]s;
        PERFORM truncate_local_data_after_distributing_table(%[1]s);
        IF forced THEN
            ALTER TABLE %[2]s FORCE ROW LEVEL SECURITY;
        END IF;
    END IF;
END
`, lit, q.sql(), call)
		down := fmt.Sprintf(`
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid = %[1]s::regclass) THEN
        PERFORM undistribute_table(%[1]s);
    END IF;
END
`, lit)
		return step{kind: stepCitusDistribute, table: q,
			up: "DO " + dollarQuote(up) + ";", down: "DO " + dollarQuote(down) + ";"}
	}
	rootLit := sqlquote.Literal(root.q.sql())
	steps = append(steps, distribute(root.q, fmt.Sprintf("create_distributed_table(%s, %s, colocate_with => 'none')",
		rootLit, sqlquote.Literal(root.column))))
	for _, t := range p.tables {
		if t != root {
			steps = append(steps, distribute(t.q, fmt.Sprintf("create_distributed_table(%s, %s, colocate_with => %s)",
				sqlquote.Literal(t.q.sql()), sqlquote.Literal(t.column), rootLit)))
		}
	}
	for _, g := range p.global {
		steps = append(steps, distribute(g, fmt.Sprintf("create_reference_table(%s)", sqlquote.Literal(g.sql()))))
	}
	for _, c := range p.cons {
		if c.typ != ConstraintForeignKey || c.replaced {
			continue
		}
		tbl, name := c.table.sql(), sqlquote.Ident(c.name)
		steps = append(steps, step{
			kind: stepCitusReattach, table: c.table, ref: c.ref,
			up:   p.ddl(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s;", tbl, name, c.def)),
			down: p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tbl, name)),
		})
	}
	return steps
}

// citusDone reports whether Plan leaves a Citus step out: a table already
// in Citus's metadata is not distributed again, and a foreign key that
// Citus accepts between two such tables is neither dropped nor re-created.
func citusDone(st step, distributed map[qname]bool) bool {
	switch st.kind {
	case stepCitusDistribute:
		return distributed[st.table]
	case stepCitusDetach, stepCitusReattach:
		return !st.replaced && distributed[st.table] && distributed[st.ref]
	}
	return false
}
