package snapshot

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParseShardResult was in the policy package's verify tests.
func TestParseShardResult(t *testing.T) {
	st := Shard{OK: true, Result: "true\x1ftrue\x1epgtenancy_tenant_guard\x1ffalse\x1f*\x1f(a = 1)\x1f(a = 1)\x1epgtenancy_tenant_isolation\x1ftrue\x1f*\x1f(a = 1)\x1f"}
	require.True(t, parseShardResult(&st))
	assert.True(t, st.RLS)
	assert.True(t, st.Force)
	assert.Equal(t, []ShardPolicy{
		{"pgtenancy_tenant_guard", "false", "*", "(a = 1)", "(a = 1)"},
		{"pgtenancy_tenant_isolation", "true", "*", "(a = 1)", ""},
	}, st.Policies)

	st = Shard{Result: "false\x1ftrue"}
	require.True(t, parseShardResult(&st))
	assert.False(t, st.RLS)
	assert.True(t, st.Force)
	assert.Empty(t, st.Policies)

	for _, bad := range []string{"", "true", "ERROR: relation does not exist", "true\x1ftrue\x1ep\x1ftrue"} {
		st = Shard{Result: bad}
		assert.False(t, parseShardResult(&st), "%q", bad)
	}
}
