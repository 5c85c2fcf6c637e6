// Package policy turns a description of a multi-tenant schema into the SQL
// that makes PostgreSQL enforce tenant isolation with Row Level Security.
//
// # Model
//
// A [Model] names the tenant tables, each with its tenant column, the one
// root table whose rows are the tenants (stores, its tenant column being its
// key), the global tables shared by all tenants, and the foreign keys between
// tenant tables:
//
//	m := &policy.Model{
//		KeyType: rls.BigInt,
//		AppRole: "app",
//		Tables: []policy.Table{
//			{Name: "stores", TenantColumn: "id", Root: true},
//			{Name: "products", TenantColumn: "store_id"},
//			{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{
//				{Columns: []string{"product_id"}, RefTable: "products"},
//			}},
//		},
//		Global: []string{"currencies"},
//	}
//
// [Model.Validate] checks a model on its own. Every problem is a
// [*ModelError] naming the table and column; errors.Is(err,
// [ErrInvalidModel]) matches them all.
//
// # Generating SQL
//
// [Generate] returns a [Migration] whose Up, for every tenant table:
//
//   - makes each foreign key between tenant tables composite, the tenant
//     column first on both sides: (store_id, product_id) REFERENCES
//     products (store_id, id), with the UNIQUE (store_id, id) key it needs.
//     A plain key lets a row point at another tenant's row, since key checks
//     bypass RLS; Citus needs the tenant column in the same position. The
//     plain key it replaces, when the model knows it ([Model.Constraints],
//     filled by [Discover] and [Resolve]), is dropped: PostgreSQL would
//     check it first, and its violation would tell a writer whether a key
//     exists in another tenant;
//   - enables and forces Row Level Security, so the table owner is subject
//     to it too;
//   - creates two policies with the expression [PolicyExpr]: a permissive
//     one that admits the current tenant's rows and a restrictive one that
//     keeps any other policy from admitting more;
//   - grants the application role what it needs and revokes TRUNCATE,
//     REFERENCES and TRIGGER, which RLS does not cover.
//
// Down undoes Up. Both are meant to run in one transaction each, as tern
// runs migrations. The SQL depends only on the model, so it can be checked
// in and diffed: the same model always gives the same bytes.
//
// The current tenant is read from a transaction-local setting,
// [DefaultSetting] unless [Model.Setting] says otherwise. A transaction
// without it sees no tenant rows and can write none.
//
// # Working from a live database
//
// [Discover] reads a model from the catalog: every table with the tenant
// column is a tenant table, foreign keys between them are read from
// pg_constraint, and keys already in composite form are recorded so that
// Generate skips them. [Check] compares a declared model with the database
// (tables, columns, the tenant column's type) and [Resolve] completes it
// from the catalog the way Discover does, so a declared model and a
// discovered one generate the same SQL. Differences are [*SchemaError]s,
// which match [ErrSchemaMismatch].
//
// # Names
//
// Table names may be schema-qualified ("billing.invoices"); the name is split
// at its first dot, and unqualified names are in [Model.Schema] ("public").
// The generated SQL quotes and schema-qualifies every name, so any name
// PostgreSQL accepts works and search_path does not matter. Names pgtenancy
// creates are <table>_<columns>_pgtenancy_key and <table>_<columns>_pgtenancy_fkey,
// cut to 63 bytes with a short hash when longer.
//
// # Verification
//
// [Verify] audits a live database for every hole that makes row level
// security inert: an application role that is a superuser, has BYPASSRLS or
// owns a tenant table; tenant tables without RLS, without FORCE, without the
// pgtenancy policies or with policies that drifted; other permissive policies;
// tables with a tenant column left out of the model; foreign and unique keys
// without the tenant column; views without security_invoker, readable
// materialized views and SECURITY DEFINER functions over tenant tables;
// TRUNCATE and REFERENCES privileges; an altered pgtenancy.set_tenant; and, with
// Citus, distribution, co-location and unprotected shards. It returns a
// [Report] of [Finding]s, each with a [Severity], a stable [Code], the object,
// a message and the SQL that fixes it. [Report.Err] returns a [*VerifyError]
// (errors.Is [ErrVerifyFailed]) when there are errors, so a service can refuse
// to start:
//
//	report, err := policy.Verify(ctx, pool, policy.VerifyOptions{Model: m, AppRole: "app"})
//	if err != nil {
//		return err // could not run
//	}
//	if err := report.Err(); err != nil {
//		return err // the database has a hole
//	}
//
// [CheckData] finds rows whose foreign keys already cross tenants, which
// would make the generated composite keys fail; run it as a role that sees
// every row. [Plan] returns what [Generate] would write less what is already
// in place. The pgtenancy verify and pgtenancy plan commands wrap them;
// docs/verify.md lists every code.
package policy
