// Package citus helps with tenants on a Citus cluster whose tenant tables
// are distributed by their tenant column (see policy.Model.Citus): where a
// tenant's rows live, and moving a large tenant onto shards of its own.
//
// # Where a tenant lives
//
// [Placement] lists, for every table co-located with a distributed table,
// the shard that holds a tenant's rows and the nodes that hold that shard:
//
//	places, err := citus.Placement(ctx, conn, "stores", rls.Int64(42))
//	for _, p := range places {
//		fmt.Println(p.Table, p.ShardID, p.Host, p.Port, p.Isolated)
//	}
//
// # Isolating a large tenant
//
// [Isolate] runs isolate_tenant_to_new_shard with CASCADE: the tenant's
// rows of every co-located table move to new shards that hold that tenant
// only, which can then be moved to a node of their own with
// citus_move_shard_placement. Row level security is unaffected: the new
// shards get the table's policies, as the tests of this package check.
//
// Both need a connection that may read Citus's metadata; Isolate needs
// the tables' owner or a superuser. They take the tenant as an
// [rls.Tenant], already validated; it travels as a bind parameter.
package citus
