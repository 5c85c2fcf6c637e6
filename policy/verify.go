package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
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
	// CodeNoAppRole: no application role was given; role and privilege
	// checks were skipped.
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
	// CodePolicyMissing: the [IsolationPolicy] is missing.
	CodePolicyMissing Code = "policy_missing"
	// CodeGuardMissing: the [GuardPolicy] is missing.
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
)

// Finding is one problem that [Verify] or [CheckData] found.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     Code     `json:"code"`
	// Kind is the kind of Object: role, table, column, policy, constraint,
	// index, view, materialized view, function, shard or setting.
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

// Report is what [Verify] found. Findings are in a stable order: errors
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
// [*VerifyError] holding them, which matches [ErrVerifyFailed]. A pool can
// call it at startup and refuse to start.
func (r *Report) Err() error {
	if errs := r.Errors(); len(errs) > 0 {
		return &VerifyError{Findings: errs}
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

// ErrVerifyFailed matches every [*VerifyError] with errors.Is.
var ErrVerifyFailed = errors.New("policy: verification found errors")

// VerifyError is what [Report.Err] returns: the error findings of a report.
type VerifyError struct {
	Findings []Finding
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy: verification found %d error(s)", len(e.Findings))
	for i, f := range e.Findings {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Findings)-i)
			break
		}
		fmt.Fprintf(&b, "; %s %s: %s", f.Code, f.Object, f.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrVerifyFailed) true.
func (e *VerifyError) Is(target error) bool { return target == ErrVerifyFailed }

// TxQuerier is a [Querier] that can begin a transaction. *pgx.Conn,
// pgx.Tx, *pgxpool.Pool and *pgxpool.Conn satisfy it.
type TxQuerier interface {
	Querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// VerifyOptions tell [Verify] what to expect.
type VerifyOptions struct {
	// Model is the schema model the database should match. When nil, the
	// tenant tables are inferred: every table in Schemas that has
	// TenantColumn, row level security enabled, or a pgtenancy policy; its
	// tenant column is TenantColumn, or else the column its pgtenancy policy
	// reads, and its key type follows from the column's type.
	Model *Model
	// AppRole is the role the application connects as; Model.AppRole when
	// empty. Without either, the role and privilege checks are skipped and
	// the report says so ([CodeNoAppRole]).
	AppRole string
	// TenantColumn is the tenant column when there is no Model, such as
	// "store_id". With a Model it is one more name for the
	// [CodeTableNotInModel] check.
	TenantColumn string
	// Schemas are the schemas whose tables are checked when there is no
	// Model; ["public"] when empty. With a Model they are added to the
	// schemas of its tables for the [CodeTableNotInModel] check.
	Schemas []string
	// Setting is the setting the policies read when there is no Model;
	// [DefaultSetting] when empty.
	Setting string
}

// Verify inspects a live database for every hole that makes row level
// security inert for the tenant tables, and reports them as findings with a
// fix each (docs/verify.md lists them):
//
//   - the application role is a superuser, has BYPASSRLS (itself or through
//     a role it can become), or owns a tenant table (or can become its owner);
//   - a tenant table without RLS enabled, without FORCE, without the pgtenancy
//     policies, or whose policies differ from what [Generate] creates (the
//     expected expression is printed by the server itself, so the comparison
//     does not depend on its formatting);
//   - another permissive policy on a tenant table, which widens access;
//   - a table with the tenant column that the model leaves out, and a
//     partition of a tenant table the application role can reach directly;
//   - a foreign key between tenant tables without the tenant column, a
//     unique key without it, and no index leading with it;
//   - views that read tenant tables without security_invoker, materialized
//     views over them the application role can read, and SECURITY DEFINER
//     functions it can execute;
//   - TRUNCATE, REFERENCES or TRIGGER on tenant tables held by the
//     application role (through PUBLIC or a membership too);
//   - the library function pgtenancy.set_tenant missing, altered, or not
//     executable by the application role;
//   - with the citus extension: tenant tables not distributed by their tenant
//     column, not co-located, shards without RLS or the policies, and
//     citus.propagate_set_commands not 'local' for the application role.
//
// Verify reads the catalog in a few set-based queries, inside one
// transaction that it rolls back; to obtain the expected policy text it
// creates a temporary table there, so the role needs the TEMPORARY privilege
// on the database (PUBLIC has it by default), and Verify cannot run on a
// read-only standby. Any role can run it; the application role itself
// will do. It returns an error only when it could
// not run (a bad model, a failed query); what it finds is in the report.
func Verify(ctx context.Context, conn TxQuerier, opts VerifyOptions) (*Report, error) {
	exp, err := opts.expect()
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: verify: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	snap, err := loadSnapshot(ctx, tx, exp)
	if err != nil {
		return nil, err
	}
	r := &Report{Findings: append([]Finding{}, runChecks(snap)...), Tables: []string{}}
	for _, t := range snap.tenants {
		r.Tables = append(r.Tables, t.q.String())
	}
	r.sort()
	return r, nil
}

// Add adds findings to the report, such as those of [CheckData] through
// [CrossTenantRef.Finding], and keeps the report's order.
func (r *Report) Add(findings ...Finding) {
	r.Findings = append(r.Findings, findings...)
	r.sort()
}
