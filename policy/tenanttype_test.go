package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestTenantType: a bigint tenant column under an integer key gets policies
// and a default cast to bigint; only integer types mix, and not with Citus.
func TestTenantType(t *testing.T) {
	m := func(key, tenant rls.KeyType, citus bool) *policy.Model {
		return &policy.Model{KeyType: key, Citus: citus, Tables: []policy.Table{
			{Name: "accounts", TenantColumn: "id", Root: true},
			{Name: "teams", TenantColumn: "account_id", TenantType: tenant},
			{Name: "members", TenantColumn: "account_id", ForeignKeys: []policy.ForeignKey{{Columns: []string{"team_id"}, RefTable: "teams"}}},
		}}
	}
	mig, err := policy.Generate(m(rls.Integer, rls.BigInt, false))
	require.NoError(t, err)
	teams, members := "", ""
	for _, l := range strings.Split(mig.Up, "\n") {
		switch {
		case strings.Contains(l, `"teams" ALTER COLUMN`), strings.Contains(l, `ON "public"."teams"`):
			teams += l
		case strings.Contains(l, `"members" ALTER COLUMN`), strings.Contains(l, `ON "public"."members"`):
			members += l
		}
	}
	assert.Contains(t, teams, "::bigint")
	assert.NotContains(t, teams, "::integer")
	assert.Contains(t, members, "::integer")
	assert.NotContains(t, members, "::bigint")
	assert.Contains(t, mig.Up, `FOREIGN KEY ("account_id", "team_id") REFERENCES "public"."teams" ("account_id", "id")`)

	for name, model := range map[string]*policy.Model{
		"text under integer": m(rls.Integer, rls.Text, false),
		"bigint under uuid":  m(rls.UUID, rls.BigInt, false),
		"citus":              m(rls.Integer, rls.BigInt, true),
		"invalid":            m(rls.Integer, rls.KeyType(99), false),
	} {
		_, err := policy.Generate(model)
		var me *policy.ModelError
		require.True(t, errors.As(err, &me), "%s: %v", name, err)
		assert.Equal(t, "teams", me.Table, name)
	}
}
