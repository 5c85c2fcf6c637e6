package citus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/citus"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// distributed creates stores and orders (co-located, by store) and a
// reference and a local table, with rows of stores 1 to 4.
func distributed(t *testing.T, key string) (*pgtenancytest.CitusDB, *pgx.Conn) {
	t.Helper()
	db := pgtenancytest.NewCitusDB(t)
	owner := db.OwnerConn(t)
	_, err := owner.Exec(t.Context(), fmt.Sprintf(`
CREATE TABLE stores (id %[1]s PRIMARY KEY);
CREATE TABLE orders (store_id %[1]s NOT NULL, id bigint NOT NULL, PRIMARY KEY (store_id, id));
CREATE TABLE currencies (code text PRIMARY KEY);
CREATE TABLE notes (id bigint);
SELECT create_distributed_table('stores', 'id', colocate_with => 'none');
SELECT create_distributed_table('orders', 'store_id', colocate_with => 'stores');
SELECT create_reference_table('currencies');`, key))
	require.NoError(t, err)
	return db, owner
}

func TestPlacement(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db, owner := distributed(t, "bigint")
	ctx := t.Context()
	_, err := owner.Exec(ctx, "INSERT INTO stores VALUES (1), (2), (3), (4); INSERT INTO orders SELECT s, g FROM generate_series(1, 4) s, generate_series(1, 5) g")
	require.NoError(t, err)

	places, err := citus.Placement(ctx, owner, "orders", rls.Int64(3))
	require.NoError(t, err)
	require.Len(t, places, 2)
	assert.Equal(t, "orders", places[0].Table)
	assert.Equal(t, "stores", places[1].Table)
	assert.Equal(t, places[0].Port, places[1].Port, "co-located shards are on one node")
	assert.False(t, places[0].Isolated)

	// The shard really holds the tenant's rows: look at it on its worker.
	var node pgtenancytest.CitusNode
	for _, w := range db.Workers {
		if w.Host == places[0].Host && w.Port == places[0].Port {
			node = w
		}
	}
	require.NotZero(t, node.Port)
	worker, err := pgx.Connect(ctx, db.NodeAdminURL(node))
	require.NoError(t, err)
	defer worker.Close(context.WithoutCancel(ctx))
	var n int
	require.NoError(t, worker.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM public.orders_%d WHERE store_id = 3", places[0].ShardID)).Scan(&n))
	assert.Equal(t, 5, n)

	shard, err := citus.Isolate(ctx, owner, "stores", rls.Int64(3), citus.IsolateOptions{TransferMode: "block_writes"})
	require.NoError(t, err)
	after, err := citus.Placement(ctx, owner, "orders", rls.Int64(3))
	require.NoError(t, err)
	assert.True(t, after[0].Isolated && after[1].Isolated, "%v", after)
	assert.Equal(t, shard, after[1].ShardID)
	assert.NotEqual(t, places[0].ShardID, after[0].ShardID)
	var total int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&total))
	assert.Equal(t, 20, total, "no row lost")
	again, err := citus.Isolate(ctx, owner, "orders", rls.Int64(3), citus.IsolateOptions{TransferMode: "block_writes"})
	require.NoError(t, err)
	assert.Equal(t, after[0].ShardID, again, "a tenant already isolated stays as it is")
	other, err := citus.Placement(ctx, owner, "stores", rls.Int64(4))
	require.NoError(t, err)
	assert.False(t, other[0].Isolated, "another tenant is not isolated")
}

func TestTenantKeyType(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	_, owner := distributed(t, "uuid")
	ctx := t.Context()
	key, err := citus.TenantKeyType(ctx, owner, "orders")
	require.NoError(t, err)
	assert.Equal(t, rls.UUID, key)
	u := rls.MustParse(rls.UUID, "00000000-0000-4000-8000-00000000000a")
	places, err := citus.Placement(ctx, owner, "stores", u)
	require.NoError(t, err)
	assert.Len(t, places, 2)

	for _, table := range []string{"currencies", "notes"} {
		_, err = citus.Placement(ctx, owner, table, u)
		assert.ErrorIs(t, err, citus.ErrNotDistributed, table)
		_, err = citus.Isolate(ctx, owner, table, u, citus.IsolateOptions{})
		assert.ErrorIs(t, err, citus.ErrNotDistributed, table)
	}
	_, err = citus.Placement(ctx, owner, "stores", rls.Tenant{})
	assert.ErrorIs(t, err, rls.ErrInvalidTenant)
	_, err = citus.Isolate(ctx, owner, "stores", u, citus.IsolateOptions{TransferMode: "fast"})
	assert.ErrorContains(t, err, "transfer mode")
	_, err = citus.Placement(ctx, owner, "missing", u)
	assert.Error(t, err)
}
