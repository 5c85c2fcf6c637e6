package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Check compares a model with the live database: every tenant and global
// table exists (as a table, not a partition), every tenant column exists
// with the model's key type (bigint, uuid, or text or varchar for text
// keys), every foreign key's columns exist on its table and its referenced
// columns on the referenced table, and no global table has a tenant column
// or references a tenant table (its rows would be readable by every
// tenant). It validates the model first ([policy.Model.Validate]).
// Problems are [*SchemaError]s naming the table and column, several joined.
func Check(ctx context.Context, conn Conn, m *policy.Model) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return read(ctx, conn, snapshot.Options{Schemas: modelSchemas(m)}, func(_ pgx.Tx, s *snapshot.Snapshot) error {
		return check(s, m)
	})
}

// Existing reads what the database already holds of the model's objects:
// the facts [policy.Plan] takes into account. The application role is the
// model's. It runs [Check] first, in the same transaction.
func Existing(ctx context.Context, conn Conn, m *policy.Model) (*policy.Existing, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var e *policy.Existing
	err := read(ctx, conn, snapshot.Options{Schemas: modelSchemas(m), AppRole: m.AppRole}, func(tx pgx.Tx, s *snapshot.Snapshot) error {
		if err := check(s, m); err != nil {
			return err
		}
		var err error
		e, err = existing(ctx, tx, s, m)
		return err
	})
	return e, err
}

// Plan returns the SQL that would bring the database to the model, without
// applying it: [policy.Plan] on what [Existing] reads, all in one
// transaction. On a database that has none of the generated objects, it is
// [policy.Generate]'s SQL with the database's facts applied (keys that
// exist are skipped, plain foreign keys that the composite ones replace are
// dropped); on one that matches the model, it is empty
// ([policy.Migration.IsEmpty]).
//
// It reads the catalog in three round trips and a transaction that it
// rolls back; to compare the policies, it creates temporary tables there,
// so the role needs the TEMPORARY privilege on the database (PUBLIC has it
// by default).
func Plan(ctx context.Context, conn Conn, m *policy.Model) (*policy.Migration, error) {
	e, err := Existing(ctx, conn, m)
	if err != nil {
		return nil, err
	}
	return policy.Plan(m, e)
}

// modelSchemas returns the schemas of a valid model's tables.
func modelSchemas(m *policy.Model) []string {
	def := cmp.Or(m.Schema, "public")
	var schemas []string
	for _, t := range m.Tables {
		schemas = append(schemas, snapshot.SplitName(def, t.Name).Schema)
	}
	for _, g := range globals(m) {
		schemas = append(schemas, snapshot.SplitName(def, g).Schema)
	}
	slices.Sort(schemas)
	return slices.Compact(schemas)
}

// globals returns the global tables of a model: Global, and the
// WritableGlobal ones that Global does not list.
func globals(m *policy.Model) []string {
	out := slices.Clone(m.Global)
	for _, g := range m.WritableGlobal {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func check(s *snapshot.Snapshot, m *policy.Model) error {
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &SchemaError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	def := cmp.Or(m.Schema, "public")
	lookup := func(name string) *snapshot.Table {
		if t := s.Lookup(snapshot.SplitName(def, name)); t != nil && !t.Partition {
			return t
		}
		return nil
	}
	tenant := map[*snapshot.Table]string{}
	tenantCols := map[string]bool{}
	for _, t := range m.Tables {
		if ct := lookup(t.Name); ct != nil {
			tenant[ct] = t.TenantColumn
			if !t.Root {
				tenantCols[t.TenantColumn] = true
			}
		}
	}
	// A global table is granted to the application role without a policy:
	// it must not hold tenant data.
	for _, g := range globals(m) {
		ct := lookup(g)
		if ct == nil {
			bad(g, "", "global table does not exist")
			continue
		}
		for _, col := range slices.Sorted(func(yield func(string) bool) {
			for c := range tenantCols {
				if !yield(c) {
					return
				}
			}
		}) {
			if ct.Column(col) != nil {
				bad(g, col, "global table has the tenant column: its rows would be readable by every tenant; make it a tenant table")
			}
		}
		if f := referencesTenant(s, ct, tenant); f != nil {
			bad(g, strings.Join(f.Columns, ", "), "global table references tenant table %q (foreign key %s): its rows would be readable by every tenant", f.RefName.String(), f.Name)
		}
	}
	key := m.KeyType
	for _, t := range m.Tables {
		ct := lookup(t.Name)
		if ct == nil {
			bad(t.Name, "", "table does not exist")
			continue
		}
		switch c := ct.Column(t.TenantColumn); {
		case c == nil:
			bad(t.Name, t.TenantColumn, "tenant column does not exist")
		case snapshot.TenantKeyOf(c.Type, key) == 0:
			bad(t.Name, t.TenantColumn, "tenant column has type %s; the tenant key type is %s", c.Type, key)
		case snapshot.TenantKeyOf(c.Type, key) != cmp.Or(t.TenantType, key):
			bad(t.Name, t.TenantColumn, "tenant column has type %s, the tenant key type is %s: set the table's TenantType to %[1]s (catalog.Complete does)", c.Type, key)
		}
		for _, fk := range t.ForeignKeys {
			for _, c := range fk.Columns {
				if ct.Column(c) == nil {
					bad(t.Name, c, "foreign key column does not exist")
				}
			}
			rt := lookup(fk.RefTable)
			if rt == nil {
				bad(fk.RefTable, "", "table referenced by a foreign key of %q does not exist", t.Name)
				continue
			}
			for _, c := range refColumns(fk) {
				if rt.Column(c) == nil {
					bad(fk.RefTable, c, "column referenced by foreign key %q(%s) does not exist", t.Name, strings.Join(fk.Columns, ", "))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// refColumns returns fk.RefColumns, or ["id"] when it is empty.
func refColumns(fk policy.ForeignKey) []string {
	if len(fk.RefColumns) == 0 {
		return []string{"id"}
	}
	return fk.RefColumns
}

// existing turns a snapshot into the facts of a checked model: the keys
// and foreign keys between its tables, the state of its tables, Citus's
// tables and the sequences of serial columns.
func existing(ctx context.Context, tx pgx.Tx, s *snapshot.Snapshot, m *policy.Model) (*policy.Existing, error) {
	def := cmp.Or(m.Schema, "public")
	setting, err := rls.Setting(m.Setting)
	if err != nil {
		return nil, err
	}
	type modelTable struct {
		name   string // as in the model
		t      *snapshot.Table
		column string // "" for a global table
		root   bool
		shared bool
		key    rls.KeyType // the tenant column's: the model's, or TenantType
	}
	var tables []modelTable
	inModel := map[uint32]string{}
	var want snapshot.Want
	want.Setting = setting
	want.Signed = m.Signed
	for _, t := range m.Tables {
		st := s.Lookup(snapshot.SplitName(def, t.Name))
		tables = append(tables, modelTable{t.Name, st, t.TenantColumn, t.Root, t.SharedRows, cmp.Or(t.TenantType, m.KeyType)})
		inModel[st.OID] = t.Name
		want.Columns = append(want.Columns, snapshot.ColumnKey{Name: t.TenantColumn, Type: st.Column(t.TenantColumn).Type})
		want.CitusTables = append(want.CitusTables, st.OID)
	}
	for _, g := range globals(m) {
		st := s.Lookup(snapshot.SplitName(def, g))
		tables = append(tables, modelTable{name: g, t: st})
		inModel[st.OID] = g
		want.CitusTables = append(want.CitusTables, st.OID)
	}
	if err := s.Expect(ctx, tx, want); err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	e := &policy.Existing{}
	for _, mt := range tables {
		ts := policy.TableState{Table: mt.name, RLS: mt.t.RLS, ForceRLS: mt.t.Force, Privileges: slices.Clone(mt.t.Privs)}
		var col snapshot.ColumnKey
		if mt.column != "" {
			c := mt.t.Column(mt.column)
			col = snapshot.ColumnKey{Name: mt.column, Type: c.Type}
			if !mt.root {
				ts.TenantDefault = c.Default
				def := policy.TenantDefaultExpr(mt.key, setting)
				if m.Signed {
					def = policy.SignedTenantDefaultExpr(mt.key)
				}
				want := s.Rendered(col, def)
				ts.TenantDefaultGenerated = want != "" && c.Default == want && snapshot.KeyTypeOf(c.Type) == mt.key
			}
		}
		for _, p := range mt.t.Policies {
			ps := policy.PolicyState{Name: p.Name, Permissive: p.Permissive, Command: snapshot.CommandNames[p.Cmd],
				Roles: slices.Clone(p.Roles), Using: p.Using, WithCheck: p.Check}
			if mt.column != "" && snapshot.KeyTypeOf(col.Type) == mt.key {
				// Only the form Generate writes counts as generated: on
				// PostgreSQL, a policy without the transaction stamp
				// (the per-row form) is replaced, or a tenant left at
				// session level would stay live there.
				defs := policy.TablePolicies(mt.column, mt.key, setting, mt.shared, m.Citus)
				if m.Signed {
					defs = policy.SignedTablePolicies(mt.column, mt.key, mt.shared)
				}
				for _, d := range defs {
					if d.Name == p.Name && s.PolicyIs(&p, col, d) {
						ps.Generated = true
					}
				}
			}
			ts.Policies = append(ts.Policies, ps)
		}
		e.Tables = append(e.Tables, ts)
		for _, c := range mt.t.Constraints {
			con := policy.Constraint{Table: mt.name, Name: c.Name, Columns: slices.Clone(c.Columns), Definition: c.Definition}
			switch c.Type {
			case 'p':
				con.Type = policy.ConstraintPrimaryKey
			case 'u':
				con.Type = policy.ConstraintUnique
			case 'f':
				ref, ok := inModel[c.Ref]
				if !ok {
					continue // to a table outside the model: not Generate's business
				}
				con.Type = policy.ConstraintForeignKey
				con.RefTable, con.RefColumns, con.OnDelete = ref, slices.Clone(c.RefCols), c.OnDelete
				con.Deferrable, con.InitiallyDeferred = c.Deferrable, c.Deferred
				con.Replaceable = c.OnUpdate == "" && !c.MatchFull && c.Validated && !c.SetColumns
			}
			e.Constraints = append(e.Constraints, con)
		}
		if _, ok := s.CitusTables[mt.t.OID]; ok {
			e.Distributed = append(e.Distributed, mt.name)
		}
	}
	tenantOIDs := map[uint32]bool{} // and writable globals': their inserts need the sequences too
	for _, t := range m.Tables {
		tenantOIDs[s.Lookup(snapshot.SplitName(def, t.Name)).OID] = true
	}
	for _, g := range m.WritableGlobal {
		tenantOIDs[s.Lookup(snapshot.SplitName(def, g)).OID] = true
	}
	seen := map[string]bool{}
	for _, seq := range s.Sequences {
		if !tenantOIDs[seq.Table] || seen[seq.Name] {
			continue
		}
		seen[seq.Name] = true
		e.SerialSequences++
		switch pat := (policy.SequencePattern{Schema: seq.PrefixSchema, Prefix: seq.Prefix}); {
		case seq.AppUsage:
		case seq.Prefix != "":
			if !slices.Contains(e.SequencePatterns, pat) {
				e.SequencePatterns = append(e.SequencePatterns, pat)
			}
		default:
			e.SequencesWithoutUsage = append(e.SequencesWithoutUsage, seq.Name)
		}
	}
	return e, nil
}
