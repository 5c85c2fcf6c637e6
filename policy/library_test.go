package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestSetTenantBody: the body that verify expects of pgtenancy.set_tenant
// is the one the library installs, for the default setting and another
// one, and sets both the setting and its companion. (The comparison with
// what the migrations package installs belongs to migrations.)
func TestSetTenantBody(t *testing.T) {
	t.Parallel()
	for _, setting := range []string{"", "tenancy.shop"} {
		body, err := policy.SetTenantBody(setting)
		require.NoError(t, err)
		lib, err := policy.LibrarySQL(setting)
		require.NoError(t, err)
		assert.Contains(t, lib.Up, "AS $pgtenancy$"+body+"$pgtenancy$;")
		name, err := rls.Setting(setting)
		require.NoError(t, err)
		assert.Contains(t, body, "SET LOCAL "+name+" = %L")
		assert.Contains(t, body, "SET LOCAL "+rls.XactSetting(name)+" = %L")
	}
	_, err := policy.SetTenantBody("Bad Setting")
	assert.ErrorIs(t, err, rls.ErrInvalidSetting)
}
