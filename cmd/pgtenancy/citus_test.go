package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestCitusVerbs(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	db := pgtenancytest.NewCitusDB(t)
	ctx := t.Context()
	_, err := db.OwnerConn(t).Exec(ctx, `
CREATE TABLE stores (id bigint PRIMARY KEY);
CREATE TABLE orders (store_id bigint NOT NULL, id bigint NOT NULL, PRIMARY KEY (store_id, id));
SELECT create_distributed_table('stores', 'id', colocate_with => 'none');
SELECT create_distributed_table('orders', 'store_id', colocate_with => 'stores');
INSERT INTO stores VALUES (7), (8);`)
	require.NoError(t, err)
	call := func(fn func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := fn(ctx, args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	placement := func(ctx context.Context, args []string, out, errOut *bytes.Buffer) int {
		return runPlacement(ctx, args, out, errOut)
	}
	isolate := func(ctx context.Context, args []string, out, errOut *bytes.Buffer) int {
		return runIsolate(ctx, args, out, errOut)
	}
	type result struct {
		Tenant string
		Shards []struct {
			Table    string
			ShardID  int64 `json:"shard_id"`
			Port     int
			Isolated bool
		}
	}

	code, out, errOut := call(placement, "--database-url", db.OwnerURL, "--tenant", "7")
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "TABLE")
	assert.Contains(t, out, "orders")
	assert.Contains(t, out, "stores")

	code, out, errOut = call(isolate, "--database-url", db.OwnerURL, "--tenant", "7", "--transfer-mode", "block_writes", "--format", "json")
	require.Equal(t, exitOK, code, errOut)
	var r result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	assert.Equal(t, "7", r.Tenant)
	require.Len(t, r.Shards, 2)
	for _, s := range r.Shards {
		assert.True(t, s.Isolated, "%+v", s)
	}

	code, _, errOut = call(placement, "--database-url", db.OwnerURL, "--tenant", "x")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "invalid bigint tenant")
	code, _, errOut = call(placement, "--database-url", db.OwnerURL)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "--tenant is required")
	code, _, errOut = call(isolate, "--database-url", db.OwnerURL, "--tenant", "7", "--table", "pg_class")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "not a hash-distributed")
}
