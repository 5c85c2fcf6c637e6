package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// emptyIsolatedStore is the store schema without tenants, isolated: a
// target.
var emptyIsolatedStore = &pgtenancytest.Template{
	Name: "cli_empty_isolated_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)); err != nil {
			return err
		}
		if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
			return err
		}
		mig, err := catalog.Plan(ctx, conn, testschema.Model(rls.BigInt, pgtenancytest.AppRole))
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, mig.Up)
		return err
	},
}

func TestTenantVerbs(t *testing.T) {
	t.Parallel()
	src := pgtenancytest.NewDB(t, isolatedStoreSchema)
	dst := pgtenancytest.NewDB(t, emptyIsolatedStore)
	dir := filepath.Join(t.TempDir(), "export-1")
	model := append([]string{"--database-url", src.OwnerURL}, discoverFlags...)

	code, out, errOut := pgtenancy(t, append([]string{"tenant", "export", "--tenant", "1", "--out", dir}, model...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "public.products   3     3:")
	assert.Contains(t, errOut, "export public.products: 3 rows in", "plain progress lines off a terminal")

	code, out, errOut = pgtenancy(t, "tenant", "import", "--database-url", dst.OwnerURL, "--dir", dir)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "imported tenant 1; the target's checksums equal the export's")

	code, out, errOut = pgtenancy(t, "tenant", "checksum", "--database-url", dst.OwnerURL, "--against", dir)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "the checksums equal the export's")

	code, _, errOut = pgtenancy(t, append([]string{"tenant", "delete", "--tenant", "1"}, model...)...)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "pass --dry-run to count its rows, or --yes to delete them")

	code, out, errOut = pgtenancy(t, append([]string{"tenant", "delete", "--tenant", "1", "--dry-run"}, model...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "public.purchases  3")
	assert.Contains(t, out, "dry run: nothing deleted")

	code, out, errOut = pgtenancy(t, append([]string{"tenant", "delete", "--tenant", "1", "--yes", "--json"}, model...)...)
	require.Equal(t, exitOK, code, errOut)
	var del lifecycle.DeleteResult
	require.NoError(t, json.Unmarshal([]byte(out), &del))
	assert.Equal(t, int64(3), del.Tables[0].Rows)

	// The source no longer matches the export: exit 1.
	code, out, errOut = pgtenancy(t, "tenant", "checksum", "--database-url", src.OwnerURL, "--against", dir)
	assert.Equal(t, exitFindings, code, out)
	assert.Contains(t, errOut, "checksums differ")

	code, out, errOut = pgtenancy(t, append([]string{"tenant", "checksum", "--tenant", "2"}, model...)...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "public.products   2     2:")

	// Move tenant 2 there, then run the move again: nothing left to do.
	moveDir := filepath.Join(t.TempDir(), "move-2")
	args := append([]string{"tenant", "move", "--tenant", "2", "--to", dst.OwnerURL, "--dir", moveDir, "--yes"}, model...)
	code, out, errOut = pgtenancy(t, args...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "moved tenant 2")
	assert.Contains(t, errOut, "== export\n")
	code, _, errOut = pgtenancy(t, args...)
	require.Equal(t, exitOK, code, errOut)
	assert.Contains(t, errOut, "== skip delete\n")

	code, _, errOut = pgtenancy(t, append([]string{"tenant", "export", "--tenant", "404", "--out", t.TempDir() + "/x"}, model...)...)
	assert.Equal(t, exitError, code)
	assert.Contains(t, errOut, "unknown tenant: tenant 404 has no row in public.stores")

	code, _, errOut = pgtenancy(t, "tenant", "frobnicate")
	assert.Equal(t, exitError, code)
	assert.True(t, strings.HasPrefix(errOut, `pgtenancy tenant: unknown verb "frobnicate"`), errOut)
}

func TestProgressLines(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "1,234,567", thousands(1234567))
	assert.Equal(t, "999", thousands(999))
	assert.Equal(t, "-1,000", thousands(-1000))
	p := &progress{w: &strings.Builder{}, tty: true, width: 200}
	p.report(lifecycle.Progress{Op: "delete", Table: "public.products", Rows: 50, Total: 100, Elapsed: 1e9})
	assert.Equal(t, "\r\x1b[Kdelete public.products [##########..........] 50% 50 rows/s (50/100)", p.w.(*strings.Builder).String())
}
