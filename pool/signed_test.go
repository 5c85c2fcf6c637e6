package pool_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

// signedKey is the key of signedTemplate's database.
var signedKey = signing.Key{ID: "test_key", Secret: bytes.Repeat([]byte{0x5c, 0x36, 0x01}, 16)}

// signedTemplate is the store schema with signed policies and signedKey.
var signedTemplate = &pgtenancytest.Template{
	Name: "pool_signed",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		return testschema.Signed(ctx, conn, rls.BigInt, pgtenancytest.AppRole, signedKey)
	},
}

func signedPool(t *testing.T, db *pgtenancytest.DB, mode pgx.QueryExecMode, key signing.Key) *pool.Pool {
	t.Helper()
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = mode
	cfg.KeyType = rls.BigInt
	cfg.Signer, err = signing.NewSigner(key, time.Minute)
	require.NoError(t, err)
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func signedProductIDs(t *testing.T, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) []int64 {
	t.Helper()
	rows, err := q.Query(ctx, "SELECT id FROM products ORDER BY id")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	return ids
}

// TestSignedPoolIsolates: a signed pool works like an unsigned one, in
// every exec mode and on every path (statements, batches, transactions,
// CopyFrom).
func TestSignedPoolIsolates(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, signedTemplate)
		p := signedPool(t, db, mode, signedKey)
		for _, tn := range tenants {
			ctx := ctxFor(tn)
			assert.Equal(t, seedProducts[tn], signedProductIDs(t, ctx, p))
			var n int64
			require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FROM purchases").Scan(&n))
			assert.EqualValues(t, len(seedProducts[tn]), n)
			tx, err := p.Begin(ctx)
			require.NoError(t, err)
			assert.Equal(t, seedProducts[tn], signedProductIDs(t, ctx, tx))
			require.NoError(t, tx.Rollback(ctx))
		}
		ctx := ctxFor(tenantA)
		_, err := p.Exec(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 104, 'A date', 1, 'EUR')", int64(1))
		require.NoError(t, err)
		n, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"store_id", "id", "name", "price_cents", "currency"},
			pgx.CopyFromRows([][]any{{int64(1), int64(105), "A egg", int64(1), "EUR"}}))
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
		assert.Equal(t, []int64{101, 102, 103, 104, 105}, signedProductIDs(t, ctx, p))
		assert.Equal(t, seedProducts[tenantB], signedProductIDs(t, ctxFor(tenantB), p))
	})
}

// TestSignedTenantDefault: in signed mode an INSERT that does not name the
// tenant takes the verified tenant from the column default
// (policy.SignedTenantDefaultExpr; the signed setting casts to no key
// type), and without a verified tenant the default is NULL and the row is
// refused.
func TestSignedTenantDefault(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedTemplate)
	p := signedPool(t, db, pgx.QueryExecModeCacheStatement, signedKey)
	ctx := ctxFor(tenantA)
	_, err := p.Exec(ctx, "INSERT INTO products (id, name, price_cents, currency) VALUES (106, 'A fig', 1, 'EUR')")
	require.NoError(t, err)
	var store int64
	require.NoError(t, p.QueryRow(ctx, "SELECT store_id FROM products WHERE id = 106").Scan(&store))
	assert.EqualValues(t, 1, store)
	assert.NotContains(t, signedProductIDs(t, ctxFor(tenantB), p), int64(106))

	// A forged setting: the default is NULL, the WITH CHECK refuses it.
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // test cleanup
	_, err = tx.Exec(ctx, "SELECT set_config('app.current_tenant', '1', true)")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO products (id, name, price_cents, currency) VALUES (107, 'A forged', 1, 'EUR')")
	require.Error(t, err)
}

// attack is SQL that tries to switch the unit of work's tenant to another
// one without the key.
type attack struct {
	name  string
	value string
}

func attacks(t *testing.T) []attack {
	s, err := signing.NewSigner(signedKey, time.Minute)
	require.NoError(t, err)
	a := s.Sign(tenantA) // tenant A's own valid value
	wrongKey := signing.Key{ID: signedKey.ID, Secret: bytes.Repeat([]byte{1}, 32)}
	ws, err := signing.NewSigner(wrongKey, time.Minute)
	require.NoError(t, err)
	other := signing.Key{ID: "other_key", Secret: bytes.Repeat([]byte{2}, 32)}
	os, err := signing.NewSigner(other, time.Minute)
	require.NoError(t, err)
	return []attack{
		{"plain tenant B", tenantB.String()},
		{"A's MAC replayed for B", a[:len(a)-1] + tenantB.String()},
		{"A's value with B appended", a + "2"},
		{"B signed with a guessed secret", ws.Sign(tenantB)},
		{"B signed with an unknown key", os.Sign(tenantB)},
		{"key id altered", strings.Replace(s.Sign(tenantB), signedKey.ID, "other_key", 1)},
		{"truncated MAC", a[:len(a)-3] + ":2"},
		{"expired B", s.SignUntil(tenantB, time.Now().Add(-time.Second))},
		{"no expiry claimed", "v1:" + signedKey.ID + ":0:" + a[strings.LastIndexByte(a[:len(a)-2], ':')+1:len(a)-1] + "2"},
	}
}

// TestSignedForgeryFromInjectedSQL is the attack of docs/security.md: SQL
// injected into tenant A's unit of work sets the tenant setting (and its
// stamp) to reach tenant B's rows. Every forged, replayed, expired,
// unknown-key or truncated value gives no rows, and refused or empty
// writes on every command; tenant B's rows are untouched.
func TestSignedForgeryFromInjectedSQL(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedTemplate)
	p := signedPool(t, db, pgx.QueryExecModeCacheStatement, signedKey)
	ctx := ctxFor(tenantA)
	const forge = "SELECT pg_catalog.set_config('app.current_tenant', $1, true), pg_catalog.set_config('app.current_tenant_xact', " + rls.XactStamp + ", true)"
	for _, at := range attacks(t) {
		t.Run(at.name, func(t *testing.T) {
			err := p.BeginFunc(ctx, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, forge, at.value); err != nil {
					return err
				}
				var n int64
				require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n))
				assert.Zero(t, n, "SELECT")
				require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM stores").Scan(&n))
				assert.Zero(t, n, "SELECT stores")
				tag, err := tx.Exec(ctx, "UPDATE products SET price_cents = 0")
				require.NoError(t, err)
				assert.Zero(t, tag.RowsAffected(), "UPDATE")
				tag, err = tx.Exec(ctx, "DELETE FROM purchases")
				require.NoError(t, err)
				assert.Zero(t, tag.RowsAffected(), "DELETE")
				_, err = tx.Exec(ctx, "SAVEPOINT s")
				require.NoError(t, err)
				_, err = tx.Exec(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES (2, 999, 'x', 1, 'EUR')")
				assert.Equal(t, "42501", pgState(err), "INSERT: %v", err)
				_, err = tx.Exec(ctx, "ROLLBACK TO SAVEPOINT s")
				return err
			})
			require.NoError(t, err)
		})
	}
	// B's rows are all there, and A still works.
	assert.Equal(t, seedProducts[tenantB], signedProductIDs(t, ctxFor(tenantB), p))
	var total int64
	require.NoError(t, p.QueryRow(ctxFor(tenantB), "SELECT sum(price_cents) FROM products").Scan(&total))
	assert.EqualValues(t, 3000, total)
	assert.Equal(t, seedProducts[tenantA], signedProductIDs(t, ctx, p))
}

func pgState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// TestSignedPoliciesRejectUnsignedPools: an unsigned pool, and a pool
// signing with a key the database does not hold, see nothing and write
// nothing under signed policies.
func TestSignedPoliciesRejectUnsignedPools(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedTemplate)
	ctx := context.Background()
	plain, err := pool.New(ctx, db.AppURL)
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	wrong := signedPool(t, db, pgx.QueryExecModeCacheStatement, signing.Key{ID: signedKey.ID, Secret: bytes.Repeat([]byte{9}, 32)})
	for name, p := range map[string]*pool.Pool{"unsigned": plain, "wrong key": wrong} {
		assert.Empty(t, signedProductIDs(t, ctxFor(tenantA), p), name)
		_, err := p.Exec(ctxFor(tenantA), "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES (1, 998, 'x', 1, 'EUR')")
		assert.Equal(t, "42501", pgState(err), "%s: %v", name, err)
	}
}

// TestSignedVerifiedOncePerStatement: the signed policy is an InitPlan,
// run once per statement however many rows are checked.
func TestSignedVerifiedOncePerStatement(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, signedTemplate)
	p := signedPool(t, db, pgx.QueryExecModeCacheStatement, signedKey)
	ctx := ctxFor(tenantA)
	rows, err := p.Query(ctx, "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM products, purchases WHERE purchases.product_id = products.id")
	require.NoError(t, err)
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	plan := strings.Join(lines, "\n")
	assert.Contains(t, plan, "InitPlan")
	assert.Contains(t, plan, "pgtenancy.tenant()")
	assert.NotRegexp(t, `Filter: .*pgtenancy\.tenant\(\)`, plan, "the function must not be called per row")
	// One InitPlan per table the statement reads, each run once.
	// (PostgreSQL 18 also names them in the filters: "(InitPlan 1).col1".)
	initPlans := 0
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "InitPlan ") {
			initPlans++
			assert.Contains(t, lines[i+1], "loops=1", lines[i+1])
		}
	}
	assert.Equal(t, 2, initPlans)
	assert.Equal(t, 2, strings.Count(plan, "Output: (pgtenancy.tenant())::bigint"))
	t.Log(plan)
}

func TestSignedCitusRefused(t *testing.T) {
	t.Parallel()
	cfg, err := pool.ParseConfig("postgres://localhost/db")
	require.NoError(t, err)
	cfg.Citus = true
	cfg.Signer, err = signing.NewSigner(signedKey, 0)
	require.NoError(t, err)
	_, err = pool.NewWithConfig(context.Background(), cfg)
	assert.ErrorIs(t, err, pool.ErrConfig)
	assert.ErrorIs(t, err, rls.ErrSignedCitus)

	m := testschema.Model(rls.BigInt, "app")
	m.Signed, m.Citus = true, true
	_, err = policy.Generate(m)
	assert.ErrorIs(t, err, policy.ErrInvalidModel)
	assert.ErrorIs(t, err, policy.ErrSignedCitus)
}
