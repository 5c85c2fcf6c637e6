// Package rls holds tenant identity: the validated tenant value that pgtenancy
// carries in a [context.Context] and hands to PostgreSQL.
//
// # Key types
//
// A tenant key is a bigint, a uuid or a text value ([BigInt], [UUID], [Text]),
// or an integer or smallint ([Integer], [SmallInt]) for schemas whose keys
// are serial (int4), as older Rails and Django applications create them.
// [Parse] validates a string for its key type and returns a [Tenant] in
// canonical form; a bad value gives an [*InvalidTenantError] that matches
// [ErrInvalidTenant] with errors.Is.
//
//	t, err := rls.Parse(rls.BigInt, r.Header.Get("X-Tenant-ID"))
//	if err != nil { ... }          // errors.Is(err, rls.ErrInvalidTenant)
//	ctx = rls.WithTenant(ctx, t)
//
// # Context
//
// [WithTenant] stores a tenant in a context and [FromContext] reads it back.
// [Require] returns [ErrNoTenant] when a context carries none: pgtenancy's pool
// calls it before any I/O, so work without a tenant fails before it reaches
// the database.
//
// # The tenant setting
//
// PostgreSQL learns the tenant from a custom setting, [DefaultSetting]
// ("app.current_tenant") unless configured otherwise; [Setting] is the one
// place that defaults and validates its name, for the schema model, the
// pool and the library's objects alike. Whoever sets the tenant for a
// transaction also sets the setting's companion, [XactSetting], to the
// transaction's stamp ([XactStamp]); the policies that pgtenancy generates
// admit a tenant only when both were set in the transaction that reads, so
// a tenant left at session level is inert.
//
// Cross-tenant work (admin tasks, reports, data migrations) has no magic
// tenant value: run it through package admin, a pool of its own type that
// connects as a separate role with BYPASSRLS.
package rls
