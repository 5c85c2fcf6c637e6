package pool_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

// Wrap runs a Pool on a pgxpool that other code uses too (a job queue's
// driver, say), and borrows it: closing the Pool leaves the pgxpool open.
func ExampleWrap() {
	db, drop := exampleDB()
	defer drop()
	ctx := context.Background()
	raw, err := pgxpool.New(ctx, db.AppURL)
	if err != nil {
		panic(err)
	}
	defer raw.Close()

	p, err := pool.Wrap(raw, pool.Config{KeyType: rls.BigInt})
	if err != nil {
		panic(err)
	}
	var n int
	err = p.QueryRow(rls.WithTenant(ctx, rls.Int64(1)), "SELECT count(*) FROM products").Scan(&n)
	fmt.Println("store 1 products:", n, err)
	// Work straight on the pgxpool gets no tenant, so no tenant rows.
	err = raw.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n)
	fmt.Println("no tenant:", n, err)
	// A uuid tenant on a bigint schema fails before any I/O.
	err = p.QueryRow(rls.WithTenant(ctx, rls.MustParse(rls.UUID, "0195c3b1-0000-7000-8000-000000000001")), "SELECT 1").Scan(&n)
	fmt.Println(errors.Is(err, pool.ErrKeyType))
	p.Close()
	fmt.Println("pgxpool still open:", raw.Ping(ctx) == nil)
	// Output:
	// store 1 products: 3 <nil>
	// no tenant: 0 <nil>
	// true
	// pgxpool still open: true
}

// IsRLSViolation tells a write that the policies refuse from a missing
// privilege, though both are SQLSTATE 42501.
func ExampleIsRLSViolation() {
	db, drop := exampleDB()
	defer drop()
	p, err := pool.New(context.Background(), db.AppURL)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	ctx := rls.WithTenant(context.Background(), rls.Int64(1))

	_, err = p.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES (2, 'for store 2', 1, 'EUR')")
	fmt.Println("other tenant's row:", pool.IsRLSViolation(err))
	_, err = p.Exec(ctx, "TRUNCATE products")
	fmt.Println("TRUNCATE:", pool.IsRLSViolation(err), err)
	// Output:
	// other tenant's row: true
	// TRUNCATE: false ERROR: permission denied for table products (SQLSTATE 42501)
}

// Config.Audit runs an audit before the pool starts: with verify.Audit, a
// database where row level security would be inert stops the service.
func ExampleConfig_audit() {
	db, drop := exampleDB()
	defer drop()
	ctx := context.Background()
	cfg, err := pool.ParseConfig(db.AppURL)
	if err != nil {
		panic(err)
	}
	cfg.Audit = verify.Audit(verify.Options{Model: testschema.Model(rls.BigInt, "")})
	p, err := pool.NewWithConfig(ctx, cfg)
	fmt.Println("started:", err == nil)
	p.Close()

	// The owner (the migration role) turns FORCE off: the owner would
	// bypass every policy, and the pool refuses to start.
	owner, drop2 := ownerConn(db.OwnerURL)
	defer drop2()
	if _, err := owner.Exec(ctx, "ALTER TABLE purchases NO FORCE ROW LEVEL SECURITY"); err != nil {
		panic(err)
	}
	_, err = pool.NewWithConfig(ctx, cfg)
	fmt.Println(errors.Is(err, verify.ErrFailed))
	fmt.Println(err)
	// Output:
	// started: true
	// true
	// verify: 1 error(s); rls_not_forced public.purchases: row level security is not forced: the table owner bypasses every policy
}

// sqlc's generated Queries take the Pool as their DBTX: the handler's query
// needs no tenant filter. (Queries here is what sqlc generates for the
// store's queries; see sqlc_test.go.)
func ExamplePool_sqlc() {
	db, drop := exampleDB()
	defer drop()
	p, err := pool.New(context.Background(), db.AppURL)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	q := New(p)
	for _, store := range []int64{1, 2} {
		products, err := q.ListProducts(rls.WithTenant(context.Background(), rls.Int64(store)))
		if err != nil {
			panic(err)
		}
		fmt.Println(store, len(products), products[0].Name)
	}
	// Output:
	// 1 3 A apple
	// 2 2 B bread
}

// ownerConn connects as the tables' owner.
func ownerConn(url string) (*pgx.Conn, func()) {
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		panic(err)
	}
	return c, func() { _ = c.Close(context.Background()) }
}
