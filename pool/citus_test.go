package pool_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pgrls/pgrls/pool"
)

// TestCitusCluster runs against a real Citus coordinator. The Citus code
// path also runs on plain PostgreSQL in every other test (citus=true).
func TestCitusCluster(t *testing.T) {
	url := os.Getenv("CITUS_URL")
	if url == "" {
		t.Skip("CITUS_URL is not set: set it to a postgres:// URL of a Citus coordinator, as a role " +
			"without BYPASSRLS, in a database where migrations.Install has run, to run the Citus tests")
	}
	t.Parallel()
	ctx := context.Background()
	cfg, err := pool.ParseConfig(url)
	require.NoError(t, err)
	cfg.Citus = true
	p, err := pool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer p.Close()
	for _, tenant := range tenants {
		var propagate, setting string
		require.NoError(t, p.QueryRow(ctxFor(tenant),
			"SELECT current_setting('citus.propagate_set_commands'), current_setting('app.current_tenant')").Scan(&propagate, &setting))
		require.Equal(t, "local", propagate)
		require.Equal(t, tenant.String(), setting)
	}
	requireClean(t, p.Unwrap(), "app.current_tenant")
}
