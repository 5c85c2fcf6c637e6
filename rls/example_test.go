package rls_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Parse validates a value for its key type and returns it in canonical
// form; a bad value is an *InvalidTenantError.
func ExampleParse() {
	t, err := rls.Parse(rls.UUID, "0195C3B1-0000-7000-8000-00000000002A")
	fmt.Println(t, err)
	_, err = rls.Parse(rls.BigInt, "42; DROP TABLE stores")
	fmt.Println(errors.Is(err, rls.ErrInvalidTenant), err)
	// Output:
	// 0195c3b1-0000-7000-8000-00000000002a <nil>
	// true rls: invalid bigint tenant "42; DROP TABLE stores": not a decimal integer
}

// The tenant travels in the context; work without one fails with
// ErrNoTenant.
func ExampleWithTenant() {
	ctx := rls.WithTenant(context.Background(), rls.Int64(42))
	t, err := rls.Require(ctx)
	fmt.Println(t, err)
	_, err = rls.Require(context.Background())
	fmt.Println(err)
	// Output:
	// 42 <nil>
	// rls: no tenant in context
}

// Setting defaults and checks the name of the tenant setting; XactSetting
// names its companion, which holds the transaction's stamp.
func ExampleSetting() {
	s, err := rls.Setting("")
	fmt.Println(s, rls.XactSetting(s), err)
	_, err = rls.Setting("App.Tenant")
	fmt.Println(errors.Is(err, rls.ErrInvalidSetting))
	// Output:
	// app.current_tenant app.current_tenant_xact <nil>
	// true
}
