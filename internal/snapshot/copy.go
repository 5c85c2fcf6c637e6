package snapshot

// CopyColumn is how rows of a column move between databases: what
// [Options.Copy] reads for every column.
type CopyColumn struct {
	// Generated reports a generated column, which COPY does not carry:
	// the target computes it.
	Generated bool
	// Always reports a GENERATED ALWAYS identity column.
	Always bool
	// Text is set for the types whose binary form names type OIDs, which
	// differ between databases (composite types, arrays of types that are
	// not built in, reg* types), and for those without a binary form:
	// such a column travels as text. Domains are judged by their base
	// type.
	Text bool
	// Send is the quoted, qualified send function of the (base) type: the
	// bytes binary COPY carries are what it returns.
	Send string
	// Integer reports a smallint, integer or bigint column (or a domain
	// over one).
	Integer bool
	// Sequences are the sequences that fill the column: its owned
	// sequence (serial, identity) and those its default calls, by name.
	Sequences []ColumnSequence
}

// ColumnSequence is a sequence that fills a column.
type ColumnSequence struct {
	// Name is quoted and qualified.
	Name string
	// Increment is the sequence's increment: negative for a descending
	// one.
	Increment int64
}

// copyColumnsSQL reads [CopyColumn] of the columns of the schemas $1; the
// base type of a domain (through domains over domains) decides how a
// column travels.
const copyColumnsSQL = `
WITH RECURSIVE cols AS (
    SELECT a.attrelid, a.attname, a.atttypid, a.attidentity = 'a' AS always, a.attgenerated <> '' AS generated
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE ` + inScope + ` AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
), base (typ, cur) AS (
    SELECT DISTINCT atttypid, atttypid FROM cols
    UNION ALL
    SELECT b.typ, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.cur WHERE t.typtype = 'd'
)
SELECT c.attrelid, c.attname::text, c.generated, c.always,
    bt.typtype = 'c' OR bt.typsend = 0
      OR (bt.typnamespace = 'pg_catalog'::regnamespace AND bt.typname LIKE 'reg%')
      OR (bt.typsend = 'pg_catalog.array_send'::regproc AND (et.oid >= 16384 OR et.typtype = 'c'
          OR (et.typnamespace = 'pg_catalog'::regnamespace AND et.typname LIKE 'reg%'))),
    coalesce(pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(sp.proname), ''),
    bt.oid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
FROM cols c
JOIN base b ON b.typ = c.atttypid
JOIN pg_catalog.pg_type bt ON bt.oid = b.cur AND bt.typtype <> 'd'
LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem
LEFT JOIN pg_catalog.pg_proc sp ON sp.oid = bt.typsend
LEFT JOIN pg_catalog.pg_namespace sn ON sn.oid = sp.pronamespace`

// columnSequencesSQL reads the sequences that fill the columns of the
// schemas $1: owned by a column (serial, identity), or called by its
// default.
const columnSequencesSQL = `
SELECT DISTINCT r.rel, a.attname::text, pg_catalog.quote_ident(sn.nspname) || '.' || pg_catalog.quote_ident(s.relname),
    ps.seqincrement
FROM (
    SELECT d.refobjid AS rel, d.refobjsubid AS attnum, d.objid AS seq
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    UNION ALL
    SELECT ad.adrelid, ad.adnum, d.refobjid
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
      AND d.refclassid = 'pg_catalog.pg_class'::regclass
) r
JOIN pg_catalog.pg_class s ON s.oid = r.seq AND s.relkind = 'S'
JOIN pg_catalog.pg_sequence ps ON ps.seqrelid = s.oid
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = r.rel AND a.attnum = r.attnum
JOIN pg_catalog.pg_class c ON c.oid = r.rel
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')
ORDER BY 1, 2, 3`

// addCopy queues the queries of [Options.Copy]; they run after the
// columns are read, in the same batch.
func (s *Snapshot) addCopy(b *batch, schemas []string) {
	var oid uint32
	var name string
	var cc CopyColumn
	b.add(copyColumnsSQL, each([]any{&oid, &name, &cc.Generated, &cc.Always, &cc.Text, &cc.Send, &cc.Integer}, func() error {
		if c := s.column(oid, name); c != nil {
			v := cc
			c.Copy = &v
		}
		return nil
	}), schemas)
	var seq ColumnSequence
	b.add(columnSequencesSQL, each([]any{&oid, &name, &seq.Name, &seq.Increment}, func() error {
		if c := s.column(oid, name); c != nil && c.Copy != nil {
			c.Copy.Sequences = append(c.Copy.Sequences, seq)
		}
		return nil
	}), schemas)
}

// column returns a column of a table of the snapshot, or nil.
func (s *Snapshot) column(oid uint32, name string) *Column {
	if t := s.byOID[oid]; t != nil {
		return t.Column(name)
	}
	return nil
}
