package pool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// intStores are the store schema with integer and smallint keys, isolated.
var intStores = map[rls.KeyType]*pgtenancytest.Template{}

func init() {
	for _, key := range []rls.KeyType{rls.Integer, rls.SmallInt} {
		intStores[key] = &pgtenancytest.Template{
			Name: "pool_store_" + key.String(),
			Setup: func(ctx context.Context, conn *pgx.Conn) error {
				if _, err := conn.Exec(ctx, testschema.DDL(key)+testschema.Seed(key)); err != nil {
					return fmt.Errorf("schema: %w", err)
				}
				if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
					return err
				}
				gen, err := policy.Generate(testschema.Model(key, pgtenancytest.AppRole))
				if err != nil {
					return err
				}
				_, err = conn.Exec(ctx, gen.Up)
				return err
			},
		}
	}
}

// TestIntegerKeys: with int4 and int2 keys, the pool (every exec mode, as
// the application role) shows each store its own products only, inserts
// take the store from the transaction, and a tenant of another key type
// is refused before any I/O.
func TestIntegerKeys(t *testing.T) {
	t.Parallel()
	for key, tmpl := range intStores {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			db := pgtenancytest.NewDB(t, tmpl)
			ts := testschema.Tenants(key)
			for _, mode := range execModes {
				t.Run(mode.String(), func(t *testing.T) {
					cfg, err := pool.ParseConfig(db.AppURL)
					require.NoError(t, err)
					cfg.KeyType = key
					cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = mode
					p, err := pool.NewWithConfig(t.Context(), cfg)
					require.NoError(t, err)
					defer p.Close()
					for i, tn := range ts {
						ctx := rls.WithTenant(t.Context(), tn)
						var mine, others int
						require.NoError(t, p.QueryRow(ctx, "SELECT count(*) FILTER (WHERE store_id::text = $1), count(*) FILTER (WHERE store_id::text <> $1) FROM products", tn.String()).Scan(&mine, &others))
						assert.Positive(t, mine, "tenant %d", i)
						assert.Zero(t, others, "tenant %d", i)
					}
					ctx := rls.WithTenant(t.Context(), ts[0])
					var store string
					require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
						return tx.QueryRow(ctx, "INSERT INTO products (name, price_cents, currency) VALUES ('int', 1, 'EUR') RETURNING store_id::text").Scan(&store)
					}))
					assert.Equal(t, ts[0].String(), store)
					_, err = p.Exec(rls.WithTenant(t.Context(), rls.Int64(1)), "SELECT 1")
					assert.ErrorIs(t, err, pool.ErrKeyType)
				})
			}
		})
	}
}
