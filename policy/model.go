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
	// The application role may read them.
	Global []string
	// WritableGlobal lists global tables that the application role may
	// write as well as read (SELECT, INSERT, UPDATE, DELETE, and USAGE on
	// their sequences), such as users that every tenant's sign-in updates.
	// A table listed here is a global table whether or not Global lists it
	// too. Read-only is the default: list here only what the application
	// must write, since no policy limits those writes to a tenant.
	WritableGlobal []string
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
	// SharedRows makes the rows whose tenant column is NULL shared: every
	// tenant reads them, and no tenant can insert, change or delete them
	// through the application role (write them through package admin). The
	// table gets three more policies; see [Generate]. Without it, such rows
	// are visible to no tenant. Not for the root table, nor with Citus,
	// which refuses NULL in a distribution column.
	SharedRows bool
	// TenantType is the type of this table's tenant column when it is
	// another integer type than [Model.KeyType]: a bigint account_id
	// beside an integer accounts.id, as Rails applications have whose
	// newer tables got bigint references. The policies and the column
	// default cast the tenant setting to it, and composite foreign keys
	// pair the columns all the same (PostgreSQL compares the integer
	// types with each other). Zero means [Model.KeyType]. Only integer
	// types mix, and not with Citus (co-location needs one type).
	TenantType rls.KeyType
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
	// Deferrable and InitiallyDeferred make the composite key DEFERRABLE
	// (INITIALLY DEFERRED), as Django creates every foreign key, so that
	// rows that reference each other can be inserted in any order within
	// a transaction. [Plan] sets them when the foreign key it replaces has
	// them, whatever the model says: a composite key keeps the
	// deferrability of the key it replaces.
	Deferrable, InitiallyDeferred bool
}

// Migration is the SQL that [Generate] and [Plan] return. Up and Down are
// each meant to run in one transaction (tern runs every migration in one);
// Down undoes Up statement by statement, in reverse order.
type Migration struct {
	Up   string
	Down string
	// NoTransaction reports SQL that must not run inside a transaction
	// block, one statement at a time (CREATE INDEX CONCURRENTLY, a DO
	// block that commits batch by batch): the migrations of [Prepare]
	// that build indexes and fill columns. Generate and Plan never set
	// it. package migrations writes it for tern with its disable-tx
	// comment.
	NoTransaction bool
}

// IsEmpty reports whether the migration has nothing to do.
func (m *Migration) IsEmpty() bool { return m == nil || m.Up == "" }
