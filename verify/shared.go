package verify

import (
	"fmt"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// Tables with shared rows (policy.Table.SharedRows): rows with a NULL
// tenant that every tenant reads and none writes. Their guard admits the
// shared rows in USING, and three more policies complete it (see
// policy.TablePolicies); checkShared checks those in place of the plain
// guard.

// CodeSharedPolicy: a policy of a table with shared rows is missing or
// differs from what pgtenancy generates: the shared rows may be invisible
// (the read policy), or writable by a tenant (the update and delete
// guards).
const CodeSharedPolicy Code = "shared_rows_policy"

// sharedTable reports whether t has shared rows: the model says so, or,
// without a model, t has the shared-rows read policy.
func (s *state) sharedTable(t *table) bool {
	if s.exp.model != nil {
		for _, mt := range s.exp.model.Tables {
			if mt.SharedRows && t.Name == snapshot.SplitName(s.exp.schema, mt.Name) {
				return true
			}
		}
		return false
	}
	return t.Policy(policy.SharedReadPolicy) != nil
}

// markShared marks the tenant tables with shared rows.
func (s *state) markShared() {
	for _, t := range s.tenants {
		t.shared = s.sharedTable(t)
	}
}

// checkShared checks the guard and the shared-rows policies of a table
// with shared rows, and reports whether the guard is there as generated.
func (c *checker) checkShared(t *table, colOK bool) bool {
	name, tbl := t.Name.String(), t.Name.SQL()
	guardOK := false
	var defs []policy.PolicyDef
	if colOK {
		defs = policy.TablePolicies(t.column, t.key, c.s.exp.setting, true, false)
		if c.s.signedPolicies() {
			defs = policy.SignedTablePolicies(t.column, t.key, true)
		}
	}
	for _, want := range []struct {
		name    string
		code    Code
		sev     Severity
		missing string
	}{
		{policy.GuardPolicy, CodeGuardMissing, SeverityWarning, "the restrictive tenant guard is missing: any other permissive policy widens access"},
		{policy.SharedReadPolicy, CodeSharedPolicy, SeverityWarning, "the shared-rows read policy is missing: no tenant sees the rows without a tenant"},
		{policy.SharedUpdateGuard, CodeSharedPolicy, SeverityWarning, "the shared-rows update guard is missing: another permissive policy FOR UPDATE could let a tenant change the shared rows"},
		{policy.SharedDeleteGuard, CodeSharedPolicy, SeverityWarning, "the shared-rows delete guard is missing: another permissive policy FOR DELETE could let a tenant delete the shared rows"},
	} {
		var def *policy.PolicyDef
		for i := range defs {
			if defs[i].Name == want.name {
				def = &defs[i]
			}
		}
		create := ""
		if def != nil {
			create = def.SQL(tbl)
		}
		p := t.Policy(want.name)
		if p == nil {
			c.add(want.sev, want.code, "policy", want.name, name, create, "%s", want.missing)
			continue
		}
		if def == nil {
			continue // the tenant column is wrong: reported already
		}
		if c.s.snap.PolicyIs(p, snapshot.ColumnKey{Name: t.column, Type: t.colType}, *def) {
			guardOK = guardOK || want.name == policy.GuardPolicy
			continue
		}
		code := want.code
		if want.name == policy.GuardPolicy {
			code = CodePolicyDrift
		}
		c.add(SeverityError, code, "policy", want.name, name,
			fmt.Sprintf("DROP POLICY %s ON %s;\n%s", sqlquote.Ident(want.name), tbl, create),
			"the policy differs from what pgtenancy generates for a table with shared rows: %s", describePolicy(def))
	}
	return guardOK
}

// describePolicy says what a pgtenancy policy should be, for a finding.
func describePolicy(d *policy.PolicyDef) string {
	kind := "RESTRICTIVE"
	if d.Permissive {
		kind = "PERMISSIVE"
	}
	parts := []string{fmt.Sprintf("want %s FOR %s TO PUBLIC USING (%s)", kind, d.Command, d.Using)}
	if d.Check != "" {
		parts = append(parts, fmt.Sprintf("WITH CHECK (%s)", d.Check))
	}
	return strings.Join(parts, " ")
}
