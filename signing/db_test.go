package signing_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// libTemplate has the library's objects installed by the owner role.
var libTemplate = &pgtenancytest.Template{
	Name: "signing_lib",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return migrations.Install(ctx, conn, migrations.Options{})
	},
}

// dbTenant returns what pgtenancy.tenant() yields, in a transaction of
// conn that sets the setting to value the way the pool does (with the
// transaction's stamp); nil for NULL.
func dbTenant(t *testing.T, conn *pgx.Conn, value string) *string {
	t.Helper()
	ctx := context.Background()
	var got *string
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_catalog.set_config('app.current_tenant', $1, true), pg_catalog.set_config('app.current_tenant_xact', "+rls.XactStamp+", true)", value); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT pgtenancy.tenant()").Scan(&got)
	})
	require.NoError(t, err)
	return got
}

func randomTenant(r *mrand.Rand) rls.Tenant {
	switch r.IntN(3) {
	case 0:
		return rls.Int64(r.Int64() - r.Int64())
	case 1:
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return rls.MustParse(rls.UUID, fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:]))
	}
	alphabet := []rune("ab:Z09 -_.é€日本\u00a0😀'\"\\%")
	n := 1 + r.IntN(40)
	var sb strings.Builder
	for range n {
		sb.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	tn, err := rls.Parse(rls.Text, sb.String())
	if err != nil {
		return rls.MustParse(rls.Text, "x"+strings.ReplaceAll(sb.String(), "\u00a0", ""))
	}
	return tn
}

// TestDatabaseHMACMatchesGo: pgtenancy.tenant(), HMAC-SHA256 made of
// sha256() and padded keys, agrees with crypto/hmac (signing.Verify) on
// hundreds of values: keys of every accepted length, every key type,
// tenants with colons and multi-byte characters, expired and tampered
// values. It runs as the application role.
func TestDatabaseHMACMatchesGo(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, libTemplate)
	ctx := context.Background()
	owner, app := db.OwnerConn(t), db.AppConn(t)
	var keys []signing.Key
	for _, n := range []int{32, 33, 47, 55, 56, 63, 64} {
		k := signing.Key{ID: fmt.Sprintf("k%d", n), Secret: make([]byte, n)}
		_, _ = rand.Read(k.Secret)
		_, err := owner.Exec(ctx, "INSERT INTO pgtenancy.signing_keys (id, secret) VALUES ($1, $2)", k.ID, k.Secret)
		require.NoError(t, err)
		keys = append(keys, k)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	now := time.Now()
	checked, valid := 0, 0
	for i := range 300 {
		k := keys[i%len(keys)]
		s, err := signing.NewSigner(k, 0)
		require.NoError(t, err)
		tn := randomTenant(r)
		var exp time.Time
		switch i % 3 {
		case 1:
			exp = now.Add(time.Hour)
		case 2:
			exp = now.Add(-time.Minute) // expired
		}
		v := s.SignUntil(tn, exp)
		values := []string{v}
		if i%10 == 0 {
			// Tampered: one character of the MAC, the tenant, the key id.
			b := []byte(v)
			p := len("v1:") + len(k.ID) + 1 + strings.IndexByte(v[len("v1:")+len(k.ID)+1:], ':') + 1 + r.IntN(64)
			b[p] = "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", b[p])+1)%16]
			values = append(values, string(b), v+"x", strings.Replace(v, "v1:"+k.ID, "v1:"+keys[(i+1)%len(keys)].ID, 1))
		}
		for _, val := range values {
			want, err := signing.Verify(val, keys, now)
			got := dbTenant(t, app, val)
			if err != nil {
				assert.Nil(t, got, "database accepted %q, Go: %v", val, err)
			} else if assert.NotNil(t, got, "database rejected %q", val) {
				assert.Equal(t, want, *got)
				assert.Equal(t, tn.String(), *got)
				valid++
			}
			checked++
		}
	}
	assert.Greater(t, valid, 150)
	t.Logf("%d values checked, %d valid", checked, valid)
}

// TestForgedValuesYieldNoTenant: whatever SQL sets the setting to without
// the key, pgtenancy.tenant() is NULL.
func TestForgedValuesYieldNoTenant(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, libTemplate)
	ctx := context.Background()
	k, err := signing.Rotate(ctx, db.OwnerConn(t), "k1")
	require.NoError(t, err)
	s, err := signing.NewSigner(k, time.Minute)
	require.NoError(t, err)
	app := db.AppConn(t)
	good := s.Sign(rls.Int64(1))
	require.Equal(t, "1", *dbTenant(t, app, good))
	other := s.Sign(rls.Int64(2))
	forged := map[string]string{
		"plain tenant":           "2",
		"empty":                  "",
		"other tenant's MAC":     good[:len(good)-1] + "2",
		"tenant appended":        good + "2",
		"MAC truncated":          good[:20] + good[21:],
		"MAC of 63 digits":       good[:len(good)-3] + ":1",
		"key id altered":         strings.Replace(good, "v1:k1:", "v1:k2:", 1),
		"key id made upper case": strings.Replace(good, "v1:k1:", "v1:K1:", 1),
		"expiry altered":         strings.Replace(good, good[6:16], "9999999999", 1),
		"no expiry claimed":      "v1:k1:0:" + good[len("v1:k1:")+11:],
		"version altered":        "v2" + good[2:],
		"zero MAC":               good[:17] + strings.Repeat("0", 64) + ":1",
		"leading zero expiry":    strings.Replace(good, "v1:k1:", "v1:k1:0", 1),
		// Fields that are not what a signer writes yield no tenant, and
		// raise no error (the function checks the MAC before reading the
		// expiry as a number).
		"expiry not digits":  strings.Replace(good, good[6:16], "1e10abcdef", 1),
		"expiry negative":    strings.Replace(good, good[6:16], "-5", 1),
		"MAC not hex":        good[:17] + strings.Repeat("z", 64) + ":1",
		"MAC upper case":     strings.ToUpper(good[:17+64]) + ":1",
		"key id quoted":      strings.Replace(good, "v1:k1:", "v1:k1' OR 'x'='x:", 1),
		"empty key id":       strings.Replace(good, "v1:k1:", "v1::", 1),
		"empty tenant":       good[:len(good)-1],
		"only the prefix":    "v1:",
		"colons only":        "v1:::::",
		"tenant of newlines": good[:len(good)-1] + "\n1",
	}
	expired := s.SignUntil(rls.Int64(1), time.Now().Add(-time.Second))
	forged["expired"] = expired
	for name, v := range forged {
		assert.Nil(t, dbTenant(t, app, v), "%s: %q", name, v)
	}
	// Both valid values verify, each to its own tenant.
	assert.Equal(t, "2", *dbTenant(t, app, other))

	// A valid value set at session level, or in an earlier transaction, is
	// inert: the transaction stamp is part of the check.
	_, err = app.Exec(ctx, "SELECT pg_catalog.set_config('app.current_tenant', $1, false)", good)
	require.NoError(t, err)
	var got *string
	require.NoError(t, app.QueryRow(ctx, "SELECT pgtenancy.tenant()").Scan(&got))
	assert.Nil(t, got)
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestKeysOutOfTheAppRolesReach: the application role cannot read or
// write the key table, call the padding helper, or replace, alter or drop
// the verifying function.
func TestKeysOutOfTheAppRolesReach(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, libTemplate)
	ctx := context.Background()
	_, err := signing.Rotate(ctx, db.OwnerConn(t), "k1")
	require.NoError(t, err)
	app := db.AppConn(t)
	for _, sql := range []string{
		"SELECT * FROM pgtenancy.signing_keys",
		"SELECT count(*) FROM pgtenancy.signing_keys",
		"INSERT INTO pgtenancy.signing_keys (id, secret) VALUES ('evil', '\\x" + strings.Repeat("00", 32) + "')",
		"UPDATE pgtenancy.signing_keys SET secret = '\\x" + strings.Repeat("00", 32) + "'",
		"DELETE FROM pgtenancy.signing_keys",
		"TRUNCATE pgtenancy.signing_keys",
		"COPY pgtenancy.signing_keys TO STDOUT",
		"SELECT pgtenancy.hmac_pad('\\x00'::bytea, 54)",
		"CREATE OR REPLACE FUNCTION pgtenancy.tenant() RETURNS text LANGUAGE sql AS $$SELECT '2'$$",
		"ALTER FUNCTION pgtenancy.tenant() SECURITY INVOKER",
		"ALTER FUNCTION pgtenancy.tenant() RESET search_path",
		"ALTER FUNCTION pgtenancy.tenant() OWNER TO " + pgtenancytest.AppRole,
		"DROP FUNCTION pgtenancy.tenant()",
		"CREATE FUNCTION pgtenancy.sha256(bytea) RETURNS bytea LANGUAGE sql AS $$SELECT $1$$",
		"ALTER TABLE pgtenancy.signing_keys DISABLE ROW LEVEL SECURITY",
	} {
		_, err := app.Exec(ctx, sql)
		assert.Equal(t, "42501", sqlState(err), "%s: %v", sql, err)
	}
	// The keys are intact.
	keys, err := signing.Keys(ctx, db.OwnerConn(t))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "k1", keys[0].ID)
}

// TestRotation: two keys verify during a rotation, only the new one after
// the old is retired, and the key functions refuse what would break the
// rotation.
func TestRotation(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, libTemplate)
	ctx := context.Background()
	owner, app := db.OwnerConn(t), db.AppConn(t)
	k1, err := signing.Rotate(ctx, owner, "k1")
	require.NoError(t, err)
	s1, err := signing.NewSigner(k1, time.Hour)
	require.NoError(t, err)
	old := s1.Sign(rls.Int64(7))
	require.Equal(t, "7", *dbTenant(t, app, old))

	k2, err := signing.Rotate(ctx, owner, "k2")
	require.NoError(t, err)
	s2, err := signing.NewSigner(k2, time.Hour)
	require.NoError(t, err)
	next := s2.Sign(rls.Int64(7))
	// The overlap: both verify.
	assert.Equal(t, "7", *dbTenant(t, app, old))
	assert.Equal(t, "7", *dbTenant(t, app, next))

	_, err = signing.Rotate(ctx, owner, "k3")
	assert.ErrorIs(t, err, signing.ErrTooManyKeys)
	assert.ErrorIs(t, signing.AddKey(ctx, owner, k2), signing.ErrDuplicateKey)
	assert.ErrorIs(t, signing.Retire(ctx, owner, "nope"), signing.ErrUnknownKey)

	require.NoError(t, signing.Retire(ctx, owner, "k1"))
	assert.Nil(t, dbTenant(t, app, old), "a retired key's values stop verifying")
	assert.Equal(t, "7", *dbTenant(t, app, next))
	assert.ErrorIs(t, signing.Retire(ctx, owner, "k2"), signing.ErrLastKey)
	assert.Equal(t, "7", *dbTenant(t, app, next))

	keys, err := signing.Keys(ctx, owner)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	assert.Equal(t, "k2", keys[0].ID)

	// The application role cannot rotate.
	_, err = signing.Rotate(ctx, app, "k9")
	assert.Equal(t, "42501", sqlState(errors.Unwrap(err)), "%v", err)
}
