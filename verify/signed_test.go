package verify_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

func signedModel() *policy.Model {
	m := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	m.Signed = true
	return m
}

// signedStore is cleanStore's schema with signed policies.
var signedStore = &pgtenancytest.Template{
	Name: "verify_signed",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return setupIsolated(ctx, conn, cleanDDL, signedModel())
	},
}

// TestVerifySigned: a signed database as generated has no findings, with
// the signed model, without a model, and under the unsigned model; a
// signed model takes unsigned policies for drift; each alteration of
// signed mode's objects is reported, and its fix clears it.
func TestVerifySigned(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedStore)
	owner := db.OwnerConn(t)
	signedOpts := verify.Options{Model: signedModel()}
	assert.Empty(t, mustVerify(t, owner, signedOpts).Findings)
	assert.Empty(t, mustVerify(t, db.AppConn(t), signedOpts).Findings)
	// Without a model (since issue 16, a readable table without tenant
	// data is a warning unless declared global): the signed policies are
	// judged tenant predicates by their meaning, as the stamped ones are.
	assert.Empty(t, mustVerify(t, owner, verify.Options{AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}}).Findings)
	r := mustVerify(t, owner, verify.Options{AppRole: pgtenancytest.AppRole})
	assert.Equal(t, []findingKey{{verify.SeverityWarning, verify.CodeTableUnclassified, "public.currencies"}}, findingKeys(r))
	assert.Equal(t, []string{"public.products", "public.purchases", "public.stores"}, r.Tables)
	// Signed policies are as right under an unsigned model (they admit
	// less, never more).
	assert.Empty(t, mustVerify(t, owner, storeOpts()).Findings)
	// But a signed model takes unsigned policies for drift.
	plain := pgtenancytest.NewDB(t, cleanStore)
	r = mustVerify(t, plain.OwnerConn(t), signedOpts)
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodePolicyDrift, policy.IsolationPolicy})
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodePolicyDrift, policy.GuardPolicy})

	for _, tc := range []struct {
		name        string
		break_, fix string
		want        []findingKey
	}{
		{
			"body replaced",
			"CREATE OR REPLACE FUNCTION pgtenancy.tenant() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$BEGIN RETURN pg_catalog.current_setting('app.current_tenant', true); END$$",
			"", // the finding's fix, below
			// Altered, it is one more SECURITY DEFINER function the
			// application role can execute.
			[]findingKey{
				{verify.SeverityError, verify.CodeSignedAltered, "pgtenancy.tenant()"},
				{verify.SeverityWarning, verify.CodeSecurityDefiner, "pgtenancy.tenant()"},
			},
		},
		{
			"search_path not pinned",
			"ALTER FUNCTION pgtenancy.tenant() RESET search_path",
			"ALTER FUNCTION pgtenancy.tenant() SET search_path = pg_catalog, pg_temp",
			[]findingKey{{verify.SeverityError, verify.CodeSignedAltered, "pgtenancy.tenant()"}},
		},
		{
			"security invoker",
			"ALTER FUNCTION pgtenancy.tenant() SECURITY INVOKER",
			"ALTER FUNCTION pgtenancy.tenant() SECURITY DEFINER",
			[]findingKey{{verify.SeverityError, verify.CodeSignedAltered, "pgtenancy.tenant()"}},
		},
		{
			"key table readable",
			"GRANT SELECT ON pgtenancy.signing_keys TO PUBLIC",
			"REVOKE ALL ON pgtenancy.signing_keys FROM PUBLIC",
			[]findingKey{{verify.SeverityError, verify.CodeSignedKeyTable, "pgtenancy.signing_keys"}},
		},
		{
			"key table writable by the app role",
			"GRANT UPDATE ON pgtenancy.signing_keys TO " + pgtenancytest.AppRole,
			"REVOKE ALL ON pgtenancy.signing_keys FROM " + pgtenancytest.AppRole,
			[]findingKey{{verify.SeverityError, verify.CodeSignedKeyTable, "pgtenancy.signing_keys"}},
		},
		{
			"not executable",
			"REVOKE EXECUTE ON FUNCTION pgtenancy.tenant() FROM PUBLIC",
			"GRANT EXECUTE ON FUNCTION pgtenancy.tenant() TO PUBLIC",
			[]findingKey{{verify.SeverityError, verify.CodeSignedNotExec, "pgtenancy.tenant()"}},
		},
		{
			"owned by the app role",
			"ALTER FUNCTION pgtenancy.tenant() OWNER TO " + pgtenancytest.AppRole,
			"ALTER FUNCTION pgtenancy.tenant() OWNER TO " + pgtenancytest.OwnerRole,
			[]findingKey{{verify.SeverityError, verify.CodeSignedOwner, "pgtenancy.tenant()"}},
		},
	} {
		mustExec(t, db.AdminConn(t), tc.break_)
		r := mustVerify(t, owner, signedOpts)
		assert.Equal(t, tc.want, findingKeys(r), "%s: %v", tc.name, r.Findings)
		fix := tc.fix
		if fix == "" {
			for _, f := range r.Findings {
				if f.Code == verify.CodeSignedAltered {
					fix = f.Fix
				}
			}
		}
		if assert.NotEmpty(t, fix) {
			mustExec(t, db.AdminConn(t), fix)
			assert.Empty(t, mustVerify(t, owner, signedOpts).Findings, tc.name)
		}
	}

	// The function dropped: signed mode's objects are missing.
	mustExec(t, db.AdminConn(t), "DROP FUNCTION pgtenancy.tenant() CASCADE")
	r = mustVerify(t, owner, signedOpts)
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodeSignedMissing, "pgtenancy.tenant()"})
}

// TestVerifySignedRawPolicy: in signed mode, a permissive policy that reads
// the tenant setting (pgtenancy's or another) without pgtenancy.tenant()'s
// signature check admits any tenant that SQL sets: an error, with or
// without a model.
func TestVerifySignedRawPolicy(t *testing.T) {
	t.Parallel()
	for _, setting := range []string{"app.current_tenant", "app.tenant"} {
		t.Run(setting, func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, signedStore)
			mustExec(t, db.AdminConn(t), "CREATE POLICY raw_read ON products USING (store_id = NULLIF(current_setting('"+setting+"', true), '')::bigint)")
			// pgtenancy's signed guard still holds every row to the tenant.
			r := mustVerify(t, db.OwnerConn(t), verify.Options{AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}})
			assert.Equal(t, []findingKey{{verify.SeverityWarning, verify.CodePermissivePolicy, "raw_read"}}, findingKeys(r))
			// Without it, the raw read is the hole.
			mustExec(t, db.AdminConn(t), "DROP POLICY "+policy.GuardPolicy+" ON products")
			for _, opts := range []verify.Options{
				{AppRole: pgtenancytest.AppRole, Global: []string{"currencies"}},
				{Model: signedModel()},
			} {
				r := mustVerify(t, db.OwnerConn(t), opts)
				assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodePermissivePolicy, "raw_read"}, "%v", r.Findings)
			}
		})
	}
}

// TestVerifyLibraryOtherSetting: the library installed for another setting
// than the default, verified without --setting, is taken as installed for
// the setting its own functions name: no library_altered, no
// signed_altered, and its signed policies are tenant predicates.
func TestVerifyLibraryOtherSetting(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	ctx := t.Context()
	admin := db.AdminConn(t)
	require.NoError(t, migrations.Install(ctx, admin, migrations.Options{Setting: "app.tenant"}))
	mustExec(t, admin, `
CREATE TABLE notes (tenant_id bigint NOT NULL, id bigint, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY signed_notes ON notes USING (tenant_id = (SELECT pgtenancy.tenant()::bigint));
GRANT SELECT ON notes TO `+pgtenancytest.AppRole)
	r := mustVerify(t, admin, verify.Options{AppRole: pgtenancytest.AppRole})
	assert.Empty(t, findingKeys(r), "%v", r.Findings)
	// Given the default setting, the library is not the one for it.
	r = mustVerify(t, admin, verify.Options{AppRole: pgtenancytest.AppRole, Setting: "app.current_tenant"})
	assert.Contains(t, findingKeys(r), findingKey{verify.SeverityError, verify.CodeLibraryAltered, "pgtenancy.set_tenant(text)"})
}
