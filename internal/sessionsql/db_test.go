package sessionsql

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

var productsTemplate = &pgtenancytest.Template{
	Name: "sessionsql_products",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, fmt.Sprintf(`
			CREATE TABLE products (id int PRIMARY KEY, name text);
			INSERT INTO products VALUES (1, 'one'), (2, 'two');
			GRANT SELECT, UPDATE ON products TO %s;`, pgtenancytest.AppRole))
		return err
	},
}

// sessionState is what a connection holds after its transaction ended,
// read from the server.
func sessionState(t *testing.T, ctx context.Context, conn *pgx.Conn, before map[string]bool) State {
	t.Helper()
	var st State
	var temp, cursors, channels, locks int
	var role string
	require.NoError(t, conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema())
		  + (SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()),
		(SELECT count(*) FROM pg_cursors),
		(SELECT count(*) FROM pg_listening_channels()),
		(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),
		current_setting('role')`).Scan(&temp, &cursors, &channels, &locks, &role))
	if temp > 0 {
		st.Kinds |= TempObjects
	}
	if cursors > 0 {
		st.Kinds |= HoldCursors
	}
	if channels > 0 {
		st.Kinds |= Listen
	}
	if locks > 0 {
		st.Kinds |= AdvisoryLocks
	}
	for name := range sessionSettings(t, ctx, conn) {
		if !before[name] {
			st.addSetting(name)
		}
	}
	if role != "none" {
		st.addSetting("role")
	}
	// Custom settings (with a dot) are not in pg_settings: ask for every
	// one that a case names. Set at session level, one keeps its value
	// after the commit; set locally, it reads ''.
	for _, tc := range scanCases {
		for _, name := range tc.settings {
			if !strings.Contains(name, ".") {
				continue
			}
			var v *string
			require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting($1, true)", name).Scan(&v))
			if v != nil && *v != "" {
				st.addSetting(name)
			}
		}
	}
	return st
}

// sessionSettings returns the settings set at session level.
func sessionSettings(t *testing.T, ctx context.Context, conn *pgx.Conn) map[string]bool {
	t.Helper()
	// SET TRANSACTION leaves source 'session' on the transaction_*
	// settings, which every transaction starts from the default_ ones.
	rows, err := conn.Query(ctx, "SELECT lower(name) FROM pg_settings WHERE source = 'session' AND name NOT LIKE 'transaction\\_%'")
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// covers reports whether scanned accounts for actual.
func covers(scanned, actual State) bool {
	if scanned.Kinds&Opaque != 0 {
		return true
	}
	kinds := actual.Kinds &^ Settings
	if scanned.Kinds&kinds != kinds {
		return false
	}
	if scanned.Kinds&AllSettings != 0 {
		return true
	}
	for _, n := range actual.Settings {
		found := false
		for _, s := range scanned.Settings {
			found = found || s == n
		}
		if !found {
			return false
		}
	}
	return true
}

// TestScanAgainstServer runs every case of TestScan that the application
// role can run, in a transaction on a connection of its own, and reads
// what the session holds after the commit: Scan never misses any of it,
// and what Scan reports is there (but for the cases that only reset a
// setting, or that Scan cannot read).
func TestScanAgainstServer(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, productsTemplate)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // several statements
	ran := 0
	for _, tc := range scanCases {
		if strings.Contains(tc.sql, "$1") || strings.TrimSpace(strings.Trim(tc.sql, "; ")) == "" {
			continue
		}
		conn, err := pgx.ConnectConfig(ctx, cfg)
		require.NoError(t, err)
		before := sessionSettings(t, ctx, conn)
		_, err = conn.Exec(ctx, "BEGIN")
		require.NoError(t, err)
		if _, err := conn.Exec(ctx, tc.sql); err != nil {
			t.Logf("%q does not run: %v", tc.sql, err)
			require.NoError(t, conn.Close(ctx))
			continue
		}
		_, err = conn.Exec(ctx, "COMMIT")
		require.NoError(t, err)
		ran++
		actual := sessionState(t, ctx, conn, before)
		scanned := Scan(tc.sql)
		require.True(t, covers(scanned, actual), "%q leaves %+v, Scan found %+v", tc.sql, actual, scanned)
		switch {
		case scanned.Kinds&(Opaque|AllSettings) != 0, strings.Contains(tc.sql, `\`):
			// Read both ways, or not at all.
		case strings.Contains(tc.sql, "DEFAULT") || strings.Contains(tc.sql, "ROLE NONE"):
			require.Equal(t, scanned.Kinds&^Settings, actual.Kinds&^Settings, "%q", tc.sql)
		default:
			require.Equal(t, scanned.Kinds, actual.Kinds, "%q leaves %+v, Scan found %+v", tc.sql, actual, scanned)
			require.ElementsMatch(t, scanned.Settings, actual.Settings, "%q", tc.sql)
		}
		require.NoError(t, conn.Close(ctx))
	}
	require.Greater(t, ran, 80, "too few cases ran")
}
