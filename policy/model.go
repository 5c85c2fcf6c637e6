package policy

import "github.com/pgtenancy/pgtenancy/rls"

// Model describes which tables hold tenant data and how they reference each
// other: what a user declares, or what catalog.Discover reads from a live
// database. [Generate] turns it into SQL for a database that has none of
// it; [Plan] takes what a database already has into account too.
//
// Table names may be schema-qualified ("billing.invoices"); unqualified
// names are in Schema.
type Model struct {
	// KeyType is the SQL type of the tenant key; every tenant column must
	// have this type.
	KeyType rls.KeyType
	// Schema is the schema of unqualified table names; "public" when empty.
	Schema string
	// Setting is the name of the setting that holds the current tenant;
	// [rls.DefaultSetting] when empty (see [rls.Setting]).
	Setting string
	// AppRole, when set, is granted SELECT, INSERT, UPDATE, DELETE on every
	// tenant table (and USAGE on their sequences), and has TRUNCATE,
	// REFERENCES and TRIGGER revoked.
	AppRole string
	// Tables are the tenant tables, the root tenant table included.
	Tables []Table
	// Global lists tables shared by all tenants (not tenant-scoped), such as
	// currencies. Tenant tables may reference them with plain foreign keys.
	Global []string
	// Citus makes [Generate] distribute the tables on a Citus cluster
	// before it turns on row level security: the tenant tables by their
	// tenant column, co-located with the root table, and the global tables
	// as reference tables. See [Generate] for the statements.
	Citus bool
	// Signed makes the policies admit the tenant of a signed setting only
	// (docs/security.md): they compare the tenant column with
	// (SELECT pgtenancy.tenant()::type), which verifies the setting's
	// HMAC in the database and yields NULL, so no rows and no writes, for
	// a setting that SQL, injected or not, set without the key. The pool
	// must sign (pool.Config.Signer), and the library must be installed
	// (migrations.Install) before the policies are created. Not with
	// Citus, which rejects subqueries in policies: [ErrSignedCitus].
	Signed bool
}

// Table is one tenant table.
type Table struct {
	// Name is the table name, optionally schema-qualified.
	Name string
	// TenantColumn is the column holding the tenant key. For the root tenant
	// table (such as stores) it is the table's own key column (such as id).
	TenantColumn string
	// Root marks the table whose rows are the tenants themselves.
	Root bool
	// ForeignKeys are references to other tenant tables. Each is generated as
	// a composite key (tenant_col, cols...) -> (tenant_col, refcols...).
	// References to global tables and to the root table through the tenant
	// column are plain and need no entry here.
	ForeignKeys []ForeignKey
}

// ForeignKey is a reference from one tenant table to another, without the
// tenant column, which pgtenancy adds in first position on both sides.
type ForeignKey struct {
	// Columns are the referencing columns, such as ["product_id"].
	Columns []string
	// RefTable is the referenced tenant table.
	RefTable string
	// RefColumns are the referenced columns, such as ["id"]; ["id"] when empty.
	RefColumns []string
	// OnDelete is an optional action: "", "NO ACTION", "RESTRICT",
	// "CASCADE", "SET NULL" or "SET DEFAULT". SET NULL and SET DEFAULT are
	// generated with a column list (PostgreSQL 15) so that the tenant column
	// is never changed.
	OnDelete string
}

// Migration is the SQL that [Generate] and [Plan] return. Up and Down are
// each meant to run in one transaction (tern runs every migration in one);
// Down undoes Up statement by statement, in reverse order.
type Migration struct {
	Up   string
	Down string
}

// IsEmpty reports whether the migration has nothing to do.
func (m *Migration) IsEmpty() bool { return m == nil || m.Up == "" }
