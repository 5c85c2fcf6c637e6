package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

var productColumns = []string{"store_id", "name", "price_cents", "currency"}

func productRows(store int64, prefix string, n int) [][]any {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{store, fmt.Sprintf("%s %d", prefix, i), int64(i), "EUR"}
	}
	return rows
}

func countByName(t *testing.T, db *pgtenancytest.DB, pattern string) int {
	t.Helper()
	var n int
	require.NoError(t, db.AdminConn(t).QueryRow(context.Background(),
		"SELECT count(*) FROM products WHERE name LIKE $1", pattern).Scan(&n))
	return n
}

// TestCopyFrom copies into a table under RLS, where plain COPY is refused.
func TestCopyFrom(t *testing.T) {
	t.Parallel()
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		for _, citus := range []bool{false, true} {
			db := pgtenancytest.NewDB(t, storeTemplate)
			p := newPool(t, db, poolOpts{mode: mode, citus: citus})
			ctx := ctxFor(tenantA)

			// The problem: COPY FROM into a table under RLS fails.
			_, err := p.Unwrap().CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "raw", 1)))
			require.Equal(t, "0A000", sqlState(err), "plain COPY: %v", err)

			n, err := p.CopyFrom(ctx, pgx.Identifier{"public", "products"}, productColumns, pgx.CopyFromRows(productRows(1, "copied", 500)))
			require.NoError(t, err)
			require.EqualValues(t, 500, n)
			require.Equal(t, 500, countByName(t, db, "copied %"))

			// One row of another tenant fails the whole copy.
			bad := productRows(1, "mixed", 300)
			bad[150][0] = int64(2)
			_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
			require.Equal(t, "42501", sqlState(err), "copy with a row of B: %v", err)
			require.Zero(t, countByName(t, db, "mixed %"), "partial copy")

			// A bad value fails the whole copy too.
			bad = productRows(1, "badvalue", 3)
			bad[2][3] = "XXX" // no such currency
			_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
			require.Equal(t, "23503", sqlState(err), "%v", err)
			require.Zero(t, countByName(t, db, "badvalue %"))

			// In a transaction: twice, then roll back; then commit.
			tx, err := p.Begin(ctx)
			require.NoError(t, err)
			for range 2 {
				n, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "txcopy", 10)))
				require.NoError(t, err)
				require.EqualValues(t, 10, n)
			}
			var inTx int
			require.NoError(t, tx.QueryRow(ctx, "SELECT count(*) FROM products WHERE name LIKE 'txcopy %'").Scan(&inTx))
			require.Equal(t, 20, inTx)
			require.NoError(t, tx.Rollback(ctx))
			require.Zero(t, countByName(t, db, "txcopy %"))

			tx, err = p.Begin(ctx)
			require.NoError(t, err)
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(2, "txB", 2)))
			require.Equal(t, "42501", sqlState(err), "%v", err)
			require.NoError(t, tx.Rollback(ctx))
			require.Zero(t, countByName(t, db, "txB %"))

			require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
				_, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "txok", 4)))
				return err
			}))
			require.Equal(t, 4, countByName(t, db, "txok %"))

			// B sees none of A's copies.
			require.Equal(t, seedProducts[tenantB], productIDs(t, ctxFor(tenantB), p))
			requireClean(t, p.Unwrap(), "app.current_tenant")
		}
	})
}

// typedDDL creates two tables of many column types, typed_rls under RLS
// for bigint tenants (the policies pgtenancy generates) and typed_plain without,
// and the same pair for the columns that take the temporary table (an array
// and a domain).
const typedDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE typed_plain (tenant_id bigint NOT NULL, id integer NOT NULL, t text, vc varchar(12), b bytea,
    ts timestamptz, n numeric(12,3), u uuid, j jsonb, f float8, ok boolean, d date, m mood);
CREATE TABLE typed_rls (LIKE typed_plain);
CREATE TABLE other_plain (tenant_id bigint NOT NULL, id integer NOT NULL, tags text[], qty positive_int);
CREATE TABLE other_rls (LIKE other_plain);
GRANT SELECT, INSERT ON typed_plain, typed_rls, other_plain, other_rls TO %[1]s;
ALTER TABLE typed_rls ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON typed_rls USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);
ALTER TABLE other_rls ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY isolation ON other_rls USING (tenant_id = NULLIF(current_setting('app.current_tenant', true), '')::bigint);
`

var typedColumns = []string{"tenant_id", "id", "t", "vc", "b", "ts", "n", "u", "j", "f", "ok", "d", "m"}

// typedRows returns n rows for tenant 1 that vary the Go types of the values
// and hold NULLs, quotes, backslashes, special numbers and infinities.
func typedRows(n int) [][]any {
	texts := []any{"plain", `with "double" and 'single' quotes`, `back\slash \\ \N`, "", "NULL", "{a,b}", "tab\tnew\nline", "ünïcødé ✓", nil}
	nums := []any{"12.345", 1.5, int64(-7), "NaN", pgtype.Numeric{Int: big.NewInt(123456), Exp: -3, Valid: true}, nil}
	uuids := []any{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, nil}
	jsons := []any{map[string]any{"k": `q"uote\`, "n": 1.5, "a": []any{1, nil}}, `{"raw": [true, null]}`, []byte(`"just a string"`), nil}
	times := []any{
		time.Date(2026, 11, 25, 13, 14, 15, 123456000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 0, time.FixedZone("x", -(3*3600+30*60))),
		pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true},
		nil,
	}
	floats := []any{0.1, math.NaN(), math.Inf(-1), float32(2.5), nil}
	rows := make([][]any, n)
	for i := range rows {
		var b any = []byte{0, byte(i), '\\', '"', 0xff}
		if i%5 == 0 {
			b = nil
		}
		var ok any = i%2 == 0
		if i%11 == 0 {
			ok = nil
		}
		var d any = time.Date(2000+i%30, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)
		if i%13 == 0 {
			d = pgtype.Date{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
		}
		m := []any{"sad", "ok", "happy", nil}[i%4]
		vc := texts[i%len(texts)]
		if s, isString := vc.(string); isString && len([]rune(s)) > 12 {
			vc = string([]rune(s)[:12])
		}
		rows[i] = []any{int64(1), int32(i), texts[i%len(texts)], vc, b, times[i%len(times)], nums[i%len(nums)],
			uuids[i%len(uuids)], jsons[i%len(jsons)], floats[i%len(floats)], ok, d, m}
	}
	return rows
}

// tableText returns every row of table as text, ordered by id, read as the
// superuser (who bypasses RLS).
func tableText(t *testing.T, db *pgtenancytest.DB, table string) []string {
	t.Helper()
	rows, err := db.AdminConn(t).Query(context.Background(), "SELECT x::text FROM "+table+" x ORDER BY id")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// requireSameRows compares two long lists of rows and reports the first
// difference (a diff of the whole lists would take minutes).
func requireSameRows(t *testing.T, want, got []string, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		require.Equal(t, want[i], got[i], "%s: row %d", msg, i)
	}
}

// TestCopyFromTypes copies the same rows with raw COPY into a table without
// RLS and with CopyFrom into its twin under RLS: the same rows come out,
// for many column types and Go value types, over several chunks.
func TestCopyFromTypes(t *testing.T) {
	t.Parallel()
	const n = 40000 // several chunks
	rows := typedRows(n)
	forEachMode(t, func(t *testing.T, mode pgx.QueryExecMode) {
		db := pgtenancytest.NewDB(t, storeTemplate)
		_, err := db.OwnerConn(t).Exec(context.Background(), fmt.Sprintf(typedDDL, pgtenancytest.AppRole))
		require.NoError(t, err)
		p := newPool(t, db, poolOpts{mode: mode})
		ctx := ctxFor(tenantA)
		got, err := p.Unwrap().CopyFrom(ctx, pgx.Identifier{"typed_plain"}, typedColumns, pgx.CopyFromRows(rows))
		require.NoError(t, err)
		require.EqualValues(t, n, got)
		want := tableText(t, db, "typed_plain")
		require.Len(t, want, n)

		got, err = p.CopyFrom(ctx, pgx.Identifier{"typed_rls"}, typedColumns, pgx.CopyFromRows(rows))
		require.NoError(t, err)
		require.EqualValues(t, n, got)
		requireSameRows(t, want, tableText(t, db, "typed_rls"), "Pool.CopyFrom")

		_, err = db.AdminConn(t).Exec(context.Background(), "DELETE FROM typed_rls")
		require.NoError(t, err)
		require.NoError(t, p.BeginFunc(ctx, func(tx pgx.Tx) error {
			got, err := tx.CopyFrom(ctx, pgx.Identifier{"typed_rls"}, typedColumns, pgx.CopyFromRows(rows))
			require.EqualValues(t, n, got)
			return err
		}))
		requireSameRows(t, want, tableText(t, db, "typed_rls"), "Tx.CopyFrom")

		// An array column and a domain take the temporary table.
		other := [][]any{
			{int64(1), 1, []string{"a", `b"c`, `d\e`, "", "NULL"}, 5},
			{int64(1), 2, nil, nil},
			{int64(1), 3, []any{"x", nil}, "7"},
		}
		otherCols := []string{"tenant_id", "id", "tags", "qty"}
		_, err = p.Unwrap().CopyFrom(ctx, pgx.Identifier{"other_plain"}, otherCols, pgx.CopyFromRows(other))
		require.NoError(t, err)
		got, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
		require.NoError(t, err)
		require.EqualValues(t, len(other), got)
		require.Equal(t, tableText(t, db, "other_plain"), tableText(t, db, "other_rls"))
		other[1][0] = int64(2)
		_, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
		require.Equal(t, "42501", sqlState(err), "%v", err)
		other[1][0], other[2][3] = int64(1), 0 // fails the domain's check
		_, err = p.CopyFrom(ctx, pgx.Identifier{"other_rls"}, otherCols, pgx.CopyFromRows(other))
		require.Equal(t, "23514", sqlState(err), "%v", err)
		require.Len(t, tableText(t, db, "other_rls"), 3)
		requireClean(t, p.Unwrap(), "app.current_tenant")
	})
}

// failingSource yields rows, then fails with err after n of them.
func failingSource(rows [][]any, n int, err error) pgx.CopyFromSource {
	i := 0
	return pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, err
		}
		i++
		return rows[i-1], nil
	})
}

// TestCopyFromChunksAllOrNothing fails copies of many chunks at their end,
// on the server and on the client: nothing is inserted.
func TestCopyFromChunksAllOrNothing(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, storeTemplate)
	p := newPool(t, db, poolOpts{})
	ctx := ctxFor(tenantA)
	const n = 30000

	bad := productRows(1, "late B", n)
	bad[n-10][0] = int64(2)
	_, err := p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
	require.Equal(t, "42501", sqlState(err), "a row of B near the end: %v", err)
	require.Zero(t, countByName(t, db, "late B %"))

	errSource := errors.New("source failed")
	_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, failingSource(productRows(1, "failing", n), n-1, errSource))
	require.ErrorIs(t, err, errSource)
	require.Zero(t, countByName(t, db, "failing %"))

	short := productRows(1, "short", n)
	short[n-1] = short[n-1][:3]
	_, err = p.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(short))
	require.ErrorContains(t, err, "expected 4 values, got 3 values")
	require.Zero(t, countByName(t, db, "short %"))

	// In a transaction, a failure on the client side takes back the chunks
	// already inserted, and the transaction goes on.
	tx, err := p.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES (1, 'before', 1, 'EUR')")
	require.NoError(t, err)
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, failingSource(productRows(1, "txfailing", n), n-1, errSource))
	require.ErrorIs(t, err, errSource)
	got, err := tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(productRows(1, "txafter", n)))
	require.NoError(t, err)
	require.EqualValues(t, n, got)
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, countByName(t, db, "before"))
	require.Zero(t, countByName(t, db, "txfailing %"))
	require.Equal(t, n, countByName(t, db, "txafter %"))

	// On the server side, the transaction is aborted, as with COPY.
	tx, err = p.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"products"}, productColumns, pgx.CopyFromRows(bad))
	require.Equal(t, "42501", sqlState(err), "%v", err)
	require.Error(t, tx.Commit(ctx))
	require.Zero(t, countByName(t, db, "late B %"))
	requireClean(t, p.Unwrap(), "app.current_tenant")
}
