package lifecycle

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
)

// The row checksum.
//
// A row's hash is what PostgreSQL computes for
//
//	hash_array_extended(ARRAY[send(c1), send(c2), ...]::bytea[], 0)
//
// where send(c) is the bytes of the column as binary COPY carries them
// (the type's send function, or the text of the value for the types whose
// binary form names type OIDs; see wireText). A table's checksum is the
// number of rows and the sum of their hashes modulo 2^64: it does not depend
// on the order of the rows, counts duplicate rows, and the server computes
// it without sending a row ([Checksums]), while [Export] computes the same
// value from the binary COPY stream it writes, at no extra cost on the
// server. The functions below are PostgreSQL's hash_bytes_extended (Bob
// Jenkins' lookup3, as PostgreSQL seeds and finishes it) and the way
// hash_array_extended combines element hashes, on a little-endian server;
// a big-endian server computes other values, so checksums only compare
// between servers of the same byte order (a mismatch, never a false match).

// ChecksumAlgorithm names the checksum in manifests.
const ChecksumAlgorithm = "pg-hash-array-extended-sum64-v1"

// Checksum is an order-independent digest of a set of rows.
type Checksum struct {
	Rows int64
	// Sum is the sum of the rows' hashes modulo 2^64.
	Sum uint64
}

// String returns "rows:sum" with the sum in 16 hex digits.
func (c Checksum) String() string { return fmt.Sprintf("%d:%016x", c.Rows, c.Sum) }

// MarshalText encodes the checksum as [Checksum.String].
func (c Checksum) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText decodes [Checksum.String].
func (c *Checksum) UnmarshalText(b []byte) error {
	s := string(b)
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		rows, err1 := strconv.ParseInt(s[:i], 10, 64)
		sum, err2 := strconv.ParseUint(s[i+1:], 16, 64)
		if err1 != nil || err2 != nil || rows < 0 || len(s)-i-1 != 16 {
			break
		}
		c.Rows, c.Sum = rows, sum
		return nil
	}
	return fmt.Errorf("lifecycle: bad checksum %q (want rows:16 hex digits)", s)
}

// add adds one row's hash.
func (c *Checksum) add(h uint64) {
	c.Rows++
	c.Sum += h
}

// rowHash folds the hashes of a row's fields as hash_array_extended does:
// it starts at 1 and multiplies by 31 before adding each element's hash
// (0 for NULL).
type rowHash uint64

func newRowHash() rowHash { return 1 }

// field adds a non-NULL field.
func (r *rowHash) field(b []byte) { *r = *r*31 + rowHash(hashBytes(b)) }

// null adds a NULL field.
func (r *rowHash) null() { *r *= 31 }

func rot(x uint32, k int) uint32 { return bits.RotateLeft32(x, k) }

func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= rot(c, 4)
	c += b
	b -= a
	b ^= rot(a, 6)
	a += c
	c -= b
	c ^= rot(b, 8)
	b += a
	a -= c
	a ^= rot(c, 16)
	c += b
	b -= a
	b ^= rot(a, 19)
	a += c
	c -= b
	c ^= rot(b, 4)
	b += a
	return a, b, c
}

func final(a, b, c uint32) (uint32, uint32, uint32) {
	c ^= b
	c -= rot(b, 14)
	a ^= c
	a -= rot(c, 11)
	b ^= a
	b -= rot(a, 25)
	c ^= b
	c -= rot(b, 16)
	a ^= c
	a -= rot(c, 4)
	b ^= a
	b -= rot(a, 14)
	c ^= b
	c -= rot(b, 24)
	return a, b, c
}

// hashBytes is PostgreSQL's hash_bytes_extended(k, len(k), 0) on a
// little-endian machine: the 64-bit hash of a bytea value, as
// hashvarlenaextended computes it.
func hashBytes(k []byte) uint64 {
	a := 0x9e3779b9 + uint32(len(k)) + 3923095
	b, c := a, a
	for len(k) >= 12 {
		a += binary.LittleEndian.Uint32(k)
		b += binary.LittleEndian.Uint32(k[4:])
		c += binary.LittleEndian.Uint32(k[8:])
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	// The last 11 bytes; the lowest byte of c is left out, as in lookup3.
	switch len(k) {
	case 11:
		c += uint32(k[10]) << 24
		fallthrough
	case 10:
		c += uint32(k[9]) << 16
		fallthrough
	case 9:
		c += uint32(k[8]) << 8
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	_, b, c = final(a, b, c)
	return uint64(b)<<32 | uint64(c)
}
