package verify_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// auditStore is the store schema with the library objects and the tenant
// isolation that catalog.Plan writes for it.
var auditStore = &pgtenancytest.Template{Name: "verify_audit_store", Setup: func(ctx context.Context, conn *pgx.Conn) error {
	return testschema.Isolated(ctx, conn, rls.BigInt, pgtenancytest.AppRole)
}}

// TestAuditAtStartup: with Config.Audit = verify.Audit(...) the pool audits
// the database before it starts, and refuses a database with a hole.
func TestAuditAtStartup(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, auditStore)
	ctx := context.Background()
	newAudited := func(url string) (*pool.Pool, error) {
		cfg, err := pool.ParseConfig(url)
		require.NoError(t, err)
		cfg.Audit = verify.Audit(verify.Options{Model: testschema.Model(rls.BigInt, "")})
		return pool.NewWithConfig(ctx, cfg)
	}

	p, err := newAudited(db.AppURL)
	require.NoError(t, err, "the isolated store has no error finding")
	var n int
	require.NoError(t, p.QueryRow(rls.WithTenant(ctx, rls.Int64(1)), "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 3, n)
	p.Close()

	_, err = db.OwnerConn(t).Exec(ctx, "ALTER TABLE products NO FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)
	p, err = newAudited(db.AppURL)
	assert.Nil(t, p)
	require.ErrorIs(t, err, verify.ErrFailed)
	var ferr *verify.FailedError
	require.ErrorAs(t, err, &ferr)
	assert.ErrorContains(t, err, string(verify.CodeRLSNotForced))

	// The role the pool connects as is what gets checked when no AppRole
	// is named.
	_, err = newAudited(db.OwnerURL)
	assert.ErrorContains(t, err, string(verify.CodeAppRoleOwnsTable), "connecting as the owner is refused")
}
