package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// ErrRowSecurityActive is returned by [CheckData] when row level security
// applies to the connected role on a table it must read: the role would
// see only some rows (none, without a tenant) and could report a clean
// database that is not.
var ErrRowSecurityActive = errors.New("policy: row level security applies to this role")

// CrossTenantRef counts the rows of a foreign key between tenant tables
// whose referenced row belongs to another tenant. Such rows make the
// composite foreign key that [Generate] adds fail.
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
// constraints of [Generate] are added: for every foreign key of the model
// (except those whose composite form exists, as [Resolve] marks them), the
// referencing rows whose tenant differs from the referenced row's. Fix them
// before applying the migration; its composite foreign keys would fail on
// them. It returns only the foreign keys with such rows, ordered by
// table and foreign key.
//
// CheckData must see every row: run it as the tables' owner before row
// level security is forced, or as a role with BYPASSRLS. When row level
// security applies to the connected role on one of the tables, it returns
// an error matching [ErrRowSecurityActive] and reads no rows. It reads all
// the foreign keys in one statement, which scans the tables involved.
func CheckData(ctx context.Context, conn Querier, m *Model) ([]CrossTenantRef, error) {
	p, err := normalize(m)
	if err != nil {
		return nil, err
	}
	type check struct {
		t  *ptable
		fk pfk
	}
	var checks []check
	var names []string
	for _, t := range p.tables {
		for _, fk := range t.fks {
			if !fk.exists {
				checks = append(checks, check{t, fk})
				names = append(names, t.q.sql(), fk.ref.q.sql())
			}
		}
	}
	if len(checks) == 0 {
		return nil, nil
	}

	rows, err := conn.Query(ctx, `SELECT t FROM unnest($1::text[]) t WHERE pg_catalog.row_security_active(t::regclass) ORDER BY 1`, names)
	if err != nil {
		return nil, fmt.Errorf("policy: check data: %w", err)
	}
	active, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("policy: check data: %w", err)
	}
	if len(active) > 0 {
		return nil, fmt.Errorf("%w on %s: run CheckData as the tables' owner before FORCE ROW LEVEL SECURITY, or as a role with BYPASSRLS",
			ErrRowSecurityActive, strings.Join(uniq(active), ", "))
	}

	var b strings.Builder
	for i, c := range checks {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		var on []string
		for j := range c.fk.cols {
			on = append(on, fmt.Sprintf("r.%s = c.%s", sqlquote.Ident(c.fk.refCols[j]), sqlquote.Ident(c.fk.cols[j])))
		}
		key := []string{"c." + sqlquote.Ident(c.t.column)}
		for _, col := range c.fk.cols {
			key = append(key, "c."+sqlquote.Ident(col))
		}
		from := fmt.Sprintf("FROM %s c JOIN %s r ON %s WHERE c.%s IS DISTINCT FROM r.%s",
			c.t.q.sql(), c.fk.ref.q.sql(), strings.Join(on, " AND "),
			sqlquote.Ident(c.t.column), sqlquote.Ident(c.fk.ref.column))
		fmt.Fprintf(&b, "SELECT %d, (SELECT count(*) %s),\n    ARRAY(SELECT ROW(%s)::text || ' -> ' || coalesce(r.%s::text, 'NULL') %s ORDER BY %s LIMIT 5)",
			i, from, strings.Join(key, ", "), sqlquote.Ident(c.fk.ref.column), from, strings.Join(key, ", "))
	}
	rows, err = conn.Query(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("policy: check data: %w", err)
	}
	found := make([]*CrossTenantRef, len(checks))
	var i int
	var count int64
	var samples []string
	_, err = pgx.ForEachRow(rows, []any{&i, &count, &samples}, func() error {
		if count > 0 && i >= 0 && i < len(checks) {
			c := checks[i]
			found[i] = &CrossTenantRef{
				Table: c.t.q.String(), Columns: c.fk.cols, RefTable: c.fk.ref.q.String(), RefColumns: c.fk.refCols,
				Count: count, Samples: samples,
			}
		}
		samples = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: check data: %w", err)
	}
	var out []CrossTenantRef
	for _, f := range found {
		if f != nil {
			out = append(out, *f)
		}
	}
	return out, nil
}

func uniq(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
