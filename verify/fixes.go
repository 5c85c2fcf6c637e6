package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/policy"
)

// fixSetting returns the setting to write into a policy that a fix
// creates: the one given or the model's, else the one plain setting the
// policies read, else pgtenancy's default when they read none; "" when
// they read several, or a JSON claim only.
func (s *state) fixSetting() string {
	if s.exp.settingGiven {
		return s.exp.setting
	}
	var plain []string
	for _, st := range s.settings {
		if !strings.Contains(st, "->>") && st != pseudoSetting {
			plain = append(plain, st)
		}
	}
	switch {
	case len(plain) == 1:
		return plain[0]
	case len(s.settings) == 0:
		return s.exp.setting
	}
	return ""
}

// tenantExpr returns SQL that limits t's rows to the tenant, for fixes:
// the expression of one of its own policies that compares its tenant
// column with the setting, else the comparison written from its tenant
// column and setting, else, for a table without a tenant column, a lookup
// through its foreign key of the tenant table it references (whose own
// policies then apply). "" when there is none.
func (s *state) tenantExpr(t *table) string {
	for _, p := range t.pols {
		for _, c := range []struct {
			v    *verdict
			text string
		}{{p.using, p.Using}, {p.check, p.Check}} {
			if c.v != nil && c.v.cls == clsTenant && len(c.v.cols) > 0 && len(c.v.immutable) == 0 && c.text != "" {
				return c.text
			}
		}
	}
	if t.column != "" && t.colType != "" {
		if setting := s.fixSetting(); setting != "" {
			if t.key != 0 {
				return policy.CitusPolicyExpr(t.column, t.key, setting)
			}
			// integer, varchar and the like: the column's own type, as
			// the server prints it (format_type quotes what needs it).
			return fmt.Sprintf("%s = NULLIF(current_setting(%s, true), '')::%s", sqlquote.Ident(t.column), sqlquote.Literal(setting), t.colType)
		}
	}
	if t.column == "" && t.fk != nil && t.parent != nil && len(t.fk.Columns) > 0 && len(t.fk.Columns) == len(t.fk.RefCols) {
		const alias = "pgtenancy_parent"
		var on []string
		for i, col := range t.fk.Columns {
			on = append(on, fmt.Sprintf("%s.%s = %s.%s", alias, sqlquote.Ident(t.fk.RefCols[i]), sqlquote.Ident(t.Name.Name), sqlquote.Ident(col)))
		}
		return fmt.Sprintf("EXISTS (SELECT FROM %s %s WHERE %s)", t.parent.Name.SQL(), alias, strings.Join(on, " AND "))
	}
	return ""
}

// fixPolicy returns SQL that makes a policy of t limit rows to the tenant:
// ALTER POLICY with the tenant expression in USING (when using) and WITH
// CHECK (when check), as its command allows; DROP POLICY when there is no
// tenant expression to write.
func (s *state) fixPolicy(t *table, p *polInfo, using, check bool) string {
	q := sqlquote.Ident(p.Name) + " ON " + t.Name.SQL()
	expr := s.tenantExpr(t)
	if expr == "" {
		return "DROP POLICY " + q + ";"
	}
	var parts []string
	if using && p.Cmd != "a" {
		parts = append(parts, "USING ("+expr+")")
	}
	if check && slices.Contains([]string{"*", "a", "w"}, p.Cmd) {
		parts = append(parts, "WITH CHECK ("+expr+")")
	}
	if len(parts) == 0 {
		return "DROP POLICY " + q + ";"
	}
	return "ALTER POLICY " + q + " " + strings.Join(parts, " ") + ";"
}
