package verify_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// Verify at startup, and refuse to start when the database has a hole.
// (Not run: it needs a database.)
func ExampleRun() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	report, err := verify.Run(ctx, pool, verify.Options{
		Model: &policy.Model{
			KeyType: rls.BigInt,
			AppRole: "app",
			Tables: []policy.Table{
				{Name: "stores", TenantColumn: "id", Root: true},
				{Name: "products", TenantColumn: "store_id"},
			},
		},
	})
	if err != nil {
		log.Fatal(err) // could not run
	}
	for _, f := range report.Findings {
		log.Printf("%s %s %s: %s\n  fix: %s", f.Severity, f.Code, f.Object, f.Message, f.Fix)
	}
	if err := report.Err(); err != nil {
		log.Fatal(err) // errors.Is(err, verify.ErrFailed)
	}
}

func ExampleReport_Err() {
	report := &verify.Report{Findings: []verify.Finding{
		{Severity: verify.SeverityError, Code: verify.CodeRLSNotForced, Kind: "table", Object: "public.products", Table: "public.products",
			Message: "row level security is not forced: the table owner bypasses every policy",
			Fix:     `ALTER TABLE "public"."products" FORCE ROW LEVEL SECURITY;`},
		{Severity: verify.SeverityWarning, Code: verify.CodeTenantNotIndexed, Kind: "table", Object: "public.purchases", Table: "public.purchases",
			Message: `no index leads with the tenant column "store_id": every policy check scans the table`},
	}}
	err := report.Err()
	fmt.Println(errors.Is(err, verify.ErrFailed))
	var verr *verify.FailedError
	if errors.As(err, &verr) {
		fmt.Println(len(verr.Findings), verr.Findings[0].Code)
	}
	fmt.Println(err)
	// Output:
	// true
	// 1 rls_not_forced
	// verify: 1 error(s); rls_not_forced public.products: row level security is not forced: the table owner bypasses every policy
}
