package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// ErrRowSecurityActive is returned by [CheckData] when row level security
// applies to the connected role on a table it must read: the role would
// see only some rows (none, without a tenant) and could report a clean
// database that is not.
var ErrRowSecurityActive = errors.New("verify: row level security applies to this role")

// CrossTenantRef counts the rows of a foreign key between tenant tables
// whose referenced row belongs to another tenant. Such rows make the
// composite foreign key that policy.Generate adds fail.
type CrossTenantRef struct {
	// Table and Columns are the referencing table (schema.name) and the
	// foreign key's columns, without the tenant column.
	Table   string   `json:"table"`
	Columns []string `json:"columns"`
	// RefTable and RefColumns are the referenced table and columns.
	RefTable   string   `json:"ref_table"`
	RefColumns []string `json:"ref_columns"`
	// Count is the number of referencing rows whose tenant differs from
	// the referenced row's.
	Count int64 `json:"count"`
	// Samples are up to five of them, in order: the referencing row's
	// tenant and foreign key columns as a row literal, an arrow, and the
	// referenced row's tenant, such as "(1,201) -> 2".
	Samples []string `json:"samples"`
}

// Finding returns the reference as a [Finding] with code
// [CodeCrossTenantRef].
func (r CrossTenantRef) Finding() Finding {
	return Finding{
		Severity: SeverityError,
		Code:     CodeCrossTenantRef,
		Kind:     "table",
		Object:   r.Table,
		Table:    r.Table,
		Message: fmt.Sprintf("%d row(s) reference a row of another tenant through (%s) -> %s (%s), which the composite foreign key will reject; samples (tenant, columns) -> referenced tenant: %s",
			r.Count, strings.Join(r.Columns, ", "), r.RefTable, strings.Join(r.RefColumns, ", "), strings.Join(r.Samples, ", ")),
	}
}

// CheckData looks for rows that already cross tenants before the
// constraints of policy.Generate are added: for every foreign key of the
// model (except those whose composite form exists and is validated), the referencing rows
// whose tenant differs from the referenced row's. Fix them before applying
// the migration; its composite foreign keys would fail on them. It returns
// only the foreign keys with such rows, ordered by table and foreign key.
//
// CheckData must see every row: run it as the tables' owner before row
// level security is forced, or as a role with BYPASSRLS. When row level
// security applies to the connected role on one of the tables, it returns
// an error matching [ErrRowSecurityActive] and reads no rows. It reads all
// the foreign keys in one statement, which scans the tables involved.
func CheckData(ctx context.Context, conn catalog.Conn, m *policy.Model) ([]CrossTenantRef, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	def := cmp.Or(m.Schema, "public")
	schemas := []string{}
	for _, t := range m.Tables {
		schemas = append(schemas, snapshot.SplitName(def, t.Name).Schema)
	}
	slices.Sort(schemas)
	snap, err := snapshot.Read(ctx, tx, snapshot.Options{Schemas: slices.Compact(schemas)})
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	type end struct {
		q      snapshot.QName
		column string
	}
	tenant := map[string]end{}
	for _, t := range m.Tables {
		tenant[t.Name] = end{snapshot.SplitName(def, t.Name), t.TenantColumn}
	}
	type check struct {
		t, ref        end
		cols, refCols []string
	}
	var checks []check
	var names []string
	for _, t := range m.Tables {
		src := tenant[t.Name]
		st := snap.Lookup(src.q)
		for _, fk := range t.ForeignKeys {
			ref := tenant[fk.RefTable]
			refCols := fk.RefColumns
			if len(refCols) == 0 {
				refCols = []string{"id"}
			}
			names = append(names, src.q.SQL(), ref.q.SQL())
			if st != nil && slices.ContainsFunc(st.Constraints, func(k snapshot.Constraint) bool {
				return k.Type == 'f' && k.Validated && k.RefName == ref.q && slices.Equal(k.Columns, prepend(src.column, fk.Columns)) &&
					slices.Equal(k.RefCols, prepend(ref.column, refCols))
			}) {
				continue // the composite key holds, validated
			}
			checks = append(checks, check{src, ref, fk.Columns, refCols})
		}
	}
	slices.SortFunc(checks, func(a, b check) int {
		return cmp.Or(a.t.q.Compare(b.t.q), slices.Compare(a.cols, b.cols), a.ref.q.Compare(b.ref.q), slices.Compare(a.refCols, b.refCols))
	})
	if len(names) == 0 {
		return nil, nil
	}

	// Refuse before reading anything: a role under row level security would
	// see some rows only and could report a clean database that is not.
	slices.Sort(names)
	rows, err := tx.Query(ctx, `SELECT t FROM unnest($1::text[]) t WHERE pg_catalog.row_security_active(t::regclass) ORDER BY 1`, slices.Compact(names))
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	active, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	if len(active) > 0 {
		return nil, fmt.Errorf("%w on %s: run CheckData as the tables' owner before FORCE ROW LEVEL SECURITY, or as a role with BYPASSRLS",
			ErrRowSecurityActive, strings.Join(active, ", "))
	}
	if len(checks) == 0 {
		return nil, nil
	}

	var b strings.Builder
	for i, c := range checks {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		var on []string
		for j := range c.cols {
			on = append(on, fmt.Sprintf("r.%s = c.%s", sqlquote.Ident(c.refCols[j]), sqlquote.Ident(c.cols[j])))
		}
		key := []string{"c." + sqlquote.Ident(c.t.column)}
		for _, col := range c.cols {
			key = append(key, "c."+sqlquote.Ident(col))
		}
		from := fmt.Sprintf("FROM %s c JOIN %s r ON %s WHERE c.%s IS DISTINCT FROM r.%s",
			c.t.q.SQL(), c.ref.q.SQL(), strings.Join(on, " AND "),
			sqlquote.Ident(c.t.column), sqlquote.Ident(c.ref.column))
		fmt.Fprintf(&b, "SELECT %d, (SELECT count(*) %s),\n    ARRAY(SELECT ROW(%s)::text || ' -> ' || coalesce(r.%s::text, 'NULL') %s ORDER BY %s LIMIT 5)",
			i, from, strings.Join(key, ", "), sqlquote.Ident(c.ref.column), from, strings.Join(key, ", "))
	}
	rows, err = tx.Query(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	found := make([]*CrossTenantRef, len(checks))
	var i int
	var count int64
	var samples []string
	_, err = pgx.ForEachRow(rows, []any{&i, &count, &samples}, func() error {
		if count > 0 && i >= 0 && i < len(checks) {
			c := checks[i]
			found[i] = &CrossTenantRef{
				Table: c.t.q.String(), Columns: c.cols, RefTable: c.ref.q.String(), RefColumns: c.refCols,
				Count: count, Samples: samples,
			}
		}
		samples = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify: check data: %w", err)
	}
	var out []CrossTenantRef
	for _, f := range found {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}
