// Package snapshot reads what pgtenancy needs to know about a live
// database, in one transaction, into one [Snapshot]: the tables with their
// columns, constraints, indexes, policies, row level security and the
// application role's privileges; views, SECURITY DEFINER functions, the
// library function; Citus's metadata; and, with [Options.Copy], how each
// column's values travel between databases. The catalog, verify and
// lifecycle packages work on it; nothing else reads the catalog.
//
// [Read] sends its queries as one batch (one round trip) inside a
// transaction of the caller's; [Snapshot.Expect] adds what depends on the
// tenant tables found (the server's rendering of the expected policies,
// Citus's shards) in one more.
package snapshot

import (
	"cmp"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// QName is a schema-qualified name.
type QName struct{ Schema, Name string }

// SQL returns the quoted, qualified name.
func (q QName) SQL() string { return sqlquote.Qualified(q.Schema, q.Name) }

func (q QName) String() string { return q.Schema + "." + q.Name }

// Compare orders names by schema, then name.
func (q QName) Compare(o QName) int {
	return cmp.Or(strings.Compare(q.Schema, o.Schema), strings.Compare(q.Name, o.Name))
}

// Snapshot is what [Read] found.
type Snapshot struct {
	// AppRole is the application role whose privileges were read, when
	// it exists; "" otherwise.
	AppRole string
	// Role describes the application role asked for; nil when none was.
	Role *Role
	// Citus reports that the citus extension is installed.
	Citus bool
	// Tables are the ordinary and partitioned tables of the schemas read,
	// partitions included, by name.
	Tables []*Table
	byOID  map[uint32]*Table
	byName map[QName]*Table
	// Views are the views and materialized views of all user schemas that
	// read tables of Tables, directly or through other views.
	Views []View
	// Funcs are the SECURITY DEFINER functions that the application role
	// (or, without one, anyone) can execute, outside extensions.
	Funcs []Func
	// Library is pgtenancy.set_tenant(text); nil when missing.
	Library *Library
	// Sequences are the sequences that inserts into Tables use: owned by
	// serial columns, named by column defaults or by trigger functions;
	// one entry per sequence and table, by name.
	Sequences []Sequence
	// Admin is the admin role of [Options.AdminRole]; nil without one.
	Admin *AdminRole
	// RoleSettings are the pg_db_role_setting entries that apply to the
	// application role in the current database, and the server's value of
	// citus.propagate_set_commands.
	RoleSettings []RoleSetting
	// Audit is what [Options.Audit] asks for; nil without it.
	Audit *Audit

	// Set by Expect: the server's text of each expression pgtenancy writes
	// for a tenant column (policy expressions, the column default), by
	// column and pgtenancy's text.
	rendered map[ColumnKey]map[string]string
	setting  string
	// CitusTables are the tenant tables (by OID) in Citus's metadata.
	CitusTables map[uint32]CitusTable
	// Shards are the shards of those tables, as run_command_on_shards saw
	// them.
	Shards map[uint32][]Shard
	// CitusNode is the Citus node the session is on.
	CitusNode CitusNode
}

// CitusNode is the Citus node a session is on, from pg_dist_local_group
// and pg_dist_node.
type CitusNode struct {
	// Group is its group id: 0 for the coordinator.
	Group int32
	// HasShards reports that it holds shards of the tenant tables, or is
	// set to get them (shouldhaveshards).
	HasShards bool
	// Host and Port are its address in pg_dist_node; "" and 0 when it is
	// not listed there.
	Host string
	Port int32
}

// Table returns the table of an OID, or nil.
func (s *Snapshot) Table(oid uint32) *Table { return s.byOID[oid] }

// Lookup returns the table of a name, or nil.
func (s *Snapshot) Lookup(q QName) *Table { return s.byName[q] }

// Role is the application role.
type Role struct {
	Name       string
	Exists     bool
	Super      bool
	Bypass     bool
	CreateRole bool
	// CanCreate reports that it can create objects in some user schema
	// (and so tables whose foreign keys probe other tables).
	CanCreate bool
	// CanBecome lists the superuser or BYPASSRLS roles it is a member of.
	CanBecome []string
	// Member lists every role it is a member of (itself aside): the roles
	// it can SET ROLE to. Members lists the roles that are members of it:
	// roles that act with its rights under their own names.
	Member, Members []string
	// DefinerOwners are the owners of SECURITY DEFINER functions outside
	// the system schemas, whatever may execute them: code that the
	// application role may reach (directly, through other such functions,
	// triggers, aggregates) runs as them.
	DefinerOwners []string
}

// Table is one ordinary or partitioned table.
type Table struct {
	OID         uint32
	Name        QName
	Partitioned bool   // relkind p
	Partition   bool   // a partition of another table
	PartRoot    uint32 // the root of its partition tree, for a partition
	RLS, Force  bool
	Owner       string
	// AppOwns reports that the application role owns the table or is a
	// member of its owner.
	AppOwns bool
	// OwnerOID is the owner's OID.
	OwnerOID uint32
	// Extension reports that the table belongs to an extension.
	Extension bool
	// Parents are the tables it inherits from, directly: its partitioned
	// table for a partition, its parents for a table created with
	// INHERITS.
	Parents []uint32
	// ACL is the table's access control list (the default one, when it
	// has none), one entry per grantee and privilege.
	ACL []ACLItem
	// AppSchemaUsage reports that the application role can use the
	// table's schema (true without one).
	AppSchemaUsage bool
	// Privs are the application role's privileges on the whole table;
	// ColPrivs those of SELECT, INSERT, UPDATE, REFERENCES it holds on the
	// table or some column.
	Privs, ColPrivs []string
	Columns         []Column // by position
	Constraints     []Constraint
	Indexes         []Index
	Policies        []Policy
	// Checks are the table's CHECK constraints; InvalidIndexes the names
	// of its indexes that a failed CREATE INDEX CONCURRENTLY left invalid.
	Checks         []Check
	InvalidIndexes []string
}

// Check is a CHECK constraint.
type Check struct {
	Name      string
	Validated bool
}

// Column returns the column of a name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Has reports whether the application role holds priv on the whole table.
func (t *Table) Has(priv string) bool { return slices.Contains(t.Privs, priv) }

// HasSome reports whether it holds priv on the table or on some column.
func (t *Table) HasSome(priv string) bool { return t.Has(priv) || slices.Contains(t.ColPrivs, priv) }

// Policy returns the policy of a name, or nil.
func (t *Table) Policy(name string) *Policy {
	for i := range t.Policies {
		if t.Policies[i].Name == name {
			return &t.Policies[i]
		}
	}
	return nil
}

// Column is one column of a table.
type Column struct {
	Num  int16 // attnum
	Name string
	// Type is the type as format_type prints it, with its modifier:
	// "bigint", "character varying(20)".
	Type    string
	NotNull bool
	// Default is the column's default as pg_get_expr prints it; "" when
	// it has none.
	Default string
	// Copy is read with [Options.Copy]; nil otherwise.
	Copy *CopyColumn
}

// Constraint is a primary key, unique constraint or foreign key, not
// inherited from a partitioned parent.
type Constraint struct {
	Name string
	// Type is 'p', 'u' or 'f'.
	Type    byte
	Columns []string
	// For a foreign key: the referenced table and columns.
	Ref     uint32
	RefName QName
	RefCols []string
	// OnDelete and OnUpdate are "" (NO ACTION), RESTRICT, CASCADE, SET
	// NULL or SET DEFAULT.
	OnDelete, OnUpdate string
	MatchFull          bool
	Deferrable         bool
	Deferred           bool // INITIALLY DEFERRED
	Validated          bool
	// SetColumns reports a SET NULL or SET DEFAULT action with a column
	// list.
	SetColumns bool
	// Definition is pg_get_constraintdef's text, read with an empty
	// search_path so that every name in it is schema-qualified. With
	// [Options.Audit], only for the constraints [Want.Constraints] names.
	Definition string
	// OID is the constraint's OID.
	OID uint32
	// CheckTrigger is, for a foreign key, the name of the trigger that
	// checks inserted rows: PostgreSQL fires the triggers of an event in
	// name order, so it tells which of two keys is checked first.
	CheckTrigger string
}

// Index is one index of a table.
type Index struct {
	Name       string
	Unique     bool
	Primary    bool
	Constraint string   // the constraint it implements, or ""
	Columns    []string // key columns; "" for an expression
	Partial    bool
	// OID is the index's OID.
	OID uint32
	// Definition is pg_get_indexdef's text, and KeyDefs its key columns
	// and expressions one by one, for the indexes [Want.Indexes] names.
	Definition string
	KeyDefs    []string
	// Method is the access method, such as btree.
	Method string
}

// Policy is one row level security policy.
type Policy struct {
	Name       string
	Permissive bool
	// Cmd is pg_policy.polcmd: '*' (ALL), 'r', 'a', 'w' or 'd'.
	Cmd string
	// Roles are the role names; "public" for PUBLIC.
	Roles []string
	// Using and Check are the expressions as pg_get_expr prints them; ""
	// when absent. With [Options.Audit], only for the policies
	// [Want.Policies] names.
	Using, Check string
	// OID is the policy's OID.
	OID uint32
	// DepColumns and DepTypes are the table's columns that the policy
	// depends on, with their types.
	DepColumns, DepTypes []string
	// RoleOIDs are the roles' OIDs; 0 for PUBLIC.
	RoleOIDs []uint32
	// UsingTree and CheckTree are the expressions as the server stores
	// them (pg_node_tree's text; see package nodetree), read with
	// [Options.Audit]; "" when absent.
	UsingTree, CheckTree string
}

// CommandNames maps pg_policy.polcmd to the command's name.
var CommandNames = map[string]string{"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}

// View is a view or materialized view.
type View struct {
	OID       uint32
	Name      QName
	Matview   bool
	Options   []string
	AppSelect bool     // the application role (without one: anyone) can read it
	Reads     []uint32 // tables of the snapshot it reads, directly or through views
	OwnerOID  uint32
	Owner     string
}

// Func is a SECURITY DEFINER function.
type Func struct {
	OID       uint32
	Signature string
	Owner     string
	Source    string
	Deps      []uint32 // relations it depends on
	// Config is pg_proc.proconfig: its SET clauses, as name=value.
	Config []string
	// Trigger reports that it returns trigger or event_trigger: no role
	// can call it, it runs only as a trigger.
	Trigger bool
}

// Library is the installed pgtenancy.set_tenant(text).
type Library struct {
	Source   string
	SecDef   bool
	Language string
	CanExec  bool // the application role can execute it (and use its schema)
}

// Sequence is a sequence that inserts into a table use.
type Sequence struct {
	// Name is quoted and schema-qualified.
	Name string
	// Table is the OID of the table whose serial column owns it, whose
	// column default or trigger function names it.
	Table uint32
	// AppUsage reports that the application role has USAGE on it.
	AppUsage bool
	// PrefixSchema and Prefix: a trigger names the sequence by a prefix
	// and a value (nextval('seq_' || NEW.account_id)), one sequence per
	// tenant; its name differs between databases. Empty for a sequence
	// named literally.
	PrefixSchema, Prefix string
}

// RoleSetting is one configuration entry of pg_db_role_setting for the
// application role or the database (for all roles or databases when
// PerRole or PerDatabase is false), or, with Default, the server's value of
// citus.propagate_set_commands.
type RoleSetting struct {
	PerDatabase, PerRole, Default bool
	Name, Value                   string
	// Role is the role's name, for [Audit.CustomSettings]; "" for all
	// roles.
	Role string
}

// CitusTable is a table's row in pg_dist_partition.
type CitusTable struct {
	Method     string // partmethod: h(ash), n(one), a(ppend), r(ange)
	ReplModel  string // repmodel: t for reference tables
	Column     string // distribution column, "" when none
	Colocation uint32
}

// Shard is one shard of a Citus table, as a command run on it saw it.
type Shard struct {
	ID       int64
	OK       bool   // the command ran and printed what was expected
	Result   string // its output, or the error
	RLS      bool
	Force    bool
	Policies []ShardPolicy
}

// ShardPolicy is one policy of a shard.
type ShardPolicy struct {
	Name, Permissive, Cmd, Using, Check string
}

// SplitName splits a model's table name at its first dot; an unqualified
// name is in schema def.
func SplitName(def, name string) QName {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return QName{Schema: name[:i], Name: name[i+1:]}
	}
	return QName{Schema: def, Name: name}
}

// CheckIdent returns why s cannot name a table, column or role, or "".
func CheckIdent(s string) string {
	switch {
	case s == "":
		return "empty name"
	case len(s) > 63:
		return "name longer than 63 bytes"
	case strings.IndexByte(s, 0) >= 0:
		return "name contains a NUL byte"
	}
	return ""
}
