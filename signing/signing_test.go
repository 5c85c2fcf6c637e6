package signing_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

func testKey(id string, b byte, n int) signing.Key {
	return signing.Key{ID: id, Secret: bytes.Repeat([]byte{b}, n)}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	k := testKey("k1", 7, 32)
	s, err := signing.NewSigner(k, time.Hour)
	require.NoError(t, err)
	now := time.Now()
	for _, tn := range []rls.Tenant{rls.Int64(1), rls.Int64(-42), rls.MustParse(rls.Text, "a:b:c"), rls.MustParse(rls.Text, "v1:k1:0:x"),
		rls.MustParse(rls.UUID, "7C9E6679-7425-40DE-944B-E07FC1F90AE7")} {
		v := s.Sign(tn)
		got, err := signing.Verify(v, []signing.Key{k}, now)
		require.NoError(t, err, v)
		assert.Equal(t, tn.String(), got)
		assert.True(t, strings.HasPrefix(v, "v1:k1:"), v)

		// Moving the tenant, or any field, breaks the MAC or the form.
		_, err = signing.Verify(v+"0", []signing.Key{k}, now)
		assert.ErrorIs(t, err, signing.ErrInvalidValue)
		// Expired an hour later.
		_, err = signing.Verify(v, []signing.Key{k}, now.Add(time.Hour+2*time.Second))
		assert.ErrorIs(t, err, signing.ErrInvalidValue)
		// Unknown key.
		_, err = signing.Verify(v, []signing.Key{testKey("k2", 7, 32)}, now)
		assert.ErrorIs(t, err, signing.ErrInvalidValue)
		// Same id, other secret.
		_, err = signing.Verify(v, []signing.Key{testKey("k1", 8, 32)}, now)
		assert.ErrorIs(t, err, signing.ErrInvalidValue)
	}
	// No expiry.
	v := s.SignUntil(rls.Int64(5), time.Time{})
	assert.True(t, strings.HasPrefix(v, "v1:k1:0:"), v)
	got, err := signing.Verify(v, []signing.Key{k}, now.Add(1000*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, "5", got)
}

func TestKeyCheckAndParse(t *testing.T) {
	t.Parallel()
	for _, k := range []signing.Key{testKey("", 1, 32), testKey("K1", 1, 32), testKey("k:1", 1, 32), testKey(strings.Repeat("a", 33), 1, 32),
		testKey("k1", 1, 31), testKey("k1", 1, 65)} {
		assert.ErrorIs(t, k.Check(), signing.ErrInvalidKey, k.ID)
		_, err := signing.NewSigner(k, 0)
		assert.ErrorIs(t, err, signing.ErrInvalidKey)
	}
	k, err := signing.NewKey("k_2026")
	require.NoError(t, err)
	assert.Len(t, k.Secret, signing.MinSecretLen)
	back, err := signing.ParseKey(k.Encode())
	require.NoError(t, err)
	assert.Equal(t, k, back)
	assert.NotContains(t, fmt.Sprint(k), k.Encode()[len(k.ID)+1:], "printing a key must not reveal its secret")
	for _, bad := range []string{"", "k1", "k1:***", "k1:" + strings.Repeat("A", 10), "K1:" + k.Encode()[len(k.ID)+1:]} {
		_, err := signing.ParseKey(bad)
		assert.ErrorIs(t, err, signing.ErrInvalidKey, bad)
	}
	_, err = signing.NewSigner(k, -time.Second)
	assert.Error(t, err)
}

func TestVerifyRejectsMalformed(t *testing.T) {
	t.Parallel()
	k := testKey("k1", 3, 40)
	s, err := signing.NewSigner(k, 0)
	require.NoError(t, err)
	v := s.Sign(rls.Int64(9))
	for _, bad := range []string{"", "9", "v2" + v[2:], v[:len(v)-2], strings.Replace(v, ":0:", ":00:", 1),
		strings.Replace(v, ":k1:", ":k2:", 1), strings.ToUpper(v)} {
		_, err := signing.Verify(bad, []signing.Key{k}, time.Now())
		assert.ErrorIs(t, err, signing.ErrInvalidValue, bad)
	}
}

func BenchmarkSign(b *testing.B) {
	s, err := signing.NewSigner(testKey("k1", 1, 32), time.Minute)
	require.NoError(b, err)
	tn := rls.Int64(123456)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = s.Sign(tn)
		}
	})
}
