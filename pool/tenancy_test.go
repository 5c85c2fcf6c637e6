package pool_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestSessionTenantLeftoverInert: with a pool of one connection, a unit of
// tenant A whose SQL leaves tenant B at session level (tenant setting and
// stamp) through a function, where the pool cannot see it to reset it,
// does not change what later units see, and work through Unwrap on that
// same connection, which reads B in the setting, sees none of B's rows:
// the generated policies admit only a tenant set in the transaction that
// reads. In every exec mode.
func TestSessionTenantLeftoverInert(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		leaveSessionTenant := hiddenSessionTenant(t, db)
		p := newPool(t, db, poolOpts{mode: mode, maxConns: 1})
		_, err := p.Exec(ctxFor(tenantA), leaveSessionTenant(tenantB))
		require.NoError(t, err)
		// The same, in a transaction, through a batch and through CopyFrom's
		// connection: every path leaves the session alone afterwards.
		require.NoError(t, p.BeginFunc(ctxFor(tenantA), func(tx pgx.Tx) error {
			_, err := tx.Exec(context.Background(), leaveSessionTenant(tenantB))
			return err
		}))
		b := &pgx.Batch{}
		b.Queue(leaveSessionTenant(tenantB))
		require.NoError(t, p.SendBatch(ctxFor(tenantA), b).Close())

		require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p), "a later unit of A")
		raw := p.Unwrap()
		var setting string
		require.NoError(t, raw.QueryRow(context.Background(), "SELECT current_setting('app.current_tenant')").Scan(&setting))
		require.Equal(t, tenantB.String(), setting, "the leftover is there (one connection)")
		require.Empty(t, productIDs(t, context.Background(), raw), "the session-level tenant admitted rows")
		var n int
		require.NoError(t, raw.QueryRow(context.Background(), "SELECT count(*) FROM purchases").Scan(&n))
		require.Zero(t, n)
		// And writes: a leftover tenant cannot insert as B either.
		_, err = raw.Exec(context.Background(), "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 299, 'x', 1, 'EUR')", tenantB.String())
		require.True(t, pool.IsRLSViolation(err), "insert through a session-level tenant: %v", err)
	})
}

// TestKeyType: with Config.KeyType, a tenant of another key type fails
// before any I/O with ErrKeyType, on every path; without it, the same work
// reaches the database and fails there.
func TestKeyType(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	counter := &tripCounter{}
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.KeyType = rls.BigInt
	configure(cfg.PoolConfig, poolOpts{counter: counter})
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer p.Close()
	ctx := rls.WithTenant(context.Background(), rls.MustParse(rls.UUID, "0195c3b1-0000-7000-8000-000000000001"))
	ops := map[string]func() error{
		"Exec":      func() error { _, err := p.Exec(ctx, "SELECT 1"); return err },
		"Query":     func() error { rows, err := p.Query(ctx, "SELECT 1"); rows.Close(); return err },
		"QueryRow":  func() error { var n int; return p.QueryRow(ctx, "SELECT 1").Scan(&n) },
		"SendBatch": func() error { b := &pgx.Batch{}; b.Queue("SELECT 1"); return p.SendBatch(ctx, b).Close() },
		"Begin":     func() error { _, err := p.Begin(ctx); return err },
		"AcquireFunc": func() error {
			return p.AcquireFunc(ctx, func(*pgxpool.Conn) error { panic("must not run") })
		},
		"CopyFrom": func() error {
			_, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, []string{"name"}, pgx.CopyFromRows([][]any{{"x"}}))
			return err
		},
	}
	for name, op := range ops {
		err := op()
		require.ErrorIs(t, err, pool.ErrKeyType, name)
		require.NotErrorIs(t, err, rls.ErrNoTenant, name)
	}
	_, writes := counter.snapshot()
	require.Zero(t, writes, "bytes were sent")
	require.Zero(t, p.Stat().TotalConns(), "a connection was opened")

	// Without KeyType the uuid goes to the database, which refuses it.
	plain := newPool(t, db, poolOpts{})
	var n int
	err = plain.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n)
	require.Error(t, err)
	require.NotErrorIs(t, err, pool.ErrKeyType)
	assert.Equal(t, "22P02", sqlState(err), "%v", err) // invalid_text_representation
	// And the right key type works.
	require.NoError(t, p.QueryRow(ctxFor(tenantA), "SELECT count(*) FROM products").Scan(&n))
	require.Equal(t, len(seedProducts[tenantA]), n)

	_, err = pool.NewWithConfig(context.Background(), &pool.Config{PoolConfig: cfg.PoolConfig, KeyType: 9})
	require.ErrorIs(t, err, pool.ErrConfig)
}

// TestWrapBorrows: a Pool from Wrap leaves the pgxpool open when closed,
// and Wrap refuses what it cannot honour.
func TestWrapBorrows(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	raw := db.AppPool(t)
	p, err := pool.Wrap(raw, pool.Config{})
	require.NoError(t, err)
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
	p.Close()
	require.NoError(t, raw.Ping(context.Background()), "Close closed the borrowed pgxpool")
	var n int
	require.NoError(t, raw.QueryRow(context.Background(), "SELECT 1").Scan(&n))

	pc, err := pgxpool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	for name, cfg := range map[string]pool.Config{
		"PoolConfig": {PoolConfig: pc},
		"Audit":      {Audit: func(context.Context, *pgxpool.Pool) error { return nil }},
		"Setting":    {Setting: "bad setting"},
	} {
		_, err := pool.Wrap(raw, cfg)
		require.ErrorIs(t, err, pool.ErrConfig, name)
	}
	_, err = pool.Wrap(nil, pool.Config{})
	require.ErrorIs(t, err, pool.ErrConfig)

	// A Pool that made its pgxpool closes it.
	owned := newPool(t, db, poolOpts{})
	owned.Close()
	require.Error(t, owned.Unwrap().Ping(context.Background()))
}

// TestAuditHook: NewWithConfig runs Config.Audit with the new pgxpool; an
// error closes the pool and is returned as it is.
func TestAuditHook(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	var seen *pgxpool.Pool
	refused := errors.New("refused")
	cfg.Audit = func(ctx context.Context, p *pgxpool.Pool) error {
		seen = p
		var user string
		if err := p.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
			return err
		}
		if user != pgtenancytest.AppRole {
			return errors.New("wrong role " + user)
		}
		return refused
	}
	_, err = pool.NewWithConfig(context.Background(), cfg)
	require.ErrorIs(t, err, refused)
	require.NotNil(t, seen)
	require.Error(t, seen.Ping(context.Background()), "the refused pool is still open")

	cfg.Audit = func(context.Context, *pgxpool.Pool) error { return nil }
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, seedProducts[tenantA], productIDs(t, ctxFor(tenantA), p))
}

// TestIsRLSViolation tells a write the policies refuse from an ordinary
// permission error (both SQLSTATE 42501) and from other errors.
func TestIsRLSViolation(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{})
	ctx := ctxFor(tenantA)

	_, err := p.Exec(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 901, 'x', 1, 'EUR')", tenantB.String())
	require.Equal(t, "42501", sqlState(err))
	assert.True(t, pool.IsRLSViolation(err), "insert of another tenant's row: %v", err)

	_, err = p.Exec(ctx, "UPDATE products SET store_id = $1 WHERE id = 101", tenantB.String())
	assert.True(t, pool.IsRLSViolation(err), "update moving a row to another tenant: %v", err)

	_, err = p.Exec(ctx, "SET LOCAL row_security = off; SELECT count(*) FROM products", pgx.QueryExecModeSimpleProtocol)
	assert.True(t, pool.IsRLSViolation(err), "row_security off: %v", err)

	_, err = p.Exec(ctx, "TRUNCATE products")
	require.Equal(t, "42501", sqlState(err), "%v", err)
	assert.False(t, pool.IsRLSViolation(err), "a missing privilege is no RLS refusal: %v", err)

	_, err = p.Exec(ctx, "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES ($1, 101, 'dup', 1, 'EUR')", tenantA.String())
	require.Equal(t, "23505", sqlState(err), "%v", err)
	assert.False(t, pool.IsRLSViolation(err))
	assert.False(t, pool.IsRLSViolation(nil))
	assert.False(t, pool.IsRLSViolation(errors.New("new row violates row-level security policy")))
	// A relayed error without the routine (as Citus's workers send them).
	assert.True(t, pool.IsRLSViolation(&pgconn.PgError{Code: "42501", Message: `new row violates row-level security policy for table "products_102008"`}))
	assert.False(t, pool.IsRLSViolation(&pgconn.PgError{Code: "42501", Message: "permission denied for table products"}))
}
