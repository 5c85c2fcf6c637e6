package rls_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/rls"
)

func TestSetting(t *testing.T) {
	t.Parallel()
	s, err := rls.Setting("")
	require.NoError(t, err)
	assert.Equal(t, rls.DefaultSetting, s)
	for _, ok := range []string{"app.current_tenant", "tenancy.shop", "a.b.c", "_x.y1"} {
		s, err := rls.Setting(ok)
		require.NoError(t, err, ok)
		assert.Equal(t, ok, s)
	}
	for _, bad := range []string{"app", "App.tenant", "app.Tenant", "app.", ".x", "app.current-tenant", "app.x;drop", "app.x y", "1app.x", "app.x'", "app.x\x00"} {
		_, err := rls.Setting(bad)
		assert.True(t, errors.Is(err, rls.ErrInvalidSetting), "%q: %v", bad, err)
	}
	assert.Equal(t, "app.current_tenant_xact", rls.XactSetting(rls.DefaultSetting))
}
