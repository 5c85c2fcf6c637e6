package verify_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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
		return setupIsolated(ctx, conn, ddl, m)
	}}
}

var (
	tables500 = manyTablesTemplate("verify_500", 499)
	tables2   = manyTablesTemplate("verify_3", 2)
)

// BenchmarkVerify500 runs verify.Run on a database of 500 isolated tenant
// tables (and 100 views); the target is under 2 s. BenchmarkVerify3 is the
// baseline of the same work on 3 tables: the ratio shows how it scales.
func BenchmarkVerify500(b *testing.B) { benchmarkVerify(b, tables500, 499) }

func BenchmarkVerify3(b *testing.B) { benchmarkVerify(b, tables2, 2) }

func benchmarkVerify(b *testing.B, tmpl *pgtenancytest.Template, n int) {
	db := pgtenancytest.NewDB(b, tmpl)
	conn := db.AppConn(b)
	_, m := manyTablesModel(n)
	opts := verify.Options{Model: m}
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
