package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

// signedTenant returns what the policies' pgtenancy.tenant() yields for
// value, set as the pool sets it, as the application role.
func signedTenant(t *testing.T, conn *pgx.Conn, value string) *string {
	t.Helper()
	ctx := context.Background()
	var got *string
	require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('app.current_tenant', $1, true), set_config('app.current_tenant_xact', "+rls.XactStamp+", true)", value); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT pgtenancy.tenant()").Scan(&got)
	}))
	return got
}

// TestSignedModeFromTheCommandLine: install, generate --signed, key
// rotate (twice, with the overlap), key retire, key list and verify
// --signed, as a user would run them.
func TestSignedModeFromTheCommandLine(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	code, _, stderr := pgtenancy(t, "install", "--database-url", db.OwnerURL)
	require.Equal(t, 0, code, stderr)
	code, up, stderr := pgtenancy(t, append([]string{"generate", "--signed", "--database-url", db.OwnerURL}, declaredFlags...)...)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, up, `"store_id" = (SELECT pgtenancy.tenant()::bigint)`)
	_, err := db.OwnerConn(t).Exec(context.Background(), up)
	require.NoError(t, err)

	code, out, stderr := pgtenancy(t, "key", "rotate", "--database-url", db.OwnerURL, "--id", "k1")
	require.Equal(t, 0, code, stderr)
	k1, err := signing.ParseKey(out)
	require.NoError(t, err)
	assert.Equal(t, "k1", k1.ID)

	s1, err := signing.NewSigner(k1, time.Minute)
	require.NoError(t, err)
	app := db.AppConn(t)
	v1 := s1.Sign(rls.Int64(1))
	assert.Equal(t, "1", *signedTenant(t, app, v1))

	code, out, stderr = pgtenancy(t, "key", "rotate", "--database-url", db.OwnerURL)
	require.Equal(t, 0, code, stderr)
	k2, err := signing.ParseKey(out)
	require.NoError(t, err)
	s2, err := signing.NewSigner(k2, time.Minute)
	require.NoError(t, err)
	v2 := s2.Sign(rls.Int64(1))
	assert.Equal(t, "1", *signedTenant(t, app, v1), "old key during the overlap")
	assert.Equal(t, "1", *signedTenant(t, app, v2), "new key during the overlap")

	code, _, stderr = pgtenancy(t, "key", "rotate", "--database-url", db.OwnerURL, "--id", "k3")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "retire one first")

	code, out, stderr = pgtenancy(t, "key", "list", "--database-url", db.OwnerURL)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, 2, strings.Count(out, "\n"), out)
	assert.True(t, strings.HasPrefix(out, "k1\t"), out)
	assert.NotContains(t, out, k1.Encode()[3:], "list must not print secrets")

	code, _, stderr = pgtenancy(t, "key", "retire", "--database-url", db.OwnerURL, "--id", "k1")
	require.Equal(t, 0, code, stderr)
	assert.Nil(t, signedTenant(t, app, v1), "old key after its retirement")
	assert.Equal(t, "1", *signedTenant(t, app, v2))
	code, _, stderr = pgtenancy(t, "key", "retire", "--database-url", db.OwnerURL, "--id", k2.ID)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "last key")

	// The application role cannot manage keys.
	code, _, stderr = pgtenancy(t, "key", "list", "--database-url", db.AppURL)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "permission denied")

	code, out, stderr = pgtenancy(t, append([]string{"verify", "--signed", "--database-url", db.OwnerURL}, declaredFlags...)...)
	assert.NotContains(t, out+stderr, "signed_", "%s%s", out, stderr)
	assert.NotContains(t, out+stderr, "policy_drift")
	assert.Equal(t, exitOK, code, "%s%s", out, stderr)

	code, _, stderr = pgtenancy(t, "key", "spin")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "want rotate, retire or list")
}
