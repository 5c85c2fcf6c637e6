package lifecycle

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// TestRowHashIsTheServers compares the row hash with PostgreSQL's
// hash_array_extended over bytea arrays of every length up to 40 bytes an
// element (every tail of lookup3) and NULLs.
func TestRowHashIsTheServers(t *testing.T) {
	t.Parallel()
	conn := pgtenancytest.NewDB(t, nil).AdminConn(t)
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 300 {
		row := make([][]byte, 1+r.IntN(6))
		for i := range row {
			if r.IntN(7) == 0 {
				continue // NULL
			}
			row[i] = make([]byte, (n+i)%41)
			for j := range row[i] {
				row[i][j] = byte(r.Uint32())
			}
		}
		var want int64
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT hash_array_extended($1::bytea[], 0)", row).Scan(&want))
		h := newRowHash()
		for _, f := range row {
			if f == nil {
				h.null()
			} else {
				h.field(f)
			}
		}
		require.Equal(t, uint64(want), uint64(h), "row %d: %x", n, row)
	}
}

func TestChecksumText(t *testing.T) {
	t.Parallel()
	c := Checksum{Rows: 42, Sum: 0xabc}
	b, err := c.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "42:0000000000000abc", string(b))
	var d Checksum
	require.NoError(t, d.UnmarshalText(b))
	assert.Equal(t, c, d)
	for _, bad := range []string{"", "42", "42:abc", "-1:0000000000000abc", "x:0000000000000abc", "1:000000000000000g"} {
		assert.Error(t, d.UnmarshalText([]byte(bad)), bad)
	}
}

// binaryStream builds a binary COPY stream of rows of two fields.
func binaryStream(rows [][2][]byte) []byte {
	var b bytes.Buffer
	b.Write(binarySignature)
	b.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	for _, r := range rows {
		b.Write([]byte{0, 2})
		for _, f := range r {
			if f == nil {
				b.Write([]byte{0xff, 0xff, 0xff, 0xff})
				continue
			}
			b.Write([]byte{0, 0, byte(len(f) >> 8), byte(len(f))})
			b.Write(f)
		}
	}
	b.Write(binaryTrailer)
	return b.Bytes()
}

// TestBinaryHasherAnySplit feeds a stream in pieces of every size: the
// checksum does not depend on where writes end.
func TestBinaryHasherAnySplit(t *testing.T) {
	t.Parallel()
	rows := [][2][]byte{{[]byte("a"), nil}, {[]byte(strings.Repeat("x", 300)), []byte("")}, {nil, []byte("zz")}}
	stream := binaryStream(rows)
	var want Checksum
	for _, r := range rows {
		h := newRowHash()
		for _, f := range r {
			if f == nil {
				h.null()
			} else {
				h.field(f)
			}
		}
		want.add(uint64(h))
	}
	for size := 1; size <= len(stream); size++ {
		h := &binaryHasher{ncols: 2}
		for b := stream; len(b) > 0; {
			k := min(size, len(b))
			n, err := h.Write(b[:k])
			require.NoError(t, err)
			require.Equal(t, k, n)
			b = b[k:]
		}
		require.NoError(t, h.finish())
		require.Equal(t, want, h.sum, "pieces of %d bytes", size)
	}

	h := &binaryHasher{ncols: 3}
	_, err := h.Write(stream)
	assert.ErrorIs(t, err, errBadCopy, "a row of another width")
	h = &binaryHasher{ncols: 2}
	_, err = h.Write(stream[:len(stream)-5])
	require.NoError(t, err)
	assert.ErrorIs(t, h.finish(), errBadCopy, "a stream cut short")
}

// TestRecordReaderChunks reads records back in chunks: the chunks of a
// file make up the file again, for both formats.
func TestRecordReaderChunks(t *testing.T) {
	t.Parallel()
	csv := "a,b\n1,\"x\ny\"\n2,\"\"\"q\"\"\"\n3,plain\n"
	c := &csvCounter{}
	_, _ = c.Write([]byte(csv[:9]))
	_, _ = c.Write([]byte(csv[9:]))
	assert.Equal(t, int64(4), c.records, "the header and three records")

	rr, err := newRecordReader(strings.NewReader(csv), CSV, 2)
	require.NoError(t, err)
	assert.Equal(t, "a,b\n", string(rr.header))
	var got []string
	for {
		ch := &chunk{rr: rr, limit: 2}
		b, err := io.ReadAll(ch)
		require.NoError(t, err)
		if ch.rows == 0 {
			break
		}
		got = append(got, string(b))
	}
	assert.Equal(t, []string{"1,\"x\ny\"\n2,\"\"\"q\"\"\"\n", "3,plain\n"}, got)

	rows := [][2][]byte{{[]byte("a"), nil}, {nil, []byte("b")}, {[]byte("c"), []byte("d")}}
	stream := binaryStream(rows)
	rr, err = newRecordReader(bytes.NewReader(stream), Binary, 2)
	require.NoError(t, err)
	all, err := io.ReadAll(&chunk{rr: rr})
	require.NoError(t, err)
	assert.Equal(t, stream, all, "one chunk of everything is the file")

	rr, err = newRecordReader(bytes.NewReader(stream), Binary, 2)
	require.NoError(t, err)
	first, err := io.ReadAll(&chunk{rr: rr, limit: 2})
	require.NoError(t, err)
	assert.Equal(t, binaryStream(rows[:2]), first)
	second, err := io.ReadAll(&chunk{rr: rr, limit: 2})
	require.NoError(t, err)
	assert.Equal(t, binaryStream(rows[2:]), second)

	_, err = newRecordReader(strings.NewReader("not copy data at all"), Binary, 2)
	assert.ErrorIs(t, err, errBadCopy)
	rr, err = newRecordReader(strings.NewReader("a\n\"open"), CSV, 1)
	require.NoError(t, err)
	_, err = rr.next()
	assert.ErrorIs(t, err, errBadCopy)
}
