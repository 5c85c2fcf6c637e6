package verify_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// rawStore is the store schema and rows before pgtenancy.
var rawStore = &pgtenancytest.Template{
	Name: "verify_raw_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt))
		return err
	},
}

func TestCheckDataFindsCrossTenantRows(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, rawStore)
	owner := db.OwnerConn(t)
	model := testschema.Model(rls.BigInt, pgtenancytest.AppRole)

	refs, err := verify.CheckData(t.Context(), owner, model)
	require.NoError(t, err)
	assert.Empty(t, refs, "the seeded rows stay within their tenant")

	// Store 1 buys product 201, which belongs to store 2: the plain foreign
	// key accepts it.
	mustExec(t, owner, "INSERT INTO purchases (store_id, id, product_id, quantity) VALUES (1, 1999, 201, 1)")
	refs, err = verify.CheckData(t.Context(), owner, model)
	require.NoError(t, err)
	require.Equal(t, []verify.CrossTenantRef{{
		Table: "public.purchases", Columns: []string{"product_id"},
		RefTable: "public.products", RefColumns: []string{"id"},
		Count: 1, Samples: []string{"(1,201) -> 2"},
	}}, refs)
	f := refs[0].Finding()
	assert.Equal(t, verify.CodeCrossTenantRef, f.Code)
	assert.Equal(t, verify.SeverityError, f.Severity)
	assert.Contains(t, f.Message, "(1,201) -> 2")

	// The generated migration would fail on that row, on its composite key.
	gen, err := policy.Generate(model)
	require.NoError(t, err)
	err = pgx.BeginFunc(t.Context(), owner, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), gen.Up)
		return err
	})
	require.Error(t, err)
	assert.Equal(t, "23503", sqlState(err), "foreign key violation: %v", err)
	assert.ErrorContains(t, err, "purchases_store_id_product_id_pgtenancy_fkey")

	// Samples are capped at five, the count is not.
	mustExec(t, owner, `INSERT INTO purchases (store_id, id, product_id, quantity)
SELECT 3, 5000 + g, 101, 1 FROM generate_series(1, 7) g`)
	refs, err = verify.CheckData(t.Context(), owner, model)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	assert.Equal(t, int64(8), refs[0].Count)
	assert.Equal(t, []string{"(1,201) -> 2", "(3,101) -> 1", "(3,101) -> 1", "(3,101) -> 1", "(3,101) -> 1"}, refs[0].Samples)
}

func TestCheckDataRefusesRowSecurity(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, isolatedStore)
	model := testschema.Model(rls.BigInt, pgtenancytest.AppRole)
	// The owner is subject to the forced policies, the application role
	// too: neither sees every row.
	for _, conn := range []*pgx.Conn{db.OwnerConn(t), db.AppConn(t)} {
		refs, err := verify.CheckData(t.Context(), conn, model)
		assert.ErrorIs(t, err, verify.ErrRowSecurityActive)
		assert.ErrorContains(t, err, `"public"."purchases"`)
		assert.Nil(t, refs)
	}
	// A superuser sees every row.
	refs, err := verify.CheckData(t.Context(), db.AdminConn(t), model)
	require.NoError(t, err)
	assert.Empty(t, refs)

	_, err = verify.CheckData(t.Context(), db.AdminConn(t), &policy.Model{})
	assert.ErrorIs(t, err, policy.ErrInvalidModel)
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
