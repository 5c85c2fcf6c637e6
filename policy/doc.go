// Package policy turns a description of a multi-tenant schema into the SQL
// that makes PostgreSQL enforce tenant isolation with Row Level Security.
// It is pure: no database, no context; package catalog reads a live
// database for it, and package verify audits one.
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
//     bypass RLS; Citus needs the tenant column in the same position;
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
// [rls.DefaultSetting] unless [Model.Setting] says otherwise, and admitted
// only in the transaction that set it (see [PolicyExpr]). A transaction
// without it sees no tenant rows and can write none.
//
// # Planning for a database that has some of it
//
// Generate's SQL is for a database with none of these objects. [Plan] takes
// an [Existing], the facts of a database (its keys, the plain foreign keys
// that composite ones replace, its row level security, policies and
// privileges, with Citus its constraints and distributed tables), and
// returns only what is missing, replacing what must be replaced.
// catalog.Plan reads the facts from a live database; Generate(m) is
// Plan(m, nil).
//
// # Names
//
// Table names may be schema-qualified ("billing.invoices"); the name is split
// at its first dot, and unqualified names are in [Model.Schema] ("public").
// The generated SQL quotes and schema-qualifies every name, so any name
// PostgreSQL accepts works and search_path does not matter. Names pgtenancy
// creates are <table>_<columns>_pgtenancy_key and
// <table>_<columns>_pgtenancy_fkey, cut to 63 bytes with a short hash when
// longer, so they stay unique and the server never truncates them.
//
// # The library's own objects
//
// [Library] returns the SQL of the pgtenancy schema's objects (the function
// pgtenancy.set_tenant, and for signed mode pgtenancy.tenant() with its key
// table), embedded here once: package migrations installs it with tern,
// [LibrarySQL] gives it as one script for other tools, and verify compares
// the installed functions with [SetTenantBody] and [SignedTenantBody].
//
// # Signed mode
//
// With [Model.Signed], the policies compare the tenant column with
// [SignedPolicyExpr], (SELECT pgtenancy.tenant()::type), which admits only
// a tenant whose HMAC verifies with a key of pgtenancy.signing_keys
// (package signing; docs/security.md). Not with Citus: [ErrSignedCitus].
package policy
