// Package lifecycle exports, imports, deletes and moves one tenant's data,
// driven by the schema model: every tenant table, in foreign key order,
// read and written through row level security with the tenant set, so an
// operation can neither miss a table nor touch another tenant's rows.
//
//	m, err := catalog.Discover(ctx, conn, catalog.DiscoverOptions{TenantColumn: "store_id", Root: "stores"})
//	tenant := rls.Int64(42)
//	man, err := lifecycle.Export(ctx, source, m, tenant, "export-42", lifecycle.ExportOptions{})  // GDPR portability
//	res, err := lifecycle.Delete(ctx, source, m, tenant, lifecycle.DeleteOptions{})               // GDPR erasure
//	mv, err := lifecycle.Move(ctx, source, target, m, tenant, "move-42", lifecycle.MoveOptions{}) // a database of its own
//
// The pools are borrowed, never closed. docs/lifecycle.md walks through
// the CLI verbs (pgtenancy tenant export|import|delete|move|checksum).
//
// # Export
//
// [Export] writes a directory: one data file per table in PostgreSQL's
// binary COPY format (or CSV with a header line), and a [Manifest] (JSON)
// with the tables in foreign key order, their columns, row counts,
// checksums and the files' SHA-256, the tenant, key type, setting and the
// version of the library's objects. All tables are read in one REPEATABLE
// READ transaction, a consistent snapshot.
//
// # Import
//
// [Import] loads an export into a database with the same schema, in one
// transaction (all or nothing) or in resumable batches
// ([ImportOptions.BatchRows]), keeping every key, advancing the sequences
// past the imported values, and comparing the target's checksums with the
// manifest's before it commits.
//
// # Delete
//
// [Delete] deletes in reverse foreign key order, in short batches sized to
// a target time, and reports the longest batch; a dry run counts.
//
// # Move
//
// [Move] is export, import, a comparison of the checksums of the target and
// of the source with the export's, then delete, each step recorded in the
// export's directory so that a move that stopped continues where it
// stopped.
//
// # Checksums
//
// A table's [Checksum] is its row count and the sum modulo 2^64 of a 64-bit
// hash of each row's values in their binary form: independent of row
// order, computed on the server by [Checksums] without sending a row, and
// by Export from the stream it writes. It detects accidents (a lost, a
// changed or an extra row), not tampering: use the files' SHA-256 for their
// integrity. It compares between servers of the same byte order (every
// x86-64 and ARM64 server).
//
// # Roles
//
// Every operation sets the tenant for each of its transactions exactly as
// package pool does (the setting and its companion stamp, transaction
// local), and refuses to run as a role that row level security does not
// apply to ([*NoRLSError]): a superuser, a BYPASSRLS role, or an owner of a
// table without FORCE ROW LEVEL SECURITY would see every tenant. Export and
// Delete work as the application role; Import needs the tables' owner
// (with FORCE ROW LEVEL SECURITY, as pgtenancy generates it) to advance
// sequences.
//
// # Refusals
//
// Export, Delete and Move refuse when a table outside the model holds
// tenant data ([*UncoveredError]: verify's table_not_in_model, or a
// foreign key to a tenant table from a table of any schema), so that an
// erasure never misses a table. The tables, columns, keys and sequences
// come from pgtenancy's one catalog reader, the same that packages catalog
// and verify use, in one batch of queries.
// Every error matches a sentinel with errors.Is: [ErrUnknownTenant],
// [ErrUncovered], [ErrNoRLS], [ErrTargetNotEmpty], [ErrSchemaMismatch],
// [ErrChecksumMismatch], [ErrConflict], [ErrForeignKeyCycle], [ErrCitus],
// [ErrManifest], [ErrSourceChanged], [ErrDirNotEmpty], [ErrSameDatabase].
//
// # Citus
//
// On Citus every operation refuses ([ErrCitus]). To give a large tenant
// shards of its own, isolate it inside the cluster (package citus), which
// moves it without an export.
package lifecycle
