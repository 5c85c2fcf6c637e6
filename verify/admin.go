package verify

import (
	"fmt"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// The admin role (Options.AdminRole) is the role for cross-tenant work
// that package admin connects as: it must bypass row level security (or
// the work sees no tenant rows and changes none, silently), and the
// application role must not be able to become it.

// The codes of the admin role's findings.
const (
	// CodeAdminRoleMissing: the admin role does not exist.
	CodeAdminRoleMissing Code = "admin_role_missing"
	// CodeAdminNoBypass: the admin role has neither BYPASSRLS nor
	// superuser: under FORCE ROW LEVEL SECURITY its work sees no tenant
	// rows and changes none, silently.
	CodeAdminNoBypass Code = "admin_role_no_bypassrls"
	// CodeAdminIsApp: the admin role is the application role, or the
	// application role is a member of it.
	CodeAdminIsApp Code = "admin_role_reachable"
)

// checkAdmin checks the admin role, when Options.AdminRole names one.
func (c *checker) checkAdmin() {
	a := c.s.snap.Admin
	if a == nil {
		return
	}
	role := sqlquote.Ident(a.Name)
	switch {
	case !a.Exists:
		c.add(SeverityError, CodeAdminRoleMissing, "role", a.Name, "",
			fmt.Sprintf("-- as a superuser\nCREATE ROLE %s LOGIN BYPASSRLS;", role),
			"the admin role does not exist")
		return
	case a.Name == c.s.exp.appRole:
		c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "", "",
			"the admin role is the application role: every request would bypass row level security")
		return
	}
	if !a.Bypass && !a.Super {
		c.add(SeverityError, CodeAdminNoBypass, "role", a.Name, "",
			fmt.Sprintf("-- as a superuser\nALTER ROLE %s BYPASSRLS;", role),
			"the admin role does not bypass row level security: with FORCE ROW LEVEL SECURITY its cross-tenant work sees no tenant rows and changes none, without an error")
	}
	// A member of a BYPASSRLS role is reported by the application role's
	// checks (CodeAppRoleBypassRLS); a member of an admin role without it
	// still gets its grants.
	if a.AppMember && !a.Bypass && !a.Super {
		c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "",
			fmt.Sprintf("REVOKE %s FROM %s;", role, c.role()),
			"the application role is a member of the admin role and can act as it")
	}
}
