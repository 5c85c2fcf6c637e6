// Package admin runs cross-tenant work (data migrations, support tools,
// reports, creating tenants) through a role that bypasses row level
// security, in a way that is deliberate and visible.
//
// A [Pool] is not a pool.Pool: it has the same query methods, but its own
// type, so it cannot be passed where a tenant pool is expected by mistake,
// and it is easy to find in the code. Every unit of work needs a reason in
// its context ([WithReason]), or it fails with [ErrNoReason] before any
// I/O; the reason is logged, and it travels with the SQL (a comment in
// front of each statement, the application_name of a transaction), so
// pg_stat_activity and the server's log show who did what and why.
//
//	adm, err := admin.New(ctx, os.Getenv("ADMIN_DATABASE_URL"))
//	if err != nil { ... }                  // errors.Is(err, admin.ErrNoBypass): the role would see no tenant rows
//	ctx = admin.WithReason(ctx, "backfill invoice totals (ticket 123)")
//	_, err = adm.Exec(ctx, "UPDATE invoices SET total = ...")
//
// # The admin role
//
// [New] refuses a role that neither has BYPASSRLS nor is a superuser
// ([ErrNoBypass]): the tables' owner is no substitute, since FORCE ROW
// LEVEL SECURITY shows it no tenant rows, and its UPDATEs report UPDATE 0
// without an error. A superuser creates the role once, and the tables'
// owner grants it what it needs (docs/adopting.md):
//
//	CREATE ROLE app_admin LOGIN BYPASSRLS PASSWORD '...';   -- as a superuser
//	GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_admin;
//	GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_admin;
//
// The application role must not be able to become it: pgtenancy verify
// --admin-role app_admin checks that (verify.Options.AdminRole), along with
// the rest.
package admin
