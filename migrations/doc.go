// Package migrations ships pgtenancy's SQL through tern, or as plain SQL for any
// other migration tool.
//
// # The library's own objects
//
// [Install] creates the pgtenancy schema and the pgtenancy.set_tenant function that
// the pool calls at the start of every unit of work. It runs tern with its own
// version table (pgtenancy.schema_version), so its numbering never collides with
// the application's migrations. [LibrarySQL] prints the same SQL for other
// tools.
//
//	err := migrations.Install(ctx, conn, migrations.Options{})
//
// # The application's tenant isolation
//
// [policy.Generate] turns a schema model into up and down SQL; [WriteTernFile]
// writes it as the next tern migration in a directory (NNN_name.sql), never
// overwriting a file:
//
//	m, err := policy.Generate(model)
//	path, err := migrations.WriteTernFile("db/migrations", "tenant_isolation", m)
//
// The pgtenancy CLI does both: `pgtenancy install` and `pgtenancy generate --out DIR`.
package migrations
