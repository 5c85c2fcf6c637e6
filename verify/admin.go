package verify

import (
	"fmt"
	"strings"

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
	// application role can become it: it is a member, holds ADMIN OPTION
	// on it, has CREATEROLE (before PostgreSQL 16, CREATEROLE grants any
	// role that is not a superuser), or owns trigger functions, whose
	// code runs as whoever writes the table, the admin role included.
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
		if len(a.AppVia) == 0 {
			c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "",
				fmt.Sprintf("REVOKE %s FROM %s;", role, c.role()),
				"the application role is a member of the admin role and can act as it")
		} else {
			// Indirect: the grant to revoke is the application role's
			// membership in the first role of the chain.
			via := make([]string, len(a.AppVia))
			for i, v := range a.AppVia {
				via[i] = sqlquote.Ident(v)
			}
			c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "",
				fmt.Sprintf("REVOKE %s FROM %s;", via[0], c.role()),
				"the application role is a member of the admin role through %s and can act as it", strings.Join(via, " -> "))
		}
	}
	if a.AppAdminOption && !a.AppMember {
		c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "",
			fmt.Sprintf("REVOKE ADMIN OPTION FOR %s FROM %s;", role, c.role()),
			"the application role holds ADMIN OPTION on the admin role: it can grant it to itself")
	}
	if a.AppCreateRole && a.ServerVersion < 160000 {
		c.add(SeverityError, CodeAdminIsApp, "role", a.Name, "",
			fmt.Sprintf("ALTER ROLE %s NOCREATEROLE;", c.role()),
			"the application role has CREATEROLE, which before PostgreSQL 16 lets it grant itself the admin role (any role but a superuser)")
	}
	for _, f := range a.AppTriggerFuncs {
		c.add(SeverityError, CodeAdminIsApp, "function", f, "",
			fmt.Sprintf("-- as a superuser\nALTER FUNCTION %s OWNER TO <the tables' owner>;", f),
			"the application role owns the trigger function %s: it can change code that runs with the rights of whoever writes the table, the admin role's cross-tenant work included", f)
	}
}
