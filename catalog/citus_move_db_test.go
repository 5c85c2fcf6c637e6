package catalog_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/citus"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestCitusIsolationAfterMoveAndIsolate checks the whole isolation proof
// list again after tenant A's shards move to the other worker, after A is
// isolated onto shards of its own, and after those move back.
func TestCitusIsolationAfterMoveAndIsolate(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	key := rls.BigInt
	db, _, _ := citusStore(t, key)
	require.GreaterOrEqual(t, len(db.Workers), 2, "the test moves shards between two workers")
	ctx := t.Context()
	admin := db.AdminConn(t)
	a := testschema.Tenants(key)[0]

	placeOf := func(tenant rls.Tenant) map[string]citus.ShardPlacement {
		t.Helper()
		places, err := citus.Placement(ctx, admin, "stores", tenant)
		require.NoError(t, err)
		out := map[string]citus.ShardPlacement{}
		for _, p := range places {
			out[p.Table] = p
		}
		require.Len(t, out, 3, "%v", places)
		return out
	}
	// move moves the shard group of tenant's stores shard to the other
	// worker, writes blocked meanwhile, and returns the new node.
	move := func(tenant rls.Tenant) citus.ShardPlacement {
		t.Helper()
		from := placeOf(tenant)["stores"]
		to := db.Workers[0]
		if to.Host == from.Host && to.Port == from.Port {
			to = db.Workers[1]
		}
		_, err := admin.Exec(ctx, "SELECT citus_move_shard_placement($1, $2, $3, $4, $5, shard_transfer_mode => 'block_writes')",
			from.ShardID, from.Host, from.Port, to.Host, to.Port)
		require.NoError(t, err)
		after := placeOf(tenant)
		for table, p := range after {
			assert.Equal(t, to.Port, p.Port, "%s moved with its co-located shards", table)
		}
		return after["stores"]
	}
	shardPolicies := func() {
		t.Helper()
		for _, table := range []string{"stores", "products", "purchases"} {
			rows, err := admin.Query(ctx, `SELECT shardid, result FROM run_command_on_shards($1,
				$$SELECT c.relforcerowsecurity::text || ' ' || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
				  FROM pg_class c WHERE c.oid = '%s'::regclass$$)`, table)
			require.NoError(t, err)
			results, err := pgx.CollectRows(rows, pgx.RowToMap)
			require.NoError(t, err)
			require.NotEmpty(t, results)
			for _, r := range results {
				assert.Equal(t, "true 2", r["result"], "%s shard %v: FORCE and both policies", table, r["shardid"])
			}
		}
	}

	before := placeOf(a)
	moved := move(a)
	assert.NotEqual(t, before["stores"].Port, moved.Port)
	shardPolicies()
	t.Run("after a shard move", func(t *testing.T) { checkCitusIsolation(t, db, key) })

	shard, err := citus.Isolate(ctx, admin, "stores", a, citus.IsolateOptions{TransferMode: "block_writes"})
	require.NoError(t, err)
	isolated := placeOf(a)
	assert.Equal(t, shard, isolated["stores"].ShardID)
	for table, p := range isolated {
		assert.True(t, p.Isolated, "%s: the shard holds tenant A only", table)
		assert.NotEqual(t, before[table].ShardID, p.ShardID, table)
	}
	again, err := citus.Isolate(ctx, admin, "products", a, citus.IsolateOptions{TransferMode: "block_writes"})
	require.NoError(t, err)
	assert.Equal(t, isolated["products"].ShardID, again, "isolating again changes nothing")
	shardPolicies()
	t.Run("after isolating the tenant", func(t *testing.T) { checkCitusIsolation(t, db, key) })

	// A's rows are the only rows of its new shard, on the worker.
	var worker pgtenancytest.CitusNode
	for _, w := range db.Workers {
		if w.Port == isolated["products"].Port && w.Host == isolated["products"].Host {
			worker = w
		}
	}
	wconn, err := pgx.Connect(ctx, db.NodeAdminURL(worker))
	require.NoError(t, err)
	defer wconn.Close(context.WithoutCancel(ctx))
	var total, ofA int64
	require.NoError(t, wconn.QueryRow(ctx, fmt.Sprintf("SELECT count(*), count(*) FILTER (WHERE store_id = $1) FROM public.products_%d", isolated["products"].ShardID), a.String()).Scan(&total, &ofA))
	assert.EqualValues(t, 3, ofA)
	assert.EqualValues(t, 3, total)

	move(a)
	shardPolicies()
	t.Run("after moving the isolated shard", func(t *testing.T) { checkCitusIsolation(t, db, key) })
}
