package pool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Chunks of a CopyFrom: a chunk ends at copyChunkRows rows (the first at
// copyChunkFirstRows, each next one twice as many) or once its encoded
// values pass copyChunkBytes, whichever comes first.
const (
	copyChunkFirstRows = 1000
	copyChunkRows      = 16000
	copyChunkBytes     = 16 << 20
)

// CopyFrom copies rows into a table under row level security, where COPY
// FROM itself is refused (SQLSTATE 0A000), so that code written for
// [pgx.Conn.CopyFrom] and sqlc's :copyfrom works unchanged. It returns the
// number of rows inserted, and [rls.ErrNoTenant] before any I/O when the
// context has no tenant.
//
// In one transaction with the tenant set, it inserts the rows in chunks,
// each chunk one statement INSERT INTO table (columns) SELECT unnest($1),
// unnest($2), ... whose parameters are the chunk's columns as arrays in
// the binary format, so the policies check every row: a row of another
// tenant fails the whole copy and nothing is inserted. The values are
// encoded as [pgx.Conn.CopyFrom] encodes them. The column types are read
// from the catalog in the round trip that begins the transaction. The
// chunks (up to 16,000 rows each) are pipelined, each sent without waiting
// for the one before, and the commit travels with the last: two round
// trips in all.
//
// Columns whose type is an array or a domain go through a temporary table
// instead (COPY into it, then INSERT ... SELECT), which costs a round trip
// more and writes every row twice. The application role then needs the
// TEMPORARY privilege on the database, which PUBLIC has by default.
//
// With [Config.Citus], where Citus runs INSERT ... SELECT by sending the
// rows to the shards with COPY (refused there too), each chunk is instead
// a few multi-row INSERT INTO table (columns) VALUES (...), (...) of up to
// 1,000 rows (fewer for a table of more than 65 columns: a statement has at
// most 65,535 parameters), which Citus routes to the shards as INSERTs, so
// the policies there check every row. They are pipelined in the same
// transaction, with the tenant set as for every unit of work with Citus,
// and a row of another tenant still fails the whole copy. Every column
// type takes this path (no temporary table).
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return p.copyFrom(ctx, table, columns, src, false)
}

// copyFrom is CopyFrom; temp makes it take the temporary table whatever
// the column types.
func (p *Pool) copyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource, temp bool) (int64, error) {
	t, err := p.t.Tenant(ctx)
	if err != nil {
		return 0, err
	}
	if err := checkCopyArgs(table, columns); err != nil {
		return 0, err
	}
	var r *resets
	if p.t.Reset {
		r = fullResets
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer release(ctx, c, r) // rolls back whatever is left open
	conn := c.Conn()
	b := &pgx.Batch{}
	b.Queue("begin")
	b.QueuedQueries = append(b.QueuedQueries, p.t.Set(t))
	var cp *copyPlan
	mode := copyUnnest
	if p.t.Citus {
		mode = copyValues
	}
	queueCopyPlan(b, table, columns, mode, &cp)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	if err := cp.check(); err != nil {
		return 0, err
	}
	var before []string
	if r != nil {
		before = r.Before
	}
	if cp == nil || temp {
		if _, err := conn.Exec(ctx, createCopyTable(table, columns)); err != nil {
			return 0, err
		}
		return copyVia(ctx, conn, table, columns, src, true, before)
	}
	return cp.run(ctx, conn, src, true, before)
}

// copyFromTx is [Tx.CopyFrom] on conn, inside a transaction of a pool with
// [Config.Citus] when citus is set.
func copyFromTx(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, columns []string, src pgx.CopyFromSource, citus bool) (int64, error) {
	if err := checkCopyArgs(table, columns); err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	var cp *copyPlan
	mode := copyUnnest
	if citus {
		mode = copyValues
	}
	queueCopyPlan(b, table, columns, mode, &cp)
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	if err := cp.check(); err != nil {
		return 0, err
	}
	if cp == nil {
		return copyVia(ctx, conn, table, columns, src, false, nil)
	}
	return cp.run(ctx, conn, src, false, nil)
}

func checkCopyArgs(table pgx.Identifier, columns []string) error {
	if len(table) == 0 {
		return errors.New("pool: CopyFrom: empty table name")
	}
	if len(columns) == 0 {
		return errors.New("pool: CopyFrom: no columns")
	}
	return nil
}

// copyColumnsSQL describes the columns of a table (its one parameter): the
// type, the type of an array of it, and whether the unnest path cannot
// carry the column (arrays flatten in unnest; domains are encoded by their
// base type, as COPY does, which the array of the domain does not accept;
// a type without a binary input).
const copyColumnsSQL = `SELECT a.attname::text, a.atttypid::int8, t.typarray::int8,
       t.typtype = 'd' OR (t.typelem <> 0 AND t.typlen = -1) OR t.typarray = 0 OR t.typreceive::oid = 0
  FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
 WHERE a.attrelid = $1::text::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped`

// copyColumnsCitusSQL is copyColumnsSQL with one more column: the type
// that a value of the column is encoded as (a domain's base type, as COPY
// encodes it).
const copyColumnsCitusSQL = `WITH RECURSIVE c(name, typ, base) AS (
  SELECT a.attname::text, a.atttypid, a.atttypid
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = $1::text::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT c.name, c.typ, d.typbasetype FROM c JOIN pg_catalog.pg_type d ON d.oid = c.base AND d.typtype = 'd'
)
SELECT c.name, c.typ::int8, t.typarray::int8,
       t.typtype = 'd' OR (t.typelem <> 0 AND t.typlen = -1) OR t.typarray = 0 OR t.typreceive::oid = 0,
       c.base::int8
  FROM c JOIN pg_catalog.pg_type t ON t.oid = c.typ JOIN pg_catalog.pg_type b ON b.oid = c.base
 WHERE b.typtype <> 'd'`

// copyMode is how CopyFrom inserts the rows.
type copyMode int

const (
	copyUnnest copyMode = iota // INSERT ... SELECT unnest(...), or the temporary table
	copyValues                 // multi-row INSERT ... VALUES, for Citus
)

// copyValuesRows is the most rows in one INSERT ... VALUES of the Citus
// path; copyMaxParams is the most parameters a statement can have.
const (
	copyValuesRows = 1000
	copyMaxParams  = 65535
)

// copyPlan is how CopyFrom inserts the rows of one call: through unnest,
// or with valuesSQL set, through multi-row INSERT ... VALUES.
type copyPlan struct {
	insertSQL string
	elemOIDs  []uint32 // the column types (with VALUES, the types encoded)
	arrayOIDs []uint32 // the parameter types: arrays of the column types
	formats   []int16  // all binary

	// valuesSQL inserts valuesRows rows; its first valuesEnds[r-1] bytes
	// insert the first r of them. valueOIDs and valueFormats are the types
	// and formats of its parameters, row after row.
	valuesSQL    string
	valuesRows   int
	valuesEnds   []int
	valueOIDs    []uint32
	valueFormats []int16
	valueParams  [][]byte // reused for each statement's parameters

	missing string // a column that table does not have (VALUES only)
}

// check returns an error when the plan names a column that does not exist.
func (cp *copyPlan) check() error {
	if cp != nil && cp.missing != "" {
		return fmt.Errorf("pool: CopyFrom: column %q does not exist", cp.missing)
	}
	return nil
}

// queueCopyPlan queues the catalog query for the columns of table on b. When
// b has run, *cp is the plan, or nil when the temporary table must carry the
// copy (a column that unnest cannot carry, or a column that does not exist:
// COPY then reports it).
func queueCopyPlan(b *pgx.Batch, table pgx.Identifier, columns []string, mode copyMode, cp **copyPlan) {
	sql := copyColumnsSQL
	if mode != copyUnnest {
		sql = copyColumnsCitusSQL
	}
	b.Queue(sql, table.Sanitize()).Query(func(rows pgx.Rows) error {
		type column struct {
			typ, array, base int64
			unsupported      bool
		}
		found := map[string]column{}
		var name string
		var col column
		dest := []any{&name, &col.typ, &col.array, &col.unsupported}
		if mode != copyUnnest {
			dest = append(dest, &col.base)
		}
		if _, err := pgx.ForEachRow(rows, dest, func() error {
			found[name] = col
			return nil
		}); err != nil {
			return err
		}
		if mode == copyValues {
			*cp = newValuesPlan(table, columns, func(name string) (uint32, bool) {
				col, ok := found[name]
				return uint32(col.base), ok
			})
			return nil
		}
		plan := &copyPlan{
			elemOIDs:  make([]uint32, len(columns)),
			arrayOIDs: make([]uint32, len(columns)),
			formats:   make([]int16, len(columns)),
		}
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + table.Sanitize() + " (" + columnList(columns) + ") SELECT ")
		for i, name := range columns {
			col, ok := found[name]
			if !ok || col.unsupported {
				return nil
			}
			plan.elemOIDs[i], plan.arrayOIDs[i] = uint32(col.typ), uint32(col.array)
			plan.formats[i] = pgtype.BinaryFormatCode
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("pg_catalog.unnest($" + strconv.Itoa(i+1) + ")")
		}
		plan.insertSQL = sb.String()
		*cp = plan
		return nil
	})
}

// newValuesPlan returns the plan of a copy through multi-row INSERT ...
// VALUES, with base giving the type that a column's values are encoded as.
func newValuesPlan(table pgx.Identifier, columns []string, base func(name string) (uint32, bool)) *copyPlan {
	rows := min(copyValuesRows, copyMaxParams/len(columns))
	plan := &copyPlan{
		elemOIDs:     make([]uint32, len(columns)),
		valuesRows:   rows,
		valuesEnds:   make([]int, rows),
		valueOIDs:    make([]uint32, 0, rows*len(columns)),
		valueFormats: make([]int16, rows*len(columns)),
		valueParams:  make([][]byte, rows*len(columns)),
	}
	for i, name := range columns {
		oid, ok := base(name)
		if !ok {
			plan.missing = name
			return plan
		}
		plan.elemOIDs[i] = oid
	}
	for range rows {
		plan.valueOIDs = append(plan.valueOIDs, plan.elemOIDs...)
	}
	for i := range plan.valueFormats {
		plan.valueFormats[i] = pgtype.BinaryFormatCode
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table.Sanitize() + " (" + columnList(columns) + ") VALUES ")
	param := 1
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for i := range columns {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("$" + strconv.Itoa(param))
			param++
		}
		sb.WriteByte(')')
		plan.valuesEnds[r] = sb.Len()
	}
	plan.valuesSQL = sb.String()
	return plan
}

// sendValues queues the INSERT ... VALUES statements of ch on pl: the
// values of each row are taken from the chunk's columns (binary arrays'
// elements, each a length, -1 for NULL, and the bytes).
func (cp *copyPlan) sendValues(pl *pgconn.Pipeline, ch *copyChunk) {
	ncols := len(ch.cols)
	pos := make([]int, ncols) // the next element of each column
	for i := range pos {
		pos[i] = arrayHeaderLen
	}
	for done := 0; done < ch.rows; {
		n := min(cp.valuesRows, ch.rows-done)
		params := cp.valueParams[:n*ncols]
		for r := range n {
			for i, col := range ch.cols {
				p := pos[i]
				size := int32(binary.BigEndian.Uint32(col[p:]))
				p += 4
				if size < 0 {
					params[r*ncols+i] = nil
				} else {
					params[r*ncols+i] = col[p : p+int(size)]
					p += int(size)
				}
				pos[i] = p
			}
		}
		pl.SendQueryParams(cp.valuesSQL[:cp.valuesEnds[n-1]], params, cp.valueOIDs[:n*ncols], cp.valueFormats[:n*ncols], nil)
		done += n
	}
}

// copyChunk holds one chunk's columns as binary arrays being built.
type copyChunk struct {
	cols    [][]byte
	hasNull []bool
	rows    int
	size    int
	last    bool // the last chunk of the copy
}

// arrayHeaderLen is the length of the header of a one-dimensional array in
// the binary format: dimensions, flags, element type, length, lower bound.
const arrayHeaderLen = 20

// reset empties ch for a chunk of up to rows rows, sized like the chunk
// before.
func (ch *copyChunk) reset(rows int) {
	for i, col := range ch.cols {
		if ch.rows > 0 && rows > ch.rows {
			if need := arrayHeaderLen + (len(col)-arrayHeaderLen)/ch.rows*rows*9/8; need > cap(col) {
				col = make([]byte, 0, need)
			}
		}
		ch.cols[i] = append(col[:0], make([]byte, arrayHeaderLen)...)
		ch.hasNull[i] = false
	}
	ch.rows, ch.size, ch.last = 0, 0, false
}

// copyEncoder encodes the values of a copy's columns, remembering per
// column the encode plan of the last Go type seen (as pgx does for the
// elements of an array), so that most values skip the plan lookup.
type copyEncoder struct {
	m     *pgtype.Map
	oids  []uint32
	types []reflect.Type
	plans []pgtype.EncodePlan
}

func newCopyEncoder(m *pgtype.Map, oids []uint32) *copyEncoder {
	return &copyEncoder{m: m, oids: oids, types: make([]reflect.Type, len(oids)), plans: make([]pgtype.EncodePlan, len(oids))}
}

// encode appends v, the value of column i, to buf as [encodeCopyValue]
// does.
func (e *copyEncoder) encode(i int, buf []byte, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	typ := reflect.TypeOf(v)
	switch typ.Kind() {
	case reflect.Chan, reflect.Func, reflect.Map, reflect.Pointer, reflect.UnsafePointer, reflect.Interface, reflect.Slice:
		// Possibly nil, possibly a driver.Valuer: as pgx decides.
		return encodeCopyValue(e.m, buf, e.oids[i], v)
	}
	if typ != e.types[i] {
		e.types[i], e.plans[i] = typ, e.m.PlanEncode(e.oids[i], pgtype.BinaryFormatCode, v)
	}
	if plan := e.plans[i]; plan != nil {
		if out, err := plan.Encode(v, buf); err == nil {
			return out, nil
		}
	}
	return encodeCopyValue(e.m, buf, e.oids[i], v)
}

// add encodes one row's values.
func (ch *copyChunk) add(e *copyEncoder, values []any) error {
	if len(values) != len(ch.cols) {
		return fmt.Errorf("expected %d values, got %d values", len(ch.cols), len(values))
	}
	for i, v := range values {
		buf := ch.cols[i]
		before := len(buf)
		sp := len(buf)
		buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF) // NULL until encoded
		out, err := e.encode(i, buf, v)
		if err != nil {
			return err
		}
		if out == nil {
			ch.hasNull[i] = true
		} else {
			buf = out
			binary.BigEndian.PutUint32(buf[sp:], uint32(len(buf)-sp-4))
		}
		ch.cols[i] = buf
		ch.size += len(buf) - before
	}
	ch.rows++
	return nil
}

// params finishes the arrays' headers and returns them.
func (ch *copyChunk) params(oids []uint32) [][]byte {
	for i, buf := range ch.cols {
		binary.BigEndian.PutUint32(buf[0:], 1) // dimensions
		flags := uint32(0)
		if ch.hasNull[i] {
			flags = 1
		}
		binary.BigEndian.PutUint32(buf[4:], flags)
		binary.BigEndian.PutUint32(buf[8:], oids[i])
		binary.BigEndian.PutUint32(buf[12:], uint32(ch.rows))
		binary.BigEndian.PutUint32(buf[16:], 1) // lower bound
	}
	return ch.cols
}

// encodeCopyValue appends v as type oid in the binary format to buf, as
// pgx's CopyFrom does: a value that has no binary encoding for the type
// (for example a string for a numeric column) is parsed as the type's text
// form first. It returns nil for NULL.
func encodeCopyValue(m *pgtype.Map, buf []byte, oid uint32, v any) ([]byte, error) {
	out, err := m.Encode(oid, pgtype.BinaryFormatCode, v, buf)
	if err == nil {
		return out, nil
	}
	s, ok := v.(string)
	if !ok {
		text, err2 := m.Encode(oid, pgtype.TextFormatCode, v, nil)
		if err2 != nil {
			return nil, err
		}
		s = string(text)
	}
	if typ, ok := m.TypeForOID(oid); ok {
		if _, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
			var arr pgtype.Array[any]
			if m.Scan(oid, pgtype.TextFormatCode, []byte(s), &arr) == nil {
				return m.Encode(oid, pgtype.BinaryFormatCode, arr, buf)
			}
		}
	}
	var parsed any
	if err := m.Scan(oid, pgtype.TextFormatCode, []byte(s), &parsed); err != nil {
		return nil, err
	}
	return m.Encode(oid, pgtype.BinaryFormatCode, parsed, buf)
}

// copySavepoint guards a multi-chunk copy inside the caller's transaction,
// so that a failure on the client side (the source's error, a value that
// cannot be encoded) after some chunks went in leaves none of them.
const copySavepoint = "pgtenancy_copy"

// run inserts src's rows in chunks on conn, inside a transaction. own
// reports that the transaction belongs to the copy: the last chunk then
// commits it, after the statements before. Otherwise a copy of more than one chunk runs under a
// savepoint, rolled back when the copy fails on the client side; a failure
// on the server aborts the caller's transaction, as a failed COPY does.
//
// Like pgx's CopyFrom, it reads and encodes src in a goroutine, so the
// next chunk is encoded while the server inserts the previous one. run
// returns only after that goroutine has ended.
func (cp *copyPlan) run(ctx context.Context, conn *pgx.Conn, src pgx.CopyFromSource, own bool, before []string) (n int64, err error) {
	pc := conn.PgConn()
	full := make(chan *copyChunk, 1)
	free := make(chan *copyChunk, 2)
	free <- cp.newChunk()
	free <- cp.newChunk()
	done := make(chan struct{})
	var encErr error // written by the encoder before it closes full
	go cp.encode(conn.TypeMap(), src, full, free, done, &encErr)
	defer func() {
		close(done)
		for range full { // wait for the encoder
		}
	}()

	// One pipeline for the whole copy: the chunks go out without waiting for
	// the results of the previous ones, which are read at the end.
	pl := pc.StartPipeline(ctx)
	guarded, synced := false, false
	defer func() {
		if !synced {
			_ = pl.Sync() // Close needs the requests synced
		}
		if closeErr := pl.Close(); err == nil && closeErr != nil {
			n, err = 0, closeErr
		}
		if err != nil && guarded && !pc.IsClosed() && !pc.IsBusy() && pc.TxStatus() == 'T' {
			// A failure on the client side: take back the chunks sent.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_, _ = pc.Exec(rctx, "rollback to savepoint "+copySavepoint+"; release savepoint "+copySavepoint).ReadAll()
			cancel()
		}
	}()
	first := true
	for ch := range full {
		if !own && first && !ch.last {
			pl.SendQueryParams("savepoint "+copySavepoint, nil, nil, nil, nil)
			guarded = true
		}
		first = false
		switch {
		case ch.rows == 0:
		case cp.valuesSQL != "":
			cp.sendValues(pl, ch)
		default:
			pl.SendQueryParams(cp.insertSQL, ch.params(cp.elemOIDs), cp.arrayOIDs, cp.formats, nil)
		}
		last := ch.last
		free <- ch // the pipeline holds a copy of the parameters
		if !last {
			if err := pl.Flush(); err != nil {
				return 0, err
			}
			continue
		}
		switch {
		case own:
			for _, sql := range before {
				pl.SendQueryParams(sql, nil, nil, nil, nil)
			}
			pl.SendQueryParams("commit", nil, nil, nil, nil)
		case guarded:
			pl.SendQueryParams("release savepoint "+copySavepoint, nil, nil, nil, nil)
		}
		synced = true
		if err := pl.Sync(); err != nil {
			return 0, err
		}
		for {
			res, err := pl.GetResults()
			if err != nil {
				return 0, err
			}
			switch res := res.(type) {
			case *pgconn.ResultReader:
				tag, err := res.Close()
				if err != nil {
					return 0, err
				}
				if tag.Insert() {
					n += tag.RowsAffected()
				}
			case *pgconn.PipelineSync:
				if own && pc.TxStatus() != 'I' {
					return 0, errors.New("pool: CopyFrom: the transaction did not commit")
				}
				return n, nil
			default:
				return 0, fmt.Errorf("pool: CopyFrom: unexpected pipeline result %T", res)
			}
		}
	}
	// The encoder stopped before the last chunk.
	if encErr == nil {
		encErr = errors.New("pool: CopyFrom: the rows ended early")
	}
	return 0, encErr
}

func (cp *copyPlan) newChunk() *copyChunk {
	return &copyChunk{cols: make([][]byte, len(cp.elemOIDs)), hasNull: make([]bool, len(cp.elemOIDs))}
}

// encode reads src into chunks taken from free and sends them on full, the
// last one marked, until src ends, fails (*errp), or done is closed. It
// closes full when it returns.
func (cp *copyPlan) encode(m *pgtype.Map, src pgx.CopyFromSource, full, free chan *copyChunk, done chan struct{}, errp *error) {
	defer close(full)
	enc := newCopyEncoder(m, cp.elemOIDs)
	var ch *copyChunk
	// The first chunks are small, so that the server starts early.
	limit := copyChunkFirstRows
	next := func() bool {
		select {
		case ch = <-free:
			ch.reset(limit)
			return true
		case <-done:
			return false
		}
	}
	if !next() {
		return
	}
	for src.Next() {
		values, err := src.Values()
		if err == nil {
			err = ch.add(enc, values)
		}
		if err != nil {
			*errp = err
			return
		}
		if ch.rows >= limit || ch.size >= copyChunkBytes {
			select {
			case full <- ch:
			case <-done:
				return
			}
			limit = min(2*limit, copyChunkRows)
			if !next() {
				return
			}
		}
	}
	if err := src.Err(); err != nil {
		*errp = err
		return
	}
	ch.last = true
	select {
	case full <- ch:
	case <-done:
	}
}

// copyTable is the temporary table that CopyFrom copies into.
var copyTable = pgx.Identifier{"pg_temp", "pgtenancy_copy"}

func columnList(columns []string) string {
	var sb strings.Builder
	for i, c := range columns {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pgx.Identifier{c}.Sanitize())
	}
	return sb.String()
}

// createCopyTable creates the temporary table of a copy into table. It is
// ON COMMIT DROP: whatever happens to the copy, its rows never outlive the
// transaction.
func createCopyTable(table pgx.Identifier, columns []string) string {
	return "CREATE TEMPORARY TABLE " + copyTable[1] + " ON COMMIT DROP AS SELECT " + columnList(columns) +
		" FROM " + table.Sanitize() + " WITH NO DATA"
}

// copyVia copies src into table through the temporary table, on conn inside
// a transaction. own reports that the transaction and the temporary table
// belong to the copy, which then commits, after the statements before;
// otherwise copyVia creates the table, drops it after use, and aborts the
// caller's transaction when it fails, the temporary table with it.
func copyVia(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, columns []string, src pgx.CopyFromSource, own bool, before []string) (n int64, err error) {
	if err := checkCopyArgs(table, columns); err != nil {
		return 0, err
	}
	if !own {
		defer func() {
			if err != nil {
				abortTx(ctx, conn.PgConn())
			}
		}()
		if _, err := conn.Exec(ctx, createCopyTable(table, columns)); err != nil {
			return 0, err
		}
	}
	if _, err := conn.CopyFrom(ctx, copyTable, columns, src); err != nil {
		return 0, err
	}
	cols := columnList(columns)
	b := &pgx.Batch{}
	insert := b.Queue("INSERT INTO " + table.Sanitize() + " (" + cols + ") SELECT " + cols + " FROM " + copyTable.Sanitize())
	insert.Exec(func(tag pgconn.CommandTag) error {
		n = tag.RowsAffected()
		return nil
	})
	if own {
		for _, sql := range before {
			b.Queue(sql)
		}
		b.Queue("commit")
	} else {
		b.Queue("DROP TABLE " + copyTable.Sanitize())
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return n, nil
}

// abortSQL fails, which aborts the transaction it runs in.
const abortSQL = "DO $$BEGIN RAISE EXCEPTION 'pgtenancy: CopyFrom failed: this transaction is aborted' USING ERRCODE = '25P02'; END$$"

// abortTx aborts the transaction open on pc, if it is not already, so that
// a caller who commits anyway commits nothing: a failure on the client
// side (a cancelled context, the source's error) leaves it open otherwise.
// It runs without ctx's cancellation. A connection that cannot run it is
// closed, and its transaction with it.
func abortTx(ctx context.Context, pc *pgconn.PgConn) {
	if pc.IsClosed() || pc.TxStatus() != 'T' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if pc.IsBusy() {
		_ = pc.Close(rctx)
		return
	}
	_, _ = pc.Exec(rctx, abortSQL).ReadAll()
	if pc.TxStatus() != 'E' {
		_ = pc.Close(rctx)
	}
}
