// Package verify audits a live database for every hole that makes row
// level security inert for the tenant tables, whether pgtenancy built the
// setup or not.
//
// Without a model it infers what it needs: the tenant settings and
// columns from the policies there (read from the server's parse trees, so
// any spelling counts), the tenant tables from those (tenant columns,
// foreign keys to tenant tables, partitions and inheritance children, in
// any schema), and it judges the policies by what they do, per role and
// command, whatever they are called. docs/verify.md says how.
//
// [Run] returns a [Report] of [Finding]s, each with a [Severity], a stable
// [Code], the object, a message and the SQL that fixes it; docs/verify.md
// lists every code. [Report.Err] returns a [*FailedError] (errors.Is
// [ErrFailed]) when there are errors:
//
//	report, err := verify.Run(ctx, conn, verify.Options{Model: m, AppRole: "app"})
//	if err != nil {
//		return err // could not run
//	}
//	if err := report.Err(); err != nil {
//		return err // the database has a hole
//	}
//
// [Audit] wraps Run as the pool's startup hook, so a service refuses to
// start on a database with a hole:
//
//	cfg.Audit = verify.Audit(verify.Options{Model: m})
//
// [CheckData] finds rows whose foreign keys already cross tenants, which
// would make the generated composite keys fail; run it as a role that sees
// every row.
//
// Run reads the catalog through the same reader as package catalog, in one
// transaction and four round trips, whatever the number of tables.
package verify
