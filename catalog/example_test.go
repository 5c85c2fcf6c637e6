package catalog_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Discover reads a model from a database by convention; Plan writes what
// that database lacks, and nothing once it is applied.
func ExamplePlan() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, storeTemplates[rls.BigInt])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.OwnerURL) // the role that owns the tables
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)

	m, err := catalog.Discover(ctx, conn, catalog.DiscoverOptions{
		TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"},
	})
	if err != nil {
		panic(err)
	}
	for _, t := range m.Tables {
		fmt.Println(t.Name, t.TenantColumn, len(t.ForeignKeys))
	}
	m.AppRole = pgtenancytest.AppRole

	mig, err := catalog.Plan(ctx, conn, m)
	if err != nil {
		panic(err)
	}
	fmt.Println("statements:", strings.Count(mig.Up, ";\n"))
	if _, err := conn.Exec(ctx, mig.Up); err != nil {
		panic(err)
	}
	mig, err = catalog.Plan(ctx, conn, m)
	fmt.Println("after applying it, empty:", mig.IsEmpty(), err)
	// Output:
	// products store_id 0
	// purchases store_id 1
	// stores id 0
	// statements: 25
	// after applying it, empty: true <nil>
}
