package verify_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// manyTablesModel is a store with n tenant tables besides the root, each
// referencing the previous one, all isolated by pgtenancy.
func manyTablesModel(n int) (string, *policy.Model) {
	var ddl strings.Builder
	ddl.WriteString("CREATE TABLE stores (id bigint PRIMARY KEY);\n")
	m := &policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{{Name: "stores", TenantColumn: "id", Root: true}}}
	for i := range n {
		name := fmt.Sprintf("t%03d", i)
		fmt.Fprintf(&ddl, "CREATE TABLE %s (store_id bigint NOT NULL REFERENCES stores, id bigint NOT NULL, prev_id bigint, payload text, PRIMARY KEY (store_id, id));\n", name)
		t := policy.Table{Name: name, TenantColumn: "store_id"}
		if i > 0 {
			t.ForeignKeys = []policy.ForeignKey{{Columns: []string{"prev_id"}, RefTable: fmt.Sprintf("t%03d", i-1)}}
		}
		if i%5 == 0 {
			fmt.Fprintf(&ddl, "CREATE VIEW %s_v WITH (security_invoker) AS SELECT * FROM %s;\n", name, name)
		}
		m.Tables = append(m.Tables, t)
	}
	return ddl.String(), m
}

func manyTablesTemplate(name string, n int) *pgtenancytest.Template {
	ddl, m := manyTablesModel(n)
	return &pgtenancytest.Template{Name: name, Setup: func(ctx context.Context, conn *pgx.Conn) error {
		if n < 1000 {
			return setupIsolated(ctx, conn, ddl, m)
		}
		// Thousands of tables take more locks than one transaction may
		// hold: create and isolate them in chunks.
		if err := execChunks(ctx, conn, ddl); err != nil {
			return err
		}
		if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
			return err
		}
		gen, err := catalog.Plan(ctx, conn, m)
		if err != nil {
			return err
		}
		return execChunks(ctx, conn, gen.Up)
	}}
}

// execChunks runs SQL whose statements end lines with ";", a few hundred
// statements per transaction.
func execChunks(ctx context.Context, conn *pgx.Conn, sql string) error {
	stmts := strings.SplitAfter(sql, ";\n")
	for len(stmts) > 0 {
		n := min(len(stmts), 400)
		if _, err := conn.Exec(ctx, strings.Join(stmts[:n], "")); err != nil {
			return err
		}
		stmts = stmts[n:]
	}
	return nil
}

var (
	tables5000 = manyTablesTemplate("verify_5000", 4999)
	tables500  = manyTablesTemplate("verify_500", 499)
	tables2    = manyTablesTemplate("verify_3", 2)
)

// BenchmarkVerify500 runs verify.Run on a database of 500 isolated tenant
// tables (and 100 views) with their model; the target is under 2 s.
// BenchmarkVerify5000 does it on 5,000 (target: under 5 s), and the
// Inferred ones without a model, as a first run with default flags does:
// every policy judged from its parse tree, the tenant tables inferred.
// BenchmarkVerify3 is the baseline of the same work on 3 tables: the ratio
// shows how it scales.
func BenchmarkVerify500(b *testing.B) { benchmarkVerify(b, tables500, 499, true) }

func BenchmarkVerify5000(b *testing.B) { benchmarkVerify(b, tables5000, 4999, true) }

func BenchmarkVerify500Inferred(b *testing.B) { benchmarkVerify(b, tables500, 499, false) }

func BenchmarkVerify5000Inferred(b *testing.B) { benchmarkVerify(b, tables5000, 4999, false) }

func BenchmarkVerify3(b *testing.B) { benchmarkVerify(b, tables2, 2, true) }

func benchmarkVerify(b *testing.B, tmpl *pgtenancytest.Template, n int, model bool) {
	db := pgtenancytest.NewDB(b, tmpl)
	conn := db.AppConn(b)
	_, m := manyTablesModel(n)
	opts := verify.Options{Model: m}
	if !model {
		opts = verify.Options{AppRole: pgtenancytest.AppRole}
	}
	r, err := verify.Run(b.Context(), conn, opts)
	if err != nil {
		b.Fatal(err)
	}
	if r.HasErrors() || len(r.Findings) != 0 {
		b.Fatalf("want a clean database, got %v", r.Findings)
	}
	for b.Loop() {
		if _, err := verify.Run(b.Context(), conn, opts); err != nil {
			b.Fatal(err)
		}
	}
}
