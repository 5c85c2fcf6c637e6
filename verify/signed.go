package verify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/nodetree"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/signing"
)

// The findings of signed mode (docs/security.md), reported when the model
// is signed (policy.Model.Signed) or a tenant policy calls
// pgtenancy.tenant().
const (
	// CodeSignedMissing: signed mode is in use but pgtenancy.tenant() or
	// the key table is not installed.
	CodeSignedMissing Code = "signed_missing"
	// CodeSignedAltered: pgtenancy.tenant() is not what pgtenancy
	// installs: its body, SECURITY DEFINER, its pinned search_path,
	// STABLE or its language differ.
	CodeSignedAltered Code = "signed_altered"
	// CodeSignedOwner: the application role owns (or can become the owner
	// of) pgtenancy.tenant(), the key table or schema pgtenancy, so it
	// could read the keys or replace the function; or the function and
	// the key table have different owners.
	CodeSignedOwner Code = "signed_owner"
	// CodeSignedKeyTable: the application role holds a privilege on the
	// key table, directly, through PUBLIC or a membership.
	CodeSignedKeyTable Code = "signed_key_table_privilege"
	// CodeSignedNotExec: the application role cannot execute
	// pgtenancy.tenant(): every tenant sees no rows.
	CodeSignedNotExec Code = "signed_not_executable"
)

// signedFunction is the signature of the function that verifies a signed
// tenant.
const signedFunction = "pgtenancy.tenant()"

// signedSQL reads signed mode's objects, as one row (no row when the
// function is missing); $1 is the application role, empty for none.
const signedSQL = `
SELECT p.prosrc, p.prosecdef, l.lanname::text, p.provolatile::text, coalesce(p.proconfig, '{}'::text[]),
    pg_catalog.pg_get_userbyid(p.proowner)::text,
    coalesce(pg_catalog.pg_has_role(r.app, p.proowner, 'MEMBER'), false),
    coalesce(pg_catalog.has_function_privilege(r.app, p.oid, 'EXECUTE')
             AND pg_catalog.has_schema_privilege(r.app, p.pronamespace, 'USAGE'), true),
    coalesce(pg_catalog.pg_has_role(r.app, n.nspowner, 'MEMBER'), false),
    k.oid IS NOT NULL,
    coalesce(pg_catalog.pg_get_userbyid(k.relowner)::text, ''),
    coalesce(pg_catalog.pg_has_role(r.app, k.relowner, 'MEMBER'), false),
    ARRAY(SELECT priv FROM pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS priv
          WHERE k.oid IS NOT NULL AND r.app IS NOT NULL AND pg_catalog.has_table_privilege(r.app, k.oid, priv))
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN (SELECT (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1::text) AS app) r
LEFT JOIN pg_catalog.pg_class k ON k.oid = pg_catalog.to_regclass('` + signing.KeyTable + `')
WHERE p.oid = pg_catalog.to_regprocedure('` + signedFunction + `')`

// signedState is what Run read of signed mode's objects.
type signedState struct {
	installed      bool // the function exists
	source         string
	secDef         bool
	language       string
	volatility     string
	config         []string
	owner          string
	ownerIsApp     bool
	canExec        bool
	schemaOwnerApp bool
	table          bool
	tableOwner     string
	tableOwnerApp  bool
	tablePrivs     []string
}

// readSigned reads signed mode's objects in tx.
func readSigned(ctx context.Context, tx pgx.Tx, appRole string) (*signedState, error) {
	s := &signedState{}
	err := tx.QueryRow(ctx, signedSQL, appRole).Scan(&s.source, &s.secDef, &s.language, &s.volatility, &s.config,
		&s.owner, &s.ownerIsApp, &s.canExec, &s.schemaOwnerApp, &s.table, &s.tableOwner, &s.tableOwnerApp, &s.tablePrivs)
	switch {
	case err == pgx.ErrNoRows:
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", signedFunction, err)
	}
	s.installed = true
	return s, nil
}

// signedInUse reports whether the checks of signed mode apply: the model
// is signed, or a tenant policy calls the function.
func (s *state) signedInUse() bool {
	if s.exp.model != nil && s.exp.model.Signed {
		return true
	}
	for _, t := range s.tenants {
		for i := range t.Policies {
			if s.callsSigned(&t.Policies[i]) {
				return true
			}
		}
	}
	return false
}

// callsSigned reports whether a policy calls pgtenancy.tenant(), by its
// texts or, when they were not read, its trees.
func (s *state) callsSigned(p *snapshot.Policy) bool {
	if strings.Contains(p.Using, signedFunction) || strings.Contains(p.Check, signedFunction) {
		return true
	}
	for _, text := range []string{p.UsingTree, p.CheckTree} {
		if text == "" || s.res == nil {
			continue
		}
		tree := s.res.tree(text)
		if !tree.ok {
			continue
		}
		found := false
		nodetree.Walk(tree.v, func(v nodetree.Value) bool {
			if found {
				return false
			}
			if v.Is("FUNCEXPR") {
				if f := s.res.fn(v); f != nil && f.Schema == policy.LibrarySchema && f.Name == "tenant" && f.NArgs == 0 {
					found = true
				}
			}
			return !found
		})
		if found {
			return true
		}
	}
	return false
}

// signedUnaltered reports whether pgtenancy.tenant() is installed with the
// body pgtenancy installs for the setting.
func (s *state) signedUnaltered() bool {
	if s.signed == nil || !s.signed.installed {
		return false
	}
	body, err := policy.SignedTenantBody(s.exp.setting)
	return err == nil && sameBody(s.signed.source, body)
}

// signedAsInstalled reports whether pgtenancy.tenant() has the body
// pgtenancy installs for the setting it reads, whichever that is: the
// library installed for another setting than verify's. Signed mode's
// checks (checkSigned) need it for verify's setting; this only keeps the
// library's own function out of the SECURITY DEFINER warning when signed
// mode is not in use.
func (s *state) signedAsInstalled() bool {
	if s.signed == nil || !s.signed.installed {
		return false
	}
	const prefix = "pg_catalog.current_setting('"
	i := strings.Index(s.signed.source, prefix)
	if i < 0 {
		return false
	}
	rest := s.signed.source[i+len(prefix):]
	j := strings.IndexByte(rest, '\'')
	if j < 0 {
		return false
	}
	body, err := policy.SignedTenantBody(rest[:j])
	return err == nil && sameBody(s.signed.source, body)
}

// signedTenantSettings returns the tenant setting when f is
// pgtenancy.tenant() as pgtenancy installs it for that setting, which
// yields the tenant of the setting once its signature verifies, and NULL
// otherwise: for the judge of policies, a getter of that setting. nil for
// any other function, and for an altered pgtenancy.tenant(), whose
// policies stay unrecognized (checkSigned reports it).
func (s *state) signedTenantSettings(f *snapshot.ExprFunc) []string {
	if f.Schema != policy.LibrarySchema || f.Name != "tenant" || f.NArgs != 0 || !s.signedUnaltered() {
		return nil
	}
	if body, err := policy.SignedTenantBody(s.exp.setting); err != nil || !sameBody(f.Source, body) {
		return nil
	}
	return []string{s.exp.setting}
}

func sameBody(a, b string) bool {
	return strings.Join(strings.Fields(a), " ") == strings.Join(strings.Fields(b), " ")
}

// checkSigned reports the findings of signed mode.
func (c *checker) checkSigned() {
	s := c.s.signed
	if s == nil || !c.s.signedInUse() {
		return
	}
	if !s.installed || !s.table {
		c.add(SeverityError, CodeSignedMissing, "function", signedFunction, "", "",
			"signed mode is in use but %s or %s is not installed (run pgtenancy install, or apply migrations.LibrarySQL): no tenant verifies, every tenant sees no rows",
			signedFunction, signing.KeyTable)
		return
	}
	body, _ := policy.SignedTenantBody(c.s.exp.setting)
	var diff []string
	if !c.s.signedUnaltered() {
		diff = append(diff, fmt.Sprintf("its body is not the one pgtenancy installs for setting %s", c.s.exp.setting))
	}
	if !s.secDef {
		diff = append(diff, "it is not SECURITY DEFINER (it cannot read the keys)")
	}
	if !slices.Equal(s.config, []string{"search_path=pg_catalog, pg_temp"}) {
		diff = append(diff, fmt.Sprintf("its settings are %v, not search_path pinned to pg_catalog, pg_temp", s.config))
	}
	if s.volatility != "s" {
		diff = append(diff, "it is not STABLE")
	}
	if s.language != "plpgsql" {
		diff = append(diff, "its language is "+s.language)
	}
	if len(diff) > 0 {
		c.add(SeverityError, CodeSignedAltered, "function", signedFunction, "",
			"CREATE OR REPLACE FUNCTION pgtenancy.tenant() RETURNS text\nLANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE\nSET search_path = pg_catalog, pg_temp\nAS $pgtenancy$"+body+"$pgtenancy$;",
			"the function that verifies signed tenants was altered: %s", strings.Join(diff, "; "))
	}
	if c.s.snap.AppRole == "" {
		return
	}
	var owners []string
	if s.ownerIsApp {
		owners = append(owners, fmt.Sprintf("%s (owned by %q)", signedFunction, s.owner))
	}
	if s.tableOwnerApp {
		owners = append(owners, fmt.Sprintf("%s (owned by %q)", signing.KeyTable, s.tableOwner))
	}
	if s.schemaOwnerApp {
		owners = append(owners, "schema pgtenancy")
	}
	if len(owners) > 0 {
		c.add(SeverityError, CodeSignedOwner, "function", signedFunction, "", "",
			"the application role owns, or can become the owner of, %s: it can read the keys or replace the function, and forge any tenant",
			strings.Join(owners, ", "))
	} else if s.owner != s.tableOwner {
		c.add(SeverityError, CodeSignedOwner, "function", signedFunction, "",
			fmt.Sprintf("ALTER FUNCTION pgtenancy.tenant() OWNER TO %q;", s.tableOwner),
			"%s is owned by %q and %s by %q: the function reads the keys as its owner", signedFunction, s.owner, signing.KeyTable, s.tableOwner)
	}
	if len(s.tablePrivs) > 0 {
		c.add(SeverityError, CodeSignedKeyTable, "table", signing.KeyTable, "",
			fmt.Sprintf("REVOKE ALL ON TABLE %s FROM PUBLIC, %s;", signing.KeyTable, c.role()),
			"the application role holds %s on the key table (directly, through PUBLIC or a membership): it can read or replace the keys and forge any tenant",
			strings.Join(s.tablePrivs, ", "))
	}
	if !s.canExec {
		c.add(SeverityError, CodeSignedNotExec, "function", signedFunction, "",
			fmt.Sprintf("GRANT USAGE ON SCHEMA pgtenancy TO %s;\nGRANT EXECUTE ON FUNCTION pgtenancy.tenant() TO %s;", c.role(), c.role()),
			"the application role cannot execute the function that verifies signed tenants: every tenant sees no rows")
	}
}

// signedPolicies reports whether pgtenancy's policies are expected in
// their signed form (policy.SignedPolicyExpr): the model is signed, or,
// without a model, signed mode is in use.
func (s *state) signedPolicies() bool {
	if s.exp.model != nil {
		return s.exp.model.Signed
	}
	return s.signed != nil && s.signed.installed && s.signedInUse()
}
