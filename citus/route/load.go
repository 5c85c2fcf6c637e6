package route

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/policy"
)

// Querier runs queries. *pgx.Conn, pgx.Tx and *pgxpool.Pool satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadSQL lists the hash-distributed tables that carry pgtenancy's
// isolation policy ($1) and whose policy depends on the distribution
// column and on no other column of the table: the tables that
// policy.Generate distributed by their tenant column.
const loadSQL = `
SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.pg_table_is_visible(c.oid)
FROM pg_catalog.pg_dist_partition p
JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = column_to_column_name(p.logicalrelid, p.partkey)
JOIN pg_catalog.pg_policy pol ON pol.polrelid = c.oid AND pol.polname = $1
WHERE p.partmethod = 'h'
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid
        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid AND d.refobjsubid = a.attnum)
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
      WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid
        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid
        AND d.refobjsubid <> 0 AND d.refobjsubid <> a.attnum)
ORDER BY 1, 2`

// Load reads the distributed tenant tables from a Citus coordinator: the
// hash-distributed tables with pgtenancy's isolation policy whose
// distribution column is the one column that policy reads (the tables
// policy.Generate distributed by their tenant column). Visible is what
// pg_table_is_visible says under q's search_path: run Load on a
// connection with the application's search_path. Tables distributed by
// another column, reference tables and local tables are not listed: their
// statements run unchanged.
func Load(ctx context.Context, q Querier) ([]Table, error) {
	rows, err := q.Query(ctx, loadSQL, policy.IsolationPolicy)
	if err != nil {
		return nil, fmt.Errorf("route: reading the distributed tables (is this a Citus coordinator?): %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Table, error) {
		var t Table
		err := r.Scan(&t.Schema, &t.Name, &t.Column, &t.Visible)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("route: reading the distributed tables: %w", err)
	}
	return ts, nil
}
