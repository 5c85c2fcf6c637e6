// Package catalog reads a live database for what pgtenancy generates:
// [Discover] builds a schema model from the catalog, [Check] compares a
// declared model with the database, [Existing] reads what the database
// already holds of the model's objects, and [Plan] returns the SQL that
// brings the database to the model (policy.Plan on those facts): the same
// as policy.Generate on a database without any of it, empty on one that
// matches.
//
//	m, err := catalog.Discover(ctx, conn, catalog.DiscoverOptions{
//		TenantColumn: "store_id", Root: "stores", Global: []string{"currencies"},
//	})
//	m.AppRole = "app"
//	mig, err := catalog.Plan(ctx, conn, m)
//	if !mig.IsEmpty() {
//		// apply mig.Up, or write it as a migration (package migrations)
//	}
//
// Every function reads the catalog in one transaction that it rolls back,
// through the one reader that the verify package shares, with its queries
// batched: Discover and Check in three round trips (begin, one batch,
// rollback), Existing and Plan in four. Plan compares the policies it finds
// with the server's own rendering of the generated ones, which it obtains
// on temporary tables: the role needs the TEMPORARY privilege (PUBLIC has
// it by default).
//
// Differences between a model and the database are [*SchemaError]s
// (errors.Is [ErrSchemaMismatch]); bad options are [*OptionsError]s
// (errors.Is [ErrInvalidOptions]); a bad model is a policy.ModelError.
package catalog
