package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// storeSchema is the store application before pgtenancy.
var storeSchema = &pgtenancytest.Template{
	Name: "cli_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt))
		return err
	},
}

func pgtenancy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

var declaredFlags = []string{"--key", "bigint", "--root", "stores", "--tenant-column", "store_id",
	"--table", "products", "--table", "purchases", "--fk", "purchases.product_id=products.id",
	"--global", "currencies", "--app-role", pgtenancytest.AppRole}

func TestGenerateDeclaredDiscoveredAndLibraryAgree(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	want, err := policy.Generate(testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)

	code, declared, stderr := pgtenancy(t, append([]string{"generate"}, declaredFlags...)...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, want.Up, declared)

	// With a database, the SQL is planned for it: the same SQL plus the
	// drop of the plain foreign key the composite one replaces.
	wantDB, err := catalog.Plan(t.Context(), db.OwnerConn(t), testschema.Model(rls.BigInt, pgtenancytest.AppRole))
	require.NoError(t, err)
	assert.NotContains(t, want.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`)
	assert.Contains(t, wantDB.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`)

	code, checked, stderr := pgtenancy(t, append([]string{"generate", "--database-url", db.OwnerURL}, declaredFlags...)...)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, wantDB.Up, checked, "declared model checked against the database")

	code, discovered, stderr := pgtenancy(t, "generate", "--database-url", db.OwnerURL, "--tenant-column", "store_id",
		"--root", "stores", "--global", "currencies", "--app-role", pgtenancytest.AppRole)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, wantDB.Up, discovered, "discovery gives the same SQL as the declaration")

	code, down, stderr := pgtenancy(t, "generate", "--database-url", db.OwnerURL, "--tenant-column", "store_id",
		"--root", "stores", "--global", "currencies", "--app-role", pgtenancytest.AppRole, "--down")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, wantDB.Down, down)
}

func TestGenerateOutWritesTernFilesAndApplies(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "001_schema.sql"), []byte("SELECT 1;\n"), 0o644))

	code, stdout, stderr := pgtenancy(t, "generate", "--database-url", db.OwnerURL, "--tenant-column", "store_id",
		"--root", "stores", "--global", "currencies", "--app-role", pgtenancytest.AppRole, "--out", dir)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, filepath.Join(dir, "002_tenant_isolation.sql")+"\n", stdout)
	body, err := os.ReadFile(filepath.Join(dir, "002_tenant_isolation.sql"))
	require.NoError(t, err)
	assert.Contains(t, string(body), "---- create above / drop below ----")

	code, _, stderr = pgtenancy(t, "install", "--database-url", db.OwnerURL)
	require.Equal(t, 0, code, stderr)

	// Apply the written file as-is (the up part) and check isolation as the app role.
	up, _, _ := strings.Cut(string(body), "---- create above / drop below ----")
	owner := db.OwnerConn(t)
	ctx := context.Background()
	_, err = owner.Exec(ctx, up)
	require.NoError(t, err)
	app := db.AppConn(t)
	var n int
	require.NoError(t, app.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
	assert.Zero(t, n, "no tenant: no rows")
	tx, err := app.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, "SELECT pgtenancy.set_tenant('2')")
	require.NoError(t, err)
	require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
	assert.Equal(t, 2, n)
}

func TestGenerateBadInput(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeSchema)
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{"unknown fk target", []string{"--key", "bigint", "--root", "stores", "--tenant-column", "store_id",
			"--table", "purchases", "--fk", "purchases.product_id=products.id"}, []string{"products"}},
		{"fk from undeclared table", []string{"--key", "bigint", "--root", "stores", "--tenant-column", "store_id",
			"--table", "products", "--fk", "purchases.product_id=products.id"}, []string{"purchases"}},
		{"bad fk syntax", []string{"--key", "bigint", "--root", "stores", "--tenant-column", "store_id",
			"--table", "products", "--fk", "products"}, []string{"--fk"}},
		{"unknown key type", []string{"--key", "serial", "--root", "stores", "--table", "products:store_id"}, []string{"serial"}},
		{"bad setting", []string{"--key", "bigint", "--root", "stores", "--table", "products:store_id", "--setting", "app; drop"}, []string{"setting"}},
		{"unknown table in database", []string{"--database-url", db.OwnerURL, "--key", "bigint", "--root", "stores",
			"--table", "nosuch:store_id"}, []string{"nosuch"}},
		{"unknown column in database", []string{"--database-url", db.OwnerURL, "--key", "bigint", "--root", "stores",
			"--table", "products:tenant"}, []string{"products", "tenant"}},
		{"type mismatch", []string{"--database-url", db.OwnerURL, "--key", "uuid", "--root", "stores",
			"--table", "products:store_id"}, []string{"products", "store_id"}},
		{"discovery without root", []string{"--database-url", db.OwnerURL, "--tenant-column", "store_id"}, []string{"oot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := pgtenancy(t, append(append([]string{"generate"}, tt.args...), "--out", dir)...)
			assert.Equal(t, exitError, code)
			assert.Empty(t, stdout)
			for _, w := range tt.wantErr {
				assert.Contains(t, stderr, w)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "no SQL written")
		})
	}
}

func TestGenerateModelFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, os.WriteFile(path, []byte(`{
  "KeyType": "uuid",
  "AppRole": "app",
  "Tables": [
    {"Name": "stores", "TenantColumn": "id", "Root": true},
    {"Name": "products", "TenantColumn": "store_id"},
    {"Name": "purchases", "TenantColumn": "store_id",
     "ForeignKeys": [{"Columns": ["product_id"], "RefTable": "products", "RefColumns": ["id"]}]}
  ],
  "Global": ["currencies"]
}`), 0o644))
	want, err := policy.Generate(testschema.Model(rls.UUID, "app"))
	require.NoError(t, err)
	code, stdout, stderr := pgtenancy(t, "generate", "--model", path)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, want.Up, stdout)

	require.NoError(t, os.WriteFile(path, []byte(`{"KeyType": "uuid", "Tabels": []}`), 0o644))
	code, _, stderr = pgtenancy(t, "generate", "--model", path)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "Tabels")
}

func TestInstall(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	for range 2 {
		code, stdout, stderr := pgtenancy(t, "install", "--database-url", db.OwnerURL)
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, stdout, "installed")
	}
	var n int
	require.NoError(t, db.AppConn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_proc WHERE oid = 'pgtenancy.set_tenant(text)'::regprocedure").Scan(&n))
	assert.Equal(t, 1, n)

	code, stdout, _ := pgtenancy(t, "install", "--print", "--setting", "my.tenant")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "SET LOCAL my.tenant = %L")
}

// TestNoDatabase is not parallel: it clears DATABASE_URL.
func TestNoDatabase(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	code, _, stderr := pgtenancy(t, "install")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "DATABASE_URL")
	code, _, stderr = pgtenancy(t, "generate", "--tenant-column", "store_id", "--root", "stores")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "nothing to generate")
}

func TestUsage(t *testing.T) {
	t.Parallel()
	code, _, stderr := pgtenancy(t)
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, "generate")
	code, _, _ = pgtenancy(t, "help")
	assert.Equal(t, exitOK, code)
	code, _, stderr = pgtenancy(t, "nope")
	assert.Equal(t, exitError, code)
	assert.Contains(t, stderr, `unknown command "nope"`)
	code, _, _ = pgtenancy(t, "generate", "-h")
	assert.Equal(t, exitOK, code)
	code, _, _ = pgtenancy(t, "generate", "stray")
	assert.Equal(t, exitError, code)
}
