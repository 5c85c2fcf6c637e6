package pool_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// mapRewriter rewrites the SQL texts of its map; it records every text it
// was asked about. (The real rewriter is package citus/route, in a module
// of its own; this one shows what the pool does with an answer.)
type mapRewriter struct {
	to map[string]struct {
		sql   string
		param int
	}
	mu   sync.Mutex
	seen map[string]int
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

func newMapRewriter() *mapRewriter {
	m := &mapRewriter{seen: map[string]int{}, to: map[string]struct {
		sql   string
		param int
	}{}}
	add := func(from, to string, param int) {
		m.to[from] = struct {
			sql   string
			param int
		}{to, param}
	}
	add(rwNoArgs, "SELECT 'none/' || $1::text AS v", 1)
	add(rwOneArg, "SELECT $1::text || '/' || $2::text AS v", 2)
	add(rwWrongN, "SELECT $1::text || '/' || $3::text AS v", 3) // not $2: ignored
	add(rwUpdate, "UPDATE products SET name = 'by ' || $2::text WHERE id = $1", 2)
	add(rwNamedArg, "SELECT 'rewritten' AS v", 0)
	return m
}

// TestRewriter: Config.Rewriter's SQL runs with the unit's tenant bound to
// the parameter it adds, after the statement's own arguments, on every
// path that takes SQL (Exec, Query, QueryRow, SendBatch with and without
// BeginTx, a transaction's Exec, Query, QueryRow and SendBatch, a
// per-query exec mode), in every exec mode; an answer whose parameter is
// not the next one, and SQL with pgx.NamedArgs, run unchanged.
func TestRewriter(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		rw := newMapRewriter()
		p := newPool(t, db, poolOpts{mode: mode, rewriter: rw})
		ctx := ctxFor(tenantA)
		a := tenantA.String()

		get := func(q interface {
			QueryRow(context.Context, string, ...any) pgx.Row
		}, sql string, args ...any) string {
			t.Helper()
			var v string
			require.NoError(t, q.QueryRow(ctx, sql, args...).Scan(&v), sql)
			return v
		}
		require.Equal(t, "none/"+a, get(p, rwNoArgs))
		require.Equal(t, "x/"+a, get(p, rwOneArg, "x"))
		require.Equal(t, "x", get(p, rwWrongN, "x"), "a parameter that is not the next one: the original SQL")
		require.Equal(t, "y", get(p, rwNamedArg, pgx.NamedArgs{"v": "y"}), "NamedArgs: not rewritten")
		require.Zero(t, rw.seen[rwNamedArg], "the rewriter is not asked about SQL with NamedArgs")
		require.Equal(t, "x/"+a, get(p, rwOneArg, pgx.QueryExecModeSimpleProtocol, "x"), "per-query exec mode")

		rows, err := p.Query(ctx, rwOneArg, "q")
		require.NoError(t, err)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"q/" + a}, vs)

		tag, err := p.Exec(ctx, rwUpdate, int64(101))
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		require.Equal(t, "by "+a, get(p, "SELECT name FROM products WHERE id = $1", int64(101)))
		_, err = p.Exec(ctx, rwUpdate, pgx.QueryExecModeExec, int64(102))
		require.NoError(t, err)
		require.Equal(t, "by "+a, get(p, "SELECT name FROM products WHERE id = $1", int64(102)))

		b := &pgx.Batch{}
		b.Queue(rwOneArg, "b1")
		b.Queue(rwNoArgs)
		br := p.SendBatch(ctx, b)
		require.Equal(t, "b1/"+a, get2(t, br.QueryRow()))
		require.Equal(t, "none/"+a, get2(t, br.QueryRow()))
		require.NoError(t, br.Close())
		require.Equal(t, rwOneArg, b.QueuedQueries[0].SQL, "the caller's batch is unchanged")
		require.Len(t, b.QueuedQueries[0].Arguments, 1)

		b = &pgx.Batch{}
		b.BeginTx(pgx.TxOptions{})
		b.Queue(rwOneArg, "t1")
		br = p.SendBatch(ctx, b)
		_, err = br.Exec() // the BEGIN
		require.NoError(t, err)
		require.Equal(t, "t1/"+a, get2(t, br.QueryRow()))
		require.NoError(t, br.Close())
		tx := br.Tx()
		require.Equal(t, "t2/"+a, get(tx, rwOneArg, "t2"))
		require.NoError(t, tx.Commit(ctx))

		require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
			require.Equal(t, "tx/"+a, get(tx, rwOneArg, "tx"))
			rows, err := tx.Query(ctx, rwNoArgs)
			require.NoError(t, err)
			vs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			require.Equal(t, []string{"none/" + a}, vs)
			_, err = tx.Exec(ctx, rwUpdate, int64(103))
			require.NoError(t, err)
			sp, err := tx.Begin(ctx)
			require.NoError(t, err)
			require.Equal(t, "sp/"+a, get(sp, rwOneArg, "sp"))
			require.NoError(t, sp.Commit(ctx))
			b := &pgx.Batch{}
			b.Queue(rwOneArg, "tb")
			br := tx.SendBatch(ctx, b)
			require.Equal(t, "tb/"+a, get2(t, br.QueryRow()))
			return br.Close()
		}))
		require.Equal(t, "by "+a, get(p, "SELECT name FROM products WHERE id = $1", int64(103)))
	})
}

func get2(t *testing.T, r pgx.Row) string {
	t.Helper()
	var v string
	require.NoError(t, r.Scan(&v))
	return v
}
