package lifecycle

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The two file formats are PostgreSQL's own COPY formats, so that a file
// loads with psql's \copy or COPY as well: binary (the default: exact,
// compact, fast) and CSV with a header line (readable by people and
// spreadsheets).

// Format is the format of an export's data files.
type Format string

// The formats of data files.
const (
	Binary Format = "binary"
	CSV    Format = "csv"
)

// ext returns the file name extension of the format.
func (f Format) ext() string {
	if f == CSV {
		return ".csv"
	}
	return ".bin"
}

// copyOptions returns the options of COPY for the format. The header line
// of CSV is written by an export and skipped on import by the record
// reader, so COPY FROM gets chunks without one.
func (f Format) copyOptions(header bool) string {
	if f == CSV {
		if header {
			return "(FORMAT csv, HEADER true)"
		}
		return "(FORMAT csv)"
	}
	return "(FORMAT binary)"
}

func (f Format) valid() bool { return f == Binary || f == CSV }

// binarySignature starts every binary COPY stream; then come an int32 of
// flags and the int32 length of a header extension.
var binarySignature = []byte("PGCOPY\n\xff\r\n\x00")

const binaryHeaderLen = 11 + 4 + 4

// binaryTrailer ends a binary COPY stream: a field count of -1.
var binaryTrailer = []byte{0xff, 0xff}

var errBadCopy = errors.New("malformed COPY data")

// binaryHasher is an io.Writer that parses a binary COPY stream as it
// passes and sums the hashes of its rows (see hash.go). COPY TO sends a
// message per row, so rows rarely straddle writes; when one does, the part
// received is carried over to the next write.
type binaryHasher struct {
	ncols int
	sum   Checksum
	carry []byte
	stage int // 0: header, 1: rows, 2: after the trailer
}

func (h *binaryHasher) Write(p []byte) (int, error) {
	n := len(p)
	// Complete the row carried over with as few of p's bytes as will do,
	// twice as many each time, so a large write is not copied whole.
	for len(h.carry) > 0 && len(p) > 0 {
		k := min(len(p), max(4096, len(h.carry)))
		h.carry = append(h.carry, p[:k]...)
		p = p[k:]
		used, err := h.parse(h.carry)
		if err != nil {
			return 0, err
		}
		h.carry = h.carry[:copy(h.carry, h.carry[used:])]
	}
	if len(p) == 0 {
		return n, nil
	}
	used, err := h.parse(p)
	if err != nil {
		return 0, err
	}
	h.carry = append(h.carry[:0], p[used:]...)
	return n, nil
}

// parse consumes the complete units of data and returns how many bytes it
// consumed.
func (h *binaryHasher) parse(data []byte) (int, error) {
	off := 0
	if h.stage == 0 {
		if len(data) < binaryHeaderLen {
			return 0, nil
		}
		if !bytes.Equal(data[:11], binarySignature) || binary.BigEndian.Uint32(data[11:]) != 0 {
			return 0, fmt.Errorf("%w: bad binary header", errBadCopy)
		}
		ext := int(binary.BigEndian.Uint32(data[15:]))
		if len(data) < binaryHeaderLen+ext {
			return 0, nil
		}
		off = binaryHeaderLen + ext
		h.stage = 1
	}
	for h.stage == 1 {
		start := off
		if len(data)-off < 2 {
			return start, nil
		}
		nf := int(int16(binary.BigEndian.Uint16(data[off:])))
		off += 2
		if nf == -1 {
			h.stage = 2
			return off, nil
		}
		if nf != h.ncols {
			return 0, fmt.Errorf("%w: a row of %d fields, want %d", errBadCopy, nf, h.ncols)
		}
		rh := newRowHash()
		for range nf {
			if len(data)-off < 4 {
				return start, nil
			}
			l := int(int32(binary.BigEndian.Uint32(data[off:])))
			off += 4
			if l == -1 {
				rh.null()
				continue
			}
			if l < 0 {
				return 0, fmt.Errorf("%w: field length %d", errBadCopy, l)
			}
			if len(data)-off < l {
				return start, nil
			}
			rh.field(data[off : off+l])
			off += l
		}
		h.sum.add(uint64(rh))
	}
	if off < len(data) {
		return 0, fmt.Errorf("%w: data after the trailer", errBadCopy)
	}
	return off, nil
}

// finish reports a stream that ended early.
func (h *binaryHasher) finish() error {
	if h.stage != 2 || len(h.carry) > 0 {
		return fmt.Errorf("%w: the stream ended inside a row", errBadCopy)
	}
	return nil
}

// csvCounter is an io.Writer that counts the records of a CSV stream as
// PostgreSQL writes it: a record ends at a newline outside quotes, and a
// quote inside a quoted field is doubled, so toggling on every quote
// tracks whether a newline is inside one.
type csvCounter struct {
	records int64
	quoted  bool
}

func (c *csvCounter) Write(p []byte) (int, error) {
	for b := p; len(b) > 0; {
		i := bytes.IndexAny(b, "\"\n")
		if i < 0 {
			break
		}
		if b[i] == '"' {
			c.quoted = !c.quoted
		} else if !c.quoted {
			c.records++
		}
		b = b[i+1:]
	}
	return len(p), nil
}

// recordReader reads the records of a data file one by one, for imports
// that send them in chunks.
type recordReader struct {
	r      *bufio.Reader
	format Format
	ncols  int
	// header is what precedes the records: the binary header, or the CSV
	// header line.
	header []byte
	buf    []byte
	done   bool
}

func newRecordReader(r io.Reader, format Format, ncols int) (*recordReader, error) {
	rr := &recordReader{r: bufio.NewReaderSize(r, 1<<16), format: format, ncols: ncols}
	if format == CSV {
		line, err := rr.next()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: empty CSV file (no header line)", errBadCopy)
		}
		if err != nil {
			return nil, err
		}
		rr.header = bytes.Clone(line)
		return rr, nil
	}
	h := make([]byte, binaryHeaderLen)
	if _, err := io.ReadFull(rr.r, h); err != nil {
		return nil, fmt.Errorf("%w: bad binary header: %w", errBadCopy, err)
	}
	if !bytes.Equal(h[:11], binarySignature) || binary.BigEndian.Uint32(h[11:]) != 0 {
		return nil, fmt.Errorf("%w: bad binary header", errBadCopy)
	}
	ext := make([]byte, binary.BigEndian.Uint32(h[15:]))
	if _, err := io.ReadFull(rr.r, ext); err != nil {
		return nil, fmt.Errorf("%w: bad binary header: %w", errBadCopy, err)
	}
	rr.header = append(h, ext...)
	return rr, nil
}

// next returns the next record, valid until the next call, or io.EOF after
// the last one (for binary, after the trailer, at the end of the file).
func (rr *recordReader) next() ([]byte, error) {
	if rr.done {
		return nil, io.EOF
	}
	rr.buf = rr.buf[:0]
	if rr.format == CSV {
		quoted := false
		for {
			line, err := rr.r.ReadSlice('\n')
			rr.buf = append(rr.buf, line...)
			if err == bufio.ErrBufferFull {
				quoted = quoted != (bytes.Count(line, []byte{'"'})%2 == 1)
				continue
			}
			if err == io.EOF {
				rr.done = true
				if len(rr.buf) == 0 {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("%w: the last CSV record has no newline", errBadCopy)
			}
			if err != nil {
				return nil, err
			}
			quoted = quoted != (bytes.Count(line, []byte{'"'})%2 == 1)
			if !quoted {
				return rr.buf, nil
			}
		}
	}
	var n [4]byte
	if _, err := io.ReadFull(rr.r, n[:2]); err != nil {
		return nil, fmt.Errorf("%w: no trailer: %w", errBadCopy, err)
	}
	rr.buf = append(rr.buf, n[:2]...)
	nf := int(int16(binary.BigEndian.Uint16(n[:2])))
	if nf == -1 {
		rr.done = true
		if _, err := rr.r.ReadByte(); err != io.EOF {
			return nil, fmt.Errorf("%w: data after the trailer", errBadCopy)
		}
		return nil, io.EOF
	}
	if nf != rr.ncols {
		return nil, fmt.Errorf("%w: a row of %d fields, want %d", errBadCopy, nf, rr.ncols)
	}
	for range nf {
		if _, err := io.ReadFull(rr.r, n[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadCopy, err)
		}
		rr.buf = append(rr.buf, n[:]...)
		l := int(int32(binary.BigEndian.Uint32(n[:])))
		if l == -1 {
			continue
		}
		if l < 0 {
			return nil, fmt.Errorf("%w: field length %d", errBadCopy, l)
		}
		at := len(rr.buf)
		rr.buf = append(rr.buf, make([]byte, l)...)
		if _, err := io.ReadFull(rr.r, rr.buf[at:]); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadCopy, err)
		}
	}
	return rr.buf, nil
}

// chunk is an io.Reader of a COPY stream holding up to limit records of
// rr (all of them when limit <= 0): the binary header, the records and the
// trailer; for CSV the records alone. rows counts the records sent, and
// tick, when set, is called after each.
type chunk struct {
	rr    *recordReader
	limit int64
	rows  int64
	tick  func()
	pend  []byte
	state int // 0: prefix, 1: records, 2: suffix sent
}

func (c *chunk) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pend) > 0 {
			k := copy(p[n:], c.pend)
			c.pend = c.pend[k:]
			n += k
			continue
		}
		switch c.state {
		case 0:
			c.state = 1
			if c.rr.format == Binary {
				c.pend = c.rr.header
			}
		case 1:
			if c.limit > 0 && c.rows >= c.limit {
				c.state = 2
				if c.rr.format == Binary {
					c.pend = binaryTrailer
				}
				continue
			}
			rec, err := c.rr.next()
			if err == io.EOF {
				c.state = 2
				if c.rr.format == Binary {
					c.pend = binaryTrailer
				}
				continue
			}
			if err != nil {
				return n, err
			}
			c.rows++
			c.pend = rec
			if c.tick != nil {
				c.tick()
			}
		default:
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		}
	}
	return n, nil
}
