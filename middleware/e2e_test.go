package middleware_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

var storeTemplate = &pgtenancytest.Template{
	Name: "middleware_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Isolated(ctx, conn, rls.BigInt, pgtenancytest.AppRole)
	},
}

// TestEndToEnd sends requests through the middleware and the pool to a real
// database, as the app role: each tenant's request sees only its rows, and a
// forged header for a tenant the caller does not belong to gets 403 without
// any database work.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p, err := pool.New(context.Background(), db.AppURL)
	require.NoError(t, err)
	t.Cleanup(p.Close)

	// Callers and the stores they belong to; a real app looks this up.
	members := map[string]string{"alice": "1", "bob": "2"}
	mw, err := middleware.New(middleware.Config{
		KeyType:  rls.BigInt,
		Resolver: middleware.Header(""),
		Authorize: func(r *http.Request, t rls.Tenant) error {
			if members[r.Header.Get("X-User")] != t.String() {
				return middleware.ErrForbidden
			}
			return nil
		},
	})
	require.NoError(t, err)
	var handled sync.Map
	app := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Store(r.Header.Get("X-User"), true)
		rows, err := p.Query(r.Context(), "SELECT store_id, name FROM products ORDER BY id")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		type product struct {
			StoreID int64
			Name    string
		}
		list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[product])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(list)
	}))
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)

	get := func(user, tenant string) (int, []struct {
		StoreID int64
		Name    string
	}) {
		req, err := http.NewRequest("GET", srv.URL+"/products", nil)
		require.NoError(t, err)
		req.Header.Set("X-User", user)
		if tenant != "" {
			req.Header.Set("X-Tenant-ID", tenant)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out []struct {
			StoreID int64
			Name    string
		}
		if resp.StatusCode == http.StatusOK {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		}
		return resp.StatusCode, out
	}

	status, products := get("alice", "1")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, products, 3)
	for _, pr := range products {
		assert.EqualValues(t, 1, pr.StoreID)
	}
	status, products = get("bob", "2")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, products, 2)
	for _, pr := range products {
		assert.EqualValues(t, 2, pr.StoreID)
	}

	// alice forges store 2's id: 403, the handler never runs, the pool is never used.
	before := p.Stat().AcquireCount()
	handled.Delete("alice")
	status, _ = get("alice", "2")
	assert.Equal(t, http.StatusForbidden, status)
	_, ran := handled.Load("alice")
	assert.False(t, ran, "the handler must not run for a forged tenant")
	assert.Equal(t, before, p.Stat().AcquireCount(), "no database work for a forged tenant")

	status, _ = get("alice", "")
	assert.Equal(t, http.StatusBadRequest, status)
	status, _ = get("alice", "1; DROP TABLE products")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, before, p.Stat().AcquireCount())
}
