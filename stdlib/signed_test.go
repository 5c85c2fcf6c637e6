package stdlib_test

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// signedKey is the key of signedTemplate's database.
var signedKey = signing.Key{ID: "stdlib_key", Secret: bytes.Repeat([]byte{0x11, 0x22, 0x33, 0x44}, 8)}

// signedTemplate is the store schema with signed policies and signedKey.
var signedTemplate = &pgtenancytest.Template{
	Name: "stdlib_signed",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Signed(ctx, conn, rls.BigInt, pgtenancytest.AppRole, signedKey)
	},
}

func openSigned(t *testing.T, db *pgtenancytest.DB, mode pgx.QueryExecMode, key signing.Key) *sql.DB {
	t.Helper()
	cfg, err := stdlib.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.ConnConfig.DefaultQueryExecMode = mode
	cfg.KeyType = rls.BigInt
	cfg.Signer, err = signing.NewSigner(key, time.Minute)
	require.NoError(t, err)
	sdb, err := stdlib.OpenDB(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sdb.Close()) })
	return sdb
}

// TestSignedIsolates: database/sql in signed mode works like unsigned on
// every path (statements, prepared statements, transactions) in every exec
// mode; with a key the database does not hold, no tenant verifies and
// every read is empty.
func TestSignedIsolates(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, signedTemplate)
		sdb := openSigned(t, db, mode, signedKey)
		stmt, err := sdb.PrepareContext(context.Background(), "SELECT count(*) FROM products")
		require.NoError(t, err)
		defer stmt.Close()
		for _, tn := range tenants {
			ctx := ctxFor(tn)
			assert.Equal(t, seedProducts[tn], productIDs(t, ctx, sdb))
			var n int64
			require.NoError(t, stmt.QueryRowContext(ctx).Scan(&n))
			assert.EqualValues(t, len(seedProducts[tn]), n)
			tx, err := sdb.BeginTx(ctx, nil)
			require.NoError(t, err)
			assert.Equal(t, seedProducts[tn], productIDs(t, ctx, tx))
			require.NoError(t, tx.Rollback())
		}
		ctx := ctxFor(tenantA)
		_, err = sdb.ExecContext(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 104, 'A date', 1, 'EUR')", int64(1))
		require.NoError(t, err)
		_, err = sdb.ExecContext(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 204, 'B date', 1, 'EUR')", int64(2))
		assert.Equal(t, "42501", sqlState(err), "a row of another tenant is refused: %v", err)
		assert.Equal(t, []int64{101, 102, 103, 104}, productIDs(t, ctx, sdb))
		assert.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), sdb))

		unknown := openSigned(t, db, mode, signing.Key{ID: "stdlib_key", Secret: bytes.Repeat([]byte{9}, 32)})
		assert.Empty(t, productIDs(t, ctx, unknown), "a key the database does not hold verifies no tenant")
	})
}

// TestSignedForgeryThroughSQL: SQL run through database/sql in tenant A's
// transaction that sets the setting (and its stamp) to tenant B, plainly
// or with A's MAC, reads nothing and writes nothing.
func TestSignedForgeryThroughSQL(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedTemplate)
	sdb := openSigned(t, db, pgx.QueryExecModeCacheStatement, signedKey)
	s, err := signing.NewSigner(signedKey, time.Minute)
	require.NoError(t, err)
	a := s.Sign(tenantA)
	ctx := ctxFor(tenantA)
	const forge = "SELECT pg_catalog.set_config('app.current_tenant', $1, true), pg_catalog.set_config('app.current_tenant_xact', " + rls.XactStamp + ", true)"
	for _, v := range []string{tenantB.String(), a[:len(a)-1] + tenantB.String(), a + "2"} {
		tx, err := sdb.BeginTx(ctx, nil)
		require.NoError(t, err)
		_, err = tx.ExecContext(ctx, forge, v)
		require.NoError(t, err)
		var n int64
		require.NoError(t, tx.QueryRowContext(ctx, "SELECT count(*) FROM products").Scan(&n))
		assert.Zero(t, n, "%q", v)
		res, err := tx.ExecContext(ctx, "UPDATE products SET price_cents = 0")
		require.NoError(t, err)
		affected, err := res.RowsAffected()
		require.NoError(t, err)
		assert.Zero(t, affected, "%q", v)
		require.NoError(t, tx.Rollback())
	}
	assert.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), sdb))
}

// TestSignedCitusRefused: signed mode with Citus is a configuration error.
func TestSignedCitusRefused(t *testing.T) {
	t.Parallel()
	cfg, err := stdlib.ParseConfig("postgres://localhost/none")
	require.NoError(t, err)
	cfg.Citus = true
	cfg.Signer, err = signing.NewSigner(signedKey, 0)
	require.NoError(t, err)
	_, err = stdlib.NewConnector(cfg)
	require.ErrorIs(t, err, stdlib.ErrConfig)
	assert.ErrorIs(t, err, rls.ErrSignedCitus)
}
