package citus_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/citus"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Placement says where one tenant's rows of a distributed table live. It
// needs a Citus cluster (CITUS_URL), so the example is compiled but not
// run; TestPlacement runs the same calls on a real cluster.
func ExamplePlacement() {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("CITUS_URL"))
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)
	places, err := citus.Placement(ctx, conn, "products", rls.Int64(42))
	if err != nil {
		panic(err)
	}
	for _, p := range places {
		fmt.Printf("%s: shard %d on %s:%d (isolated: %v)\n", p.Table, p.ShardID, p.Host, p.Port, p.Isolated)
	}
}
