package policy

import "github.com/pgrls/pgrls/rls"

// DefaultSetting is the transaction setting that holds the current tenant.
const DefaultSetting = "app.current_tenant"

// Model describes which tables hold tenant data and how they reference each
// other. [Generate] turns it into SQL; [Discover] builds one from a live
// database.
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
	// [DefaultSetting] when empty. It must be a valid custom setting name
	// (prefix.name, lower-case letters, digits and underscores).
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
	// ExistingKeys are the column lists of the primary key and unique
	// constraints already on the table, as [Discover] and [Resolve] read
	// them from the catalog. [Generate] adds no UNIQUE (tenant column,
	// referenced columns...) key when one of these lists is exactly that,
	// in that order.
	ExistingKeys [][]string
}

// ForeignKey is a reference from one tenant table to another, without the
// tenant column, which pgrls adds in first position on both sides.
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
	// Exists reports that the composite key (tenant column first on both
	// sides) is already in the database, as [Discover] and [Resolve] find
	// it. [Generate] neither adds nor drops it.
	Exists bool
}
