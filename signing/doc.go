// Package signing is pgtenancy's signed mode: a tenant setting that SQL
// running as the application role cannot forge (docs/security.md).
//
// Without it, any SQL the application role runs, injected SQL included,
// can set the tenant setting to another tenant and read that tenant's
// rows. In signed mode the pool sets the setting to the tenant and an
// HMAC-SHA256 made with a key that only the application process holds,
// and the policies admit the tenant only when pgtenancy.tenant(), which
// reads the keys from a table that only its owner can read, verifies it.
//
// # Values
//
// A [Signer] turns a tenant into
//
//	v1:<key id>:<expiry in epoch seconds, 0 for none>:<HMAC-SHA256, hex>:<tenant>
//
// The MAC covers "v1:<key id>:<expiry>:<tenant>"; the key id and expiry
// cannot hold a colon and the tenant comes last, so no tenant text can
// shift a field. [Verify] checks a value in Go as the database does.
//
// # Keys
//
// A [Key] is an id and 32 to 64 secret bytes. The database holds a copy in
// [KeyTable]; [Rotate], [AddKey], [Retire] and [Keys] manage it (the
// pgtenancy key command calls them), run as the role that installed the
// library. A rotation has two keys valid at once: Rotate adds the new
// key, the application moves to signing with it, Retire removes the old.
//
// # Enabling
//
// Generate the policies with policy.Model.Signed (pgtenancy generate
// --signed), install the library (migrations.Install), add a key, and give
// the pool a Signer (pool.Config.Signer). Not with Citus.
package signing
