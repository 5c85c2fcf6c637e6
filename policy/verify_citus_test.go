package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/rls"
)

// The Citus checks need a Citus cluster; these tests cover the parts that
// need none. TestVerifyCitus in verify_citus_db_test.go runs against one
// when CITUS_URL is set.

func TestParseShardResult(t *testing.T) {
	st := shardState{ok: true, result: "true\x1ftrue\x1epgtenancy_tenant_guard\x1ffalse\x1f*\x1f(a = 1)\x1f(a = 1)\x1epgtenancy_tenant_isolation\x1ftrue\x1f*\x1f(a = 1)\x1f"}
	require.True(t, parseShardResult(&st))
	assert.True(t, st.rls)
	assert.True(t, st.force)
	assert.Equal(t, []shardPolicy{
		{GuardPolicy, "false", "*", "(a = 1)", "(a = 1)"},
		{IsolationPolicy, "true", "*", "(a = 1)", ""},
	}, st.policies)

	st = shardState{result: "false\x1ftrue"}
	require.True(t, parseShardResult(&st))
	assert.False(t, st.rls)
	assert.True(t, st.force)
	assert.Empty(t, st.policies)

	for _, bad := range []string{"", "true", "ERROR: relation does not exist", "true\x1ftrue\x1ep\x1ftrue"} {
		st = shardState{result: bad}
		assert.False(t, parseShardResult(&st), "%q", bad)
	}
}

func TestPickSetting(t *testing.T) {
	def := roleSetting{config: "default=none"}
	db := roleSetting{perDatabase: true, config: "citus.propagate_set_commands=local"}
	role := roleSetting{perRole: true, config: "citus.propagate_set_commands=none"}
	both := roleSetting{perDatabase: true, perRole: true, config: "citus.propagate_set_commands='local'"}
	tests := []struct {
		in          []roleSetting
		value, from string
	}{
		{[]roleSetting{def}, "none", "the server's configuration"},
		{[]roleSetting{db, def}, "local", "ALTER DATABASE ... SET"},
		{[]roleSetting{def, db, role}, "none", "ALTER ROLE ... SET"},
		{[]roleSetting{role, both, db, def}, "local", "ALTER ROLE ... IN DATABASE ... SET"},
		{nil, "", ""},
	}
	for _, tt := range tests {
		v, from := pickSetting(tt.in)
		assert.Equal(t, tt.value, v)
		assert.Equal(t, tt.from, from)
	}
}

func citusTenant(oid uint32, name, column string, root bool) *vtable {
	return &vtable{oid: oid, q: qname{"public", name}, tenant: true, isRoot: root, column: column, colType: "bigint", key: rls.BigInt,
		rls: true, force: true, policies: []vpolicy{
			{name: GuardPolicy, permissive: false, cmd: "*", roles: []string{"public"}, qual: "(q)", check: "(q)"},
			{name: IsolationPolicy, permissive: true, cmd: "*", roles: []string{"public"}, qual: "(q)", check: "(q)"},
		}}
}

func goodShard(id int64) shardState {
	return shardState{shard: id, ok: true, rls: true, force: true, policies: []shardPolicy{
		{GuardPolicy, "false", "*", "(q)", "(q)"},
		{IsolationPolicy, "true", "*", "(q)", "(q)"},
	}}
}

func TestCitusFindings(t *testing.T) {
	stores := citusTenant(1, "stores", "id", true)
	products := citusTenant(2, "products", "store_id", false)
	purchases := citusTenant(3, "purchases", "store_id", false)
	refunds := citusTenant(4, "refunds", "store_id", false)
	notes := citusTenant(5, "notes", "store_id", false)
	tags := citusTenant(6, "tags", "store_id", false)
	tenants := []*vtable{notes, products, purchases, refunds, stores, tags}

	good := &citusSnapshot{
		tables: map[uint32]citusTable{
			1: {method: "h", replModel: "s", column: "id", colocation: 7},
			2: {method: "h", replModel: "s", column: "store_id", colocation: 7},
			3: {method: "h", replModel: "s", column: "store_id", colocation: 7},
			4: {method: "h", replModel: "s", column: "store_id", colocation: 7},
			5: {method: "h", replModel: "s", column: "store_id", colocation: 7},
			6: {method: "h", replModel: "s", column: "store_id", colocation: 7},
		},
		shards:    map[uint32][]shardState{1: {goodShard(10), goodShard(11)}, 2: {goodShard(20)}},
		propagate: "local",
		source:    "ALTER ROLE ... SET",
	}
	assert.Empty(t, citusFindings(good, tenants, `"app"`))

	bad := &citusSnapshot{
		tables: map[uint32]citusTable{
			1: {method: "h", replModel: "s", column: "id", colocation: 7},
			2: {method: "h", replModel: "s", column: "id", colocation: 7},       // wrong column
			3: {method: "h", replModel: "s", column: "store_id", colocation: 8}, // not co-located
			4: {method: "n", replModel: "t", colocation: 9},                     // reference table
			6: {method: "h", replModel: "s", column: "store_id", colocation: 7}, // shards below
			// 5 (notes) is not distributed
		},
		shards: map[uint32][]shardState{
			6: {
				goodShard(60),
				{shard: 61, ok: true, rls: false, force: true},
				{shard: 62, ok: true, rls: true, force: false},
				{shard: 63, ok: true, rls: true, force: true},
				{shard: 64, ok: false, result: "connection refused"},
			},
		},
		propagate: "none",
		source:    "the server's configuration",
	}
	got := citusFindings(bad, tenants, `"app"`)
	type k struct {
		code   Code
		object string
	}
	var keys []k
	for _, f := range got {
		keys = append(keys, k{f.Code, f.Object})
		assert.NotEmpty(t, f.Message)
	}
	assert.ElementsMatch(t, []k{
		{CodeCitusNotDistrib, "public.notes"},
		{CodeCitusDistColumn, "public.products"},
		{CodeCitusNotColocated, "public.purchases"},
		{CodeCitusNotDistrib, "public.refunds"},
		{CodeCitusShard, "public.tags"},
		{CodeCitusPropagateSet, "citus.propagate_set_commands"},
	}, keys)
	for _, f := range got {
		switch f.Object {
		case "public.notes":
			assert.Equal(t, `SELECT create_distributed_table('"public"."notes"', 'store_id', colocate_with => '"public"."stores"');`, f.Fix)
		case "public.refunds":
			assert.Contains(t, f.Message, "reference table")
		case "public.tags":
			assert.Contains(t, f.Message, "4 shard(s)")
			assert.Contains(t, f.Message, "61 (row level security off)")
			assert.Contains(t, f.Message, "62 (not forced)")
			assert.Contains(t, f.Message, "63 (policies differ")
			assert.Contains(t, f.Message, "64 (not checked: connection refused)")
			assert.NotContains(t, f.Message, "60 ")
		case "citus.propagate_set_commands":
			assert.Equal(t, SeverityWarning, f.Severity)
			assert.Equal(t, `ALTER ROLE "app" SET citus.propagate_set_commands = 'local';`, f.Fix)
		}
	}
}

func TestMentions(t *testing.T) {
	assert.True(t, mentions("select * from products", "products"))
	assert.True(t, mentions("from public.products;", "products"))
	assert.True(t, mentions(`from "products" p`, "products"))
	assert.False(t, mentions("from products_archive", "products"))
	assert.False(t, mentions("from old_products", "products"))
	assert.True(t, mentions("from old_products join products", "products"))
	assert.False(t, mentions("", "products"))
}

func TestSecurityInvoker(t *testing.T) {
	for opts, want := range map[string]bool{
		"security_invoker=true": true, "security_invoker=on": true, "security_invoker=1": true,
		"security_invoker=yes": true, "SECURITY_INVOKER=t": true, "security_invoker=false": false,
		"security_invoker=off": false, "security_invoker=0": false, "check_option=local": false,
	} {
		assert.Equal(t, want, securityInvoker([]string{"check_option=cascaded", opts}), opts)
	}
	assert.False(t, securityInvoker(nil))
}
