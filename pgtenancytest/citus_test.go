package pgtenancytest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestNewCitusDB(t *testing.T) {
	pgtenancytest.CitusURL(t)
	t.Parallel()
	var db *pgtenancytest.CitusDB
	t.Run("create", func(t *testing.T) {
		db = pgtenancytest.NewCitusDB(t)
		ctx := t.Context()
		require.NotEmpty(t, db.Workers)
		owner := db.OwnerConn(t)
		var workers int
		require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0").Scan(&workers))
		assert.Equal(t, len(db.Workers), workers)
		_, err := owner.Exec(ctx, "CREATE TABLE t (k bigint); SELECT create_distributed_table('t', 'k'); INSERT INTO t SELECT generate_series(1, 100); GRANT SELECT ON t TO "+pgtenancytest.AppRole)
		require.NoError(t, err, "the owner can create and distribute tables")
		var placed int
		require.NoError(t, owner.QueryRow(ctx, "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 't'::regclass").Scan(&placed))
		assert.Equal(t, len(db.Workers), placed, "shards on every worker")

		app := db.AppConn(t)
		var super, bypass bool
		var n int
		require.NoError(t, app.QueryRow(ctx, "SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM t) FROM pg_roles WHERE rolname = current_user").Scan(&super, &bypass, &n))
		assert.False(t, super || bypass)
		assert.Equal(t, 100, n)
		_, err = app.Exec(ctx, "CREATE TABLE x (a int)")
		assert.Error(t, err, "the app role cannot create in schema public")

		for _, w := range db.Workers {
			conn, err := pgx.Connect(ctx, db.NodeAdminURL(w))
			require.NoError(t, err)
			var ext bool
			require.NoError(t, conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')").Scan(&ext))
			assert.True(t, ext)
			conn.Close(context.WithoutCancel(ctx))
		}
	})
	// The subtest's cleanup dropped the database from every node.
	for _, n := range append([]pgtenancytest.CitusNode{db.Coordinator}, db.Workers...) {
		conn, err := pgx.Connect(t.Context(), db.NodeAdminURL(n))
		if err == nil {
			conn.Close(context.Background())
		}
		assert.Error(t, err, "database %s still on %s:%d", db.Name, n.Host, n.Port)
	}
}
