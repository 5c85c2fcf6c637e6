package verify

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Severity says how bad a [Finding] is.
type Severity string

// The severities of findings.
const (
	// SeverityError marks a hole: some tenant's rows can be read or written
	// by another tenant, or the isolation is not what pgtenancy set up.
	SeverityError Severity = "error"
	// SeverityWarning marks a weakness that does not by itself expose rows
	// (a unique key that reveals that a row exists, a missing index).
	SeverityWarning Severity = "warning"
)

// Code identifies the kind of a [Finding]. Codes are stable: tools may match
// them. The table in docs/verify.md lists them all.
type Code string

// The codes of findings. docs/verify.md has a table of them with their
// severities and fixes.
const (
	// CodeNoAppRole: no application role was given; verify judged the
	// roles that hold privileges on the tables in its place.
	CodeNoAppRole Code = "no_app_role"
	// CodeAppRoleMissing: the application role does not exist.
	CodeAppRoleMissing Code = "app_role_missing"
	// CodeAppRoleSuperuser: the application role is a superuser.
	CodeAppRoleSuperuser Code = "app_role_superuser"
	// CodeAppRoleBypassRLS: the application role has BYPASSRLS, or can
	// become a role that has it or is a superuser.
	CodeAppRoleBypassRLS Code = "app_role_bypassrls"
	// CodeAppRoleOwnsTable: the application role owns a tenant table or
	// is a member of its owner.
	CodeAppRoleOwnsTable Code = "app_role_owns_table"
	// CodeTableMissing: a tenant table of the model does not exist.
	CodeTableMissing Code = "table_missing"
	// CodeTenantColumn: a tenant table's tenant column does not exist or
	// cannot be inferred.
	CodeTenantColumn Code = "tenant_column_missing"
	// CodeTenantColumnType: the tenant column's type is not the key type.
	CodeTenantColumnType Code = "tenant_column_type"
	// CodeRLSDisabled: a tenant table does not have row level security
	// enabled.
	CodeRLSDisabled Code = "rls_disabled"
	// CodeRLSNotForced: a tenant table does not force row level security,
	// so its owner bypasses it.
	CodeRLSNotForced Code = "rls_not_forced"
	// CodePolicyMissing: the [policy.IsolationPolicy] is missing.
	CodePolicyMissing Code = "policy_missing"
	// CodeGuardMissing: the [policy.GuardPolicy] is missing.
	CodeGuardMissing Code = "guard_missing"
	// CodePolicyDrift: a pgtenancy policy differs from the generated one.
	CodePolicyDrift Code = "policy_drift"
	// CodePermissivePolicy: another permissive policy on a tenant table
	// widens access.
	CodePermissivePolicy Code = "permissive_policy"
	// CodeTableNotInModel: a table with a tenant column is not in the
	// model.
	CodeTableNotInModel Code = "table_not_in_model"
	// CodePartitionExposed: the application role can query a partition of
	// a tenant table directly.
	CodePartitionExposed Code = "partition_exposed"
	// CodeFKWithoutTenant: a foreign key between tenant tables does not
	// pair their tenant columns.
	CodeFKWithoutTenant Code = "fk_without_tenant"
	// CodeFKBesideComposite: a plain foreign key left beside the composite
	// one; its violation reveals whether an id exists in another tenant.
	CodeFKBesideComposite Code = "fk_beside_composite"
	// CodeKeyWithoutTenant: a unique key of a tenant table does not include
	// the tenant column.
	CodeKeyWithoutTenant Code = "key_without_tenant"
	// CodeTenantNotIndexed: no index of a tenant table leads with the
	// tenant column.
	CodeTenantNotIndexed Code = "tenant_column_not_indexed"
	// CodeTruncateGranted: the application role holds TRUNCATE on a tenant
	// table.
	CodeTruncateGranted Code = "truncate_granted"
	// CodeReferencesGranted: the application role holds REFERENCES on a
	// tenant table or its columns.
	CodeReferencesGranted Code = "references_granted"
	// CodeTriggerGranted: the application role holds TRIGGER on a tenant
	// table.
	CodeTriggerGranted Code = "trigger_granted"
	// CodeViewNotInvoker: a view reads tenant tables without
	// security_invoker.
	CodeViewNotInvoker Code = "view_not_security_invoker"
	// CodeMatviewReadable: the application role can read a materialized
	// view over tenant tables.
	CodeMatviewReadable Code = "matview_readable"
	// CodeSecurityDefiner: the application role can execute a SECURITY
	// DEFINER function.
	CodeSecurityDefiner Code = "security_definer_function"
	// CodeLibraryMissing: pgtenancy.set_tenant is not installed.
	CodeLibraryMissing Code = "library_missing"
	// CodeLibraryAltered: pgtenancy.set_tenant is not what pgtenancy installs.
	CodeLibraryAltered Code = "library_altered"
	// CodeLibraryNotExec: the application role cannot execute
	// pgtenancy.set_tenant.
	CodeLibraryNotExec Code = "library_not_executable"
	// CodeCitusNotDistrib: with Citus, a tenant table is not distributed.
	CodeCitusNotDistrib Code = "citus_not_distributed"
	// CodeCitusDistColumn: with Citus, a tenant table is distributed by
	// another column than its tenant column.
	CodeCitusDistColumn Code = "citus_distribution_column"
	// CodeCitusNotColocated: with Citus, a tenant table is not co-located
	// with the root table.
	CodeCitusNotColocated Code = "citus_not_colocated"
	// CodeCitusShard: with Citus, shards of a tenant table lack the
	// coordinator's row level security or policies.
	CodeCitusShard Code = "citus_shard_unprotected"
	// CodeCitusPropagateSet: with Citus, citus.propagate_set_commands is
	// not 'local' for the application role.
	CodeCitusPropagateSet Code = "citus_propagate_set_commands"
	// CodeCrossTenantRef: rows reference another tenant's rows (from
	// [CheckData]).
	CodeCrossTenantRef Code = "cross_tenant_reference"
	// CodePolicyCheckOpen: a permissive policy lets INSERT or UPDATE
	// write rows for any tenant: no WITH CHECK limits new rows to the
	// tenant.
	CodePolicyCheckOpen Code = "policy_check_open"
	// CodeRestrictiveVacuous: a restrictive policy is always true, so it
	// restricts nothing.
	CodeRestrictiveVacuous Code = "restrictive_policy_vacuous"
	// CodePolicySharedRows: a permissive policy lets every tenant read
	// the rows whose tenant column is NULL.
	CodePolicySharedRows Code = "policy_shared_rows"
	// CodePolicyUnrecognized: the isolation of a table rests on a policy
	// whose expression verify cannot follow.
	CodePolicyUnrecognized Code = "policy_unrecognized"
	// CodeTenantGetterImmutable: a policy reads the tenant through an
	// IMMUTABLE function, which the planner may fold into a constant and
	// reuse for another tenant.
	CodeTenantGetterImmutable Code = "tenant_getter_immutable"
	// CodeTableUnclassified: a table the application role can read holds
	// no tenant data that verify can see and is not declared global.
	CodeTableUnclassified Code = "table_unclassified"
	// CodeNoTenantTables: no model and nothing to infer tenant tables
	// from.
	CodeNoTenantTables Code = "no_tenant_tables"
	// CodeAppRoleCreateRole: the application role has CREATEROLE.
	CodeAppRoleCreateRole Code = "app_role_createrole"
	// CodeTenantColumnNullable: a tenant column allows NULL.
	CodeTenantColumnNullable Code = "tenant_column_nullable"
	// CodeSequenceNotUsable: a default or trigger of a tenant table calls
	// nextval on a sequence the application role cannot use.
	CodeSequenceNotUsable Code = "sequence_not_usable"
	// CodeDefaultPrivileges: default privileges grant future tables or
	// sequences, in a schema with tenant tables, to PUBLIC or the
	// application role.
	CodeDefaultPrivileges Code = "default_privileges"
	// CodeSecurityDefinerPath: a SECURITY DEFINER function has no pinned
	// search_path.
	CodeSecurityDefinerPath Code = "security_definer_search_path"
	// CodeLeakproofFunction: a user-defined function is LEAKPROOF, so the
	// planner runs it before the policies.
	CodeLeakproofFunction Code = "leakproof_function"
	// CodeForeignTable: the application role can read a foreign table,
	// which has no row level security.
	CodeForeignTable Code = "foreign_table_readable"
	// CodeUserMapping: the application role can use a user mapping of a
	// foreign server.
	CodeUserMapping Code = "user_mapping_usable"
	// CodeLargeObjects: the application role can read large objects, which
	// have no row level security.
	CodeLargeObjects Code = "large_objects_readable"
	// CodeTenantSettingDefault: the tenant setting has a default for the
	// application role or the database, so a connection that sets no
	// tenant reads that tenant's rows.
	CodeTenantSettingDefault Code = "tenant_setting_default"
	// CodePolicyUnstamped: a pgtenancy policy on plain PostgreSQL is in the
	// older form without the transaction stamp (policy.CitusPolicyExpr's),
	// so a tenant left at session level on a pooled connection is still
	// live; generating the policies again replaces it.
	CodePolicyUnstamped Code = "policy_unstamped"
	// CodeCitusNodeHasShards: with Citus, the node verify is connected to
	// holds shards itself (a single-node cluster, a coordinator with
	// shouldhaveshards, a worker): there a tenant left at session level
	// reaches the shards, which the Citus policies cannot tell.
	CodeCitusNodeHasShards Code = "citus_node_has_shards"
)

// Finding is one problem that [Run] or [CheckData] found.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     Code     `json:"code"`
	// Kind is the kind of Object: role, table, column, policy, constraint,
	// index, view, materialized view, function, shard, setting, sequence,
	// default privileges, foreign table, user mapping or large object.
	Kind string `json:"kind"`
	// Object names what is wrong, schema-qualified where it applies:
	// "public.products", "public.products.store_id", the policy name, the
	// function signature.
	Object string `json:"object"`
	// Table is the tenant table the finding belongs to (schema.name), or
	// empty when it belongs to none (the role, a view, a function).
	Table string `json:"table,omitempty"`
	// Message says in one line what is wrong and why it matters.
	Message string `json:"message"`
	// Fix is SQL that fixes it, or empty when the fix is a decision only
	// people can make. Placeholders are in angle brackets.
	Fix string `json:"fix,omitempty"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s %s %s: %s", f.Severity, f.Code, f.Kind, f.Object, f.Message)
}

// Report is what [Run] found. Findings are in a stable order: errors
// first, then by table (findings about no table last), kind, object and
// code.
type Report struct {
	Findings []Finding `json:"findings"`
	// Tables are the tenant tables that were checked (schema.name), in
	// order.
	Tables []string `json:"tables"`
}

// HasErrors reports whether any finding is an error.
func (r *Report) HasErrors() bool {
	return slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Severity == SeverityError })
}

// Errors returns the findings that are errors.
func (r *Report) Errors() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

// Err returns nil when the report has no errors, and otherwise a
// [*FailedError] holding them, which matches [ErrFailed]. A service can
// call it at startup and refuse to start; see [Audit].
func (r *Report) Err() error {
	if errs := r.Errors(); len(errs) > 0 {
		return &FailedError{Findings: errs}
	}
	return nil
}

func (r *Report) sort() {
	slices.SortFunc(r.Findings, compareFindings)
	r.Findings = slices.Compact(r.Findings)
}

func compareFindings(a, b Finding) int {
	return cmp.Or(
		compareBool(a.Severity != SeverityError, b.Severity != SeverityError),
		compareBool(a.Table == "", b.Table == ""),
		strings.Compare(a.Table, b.Table),
		strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Object, b.Object),
		strings.Compare(string(a.Code), string(b.Code)),
		strings.Compare(a.Message, b.Message),
		strings.Compare(a.Fix, b.Fix),
	)
}

// ErrFailed matches every [*FailedError] with errors.Is.
var ErrFailed = errors.New("verify: the database has holes")

// FailedError is what [Report.Err] returns: the error findings of a report.
type FailedError struct {
	Findings []Finding
}

func (e *FailedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "verify: %d error(s)", len(e.Findings))
	for i, f := range e.Findings {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Findings)-i)
			break
		}
		fmt.Fprintf(&b, "; %s %s: %s", f.Code, f.Object, f.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrFailed) true.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

// Add adds findings to the report, such as those of [CheckData] through
// [CrossTenantRef.Finding], and keeps the report's order.
func (r *Report) Add(findings ...Finding) {
	r.Findings = append(r.Findings, findings...)
	r.sort()
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
