package pool_test

import (
	"context"
	"testing"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVerifyAtStartup: with Config.Verify the pool audits the database
// before it starts, and refuses a database with a hole.
func TestVerifyAtStartup(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	ctx := context.Background()
	newVerified := func() (*pool.Pool, error) {
		cfg, err := pool.ParseConfig(db.AppURL)
		require.NoError(t, err)
		cfg.Verify = &policy.VerifyOptions{Model: testschema.Model(rls.BigInt, "")}
		return pool.NewWithConfig(ctx, cfg)
	}

	p, err := newVerified()
	require.NoError(t, err, "the isolated store has no error finding")
	var n int
	require.NoError(t, p.QueryRow(ctxFor(tenantA), "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 3, n)
	p.Close()

	_, err = db.OwnerConn(t).Exec(ctx, "ALTER TABLE products NO FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)
	p, err = newVerified()
	assert.Nil(t, p)
	require.ErrorIs(t, err, policy.ErrVerifyFailed)
	var verr *policy.VerifyError
	require.ErrorAs(t, err, &verr)
	assert.ErrorContains(t, err, string(policy.CodeRLSNotForced))

	// The app role itself is what gets checked when no AppRole is named.
	cfg, err := pool.ParseConfig(db.OwnerURL)
	require.NoError(t, err)
	cfg.Verify = &policy.VerifyOptions{Model: testschema.Model(rls.BigInt, "")}
	_, err = pool.NewWithConfig(ctx, cfg)
	assert.ErrorContains(t, err, string(policy.CodeAppRoleOwnsTable), "connecting as the owner is refused")
}
