package lifecycle_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// storeTemplate is the store schema (stores 1, 2 and 3 with their products
// and purchases), isolated.
var storeTemplate = &pgtenancytest.Template{
	Name: "lifecycle_example_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Isolated(ctx, conn, rls.BigInt, pgtenancytest.AppRole)
	},
}

// Export a tenant for data portability, then erase it: the model comes from
// the catalog, so no table is missed.
func Example() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, storeTemplate)
	ctx := context.Background()
	p, err := pgxpool.New(ctx, db.OwnerURL) // the owner, with FORCE ROW LEVEL SECURITY
	if err != nil {
		panic(err)
	}
	defer p.Close()
	conn, err := p.Acquire(ctx)
	if err != nil {
		panic(err)
	}
	m, err := catalog.Discover(ctx, conn.Conn(), catalog.DiscoverOptions{
		TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"},
	})
	conn.Release()
	if err != nil {
		panic(err)
	}

	dir, err := os.MkdirTemp("", "export")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	man, err := lifecycle.Export(ctx, p, m, rls.Int64(1), filepath.Join(dir, "store-1"), lifecycle.ExportOptions{})
	if err != nil {
		panic(err)
	}
	for _, t := range man.Tables {
		fmt.Println("exported", t.Name, t.Rows, t.File)
	}

	res, err := lifecycle.Delete(ctx, p, m, rls.Int64(1), lifecycle.DeleteOptions{})
	if err != nil {
		panic(err)
	}
	for _, t := range res.Tables {
		fmt.Println("deleted", t.Table, t.Rows)
	}
	// Output:
	// exported public.stores 1 01_public.stores.bin
	// exported public.products 3 02_public.products.bin
	// exported public.purchases 3 03_public.purchases.bin
	// deleted public.purchases 3
	// deleted public.products 3
	// deleted public.stores 1
}
