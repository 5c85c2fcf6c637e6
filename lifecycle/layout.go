package lifecycle

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// querier is what the layout is read through: a pgx.Tx.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// table is a tenant table as the operations see it: its columns in the
// order they are copied, the foreign keys that order it, its sequences.
type table struct {
	oid    uint32
	schema string
	rel    string
	column string // the tenant column
	root   bool
	cols   []column
	// refs are the other tenant tables this one references; selfRefs
	// are its foreign keys to itself.
	refs     []*table
	selfRefs []selfRef
	// referenced is set when a tenant table references this one.
	referenced bool
	seqs       []sequence
}

// selfRef is a foreign key of a table to itself: its columns, and the
// columns they reference.
type selfRef struct {
	cols, refCols []string
}

// column is a column that an export carries. Generated columns are not
// carried: the target computes them.
type column struct {
	Name string
	// Type is the type as format_type prints it.
	Type string
	// Text is set for the types whose binary form names type OIDs, which
	// differ between databases (composite types, arrays of types that are
	// not built in, reg* types) and those without a binary form: they
	// travel and are hashed as their text.
	Text bool
	// send is the qualified send function of the type, which gives the
	// bytes binary COPY carries.
	send string
	// always is set for a GENERATED ALWAYS identity column.
	always bool
	// integer is set for integer columns, whose sequences an import
	// advances.
	integer bool
}

// sequence is a sequence that fills a column: its owned sequence (serial,
// identity) or one its default calls.
type sequence struct {
	name   string // quoted, qualified
	column string
}

// name returns schema.name.
func (t *table) name() string { return t.schema + "." + t.rel }

// sql returns the quoted, qualified name.
func (t *table) sql() string { return sqlquote.Qualified(t.schema, t.rel) }

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
		if c.Text {
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
		if c.Text {
			parts[i] = "pg_catalog.textsend(" + sqlquote.Ident(c.Name) + "::text)"
		} else {
			parts[i] = c.send + "(" + sqlquote.Ident(c.Name) + ")"
		}
	}
	return "pg_catalog.hash_array_extended(ARRAY[" + strings.Join(parts, ", ") + "]::bytea[], 0)"
}

// checksumSQL counts and sums the tenant's rows, with the tenant as $1.
func (t *table) checksumSQL(key rls.KeyType) string {
	return "SELECT count(*), COALESCE(sum(" + t.rowHash() + "), 0)::text FROM " + t.sql() + " WHERE " + t.predicate(key)
}

// splitName splits a model table name at its first dot, as package policy
// does; an unqualified name is in schema def.
func splitName(def, s string) (string, string) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return def, s
}

// readLayout reads the model's tables from the catalog and returns them in
// foreign key order: every table after the tables it references, the root
// first. Uncovered lists the tables outside the model whose foreign keys
// reference its tables.
func readLayout(ctx context.Context, q querier, m *policy.Model) (tables []*table, uncovered []UncoveredTable, err error) {
	if err := m.Validate(); err != nil {
		return nil, nil, err
	}
	schema := cmp.Or(m.Schema, "public")
	var schemas, rels []string
	for _, mt := range m.Tables {
		s, r := splitName(schema, mt.Name)
		schemas, rels = append(schemas, s), append(rels, r)
	}
	rows, err := q.Query(ctx, `
SELECT w.ord, c.oid, c.relkind::text
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS w(nsp, rel, ord)
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.nsp
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.rel
ORDER BY w.ord`, schemas, rels)
	if err != nil {
		return nil, nil, fmt.Errorf("lifecycle: read tables: %w", err)
	}
	byOID := map[uint32]*table{}
	var oids []uint32
	var missing []string
	for rows.Next() {
		var ord int
		var oid *uint32
		var kind *string
		if err := rows.Scan(&ord, &oid, &kind); err != nil {
			return nil, nil, err
		}
		mt := m.Tables[ord-1]
		t := &table{schema: schemas[ord-1], rel: rels[ord-1], column: mt.TenantColumn, root: mt.Root}
		switch {
		case oid == nil:
			missing = append(missing, t.name()+": no such table")
			continue
		case *kind != "r" && *kind != "p":
			missing = append(missing, t.name()+": not a table")
			continue
		}
		t.oid = *oid
		byOID[t.oid] = t
		oids = append(oids, t.oid)
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("lifecycle: read tables: %w", err)
	}
	if len(missing) > 0 {
		return nil, nil, &SchemaMismatchError{Problems: missing}
	}
	if err := readColumns(ctx, q, oids, byOID); err != nil {
		return nil, nil, err
	}
	for _, t := range tables {
		if !slices.ContainsFunc(t.cols, func(c column) bool { return c.Name == t.column }) {
			missing = append(missing, fmt.Sprintf("%s: no tenant column %q", t.name(), t.column))
		}
	}
	if len(missing) > 0 {
		return nil, nil, &SchemaMismatchError{Problems: missing}
	}
	if err := readSequences(ctx, q, oids, byOID); err != nil {
		return nil, nil, err
	}
	uncovered, err = readForeignKeys(ctx, q, oids, byOID)
	if err != nil {
		return nil, nil, err
	}
	tables, err = fkOrder(tables)
	return tables, uncovered, err
}

func readColumns(ctx context.Context, q querier, oids []uint32, byOID map[uint32]*table) error {
	// The base type of a domain (through domains over domains) decides how
	// a column travels.
	rows, err := q.Query(ctx, `
WITH RECURSIVE cols AS (
    SELECT a.attrelid, a.attnum, a.attname, a.atttypid, a.attidentity::text AS ident,
           pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
), base (typ, cur) AS (
    SELECT DISTINCT atttypid, atttypid FROM cols
    UNION ALL
    SELECT b.typ, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.cur WHERE t.typtype = 'd'
)
SELECT c.attrelid, c.attname, c.typ, c.ident,
       bt.typtype = 'c' OR bt.typsend = 0
         OR (bt.typnamespace = 'pg_catalog'::regnamespace AND bt.typname LIKE 'reg%')
         OR (bt.typsend = 'pg_catalog.array_send'::regproc AND (et.oid >= 16384 OR et.typtype = 'c'
             OR (et.typnamespace = 'pg_catalog'::regnamespace AND et.typname LIKE 'reg%'))) AS text,
       COALESCE(pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sp.proname), ''),
       bt.oid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
FROM cols c
JOIN base b ON b.typ = c.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = b.cur AND bt.typtype <> 'd'
LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem
LEFT JOIN pg_catalog.pg_proc sp ON sp.oid = bt.typsend
LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = sp.pronamespace
ORDER BY c.attrelid, c.attnum`, oids)
	if err != nil {
		return fmt.Errorf("lifecycle: read columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var c column
		var ident string
		if err := rows.Scan(&oid, &c.Name, &c.Type, &ident, &c.Text, &c.send, &c.integer); err != nil {
			return fmt.Errorf("lifecycle: read columns: %w", err)
		}
		c.always = ident == "a"
		t := byOID[oid]
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lifecycle: read columns: %w", err)
	}
	return nil
}

func readSequences(ctx context.Context, q querier, oids []uint32, byOID map[uint32]*table) error {
	// Sequences owned by a column (serial, identity), and those a column's
	// default depends on.
	rows, err := q.Query(ctx, `
SELECT DISTINCT r.rel, a.attname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.relname)
FROM (
    SELECT d.refobjid AS rel, d.refobjsubid AS attnum, d.objid AS seq
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjid = ANY ($1::oid[]) AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    UNION ALL
    SELECT ad.adrelid, ad.adnum, d.refobjid
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass
    WHERE ad.adrelid = ANY ($1::oid[])
) r
JOIN pg_catalog.pg_class s ON s.oid = r.seq AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = r.rel AND a.attnum = r.attnum
ORDER BY 1, 2, 3`, oids)
	if err != nil {
		return fmt.Errorf("lifecycle: read sequences: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var s sequence
		if err := rows.Scan(&oid, &s.column, &s.name); err != nil {
			return fmt.Errorf("lifecycle: read sequences: %w", err)
		}
		t := byOID[oid]
		i := slices.IndexFunc(t.cols, func(c column) bool { return c.Name == s.column })
		if i >= 0 && t.cols[i].integer {
			t.seqs = append(t.seqs, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lifecycle: read sequences: %w", err)
	}
	return nil
}

// readForeignKeys records the references between the tables and returns
// the tables outside them that reference them.
func readForeignKeys(ctx context.Context, q querier, oids []uint32, byOID map[uint32]*table) ([]UncoveredTable, error) {
	rows, err := q.Query(ctx, `
SELECT c.conrelid, c.confrelid, c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_catalog.pg_constraint c
WHERE c.contype = 'f' AND c.conparentid = 0
  AND (c.conrelid = ANY ($1::oid[]) OR c.confrelid = ANY ($1::oid[]))
ORDER BY 1, 2, 3`, oids)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: read foreign keys: %w", err)
	}
	defer rows.Close()
	var uncovered []UncoveredTable
	for rows.Next() {
		var from, to uint32
		var name, fromName, toName string
		var ref selfRef
		if err := rows.Scan(&from, &to, &name, &fromName, &toName, &ref.cols, &ref.refCols); err != nil {
			return nil, fmt.Errorf("lifecycle: read foreign keys: %w", err)
		}
		child, parent := byOID[from], byOID[to]
		switch {
		case child == nil:
			uncovered = append(uncovered, UncoveredTable{Table: fromName,
				Reason: fmt.Sprintf("its foreign key %s references the tenant table %s", name, toName)})
		case parent == nil:
			// A reference to a global table.
		case child == parent:
			child.selfRefs = append(child.selfRefs, ref)
			child.referenced = true
		case !slices.Contains(child.refs, parent):
			child.refs = append(child.refs, parent)
			parent.referenced = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lifecycle: read foreign keys: %w", err)
	}
	return uncovered, nil
}

// fkOrder sorts the tables so that each comes after those it references:
// the root first, then, of the tables whose references are all placed, the
// first by name.
func fkOrder(tables []*table) ([]*table, error) {
	left := slices.Clone(tables)
	slices.SortFunc(left, func(a, b *table) int {
		return cmp.Or(-compareBool(a.root, b.root), cmp.Compare(a.schema, b.schema), cmp.Compare(a.rel, b.rel))
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
