package verify

import "slices"

// codeSummaries are the one-line summaries of the codes, for SARIF rules
// and tools; docs/verify.md has the full table.
var codeSummaries = map[Code]string{
	CodeNoAppRole:             "No application role was given: verify judged the roles that hold privileges on the tables in its place.",
	CodeAppRoleMissing:        "The application role does not exist.",
	CodeAppRoleSuperuser:      "The application role is a superuser.",
	CodeAppRoleBypassRLS:      "The application role has BYPASSRLS, or can become a role that has it or is a superuser.",
	CodeAppRoleOwnsTable:      "The application role owns a tenant table or is a member of its owner.",
	CodeTableMissing:          "A tenant table of the model does not exist.",
	CodeTenantColumn:          "A tenant table's tenant column does not exist or cannot be inferred.",
	CodeTenantColumnType:      "The tenant column's type is not the key type.",
	CodeRLSDisabled:           "A tenant table does not have row level security enabled.",
	CodeRLSNotForced:          "A tenant table does not force row level security, so its owner bypasses it.",
	CodePolicyMissing:         "The pgtenancy_tenant_isolation policy is missing.",
	CodeGuardMissing:          "The pgtenancy_tenant_guard policy is missing.",
	CodePolicyDrift:           "A pgtenancy policy differs from the generated one.",
	CodePermissivePolicy:      "Another permissive policy on a tenant table widens access.",
	CodeTableNotInModel:       "A table with a tenant column is not in the model.",
	CodePartitionExposed:      "The application role can query a partition of a tenant table directly.",
	CodeFKWithoutTenant:       "A foreign key between tenant tables does not pair their tenant columns.",
	CodeFKBesideComposite:     "A plain foreign key left beside the composite one; its violation reveals whether an id exists in another tenant.",
	CodeKeyWithoutTenant:      "A unique key of a tenant table does not include the tenant column.",
	CodeTenantNotIndexed:      "No index of a tenant table leads with the tenant column.",
	CodeTruncateGranted:       "The application role holds TRUNCATE on a tenant table.",
	CodeReferencesGranted:     "The application role holds REFERENCES on a tenant table or its columns.",
	CodeTriggerGranted:        "The application role holds TRIGGER on a tenant table.",
	CodeViewNotInvoker:        "A view reads tenant tables without security_invoker.",
	CodeMatviewReadable:       "The application role can read a materialized view over tenant tables.",
	CodeSecurityDefiner:       "The application role can execute a SECURITY DEFINER function.",
	CodeLibraryMissing:        "Pgtenancy.set_tenant is not installed.",
	CodeLibraryAltered:        "Pgtenancy.set_tenant is not what pgtenancy installs.",
	CodeLibraryNotExec:        "The application role cannot execute pgtenancy.set_tenant.",
	CodeCitusNotDistrib:       "With Citus, a tenant table is not distributed.",
	CodeCitusDistColumn:       "With Citus, a tenant table is distributed by another column than its tenant column.",
	CodeCitusNotColocated:     "With Citus, a tenant table is not co-located with the root table.",
	CodeCitusShard:            "With Citus, shards of a tenant table lack the coordinator's row level security or policies.",
	CodeCitusPropagateSet:     "With Citus, citus.propagate_set_commands is not 'local' for the application role.",
	CodeCrossTenantRef:        "Rows reference another tenant's rows (from CheckData).",
	CodePolicyCheckOpen:       "A permissive policy lets INSERT or UPDATE write rows for any tenant: no WITH CHECK limits new rows to the tenant.",
	CodeRestrictiveVacuous:    "A restrictive policy is always true, so it restricts nothing.",
	CodePolicySharedRows:      "A permissive policy lets every tenant read the rows whose tenant column is NULL.",
	CodePolicyUnrecognized:    "The isolation of a table rests on a policy whose expression verify cannot follow.",
	CodeTenantGetterImmutable: "A policy reads the tenant through an IMMUTABLE function, which the planner may fold into a constant and reuse for another tenant.",
	CodeTableUnclassified:     "A table the application role can read holds no tenant data that verify can see and is not declared global.",
	CodeNoTenantTables:        "No model and nothing to infer tenant tables from.",
	CodeAppRoleCreateRole:     "The application role has CREATEROLE.",
	CodeTenantColumnNullable:  "A tenant column allows NULL.",
	CodeSequenceNotUsable:     "A default or trigger of a tenant table calls nextval on a sequence the application role cannot use.",
	CodeDefaultPrivileges:     "Default privileges grant future tables or sequences, in a schema with tenant tables, to PUBLIC or the application role.",
	CodeSecurityDefinerPath:   "A SECURITY DEFINER function has no pinned search_path.",
	CodeLeakproofFunction:     "A user-defined function is LEAKPROOF, so the planner runs it before the policies.",
	CodeForeignTable:          "The application role can read a foreign table, which has no row level security.",
	CodeUserMapping:           "The application role can use a user mapping of a foreign server.",
	CodeLargeObjects:          "The application role can read large objects, which have no row level security.",
	CodeTenantSettingDefault:  "The tenant setting has a default for the application role or the database, so a connection that sets no tenant reads that tenant's rows.",
	CodePolicyUnstamped:       "A pgtenancy policy on PostgreSQL has the older form without the transaction stamp, so a tenant left at session level is still live.",
	CodeCitusNodeHasShards:    "With Citus, the node verify connects to holds shards itself, where a tenant left at session level reaches them.",
}

// Summary returns a one-line description of the code, or "" for a code
// this version does not know.
func (c Code) Summary() string { return codeSummaries[c] }

// Codes returns every code this version can report, sorted.
func Codes() []Code {
	out := make([]Code, 0, len(codeSummaries))
	for c := range codeSummaries {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
