// Package riverjobs makes River (github.com/riverqueue/river) jobs keep
// the tenant of the code that inserted them.
//
// It is a module of its own, so that applications that do not use River
// do not depend on it.
//
// # Middleware
//
// [Middleware] is River insert and worker middleware. At insert, it records
// the context's tenant in the job's metadata; when the job is worked, on
// every attempt, it puts that tenant back into the worker's context, so
// the worker's work on a pgtenancy pool runs for the job's tenant and row
// level security shows it that tenant's rows only. A job without a tenant
// fails closed with [ErrNoTenant] (River retries it as any failed job),
// unless its kind is declared tenant-free.
//
//	client, err := river.NewClient(riverpgxv5.New(tenantPool.Unwrap()), &river.Config{
//		Middleware: []rivertype.Middleware{riverjobs.NewMiddleware(riverjobs.Options{
//			TenantFree: []string{"nightly_report"},
//		})},
//		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
//		Workers: workers,
//	})
//
// # Transactional enqueue
//
// A transaction of a pgtenancy pool (pool.Pool.Begin) is a pgx.Tx, so
// River's InsertTx takes it: the job is inserted in the tenant's
// transaction and exists only if it commits. River's driver reads the
// query exec mode through the transaction's Config method (pool.Tx
// has one), not through its connection.
//
// # River's tables
//
// River's tables ([Tables]) are shared by all tenants. Declare them as
// global tables to pgtenancy (verify then knows them) and grant the
// application role what River's client needs with [GrantSQL].
package riverjobs
