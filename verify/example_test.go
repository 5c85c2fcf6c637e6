package verify_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// Run audits a database; here one whose owner turned FORCE off on one
// table and granted TRUNCATE on another.
func ExampleRun() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, auditStore)
	ctx := context.Background()
	owner, err := pgx.Connect(ctx, db.OwnerURL)
	if err != nil {
		panic(err)
	}
	defer owner.Close(ctx)
	if _, err := owner.Exec(ctx, `ALTER TABLE products NO FORCE ROW LEVEL SECURITY;
GRANT TRUNCATE ON purchases TO `+pgtenancytest.AppRole); err != nil {
		panic(err)
	}

	report, err := verify.Run(ctx, owner, verify.Options{
		Model: testschema.Model(rls.BigInt, pgtenancytest.AppRole),
	})
	if err != nil {
		panic(err) // could not run
	}
	for _, f := range report.Errors() {
		fmt.Printf("%s %s\n  fix: %s\n", f.Code, f.Object, f.Fix)
	}
	fmt.Println(errors.Is(report.Err(), verify.ErrFailed))
	// Output:
	// rls_not_forced public.products
	//   fix: ALTER TABLE "public"."products" FORCE ROW LEVEL SECURITY;
	// truncate_granted public.purchases
	//   fix: REVOKE TRUNCATE ON TABLE "public"."purchases" FROM "pgtenancy_test_app", PUBLIC;
	// true
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
