package policy

import "github.com/pgtenancy/pgtenancy/rls"

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
	// Citus makes [Generate] distribute the tables on a Citus cluster
	// before it turns on row level security: the tenant tables by their
	// tenant column, co-located with the root table, and the global tables
	// as reference tables. See [Generate] for the statements and
	// [Model.Constraints] for what it needs to know about the tables.
	Citus bool
	// Constraints are constraints of the model's tables as they are in the
	// database, which [Resolve] and [Discover] fill. With Citus: the primary
	// keys and unique constraints of the tenant tables and the foreign keys
	// between the model's tables; Generate drops what Citus refuses and
	// restores it in Down. Without Citus: the plain foreign keys that the
	// model's composite keys replace (same columns, referenced table and
	// columns, without the tenant column; Discover and Resolve list only
	// those with the same ON DELETE action and no ON UPDATE action, MATCH
	// FULL, DEFERRABLE or NOT VALID); Generate drops them after creating
	// the composite keys, since PostgreSQL would check them first and their
	// violations would tell a writer whether a key exists in another
	// tenant, and restores them in Down from the fields (not Definition).
	Constraints []Constraint
}

// Constraint is a primary key, unique constraint or foreign key of a
// model's table, as the catalog holds it.
type Constraint struct {
	// Table is the table that has the constraint, as named in the model.
	Table string
	// Name is the constraint's name.
	Name string
	// Type is "PRIMARY KEY", "UNIQUE" or "FOREIGN KEY".
	Type string
	// Columns are the constrained (for a foreign key, referencing) columns.
	Columns []string
	// RefTable and RefColumns are, for a foreign key, the referenced table
	// (as named in the model) and columns.
	RefTable   string
	RefColumns []string
	// Definition is the constraint's definition as pg_get_constraintdef
	// prints it, such as "FOREIGN KEY (product_id) REFERENCES products(id)".
	// Generate copies it into Down to re-create the constraint, so it must
	// start with Type and hold no semicolon.
	Definition string
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
	// Exists reports that the composite key (tenant column first on both
	// sides) is already in the database, as [Discover] and [Resolve] find
	// it. [Generate] neither adds nor drops it.
	Exists bool
}
