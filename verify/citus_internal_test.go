package verify

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// The Citus checks need a Citus cluster; these tests cover the parts that
// need none. TestVerifyCitus in citus_db_test.go runs against one when
// CITUS_URL is set. (TestParseShardResult moved to internal/snapshot with
// the parser.)

const propagate = "citus.propagate_set_commands"

func TestPickSetting(t *testing.T) {
	def := snapshot.RoleSetting{Default: true, Name: propagate, Value: "none"}
	db := snapshot.RoleSetting{PerDatabase: true, Name: propagate, Value: "local"}
	role := snapshot.RoleSetting{PerRole: true, Name: propagate, Value: "none"}
	both := snapshot.RoleSetting{PerDatabase: true, PerRole: true, Name: propagate, Value: "'local'"}
	other := snapshot.RoleSetting{PerDatabase: true, PerRole: true, Name: "search_path", Value: "x"}
	tests := []struct {
		in          []snapshot.RoleSetting
		value, from string
	}{
		{[]snapshot.RoleSetting{def}, "none", "the server's configuration"},
		{[]snapshot.RoleSetting{db, def}, "local", "ALTER DATABASE ... SET"},
		{[]snapshot.RoleSetting{def, db, role}, "none", "ALTER ROLE ... SET"},
		{[]snapshot.RoleSetting{role, both, db, def}, "local", "ALTER ROLE ... IN DATABASE ... SET"},
		{[]snapshot.RoleSetting{other, def}, "none", "the server's configuration"},
		{nil, "", ""},
	}
	for _, tt := range tests {
		v, from := pickSetting(tt.in, propagate)
		assert.Equal(t, tt.value, v)
		assert.Equal(t, tt.from, from)
	}
}

func citusTenant(oid uint32, name, column string, root bool) *table {
	return &table{Table: &snapshot.Table{OID: oid, Name: snapshot.QName{Schema: "public", Name: name}, RLS: true, Force: true,
		Policies: []snapshot.Policy{
			{Name: policy.GuardPolicy, Permissive: false, Cmd: "*", Roles: []string{"public"}, Using: "(q)", Check: "(q)"},
			{Name: policy.IsolationPolicy, Permissive: true, Cmd: "*", Roles: []string{"public"}, Using: "(q)", Check: "(q)"},
		}},
		tenant: true, isRoot: root, column: column, colType: "bigint", key: rls.BigInt}
}

func goodShard(id int64) snapshot.Shard {
	return snapshot.Shard{ID: id, OK: true, RLS: true, Force: true, Policies: []snapshot.ShardPolicy{
		{Name: policy.GuardPolicy, Permissive: "false", Cmd: "*", Using: "(q)", Check: "(q)"},
		{Name: policy.IsolationPolicy, Permissive: "true", Cmd: "*", Using: "(q)", Check: "(q)"},
	}}
}

func TestCitusFindings(t *testing.T) {
	stores := citusTenant(1, "stores", "id", true)
	products := citusTenant(2, "products", "store_id", false)
	purchases := citusTenant(3, "purchases", "store_id", false)
	refunds := citusTenant(4, "refunds", "store_id", false)
	notes := citusTenant(5, "notes", "store_id", false)
	tags := citusTenant(6, "tags", "store_id", false)
	tenants := []*table{notes, products, purchases, refunds, stores, tags}
	state := func(snap *snapshot.Snapshot) *state { return &state{snap: snap, tenants: tenants} }

	good := &snapshot.Snapshot{
		Citus: true,
		CitusTables: map[uint32]snapshot.CitusTable{
			1: {Method: "h", ReplModel: "s", Column: "id", Colocation: 7},
			2: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7},
			3: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7},
			4: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7},
			5: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7},
			6: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7},
		},
		Shards:       map[uint32][]snapshot.Shard{1: {goodShard(10), goodShard(11)}, 2: {goodShard(20)}},
		RoleSettings: []snapshot.RoleSetting{{PerRole: true, Name: propagate, Value: "local"}},
	}
	assert.Empty(t, citusFindings(state(good), `"app"`))

	bad := &snapshot.Snapshot{
		Citus: true,
		CitusTables: map[uint32]snapshot.CitusTable{
			1: {Method: "h", ReplModel: "s", Column: "id", Colocation: 7},
			2: {Method: "h", ReplModel: "s", Column: "id", Colocation: 7},       // wrong column
			3: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 8}, // not co-located
			4: {Method: "n", ReplModel: "t", Colocation: 9},                     // reference table
			6: {Method: "h", ReplModel: "s", Column: "store_id", Colocation: 7}, // shards below
			// 5 (notes) is not distributed
		},
		Shards: map[uint32][]snapshot.Shard{
			6: {
				goodShard(60),
				{ID: 61, OK: true, RLS: false, Force: true},
				{ID: 62, OK: true, RLS: true, Force: false},
				{ID: 63, OK: true, RLS: true, Force: true},
				{ID: 64, OK: false, Result: "connection refused"},
			},
		},
		RoleSettings: []snapshot.RoleSetting{{Default: true, Name: propagate, Value: "none"}},
	}
	got := citusFindings(state(bad), `"app"`)
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
