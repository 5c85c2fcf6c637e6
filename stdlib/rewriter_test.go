package stdlib_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/stdlib"
)

// mapRewriter rewrites the SQL texts of its map and counts what it was
// asked about. (The real rewriter is package citus/route, in a module of
// its own; this one shows what the driver does with an answer.)
type mapRewriter struct {
	to   map[string]rewrite
	mu   sync.Mutex
	seen map[string]int
}

type rewrite struct {
	sql   string
	param int
}

func (m *mapRewriter) Rewrite(sql string) (string, int) {
	m.mu.Lock()
	m.seen[sql]++
	m.mu.Unlock()
	if r, ok := m.to[sql]; ok {
		return r.sql, r.param
	}
	return sql, 0
}

const (
	rwNoArgs   = "SELECT 'none'::text AS v"
	rwOneArg   = "SELECT $1::text AS v"
	rwWrongN   = "SELECT $1::text || '' AS v"
	rwUpdate   = "UPDATE products SET name = 'x' WHERE id = $1"
	rwNamedArg = "SELECT @v::text AS v"
)

// TestRewriter: Config.Rewriter's SQL runs with the unit's tenant bound to
// the parameter it adds, after the statement's own arguments, on every
// path (Exec, Query, a prepared statement, in a transaction begun by
// BeginTx, with a per-query exec mode), in every exec mode; an answer
// whose parameter is not the next one, and SQL with pgx.NamedArgs, run
// unchanged.
func TestRewriter(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		rw := &mapRewriter{seen: map[string]int{}, to: map[string]rewrite{
			rwNoArgs:   {"SELECT 'none/' || $1::text AS v", 1},
			rwOneArg:   {"SELECT $1::text || '/' || $2::text AS v", 2},
			rwWrongN:   {"SELECT $1::text || '/' || $3::text AS v", 3}, // not $2: ignored
			rwUpdate:   {"UPDATE products SET name = 'by ' || $2::text WHERE id = $1", 2},
			rwNamedArg: {"SELECT 'rewritten' AS v", 0},
		}}
		cfg, err := stdlib.ParseConfig(db.AppURL)
		require.NoError(t, err)
		cfg.ConnConfig.DefaultQueryExecMode = mode
		cfg.Rewriter = rw
		cfg.Options = append(cfg.Options, pgxstdlib.OptionShouldPing(func(context.Context, pgxstdlib.ShouldPingParams) bool { return false }))
		sdb, err := stdlib.OpenDB(context.Background(), cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, sdb.Close()) })
		ctx := ctxFor(tenantA)
		a := tenantA.String()
		get := func(q interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}, query string, args ...any) string {
			t.Helper()
			var v string
			require.NoError(t, q.QueryRowContext(ctx, query, args...).Scan(&v), query)
			return v
		}
		require.Equal(t, "none/"+a, get(sdb, rwNoArgs))
		require.Equal(t, "x/"+a, get(sdb, rwOneArg, "x"))
		require.Equal(t, "x", get(sdb, rwWrongN, "x"), "a parameter that is not the next one: the original SQL")
		require.Equal(t, "y", get(sdb, rwNamedArg, pgx.NamedArgs{"v": "y"}), "NamedArgs: not rewritten")
		require.Zero(t, rw.seen[rwNamedArg], "the rewriter is not asked about SQL with NamedArgs")
		require.Equal(t, "x/"+a, get(sdb, rwOneArg, pgx.QueryExecModeSimpleProtocol, "x"), "per-query exec mode")

		res, err := sdb.ExecContext(ctx, rwUpdate, int64(101))
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		require.Equal(t, "by "+a, get(sdb, "SELECT name FROM products WHERE id = $1", int64(101)))

		stmt, err := sdb.PrepareContext(ctx, rwOneArg)
		require.NoError(t, err)
		var v string
		require.NoError(t, stmt.QueryRowContext(ctx, "p").Scan(&v))
		require.Equal(t, "p/"+a, v)
		b := tenantB.String()
		require.NoError(t, stmt.QueryRowContext(ctxFor(tenantB), "p").Scan(&v))
		require.Equal(t, "p/"+b, v, "a prepared statement binds each call's tenant")
		require.NoError(t, stmt.Close())

		tx, err := sdb.BeginTx(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, "tx/"+a, get(tx, rwOneArg, "tx"))
		require.Equal(t, "none/"+a, get(tx, rwNoArgs))
		require.Equal(t, "y", get(tx, rwNamedArg, pgx.NamedArgs{"v": "y"}))
		_, err = tx.ExecContext(ctx, rwUpdate, int64(102))
		require.NoError(t, err)
		require.Equal(t, "by "+a, get(tx, "SELECT name FROM products WHERE id = $1", int64(102)))
		require.NoError(t, tx.Commit())
	})
}
