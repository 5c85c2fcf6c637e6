package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestGenerateSigned: a signed model's policies call pgtenancy.tenant()
// in a scalar subquery, cast to the key type, and nothing else differs
// from the unsigned model's SQL.
func TestGenerateSigned(t *testing.T) {
	t.Parallel()
	for _, key := range []rls.KeyType{rls.BigInt, rls.UUID, rls.Text} {
		m := &policy.Model{KeyType: key, AppRole: "app", Tables: []policy.Table{
			{Name: "stores", TenantColumn: "id", Root: true},
			{Name: "products", TenantColumn: "store_id"},
		}}
		plain, err := policy.Generate(m)
		require.NoError(t, err)
		m.Signed = true
		signed, err := policy.Generate(m)
		require.NoError(t, err)
		expr := policy.SignedPolicyExpr("store_id", key)
		assert.Equal(t, `"store_id" = (SELECT pgtenancy.tenant()::`+key.String()+`)`, expr)
		assert.Equal(t, 4, strings.Count(signed.Up, "("+expr+")"), signed.Up)
		assert.NotContains(t, signed.Up, "current_setting")
		stamped := policy.PolicyExpr("store_id", key, rls.DefaultSetting)
		idStamped, idSigned := policy.PolicyExpr("id", key, rls.DefaultSetting), policy.SignedPolicyExpr("id", key)
		const note = "-- Signed: the policies admit only a tenant whose signature pgtenancy.tenant() verifies (docs/security.md).\n"
		assert.True(t, strings.HasPrefix(signed.Up, strings.SplitAfter(plain.Up, "\n")[0]+note), signed.Up)
		// The tenant column default too: the signed setting is no key
		// text, so the default reads the verified tenant.
		signedDefault := policy.SignedTenantDefaultExpr(key)
		assert.Equal(t, "pgtenancy.tenant()::"+key.String(), signedDefault)
		assert.Equal(t, 1, strings.Count(signed.Up, "SET DEFAULT "+signedDefault+";"), signed.Up)
		back := strings.ReplaceAll(strings.ReplaceAll(signed.Up, expr, stamped), idSigned, idStamped)
		back = strings.ReplaceAll(back, "SET DEFAULT "+signedDefault+";", "SET DEFAULT "+policy.TenantDefaultExpr(key, rls.DefaultSetting)+";")
		assert.Equal(t, plain.Up, strings.Replace(back, note, "", 1))
		assert.Equal(t, plain.Down, strings.Replace(signed.Down, note, "", 1))
	}
}

// TestGenerateSignedShared: a signed table with shared rows gets the five
// policies of shared rows, every tenant expression the signed one, and the
// guard's USING admits the shared rows as the unsigned one does.
func TestGenerateSignedShared(t *testing.T) {
	t.Parallel()
	m := &policy.Model{KeyType: rls.BigInt, Signed: true, Tables: []policy.Table{
		{Name: "stores", TenantColumn: "id", Root: true},
		{Name: "products", TenantColumn: "store_id", SharedRows: true},
	}}
	mig, err := policy.Generate(m)
	require.NoError(t, err)
	assert.NotContains(t, mig.Up, "current_setting")
	defs := policy.SignedTablePolicies("store_id", rls.BigInt, true)
	plain := policy.TablePolicies("store_id", rls.BigInt, rls.DefaultSetting, true, false)
	require.Len(t, defs, len(plain))
	expr := policy.SignedPolicyExpr("store_id", rls.BigInt)
	for i, d := range defs {
		assert.Equal(t, plain[i].Name, d.Name)
		assert.Equal(t, plain[i].Permissive, d.Permissive)
		assert.Equal(t, plain[i].Command, d.Command)
		assert.Contains(t, mig.Up, d.SQL(`"public"."products"`))
		switch d.Name {
		case policy.SharedReadPolicy:
			assert.Equal(t, policy.SharedReadExpr("store_id"), d.Using)
		case policy.GuardPolicy:
			assert.Equal(t, "("+expr+`) OR "store_id" IS NULL`, d.Using)
			assert.Equal(t, policy.SignedSharedGuardExpr("store_id", rls.BigInt), d.Using)
			assert.Equal(t, expr, d.Check)
		default:
			assert.Equal(t, expr, d.Using)
		}
	}
}

func TestSignedCitusIsAModelError(t *testing.T) {
	t.Parallel()
	m := &policy.Model{KeyType: rls.BigInt, Citus: true, Signed: true, Tables: []policy.Table{{Name: "stores", TenantColumn: "id", Root: true}}}
	err := m.Validate()
	assert.ErrorIs(t, err, policy.ErrInvalidModel)
	assert.ErrorIs(t, err, rls.ErrSignedCitus)
}

// TestLibrarySignedObjects: the library's signed step pins search_path,
// is SECURITY DEFINER and STABLE, hides the key table, and verify's body
// is the installed one.
func TestLibrarySignedObjects(t *testing.T) {
	t.Parallel()
	lib, err := policy.LibrarySQL("tenancy.shop")
	require.NoError(t, err)
	body, err := policy.SignedTenantBody("tenancy.shop")
	require.NoError(t, err)
	assert.Contains(t, lib.Up, "LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE\nSET search_path = pg_catalog, pg_temp\nAS $pgtenancy$"+body+"$pgtenancy$;")
	assert.Contains(t, body, "current_setting('tenancy.shop', true)")
	assert.Contains(t, body, "current_setting('tenancy.shop_xact', true)")
	assert.Contains(t, lib.Up, "REVOKE ALL ON TABLE pgtenancy.signing_keys FROM PUBLIC;")
	assert.NotContains(t, lib.Up, "{{")
	assert.True(t, strings.Index(lib.Down, "DROP FUNCTION pgtenancy.tenant()") < strings.Index(lib.Down, "DROP FUNCTION pgtenancy.set_tenant(text)"))
}
