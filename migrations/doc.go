// Package migrations ships pgtenancy's SQL through tern, or as plain SQL for any
// other migration tool.
//
// # The library's own objects
//
// [Install] creates the pgtenancy schema and the pgtenancy.set_tenant function
// (see [policy.Library]), which sets the tenant for the current transaction:
// the pool calls it on Citus, and people call it in psql. It runs tern with
// its own version table (pgtenancy.schema_version), so its numbering never
// collides with the application's migrations. [policy.LibrarySQL] is the
// same SQL for other tools.
//
//	err := migrations.Install(ctx, conn, migrations.Options{})
//
// # The application's tenant isolation
//
// [policy.Generate] turns a schema model into up and down SQL (catalog.Plan
// does it for a live database, leaving out what is there); [WriteTernFile]
// writes it as the next tern migration in a directory (NNN_name.sql), never
// overwriting a file:
//
//	m, err := catalog.Plan(ctx, conn, model)
//	if !m.IsEmpty() {
//		path, err := migrations.WriteTernFile("db/migrations", "tenant_isolation", m)
//	}
//
// The pgtenancy CLI does both: `pgtenancy install` and `pgtenancy generate --out DIR`.
package migrations
