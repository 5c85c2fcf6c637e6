package rls_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key     rls.KeyType
		in      string
		want    string
		wantErr string
	}{
		{rls.BigInt, "42", "42", ""},
		{rls.BigInt, "0", "0", ""},
		{rls.BigInt, "-7", "-7", ""},
		{rls.BigInt, "9223372036854775807", "9223372036854775807", ""},
		{rls.BigInt, "-9223372036854775808", "-9223372036854775808", ""},
		{rls.BigInt, "9223372036854775808", "", "out of the bigint range"},
		{rls.BigInt, "", "", "empty"},
		{rls.BigInt, "-", "", "not a decimal integer"},
		{rls.BigInt, "007", "", "leading zeros"},
		{rls.BigInt, "-0", "", "leading zeros"},
		{rls.BigInt, "+7", "", "not a decimal integer"},
		{rls.BigInt, " 7", "", "not a decimal integer"},
		{rls.BigInt, "1; DROP TABLE x", "", "not a decimal integer"},
		{rls.BigInt, "1e3", "", "not a decimal integer"},
		{rls.BigInt, "12345678901234567890", "", "out of the bigint range"},
		{rls.BigInt, "٣", "", "not a decimal integer"}, // Arabic-Indic digit
		{rls.UUID, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff-8b86-d011-b42d-00c04fc964ff", ""},
		{rls.UUID, "6f9619ff-8b86-d011-b42d-00c04fc964ff", "6f9619ff-8b86-d011-b42d-00c04fc964ff", ""},
		{rls.UUID, "6f9619ff8b86d011b42d00c04fc964ff", "", "want 36 characters"},
		{rls.UUID, "{6f9619ff-8b86-d011-b42d-00c04fc964ff}", "", "want 36 characters"},
		{rls.UUID, "6f9619ff08b86-d011-b42d-00c04fc964ff", "", "hyphens"},
		{rls.UUID, "6f9619ff-8b86-d011-b42d-00c04fc964fg", "", "not a hex digit"},
		{rls.UUID, "6f9619ff-8b86-d011-b42d-00c04fc964f'", "", "not a hex digit"},
		{rls.Text, "acme", "acme", ""},
		{rls.Text, "o'brien; --", "o'brien; --", ""},
		{rls.Text, "café", "café", ""},
		{rls.Text, "", "", "empty"},
		{rls.Text, "a\x00b", "", "control character"},
		{rls.Text, "a\nb", "", "control character"},
		{rls.Text, "a\u0085b", "", "control character"},
		{rls.Text, "\xff\xfe", "", "not valid UTF-8"},
		{rls.Text, "acme\u200b", "", "invisible"}, // zero-width space
		{rls.Text, "\u202eemca", "", "invisible"}, // right-to-left override
		{rls.Text, "\ufeffacme", "", "invisible"}, // byte order mark
		{rls.Text, "acme\u00a0", "", "invisible"}, // no-break space
		{rls.Text, "ac\ue000me", "", "invisible"}, // private use
		{rls.Text, "acme corp", "acme corp", ""},  // an ASCII space is fine
		{rls.Text, "straße-東京", "straße-東京", ""},
		{rls.Text, strings.Repeat("x", rls.MaxTextLen), strings.Repeat("x", rls.MaxTextLen), ""},
		{rls.Text, strings.Repeat("x", rls.MaxTextLen+1), "", "longer than"},
		{rls.Integer, "42", "42", ""},
		{rls.Integer, "2147483647", "2147483647", ""},
		{rls.Integer, "-2147483648", "-2147483648", ""},
		{rls.Integer, "2147483648", "", "out of the integer range"},
		{rls.Integer, "007", "", "leading zeros"},
		{rls.Integer, "1 OR 1=1", "", "not a decimal integer"},
		{rls.SmallInt, "32767", "32767", ""},
		{rls.SmallInt, "32768", "", "out of the smallint range"},
		{rls.SmallInt, "-32768", "-32768", ""},
		{rls.KeyType(0), "1", "", "unknown key type"},
		{rls.KeyType(6), "1", "", "unknown key type"},
	}
	for _, tt := range tests {
		got, err := rls.Parse(tt.key, tt.in)
		if tt.wantErr != "" {
			require.Error(t, err, "%s %q", tt.key, tt.in)
			assert.ErrorIs(t, err, rls.ErrInvalidTenant)
			var ite *rls.InvalidTenantError
			require.ErrorAs(t, err, &ite)
			assert.Equal(t, tt.key, ite.Key)
			assert.Contains(t, ite.Reason, tt.wantErr, "%s %q", tt.key, tt.in)
			assert.True(t, got.IsZero())
			continue
		}
		require.NoError(t, err, "%s %q", tt.key, tt.in)
		assert.Equal(t, tt.want, got.String())
		assert.Equal(t, tt.key, got.Key())
		again, err := rls.Parse(tt.key, got.String())
		require.NoError(t, err)
		assert.Equal(t, got, again, "canonical form must parse to itself")
	}
}

func TestInvalidTenantErrorShortensValue(t *testing.T) {
	t.Parallel()
	_, err := rls.Parse(rls.BigInt, strings.Repeat("9", 1<<20))
	require.Error(t, err)
	assert.Less(t, len(err.Error()), 200)
}

func TestKeyType(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]rls.KeyType{"bigint": rls.BigInt, "INT8": rls.BigInt, " uuid ": rls.UUID, "text": rls.Text,
		"integer": rls.Integer, "int": rls.Integer, "int4": rls.Integer, "smallint": rls.SmallInt, "int2": rls.SmallInt} {
		k, err := rls.ParseKeyType(s)
		require.NoError(t, err, s)
		assert.True(t, k.Valid())
		assert.Equal(t, want, k, s)
	}
	_, err := rls.ParseKeyType("serial")
	assert.ErrorIs(t, err, rls.ErrUnknownKeyType)
	assert.Equal(t, "bigint", rls.BigInt.String())
	assert.Equal(t, "uuid", rls.UUID.String())
	assert.Equal(t, "text", rls.Text.String())
	assert.Equal(t, "integer", rls.Integer.String())
	assert.Equal(t, "smallint", rls.SmallInt.String())
	assert.False(t, rls.KeyType(6).Valid())
	assert.False(t, rls.KeyType(0).Valid())
	assert.Equal(t, rls.MustParse(rls.Integer, "7"), rls.Int32(7))
	assert.Equal(t, rls.MustParse(rls.SmallInt, "-7"), rls.Int16(-7))
	assert.NotEqual(t, rls.Int64(7), rls.Int32(7), "tenants of different key types differ")
}

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, ok := rls.FromContext(ctx)
	assert.False(t, ok)
	_, err := rls.Require(ctx)
	assert.True(t, errors.Is(err, rls.ErrNoTenant))

	a := rls.Int64(1)
	ctxA := rls.WithTenant(ctx, a)
	got, ok := rls.FromContext(ctxA)
	assert.True(t, ok)
	assert.Equal(t, a, got)
	got, err = rls.Require(ctxA)
	require.NoError(t, err)
	assert.Equal(t, "1", got.String())

	ctxB := rls.WithTenant(ctxA, rls.MustParse(rls.Text, "b"))
	got, _ = rls.FromContext(ctxB)
	assert.Equal(t, "b", got.String())

	cleared := rls.WithTenant(ctxA, rls.Tenant{})
	_, ok = rls.FromContext(cleared)
	assert.False(t, ok, "a zero tenant clears the context's tenant")
	assert.Equal(t, ctx, rls.WithTenant(ctx, rls.Tenant{}), "no-op when there was none")
}

func TestMustParsePanics(t *testing.T) {
	t.Parallel()
	assert.Panics(t, func() { rls.MustParse(rls.UUID, "nope") })
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "-1", "007", "x'; DROP TABLE t; --", "\x00", "6f9619ff-8b86-d011-b42d-00c04fc964ff", strings.Repeat("9", 30)} {
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
		f.Add(uint8(3), s)
		f.Add(uint8(4), s)
	}
	f.Fuzz(func(t *testing.T, k uint8, s string) {
		key := rls.KeyType(k%5 + 1)
		got, err := rls.Parse(key, s)
		if err != nil {
			if !errors.Is(err, rls.ErrInvalidTenant) {
				t.Fatalf("error %v does not match ErrInvalidTenant", err)
			}
			return
		}
		id := got.String()
		if id == "" || strings.ContainsAny(id, "\x00\n\r") || len(id) > rls.MaxTextLen {
			t.Fatalf("accepted unsafe tenant %q", id)
		}
		if key != rls.Text && strings.ContainsAny(id, "'\"\\; ") {
			t.Fatalf("accepted %s tenant with SQL metacharacters: %q", key, id)
		}
		again, err := rls.Parse(key, id)
		if err != nil || again != got {
			t.Fatalf("canonical form %q does not round-trip: %v", id, err)
		}
	})
}

func TestKeyTypeText(t *testing.T) {
	t.Parallel()
	var k rls.KeyType
	require.NoError(t, k.UnmarshalText([]byte("uuid")))
	assert.Equal(t, rls.UUID, k)
	b, err := rls.Text.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "text", string(b))
	require.NoError(t, k.UnmarshalText([]byte("int")))
	assert.Equal(t, rls.Integer, k)
	assert.Error(t, k.UnmarshalText([]byte("serial")))
	_, err = rls.KeyType(0).MarshalText()
	assert.Error(t, err)
}

func TestBound(t *testing.T) {
	t.Parallel()
	a := rls.MustParse(rls.UUID, "6f9619ff-8b86-d011-b42d-00c04fc964ff")
	b := rls.Bind(a)
	assert.Equal(t, a, b.Tenant())
	ctx := b.Context(context.Background())
	got, ok := rls.FromContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, a, got)
	inner := rls.WithTenant(ctx, rls.Int64(7))
	got, _ = rls.FromContext(inner)
	assert.Equal(t, rls.Int64(7), got, "a later WithTenant overrides a bound tenant")
	_, ok = rls.FromContext(rls.Bind(rls.Tenant{}).Context(ctx))
	assert.False(t, ok, "binding the zero tenant clears")
}

// TestBoundAllocs is not parallel: AllocsPerRun refuses parallel tests.
func TestBoundAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race; run without -race")
	}
	b := rls.Bind(rls.Int64(12345))
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { _ = b.Context(context.Background()) }), 1.0)
	a := rls.Int64(12345)
	assert.LessOrEqual(t, testing.AllocsPerRun(100, func() { _ = rls.WithTenant(context.Background(), a) }), 2.0)
}
