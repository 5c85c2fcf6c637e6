package stdlib

import (
	"database/sql/driver"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// rows are the rows of a unit of work. They convert values as pgx's
// database/sql driver does. When the last row has been read (or the rows
// are closed), finish reads the rest of the unit (the end of its
// transaction) and cleans the connection; its error is the rows' error.
type rows struct {
	conn   *pgx.Conn
	r      pgx.Rows
	finish func(err error) error
	funcs  []valueFunc
	names  []string
	// The first row is read before the rows are returned, so that an
	// error of the statement is QueryContext's.
	first, firstMore bool
	done             bool
}

var (
	_ driver.Rows                           = (*rows)(nil)
	_ driver.RowsColumnTypeDatabaseTypeName = (*rows)(nil)
	_ driver.RowsColumnTypeLength           = (*rows)(nil)
	_ driver.RowsColumnTypePrecisionScale   = (*rows)(nil)
	_ driver.RowsColumnTypeScanType         = (*rows)(nil)
)

// newRows reads the first row of r and returns the rows, or the error of
// the unit of work (finish has run then).
func newRows(conn *pgx.Conn, r pgx.Rows, finish func(error) error) (driver.Rows, error) {
	rs := &rows{conn: conn, r: r, finish: finish, first: true}
	rs.firstMore = r.Next()
	if !rs.firstMore {
		if err := rs.end(); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// end closes the pgx rows and finishes the unit, once.
func (r *rows) end() error {
	if r.done {
		return nil
	}
	r.done = true
	r.r.Close()
	return r.finish(r.r.Err())
}

func (r *rows) Columns() []string {
	if r.names == nil {
		fds := r.r.FieldDescriptions()
		r.names = make([]string, len(fds))
		for i, fd := range fds {
			r.names[i] = fd.Name
		}
	}
	return r.names
}

func (r *rows) Close() error { return r.end() }

func (r *rows) Next(dest []driver.Value) error {
	more := false
	switch {
	case r.first:
		r.first = false
		more = r.firstMore
	case !r.done:
		more = r.r.Next()
	}
	if !more {
		if err := r.end(); err != nil {
			return err
		}
		return io.EOF
	}
	if r.funcs == nil {
		m := r.conn.TypeMap()
		fds := r.r.FieldDescriptions()
		r.funcs = make([]valueFunc, len(fds))
		for i, fd := range fds {
			r.funcs[i] = newValueFunc(m, fd)
		}
	}
	for i, raw := range r.r.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := r.funcs[i](raw)
		if err != nil {
			return fmt.Errorf("convert field %d failed: %w", i, err)
		}
		dest[i] = v
	}
	return nil
}

func (r *rows) fd(i int) pgconn.FieldDescription { return r.r.FieldDescriptions()[i] }

// ColumnTypeDatabaseTypeName returns the type's name in upper case, or its
// OID when the connection does not know it.
func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	oid := r.fd(i).DataTypeOID
	if dt, ok := r.conn.TypeMap().TypeForOID(oid); ok {
		return strings.ToUpper(dt.Name)
	}
	return strconv.FormatInt(int64(oid), 10)
}

// ColumnTypeLength returns the length of variable length types.
func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	fd := r.fd(i)
	switch fd.DataTypeOID {
	case pgtype.TextOID, pgtype.ByteaOID:
		return math.MaxInt64, true
	case pgtype.VarcharOID, pgtype.BPCharOID:
		return int64(fd.TypeModifier - 4), true
	case pgtype.VarbitOID:
		return int64(fd.TypeModifier), true
	}
	return 0, false
}

// ColumnTypePrecisionScale returns the precision and scale of numeric.
func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	fd := r.fd(i)
	if fd.DataTypeOID != pgtype.NumericOID {
		return 0, 0, false
	}
	mod := fd.TypeModifier - 4
	return int64((mod >> 16) & 0xffff), int64(mod & 0xffff), true
}

// ColumnTypeScanType returns the Go type of the column's values.
func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	switch r.fd(i).DataTypeOID {
	case pgtype.Float8OID, pgtype.NumericOID:
		return reflect.TypeFor[float64]()
	case pgtype.Float4OID:
		return reflect.TypeFor[float32]()
	case pgtype.Int8OID:
		return reflect.TypeFor[int64]()
	case pgtype.Int4OID:
		return reflect.TypeFor[int32]()
	case pgtype.Int2OID:
		return reflect.TypeFor[int16]()
	case pgtype.BoolOID:
		return reflect.TypeFor[bool]()
	case pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return reflect.TypeFor[time.Time]()
	case pgtype.ByteaOID:
		return reflect.TypeFor[[]byte]()
	}
	return reflect.TypeFor[string]()
}

// valueFunc converts a column's raw value to a driver.Value.
type valueFunc func(src []byte) (driver.Value, error)

// scanTo returns a valueFunc that scans into a T and converts it.
func scanTo[T any](m *pgtype.Map, fd pgconn.FieldDescription, conv func(T) (driver.Value, error)) valueFunc {
	var d T
	plan := m.PlanScan(fd.DataTypeOID, fd.Format, &d)
	return func(src []byte) (driver.Value, error) {
		if err := plan.Scan(src, &d); err != nil {
			return nil, err
		}
		return conv(d)
	}
}

func same[T any](v T) (driver.Value, error) { return v, nil }

func valuer[T driver.Valuer](v T) (driver.Value, error) { return v.Value() }

func copyBytes(v []byte) (driver.Value, error) { return v, nil }

// newValueFunc returns the conversion of pgx's database/sql driver for
// fd's type. Other types become their text representation; a value of
// such a type that came in binary (pgx's batches choose the format by
// type) is decoded and encoded again as text.
func newValueFunc(m *pgtype.Map, fd pgconn.FieldDescription) valueFunc {
	switch fd.DataTypeOID {
	case pgtype.BoolOID:
		return scanTo(m, fd, same[bool])
	case pgtype.ByteaOID, pgtype.JSONOID, pgtype.JSONBOID, pgtype.XMLOID:
		return scanTo(m, fd, copyBytes)
	case pgtype.CIDOID, pgtype.OIDOID, pgtype.XIDOID:
		return scanTo(m, fd, valuer[pgtype.Uint32])
	case pgtype.DateOID:
		return scanTo(m, fd, valuer[pgtype.Date])
	case pgtype.Float4OID:
		return scanTo(m, fd, func(v float32) (driver.Value, error) { return float64(v), nil })
	case pgtype.Float8OID:
		return scanTo(m, fd, same[float64])
	case pgtype.Int2OID:
		return scanTo(m, fd, func(v int16) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int4OID:
		return scanTo(m, fd, func(v int32) (driver.Value, error) { return int64(v), nil })
	case pgtype.Int8OID:
		return scanTo(m, fd, same[int64])
	case pgtype.TimestampOID:
		return scanTo(m, fd, valuer[pgtype.Timestamp])
	case pgtype.TimestamptzOID:
		return scanTo(m, fd, valuer[pgtype.Timestamptz])
	}
	if fd.Format == pgtype.TextFormatCode {
		return func(src []byte) (driver.Value, error) { return string(src), nil }
	}
	str := scanTo(m, fd, same[string])
	return func(src []byte) (driver.Value, error) {
		if v, err := str(src); err == nil {
			return v, nil
		}
		dt, ok := m.TypeForOID(fd.DataTypeOID)
		if !ok {
			return nil, fmt.Errorf("binary value of unknown type %d", fd.DataTypeOID)
		}
		v, err := dt.Codec.DecodeValue(m, fd.DataTypeOID, fd.Format, src)
		if err != nil {
			return nil, err
		}
		text, err := m.Encode(fd.DataTypeOID, pgtype.TextFormatCode, v, nil)
		if err != nil {
			return nil, err
		}
		return string(text), nil
	}
}
