package policy

import (
	"fmt"
	"strings"
)

// stepKind says what a step of the migration does; its section of the SQL
// follows from it.
type stepKind int

const (
	stepCitusDetach     stepKind = iota // Citus: a foreign key dropped before distribution
	stepCitusKey                        // Citus: a key replaced by one with the tenant column
	stepCitusDistribute                 // Citus: create_distributed_table or create_reference_table
	stepCitusReattach                   // Citus: a foreign key re-created after distribution
	stepKey                             // a unique key that composite foreign keys reference
	stepFK                              // a composite foreign key
	stepEnable                          // ENABLE ROW LEVEL SECURITY
	stepForce                           // FORCE ROW LEVEL SECURITY
	stepPolicy                          // one of the two pgtenancy policies
	stepGrant                           // the app role's privileges on a tenant table
	stepRevoke                          // the privileges revoked on a tenant table
	stepSelect                          // SELECT on a global table
	stepSequences                       // the privileges on tenant tables' sequences
	stepCitusPolicyDrop                 // Citus, Plan only: a policy Citus cannot distribute, dropped first
	stepPlainFKDrop                     // without Citus: a plain foreign key that a composite one replaces
	stepDefault                         // the tenant column's default
	stepPolicyDrop                      // Plan only: a pgtenancy policy the table should not have
	stepCitusDefault                    // Citus: the tenant column's default, before distribution
)

// step is one statement of Up and the one of Down that undoes it (""
// when Down leaves it alone), with the object it acts on.
type step struct {
	kind     stepKind
	table    qname  // zero for stepSequences
	policy   string // the policy's name, for stepPolicy
	name     string // the constraint's name, for stepPlainFKDrop
	up, down string

	// For the Citus steps on a constraint: the referenced table of a
	// foreign key, and whether the constraint is replaced for good (not
	// re-created after distribution).
	ref      qname
	replaced bool
}

// sections are the comment lines of Up and Down above each section's
// statements, in Up's order.
var sections = [...]struct{ up, down string }{
	{
		up:   "Citus: policies that Citus cannot distribute (with a subquery), dropped before distribution and created again below.",
		down: "Citus: the policies as they were before distribution.",
	},
	{
		up:   "Citus: foreign keys between the model's tables, dropped while the tables are distributed (re-created below, or replaced by composite keys).",
		down: "Citus: foreign keys as they were before distribution.",
	},
	{
		up:   "Citus: keys that include the tenant column, as Citus requires of distributed tables.",
		down: "Citus: keys as they were before distribution.",
	},
	{
		up:   "Citus: tenant column defaults, set before distribution (Citus refuses to alter a distribution column): an INSERT that does not name the tenant takes the transaction's (the policies still check it).",
		down: "Citus: tenant column defaults.",
	},
	{
		up:   "Citus: tenant tables distributed by their tenant column, co-located with the root table; global tables as reference tables.",
		down: "Citus: tables back on the coordinator, with their rows.",
	},
	{
		up:   "Citus: foreign keys that Citus accepts, re-created.",
		down: "Citus: foreign keys re-created after distribution.",
	},
	{
		up:   "Unique keys that the composite foreign keys reference.",
		down: "Unique keys that the composite foreign keys referenced.",
	},
	{
		up:   "Composite foreign keys, the tenant column first on both sides.",
		down: "Composite foreign keys.",
	},
	{
		up:   "Plain foreign keys that the composite ones replace: checked first, their violations would tell a writer whether a key exists in another tenant.",
		down: "Plain foreign keys, as they were.",
	},
	{
		up:   "Tenant column defaults: an INSERT that does not name the tenant takes the transaction's (the policies still check it).",
		down: "Tenant column defaults.",
	},
	{
		up:   "Row level security, enforced for the table owner too.",
		down: "Row level security.",
	},
	{
		up:   "Tenant isolation: the permissive policy admits the current tenant's rows; the restrictive one keeps any other policy from admitting more.",
		down: "Tenant isolation policies.",
	},
	{
		up:   "Privileges of the application role.",
		down: "Privileges of the application role (what Up revoked is not granted back).",
	},
}

// section returns the index in sections of the steps of kind k.
func (k stepKind) section() int {
	switch k {
	case stepCitusPolicyDrop:
		return 0
	case stepCitusDetach, stepCitusKey:
		return int(k) + 1
	case stepCitusDefault:
		return 3
	case stepCitusDistribute, stepCitusReattach:
		return int(k) + 2
	case stepKey:
		return 6
	case stepFK:
		return 7
	case stepPlainFKDrop:
		return 8
	case stepDefault:
		return 9
	case stepEnable, stepForce:
		return 10
	case stepPolicy, stepPolicyDrop:
		return 11
	default:
		return 12
	}
}

// render writes the steps as the migration's SQL: a header, then Up with
// each non-empty section in order and its steps in the order given, and
// Down with the sections and their steps reversed.
func (p *spec) render(steps []step) *Migration {
	var bySection [len(sections)][]step
	for _, st := range steps {
		i := st.kind.section()
		bySection[i] = append(bySection[i], st)
	}
	header := fmt.Sprintf("-- Generated by pgtenancy. Tenant key: %s; setting: %s.\n", p.key, p.setting)
	if p.signed {
		header += "-- Signed: the policies admit only a tenant whose signature pgtenancy.tenant() verifies (docs/security.md).\n"
	}
	var up, down strings.Builder
	up.WriteString(header)
	up.WriteString(p.citusPrologue())
	for i, ss := range bySection {
		if len(ss) == 0 {
			continue
		}
		fmt.Fprintf(&up, "\n-- %s\n", sections[i].up)
		for _, st := range ss {
			up.WriteString(st.up)
			up.WriteByte('\n')
		}
	}
	down.WriteString(header)
	down.WriteString(p.citusPrologue())
	for i := len(bySection) - 1; i >= 0; i-- {
		ss := bySection[i]
		if len(ss) == 0 {
			continue
		}
		fmt.Fprintf(&down, "\n-- %s\n", sections[i].down)
		for j := len(ss) - 1; j >= 0; j-- {
			if d := ss[j].down; d != "" {
				down.WriteString(d)
				down.WriteByte('\n')
			}
		}
	}
	return &Migration{Up: up.String(), Down: down.String()}
}
