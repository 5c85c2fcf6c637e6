package verify_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// sharedModel is the store with a notes table whose rows without a store
// are shared.
func sharedModel() *policy.Model {
	m := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	m.Tables = append(m.Tables, policy.Table{Name: "notes", TenantColumn: "store_id", SharedRows: true})
	return m
}

var sharedStore = &pgtenancytest.Template{
	Name: "verify_shared",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return setupIsolated(ctx, conn, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt)+`
CREATE TABLE notes (store_id bigint REFERENCES stores (id), id bigint PRIMARY KEY, body text NOT NULL);
CREATE INDEX ON notes (store_id);
INSERT INTO notes VALUES (NULL, 1, 'shared'), (1, 2, 'one');`, sharedModel())
	},
}

// TestVerifySharedRows: a table with shared rows, as generated, has no
// error, whether the model says so or verify infers it; broken shared-rows
// policies are reported.
func TestVerifySharedRows(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, sharedStore)
	notesPkey := findingKey{verify.SeverityWarning, verify.CodeKeyWithoutTenant, "notes_pkey"}
	r := mustVerify(t, db.AppConn(t), verify.Options{Model: sharedModel()})
	assert.ElementsMatch(t, append(storeWarnings, notesPkey), findingKeys(r))
	r = mustVerify(t, db.AppConn(t), verify.Options{TenantColumn: "store_id", AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}})
	assert.ElementsMatch(t, append(storeWarnings, notesPkey), findingKeys(r), "inferred from the shared-rows read policy")

	// A model that does not say so: the guard, which admits the shared
	// rows, drifted from the model's.
	r = mustVerify(t, db.AppConn(t), storeOpts())
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityWarning, verify.CodeTableNotInModel, "public.notes"})
	plain := sharedModel()
	plain.Tables[3].SharedRows = false
	r = mustVerify(t, db.AppConn(t), verify.Options{Model: plain})
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodePolicyDrift, policy.GuardPolicy})

	admin := db.AdminConn(t)
	mustExec(t, admin, `ALTER POLICY pgtenancy_shared_read ON notes USING (true);
DROP POLICY pgtenancy_shared_update_guard ON notes;
ALTER POLICY pgtenancy_tenant_guard ON notes USING (true)`)
	r = mustVerify(t, db.AppConn(t), verify.Options{Model: sharedModel()})
	got := findingKeys(r)
	for _, want := range []findingKey{
		{verify.SeverityError, verify.CodeSharedPolicy, policy.SharedReadPolicy},
		{verify.SeverityWarning, verify.CodeSharedPolicy, policy.SharedUpdateGuard},
		{verify.SeverityError, verify.CodePolicyDrift, policy.GuardPolicy},
	} {
		assert.Contains(t, got, want)
	}
	for _, f := range r.Findings {
		if f.Code == verify.CodeSharedPolicy && f.Object == policy.SharedUpdateGuard {
			assert.Contains(t, f.Fix, `CREATE POLICY "pgtenancy_shared_update_guard" ON "public"."notes" AS RESTRICTIVE FOR UPDATE TO PUBLIC`)
		}
	}
}

// TestVerifyAdminRole: the admin role must exist, bypass row level
// security, and be out of the application role's reach.
func TestVerifyAdminRole(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	good := newRole(t, db, "LOGIN BYPASSRLS")
	weak := newRole(t, db, "LOGIN")
	adminFindings := func(opts verify.Options) []findingKey {
		t.Helper()
		var out []findingKey
		for _, k := range findingKeys(mustVerify(t, db.AppConn(t), opts)) {
			if k.sev == verify.SeverityError {
				out = append(out, k)
			}
		}
		return out
	}
	opts := storeOpts()
	opts.AdminRole = good
	assert.Empty(t, adminFindings(opts))

	opts.AdminRole = "pgtenancy_no_such_admin"
	assert.Equal(t, []findingKey{{verify.SeverityError, verify.CodeAdminRoleMissing, "pgtenancy_no_such_admin"}}, adminFindings(opts))
	opts.AdminRole = pgtenancytest.AppRole
	assert.Equal(t, []findingKey{{verify.SeverityError, verify.CodeAdminIsApp, pgtenancytest.AppRole}}, adminFindings(opts))
	opts.AdminRole = weak
	assert.Equal(t, []findingKey{{verify.SeverityError, verify.CodeAdminNoBypass, weak}}, adminFindings(opts))

	// Memberships: granted to a role of this test as the application
	// role, never to the shared one, which other tests judge meanwhile
	// (roles are the cluster's, not the database's).
	app := newRole(t, db, "LOGIN")
	opts.Model.AppRole = app
	admin := db.AdminConn(t)
	mustExec(t, admin, "GRANT "+weak+" TO "+app)
	assert.Contains(t, adminFindings(opts), findingKey{verify.SeverityError, verify.CodeAdminIsApp, weak})
	mustExec(t, admin, "REVOKE "+weak+" FROM "+app+"; GRANT "+good+" TO "+app)
	opts.AdminRole = good
	assert.Contains(t, adminFindings(opts), findingKey{verify.SeverityError, verify.CodeAppRoleBypassRLS, app},
		"the application role can become the admin role")
	mustExec(t, admin, "REVOKE "+good+" FROM "+app)

	// Through another role: the fix revokes the application role's own
	// grant, which ends the membership.
	mid := newRole(t, db, "NOLOGIN")
	mustExec(t, admin, "GRANT "+weak+" TO "+mid+"; GRANT "+mid+" TO "+app)
	opts.AdminRole = weak
	var fix string
	for _, f := range mustVerify(t, db.AppConn(t), opts).Findings {
		if f.Code == verify.CodeAdminIsApp && f.Object == weak {
			fix = f.Fix
			assert.Contains(t, f.Message, `through "`+mid+`"`)
		}
	}
	assert.Equal(t, `REVOKE "`+mid+`" FROM "`+app+`";`, fix)
	mustExec(t, admin, fix)
	assert.NotContains(t, adminFindings(opts), findingKey{verify.SeverityError, verify.CodeAdminIsApp, weak}, "the fix ends the membership")

	_, err := verify.Run(t.Context(), db.AppConn(t), verify.Options{AdminRole: "pg_monitor"})
	require.ErrorIs(t, err, verify.ErrInvalidOptions)
}

// TestVerifyAdminReach: an application role that owns a trigger function
// (code that runs as whoever writes the table, the admin role included),
// or has CREATEROLE before PostgreSQL 16, can become the admin role.
func TestVerifyAdminReach(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	good := newRole(t, db, "LOGIN BYPASSRLS")
	reach := func(opts verify.Options) []string {
		t.Helper()
		var out []string
		for _, f := range mustVerify(t, db.AppConn(t), opts).Findings {
			if f.Code == verify.CodeAdminIsApp {
				out = append(out, f.Object)
			}
		}
		return out
	}
	opts := storeOpts()
	opts.AdminRole = good
	assert.Empty(t, reach(opts))

	// A role of this test as the application role: the shared one must
	// own nothing, other packages check it meanwhile.
	app := newRole(t, db, "LOGIN")
	opts.Model.AppRole = app
	assert.Empty(t, reach(opts))
	admin := db.AdminConn(t)
	mustExec(t, admin, `CREATE FUNCTION stamp_products() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER stamp_products BEFORE INSERT ON products FOR EACH ROW EXECUTE FUNCTION stamp_products();
ALTER FUNCTION stamp_products() OWNER TO `+app)
	assert.Equal(t, []string{"public.stamp_products"}, reach(opts))
	mustExec(t, admin, "ALTER FUNCTION stamp_products() OWNER TO "+pgtenancytest.OwnerRole)
	assert.Empty(t, reach(opts))

	var version int
	require.NoError(t, admin.QueryRow(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&version))
	creator := newRole(t, db, "LOGIN CREATEROLE")
	opts.Model.AppRole = creator
	if version < 160000 {
		assert.Equal(t, []string{good}, reach(opts), "CREATEROLE grants any role before PostgreSQL 16")
	} else {
		assert.Empty(t, reach(opts), "PostgreSQL 16: CREATEROLE grants only the roles it administers")
	}
}
