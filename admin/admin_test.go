package admin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/admin"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// store is the test store with isolation applied (FORCE on every table).
var store = &pgtenancytest.Template{
	Name: "admin_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Isolated(ctx, conn, rls.BigInt, pgtenancytest.AppRole)
	},
}

// adminRole creates a login role for one test with attrs, granted what
// package admin's docs grant, and returns its URL to db.
func adminRole(t *testing.T, db *pgtenancytest.DB, attrs string) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "pgtenancy_admin_" + hex.EncodeToString(b)
	conn := db.AdminConn(t)
	_, err := conn.Exec(t.Context(), "CREATE ROLE "+name+" LOGIN PASSWORD 'admin_pw' "+attrs)
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := conn.Exec(context.Background(), "DROP OWNED BY "+name+"; DROP ROLE "+name)
		assert.NoError(t, err)
	})
	owner := db.OwnerConn(t)
	_, err = owner.Exec(t.Context(), "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "+name+
		"; GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "+name)
	require.NoError(t, err)
	u, err := url.Parse(db.OwnerURL)
	require.NoError(t, err)
	u.User = url.UserPassword(name, "admin_pw")
	return u.String()
}

// logBuffer is a concurrency-safe buffer for a slog handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefusesRoleWithoutBypass: the tables' owner is no admin role: under
// FORCE it sees no tenant rows and its UPDATE changes none, silently. New
// refuses it, and a role without BYPASSRLS.
func TestRefusesRoleWithoutBypass(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, store)
	// What the refusal protects against: the owner's UPDATE 0.
	tag, err := db.OwnerConn(t).Exec(t.Context(), "UPDATE products SET name = name")
	require.NoError(t, err)
	require.Zero(t, tag.RowsAffected(), "the owner under FORCE")

	for _, u := range []string{db.OwnerURL, adminRole(t, db, "NOBYPASSRLS")} {
		_, err := admin.New(t.Context(), u)
		require.ErrorIs(t, err, admin.ErrNoBypass)
	}
}

// TestCrossTenantWork: a BYPASSRLS role sees and changes every tenant's
// rows, but only with a reason, which is logged and travels with the SQL.
func TestCrossTenantWork(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, store)
	var logs logBuffer
	cfg, err := admin.ParseConfig(adminRole(t, db, "BYPASSRLS"))
	require.NoError(t, err)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	adm, err := admin.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	defer adm.Close()
	assert.True(t, strings.HasPrefix(adm.Role(), "pgtenancy_admin_"))

	ctx := context.Background()
	_, err = adm.Exec(ctx, "UPDATE products SET name = name")
	require.ErrorIs(t, err, admin.ErrNoReason)
	var n int
	require.ErrorIs(t, adm.QueryRow(ctx, "SELECT 1").Scan(&n), admin.ErrNoReason)
	_, err = adm.Begin(ctx)
	require.ErrorIs(t, err, admin.ErrNoReason)
	b := &pgx.Batch{}
	b.Queue("SELECT 1")
	require.ErrorIs(t, adm.SendBatch(ctx, b).Close(), admin.ErrNoReason)
	_, err = adm.CopyFrom(ctx, pgx.Identifier{"currencies"}, []string{"code", "name"}, pgx.CopyFromRows([][]any{{"CHF", "Swiss franc"}}))
	require.ErrorIs(t, err, admin.ErrNoReason)
	require.Empty(t, logs.String(), "nothing ran")

	ctx = admin.WithReason(ctx, "rename every product */ DROP TABLE x; /* (test)")
	tag, err := adm.Exec(ctx, "UPDATE products SET name = name")
	require.NoError(t, err)
	assert.EqualValues(t, 6, tag.RowsAffected(), "every tenant's products")
	require.NoError(t, adm.QueryRow(ctx, "SELECT count(DISTINCT store_id) FROM purchases").Scan(&n))
	assert.Equal(t, 3, n)
	var query string
	require.NoError(t, adm.QueryRow(ctx, "SELECT query FROM pg_stat_activity WHERE pid = pg_backend_pid()").Scan(&query))
	assert.True(t, strings.HasPrefix(query, "/* pgtenancy admin: rename every product * / DROP TABLE x; / * (test) */ "), query)

	tx, err := adm.Begin(ctx)
	require.NoError(t, err)
	var app string
	require.NoError(t, tx.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&app))
	assert.True(t, strings.HasPrefix(app, "pgtenancy admin: rename every product"), app)
	require.NoError(t, tx.Rollback(ctx))
	var outside string
	require.NoError(t, adm.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&outside))
	assert.Equal(t, admin.ApplicationName, outside, "the connection's own name after the transaction")

	b = &pgx.Batch{}
	b.Queue("SELECT count(*) FROM stores").QueryRow(func(r pgx.Row) error { return r.Scan(&n) })
	require.NoError(t, adm.SendBatch(ctx, b).Close())
	assert.Equal(t, 3, n)
	assert.Equal(t, "SELECT count(*) FROM stores", b.QueuedQueries[0].SQL, "the caller's batch is left alone")
	copied, err := adm.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"store_id", "id", "name", "price_cents", "currency"},
		pgx.CopyFromRows([][]any{{1, 901, "copied", 1, "EUR"}, {2, 902, "copied", 1, "EUR"}}))
	require.NoError(t, err)
	assert.EqualValues(t, 2, copied, "COPY works for a role that bypasses row level security")

	tctx := rls.WithTenant(ctx, rls.Int64(2))
	_, err = adm.Exec(tctx, "SELECT 1")
	require.NoError(t, err)
	out := logs.String()
	for _, want := range []string{`msg="pgtenancy admin"`, `reason="rename every product`, "role=" + adm.Role(), "op=exec", `sql="UPDATE products SET name = name"`, "tenant=2", `op="copy into \"products\""`} {
		assert.Contains(t, out, want)
	}
}
