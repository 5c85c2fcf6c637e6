package migrations_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Install creates the library's own objects, once: a second run has
// nothing to do.
func ExampleInstall() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, nil)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)

	for range 2 {
		if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
			panic(err)
		}
	}
	var version int
	if err := conn.QueryRow(ctx, "SELECT version FROM "+migrations.VersionTable).Scan(&version); err != nil {
		panic(err)
	}
	fmt.Println("version", version)
	// pgtenancy.set_tenant sets the tenant and its stamp for the transaction.
	var tenant string
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pgtenancy.set_tenant('42')"); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "SELECT current_setting('app.current_tenant')").Scan(&tenant)
	})
	fmt.Println(tenant, err)
	// Output:
	// version 2
	// 42 <nil>
}

// WriteTernFile writes a migration as the next tern file of a directory.
func ExampleWriteTernFile() {
	dir, err := os.MkdirTemp("", "migrations")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "001_schema.sql"), []byte("SELECT 1;\n"), 0o644); err != nil {
		panic(err)
	}
	m, err := policy.Generate(&policy.Model{KeyType: rls.BigInt, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "products", TenantColumn: "store_id"},
	}})
	if err != nil {
		panic(err)
	}
	path, err := migrations.WriteTernFile(dir, "tenant_isolation", m)
	fmt.Println(filepath.Base(path), err)
	// Output:
	// 002_tenant_isolation.sql <nil>
}
