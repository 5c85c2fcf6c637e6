package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
)

// Complete returns a copy of a declared model with what it leaves to the
// database filled in from the catalog, as [Discover] would find it:
//
//   - KeyType, when 0, from the type of the root table's tenant column;
//   - the foreign keys between its tenant tables that the catalog declares
//     and the model does not list, with their ON DELETE action and
//     deferrability, so that [Plan] makes them composite too.
//
// What the model declares stays as it is. Tables the catalog lacks are
// left for [Check] to report. It reads the catalog in one transaction.
func Complete(ctx context.Context, conn Conn, m *policy.Model) (*policy.Model, error) {
	if m == nil {
		return nil, &policy.ModelError{Reason: "nil model"}
	}
	out := *m
	out.Tables = slices.Clone(m.Tables)
	for i := range out.Tables {
		out.Tables[i].ForeignKeys = slices.Clone(out.Tables[i].ForeignKeys)
	}
	def := cmp.Or(m.Schema, "public")
	var schemas []string
	for _, t := range m.Tables {
		schemas = append(schemas, snapshot.SplitName(def, t.Name).Schema)
	}
	slices.Sort(schemas)
	schemas = slices.Compact(schemas)
	err := read(ctx, conn, snapshot.Options{Schemas: schemas}, func(_ pgx.Tx, s *snapshot.Snapshot) error {
		tables := map[uint32]*policy.Table{}
		for i := range out.Tables {
			if t := s.Lookup(snapshot.SplitName(def, out.Tables[i].Name)); t != nil && !t.Partition {
				tables[t.OID] = &out.Tables[i]
			}
		}
		if out.KeyType == 0 {
			for _, t := range out.Tables {
				st := s.Lookup(snapshot.SplitName(def, t.Name))
				if !t.Root || st == nil || st.Column(t.TenantColumn) == nil {
					continue
				}
				typ := st.Column(t.TenantColumn).Type
				if out.KeyType = snapshot.KeyTypeOf(typ); out.KeyType == 0 {
					return &SchemaError{Table: t.Name, Column: t.TenantColumn, Reason: fmt.Sprintf("root key column has type %s; want bigint, integer, smallint, uuid, text or varchar", typ)}
				}
			}
		}
		for _, st := range s.Tables {
			mt := tables[st.OID]
			if mt == nil {
				continue
			}
			if c := st.Column(mt.TenantColumn); c != nil && mt.TenantType == 0 && !mt.Root {
				if k := snapshot.TenantKeyOf(c.Type, out.KeyType); k != 0 && k != out.KeyType {
					mt.TenantType = k // an integer column of another width
				}
			}
			for _, c := range st.Constraints {
				ref := tables[c.Ref]
				if c.Type != 'f' || ref == nil || ref.Root || ref.SharedRows {
					continue
				}
				fk, ok := splitFK(c, mt.TenantColumn, ref.TenantColumn)
				if !ok || len(fk.Columns) == 0 {
					continue // verify reports a key that cannot be made tenant-safe
				}
				fk.RefTable = ref.Name
				if slices.ContainsFunc(mt.ForeignKeys, func(o policy.ForeignKey) bool {
					return snapshot.SplitName(def, o.RefTable) == snapshot.SplitName(def, fk.RefTable) &&
						slices.Equal(o.Columns, fk.Columns) && slices.Equal(refCols(o.RefColumns), fk.RefColumns)
				}) {
					continue
				}
				mt.ForeignKeys = append(mt.ForeignKeys, fk)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
