package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// table is a tenant table of the snapshot as the operations see it: the
// columns they copy, in the order they copy them, and the foreign keys
// that order it.
type table struct {
	*snapshot.Table
	column string // the tenant column
	root   bool
	// cols are the columns an export carries, in its order: not the
	// generated ones, which the target computes.
	cols []snapshot.Column
	// refs are the other tenant tables this one references; selfRefs
	// are its foreign keys to itself.
	refs     []*table
	selfRefs []snapshot.Constraint
	// referenced is set when a tenant table references this one.
	referenced bool
}

// sequence is a sequence that fills an integer column: its owned sequence
// (serial, identity) or one its default calls.
type sequence struct {
	name   string // quoted, qualified
	column string
}

// seqs returns the ascending sequences of the integer columns that travel,
// which an import advances past the ids it brings.
func (t *table) seqs() []sequence {
	var out []sequence
	for _, c := range t.cols {
		if c.Copy.Integer {
			for _, s := range c.Copy.Sequences {
				if s.Increment > 0 {
					out = append(out, sequence{name: s.Name, column: c.Name})
				}
			}
		}
	}
	return out
}

// name returns schema.name.
func (t *table) name() string { return t.Name.String() }

// sql returns the quoted, qualified name.
func (t *table) sql() string { return t.Name.SQL() }

// predicate is the tenant predicate with the tenant as $1 in text.
func (t *table) predicate(key rls.KeyType) string {
	return sqlquote.Ident(t.column) + " = ($1::text)::" + key.String()
}

// literalPredicate is the tenant predicate with the tenant as a literal,
// for COPY, which takes no parameters.
func (t *table) literalPredicate(tenant rls.Tenant) string {
	return sqlquote.Ident(t.column) + " = " + sqlquote.Literal(tenant.String()) + "::" + tenant.Key().String()
}

// selectList is the list of what an export carries: the columns, those
// of Text as text.
func (t *table) selectList() string {
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		parts[i] = sqlquote.Ident(c.Name)
		if c.Copy.Text {
			parts[i] += "::text AS " + sqlquote.Ident(c.Name)
		}
	}
	return strings.Join(parts, ", ")
}

// columnList is the quoted column names.
func (t *table) columnList() string {
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		parts[i] = sqlquote.Ident(c.Name)
	}
	return strings.Join(parts, ", ")
}

// rowHash is the SQL of a row's hash (see hash.go).
func (t *table) rowHash() string {
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		if c.Copy.Text {
			parts[i] = "pg_catalog.textsend(" + sqlquote.Ident(c.Name) + "::text)"
		} else {
			parts[i] = c.Copy.Send + "(" + sqlquote.Ident(c.Name) + ")"
		}
	}
	return "pg_catalog.hash_array_extended(ARRAY[" + strings.Join(parts, ", ") + "]::bytea[], 0)"
}

// checksumSQL counts and sums the tenant's rows, with the tenant as $1.
func (t *table) checksumSQL(key rls.KeyType) string {
	return "SELECT count(*), COALESCE(sum(" + t.rowHash() + "), 0)::text FROM " + t.sql() + " WHERE " + t.predicate(key)
}

// layout is what an operation knows of a database: the model's tables
// in foreign key order, and the snapshot they were read from.
type layout struct {
	tables []*table
	// uncovered are the tables outside the model whose foreign keys
	// reference its tables.
	uncovered []UncoveredTable
	snap      *snapshot.Snapshot
}

// readLayout reads the model's tables with the one catalog reader (package
// internal/snapshot, one batch in tx) and returns them in foreign key
// order: every table after the tables it references, the root first. It
// refuses a database with the citus extension ([ErrCitus]) before
// anything else.
func readLayout(ctx context.Context, tx pgx.Tx, m *policy.Model) (*layout, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	// Every user schema: a table of any schema may reference the model's.
	snap, err := snapshot.Read(ctx, tx, snapshot.Options{Copy: true})
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if snap.Citus {
		return nil, fmt.Errorf("%w: to give a large tenant shards of its own, isolate it (package citus, Isolate; pgtenancy citus-isolate), "+
			"which moves it inside the cluster without exporting it; see docs/lifecycle.md", ErrCitus)
	}
	schema := cmp.Or(m.Schema, "public")
	l := &layout{snap: snap}
	byOID := map[uint32]*table{}
	var problems []string
	for _, mt := range m.Tables {
		q := snapshot.SplitName(schema, mt.Name)
		st := snap.Lookup(q)
		if st == nil {
			problems = append(problems, q.String()+": no such table")
			continue
		}
		t := &table{Table: st, column: mt.TenantColumn, root: mt.Root}
		for _, c := range st.Columns {
			if c.Copy == nil {
				return nil, fmt.Errorf("lifecycle: %s: the type of column %q was not read", t.name(), c.Name)
			}
			if !c.Copy.Generated {
				t.cols = append(t.cols, c)
			}
		}
		if !slices.ContainsFunc(t.cols, func(c snapshot.Column) bool { return c.Name == t.column }) {
			problems = append(problems, fmt.Sprintf("%s: no tenant column %q", t.name(), t.column))
		}
		byOID[st.OID] = t
		l.tables = append(l.tables, t)
	}
	if len(problems) > 0 {
		return nil, &SchemaMismatchError{Problems: problems}
	}
	for _, st := range snap.Tables {
		for _, f := range st.Constraints {
			if f.Type != 'f' {
				continue
			}
			child, parent := byOID[st.OID], byOID[f.Ref]
			switch {
			case parent == nil:
				// A reference to a global or unmanaged table.
			case child == nil:
				l.uncovered = append(l.uncovered, UncoveredTable{Table: st.Name.String(),
					Reason: fmt.Sprintf("its foreign key %s references the tenant table %s", f.Name, f.RefName)})
			case child == parent:
				child.selfRefs = append(child.selfRefs, f)
				child.referenced = true
			case !slices.Contains(child.refs, parent):
				child.refs = append(child.refs, parent)
				parent.referenced = true
			}
		}
	}
	l.tables, err = fkOrder(l.tables)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// fkOrder sorts the tables so that each comes after those it references:
// the root first, then, of the tables whose references are all placed, the
// first by name.
func fkOrder(tables []*table) ([]*table, error) {
	left := slices.Clone(tables)
	slices.SortFunc(left, func(a, b *table) int {
		return cmp.Or(-compareBool(a.root, b.root), a.Name.Compare(b.Name))
	})
	placed := map[*table]bool{}
	var out []*table
	for len(left) > 0 {
		i := slices.IndexFunc(left, func(t *table) bool {
			return !slices.ContainsFunc(t.refs, func(r *table) bool { return !placed[r] })
		})
		if i < 0 {
			names := make([]string, len(left))
			for j, t := range left {
				names[j] = t.name()
			}
			return nil, fmt.Errorf("%w: %s", ErrForeignKeyCycle, strings.Join(names, ", "))
		}
		placed[left[i]] = true
		out = append(out, left[i])
		left = slices.Delete(left, i, i+1)
	}
	return out, nil
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
