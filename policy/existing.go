package policy

// Existing is what a database already holds of a model's tables: the facts
// that [Plan] needs to write only what is missing, and to replace what the
// tenant keys or Citus need replaced. catalog.Plan reads it from a live
// database; tests may build one by hand.
//
// Every table is named as in the model. A model table missing from Tables
// has nothing in place: no row level security, no policies, no privileges.
type Existing struct {
	// Constraints are the primary keys, unique constraints and foreign keys
	// of the model's tables (tenant and global), as the catalog holds them.
	Constraints []Constraint
	// Tables are the model's tables that exist, with their row level
	// security, policies and the application role's privileges.
	Tables []TableState
	// Distributed lists the model's tables that are in Citus's metadata.
	Distributed []string
	// SerialSequences is the number of sequences that inserts into the
	// tenant tables and writable global tables use: owned by their serial
	// columns, named by their column defaults, or named by the trigger
	// functions on them; and SequencesWithoutUsage, quoted and
	// schema-qualified, those on which the application role lacks USAGE.
	SerialSequences       int
	SequencesWithoutUsage []string
	// SequencePatterns are the per-tenant sequences that trigger
	// functions name by a prefix and a value (nextval('seq_' ||
	// NEW.account_id)), some of which the application role lacks USAGE
	// on. Their names differ between databases, so Plan grants them by
	// pattern when the migration runs, not by name.
	SequencePatterns []SequencePattern
}

// SequencePattern is the sequences of Schema whose names start with
// Prefix.
type SequencePattern struct{ Schema, Prefix string }

// The constraint types of a [Constraint].
const (
	ConstraintPrimaryKey = "PRIMARY KEY"
	ConstraintUnique     = "UNIQUE"
	ConstraintForeignKey = "FOREIGN KEY"
)

// Constraint is a primary key, unique constraint or foreign key of a
// model's table, as the catalog holds it.
type Constraint struct {
	// Table is the table that has the constraint, as named in the model.
	Table string
	// Name is the constraint's name.
	Name string
	// Type is [ConstraintPrimaryKey], [ConstraintUnique] or
	// [ConstraintForeignKey].
	Type string
	// Columns are the constrained (for a foreign key, referencing) columns.
	Columns []string
	// RefTable and RefColumns are, for a foreign key, the referenced table
	// (as named in the model; schema.name for a table outside it) and
	// columns.
	RefTable   string
	RefColumns []string
	// OnDelete is a foreign key's ON DELETE action: "" (NO ACTION),
	// "RESTRICT", "CASCADE", "SET NULL" or "SET DEFAULT".
	OnDelete string
	// Replaceable reports a foreign key that a composite key can replace
	// as it is: no ON UPDATE action, MATCH FULL, NOT VALID or SET NULL/SET
	// DEFAULT column list. A DEFERRABLE one is replaceable: the composite
	// key keeps its deferrability.
	Replaceable bool
	// Deferrable and InitiallyDeferred report DEFERRABLE and INITIALLY
	// DEFERRED.
	Deferrable, InitiallyDeferred bool
	// Definition is the constraint's definition as pg_get_constraintdef
	// prints it with an empty search_path, such as "FOREIGN KEY
	// (product_id) REFERENCES public.products(id)". Plan copies it into
	// Down to re-create a constraint that Citus made it replace, so it must
	// start with Type and hold no semicolon.
	Definition string
}

// TableState is the state of one of a model's tables.
type TableState struct {
	// Table is the table, as named in the model.
	Table string
	// RLS and ForceRLS report ENABLE and FORCE ROW LEVEL SECURITY.
	RLS, ForceRLS bool
	// Policies are the table's row level security policies.
	Policies []PolicyState
	// Privileges are the table privileges the application role holds on
	// the whole table (directly, through PUBLIC or a membership): some of
	// SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES and TRIGGER.
	Privileges []string
	// TenantDefault is the default of a tenant table's tenant column as
	// pg_get_expr prints it, "" when it has none; TenantDefaultGenerated
	// reports that it is the one [Plan] sets ([TenantDefaultExpr]),
	// compared by the server's own rendering of both.
	TenantDefault          string
	TenantDefaultGenerated bool
}

// PolicyState is a row level security policy as the catalog holds it.
type PolicyState struct {
	Name       string
	Permissive bool
	// Command is ALL, SELECT, INSERT, UPDATE or DELETE.
	Command string
	// Roles are the roles the policy applies to; "public" for PUBLIC.
	Roles []string
	// Using and WithCheck are the expressions as pg_get_expr prints them;
	// "" when absent.
	Using, WithCheck string
	// Generated reports that the policy is the one [Plan] would create for
	// the model, compared by the server's own rendering of both.
	Generated bool
}

// tableState returns the state of table q, or nil.
func (e *Existing) tableState(schema string, q qname) *TableState {
	if e == nil {
		return nil
	}
	for i := range e.Tables {
		if splitName(schema, e.Tables[i].Table) == q {
			return &e.Tables[i]
		}
	}
	return nil
}
