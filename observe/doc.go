// Package observe puts the tenant into what an application observes of
// its database work: logs, metrics and traces. It has no dependency
// beyond the standard library and package rls; the OpenTelemetry exporter
// lives in its own module, github.com/pgtenancy/pgtenancy/tenantotel, so
// that applications that do not use OpenTelemetry do not link it.
//
// # Units of work
//
// A pool (pool.Config.Observer) reports each unit of work it runs (a
// statement, a batch, a transaction, a copy, an AcquireFunc) to an
// [Observer] when it ends, as a [Unit]: its tenant, kind, rows, error and
// duration. [Metrics] is an Observer that keeps per-tenant totals in
// memory; tenantotel's Observer turns units into spans and OpenTelemetry
// metrics.
//
// # Cardinality
//
// Tenants are many; a metrics backend wants few label values. A [Guard]
// gives its own label to the tenants that spent the most database time in
// the last window (the top N, N = TopN) and "other" to the rest, so a
// noisy neighbour shows up by name within a window while the number of
// series stays bounded.
//
// # Sensitive tenant ids
//
// Tenant ids can be customer numbers or names. A [Hasher] replaces them
// with a keyed hash (HMAC-SHA-256 with a secret key, 16 hex digits), the
// same for a tenant in logs, metrics and traces, so they can be joined
// without showing the id. An unkeyed hash of a bigint would be reversed
// by trying every number; the key prevents that.
//
// # Logs
//
// [NewLogHandler] wraps a [log/slog.Handler] so that every record logged
// with a context that carries a tenant gets a "tenant" attribute.
package observe
