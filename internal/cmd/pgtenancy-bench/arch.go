package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
)

// The three architectures.
const (
	archDB     = "db-per-tenant"
	archSchema = "schema-per-tenant"
	archShared = "shared"
)

var archNames = []string{archDB, archSchema, archShared}

// archSettings are the server settings of the architecture comparison's
// cluster.
var archSettings = map[string]string{
	"shared_buffers":     "256MB",
	"max_wal_size":       "4GB",
	"checkpoint_timeout": "30min",
}

// tenantDDL is one tenant's tables and data in the database-per-tenant and
// schema-per-tenant architectures; %[1]s is the schema prefix ("" or
// "t_00001.").
const tenantDDL = `
CREATE TABLE %[1]scategories (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE %[1]sproducts (id bigint PRIMARY KEY, category_id bigint NOT NULL REFERENCES %[1]scategories,
    name text NOT NULL, price bigint NOT NULL);
CREATE INDEX products_category ON %[1]sproducts (category_id);
CREATE TABLE %[1]sorders (id bigint PRIMARY KEY, product_id bigint NOT NULL REFERENCES %[1]sproducts,
    quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO %[1]scategories SELECT c, 'category ' || c FROM generate_series(1, 10) c;
INSERT INTO %[1]sproducts SELECT i, (i - 1) %% 10 + 1, 'product ' || i, i * 100 FROM generate_series(1, 100) i;
`

// sharedDDL is the same tables shared by every tenant, under the policies
// pgtenancy generates.
const sharedDDL = `
CREATE TABLE categories (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE products (tenant_id bigint NOT NULL, id bigint NOT NULL, category_id bigint NOT NULL,
    name text NOT NULL, price bigint NOT NULL, PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, category_id) REFERENCES categories);
CREATE INDEX products_category ON products (tenant_id, category_id);
CREATE TABLE orders (tenant_id bigint NOT NULL, id bigint NOT NULL, product_id bigint NOT NULL,
    quantity int NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products);
`

// sharedData adds tenants %[1]d to %[2]d to the shared tables.
const sharedData = `
INSERT INTO categories SELECT t, c, 'category ' || c FROM generate_series(%[1]d, %[2]d) t, generate_series(1, 10) c;
INSERT INTO products SELECT t, i, (i - 1) %% 10 + 1, 'product ' || i, i * 100
    FROM generate_series(%[1]d, %[2]d) t, generate_series(1, 100) i;
`

// archResult is one architecture at one tenant count.
type archResult struct {
	arch         string
	tenants      int
	setup        time.Duration // creating the tenants' databases, schemas or rows, in total
	migrate      time.Duration // adding a column and an index to products
	pgClass      int64         // pg_class rows, summed over the databases
	catalogBytes int64         // size of pg_catalog's tables and indexes (not the shared ones), summed over the databases
	dbBytes      int64         // size of the databases
	extrapolated bool
}

func runArch(ctx context.Context, o options, prog *progress, res *results) error {
	srv, err := openServer(ctx, archSettings)
	if err != nil {
		return err
	}
	defer srv.close(context.WithoutCancel(ctx))
	if res.machine.pgVersion == "" {
		res.machine.pgVersion = srv.version
	}
	admin, err := srv.connect(ctx, "", "")
	if err != nil {
		return err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_class").Scan(&res.emptyPgClass); err != nil {
		return err
	}
	ns := slices.Sorted(slices.Values(o.arch))

	// Database per tenant: a template with one tenant's tables and rows,
	// cloned for each tenant.
	const template = "pgtenancy_tenant_template"
	if err := srv.createDB(ctx, admin, template, ""); err != nil {
		return err
	}
	if err := execAs(ctx, srv, template, fmt.Sprintf(tenantDDL, "")); err != nil {
		return err
	}
	dbName := func(i int) string { return fmt.Sprintf("pgtenancy_tenant_%05d", i) }
	created := 0
	var setup time.Duration
	var last *archResult
	for _, n := range ns {
		if n > o.dbMax && last != nil {
			f := float64(n) / float64(last.tenants)
			r := &archResult{arch: archDB, tenants: n, extrapolated: true,
				setup: time.Duration(float64(last.setup) * f), migrate: time.Duration(float64(last.migrate) * f),
				pgClass: int64(float64(last.pgClass) * f), catalogBytes: int64(float64(last.catalogBytes) * f),
				dbBytes: int64(float64(last.dbBytes) * f)}
			prog.linef("%s %d: extrapolated from %d (-db-per-tenant-max %d)", archDB, n, last.tenants, o.dbMax)
			res.arch = append(res.arch, r)
			continue
		}
		bar := prog.step(fmt.Sprintf("%s %d: create databases", archDB, n), n-created)
		first := created
		t0 := time.Now()
		for created < n {
			created++
			if err := srv.createDB(ctx, admin, dbName(created), template); err != nil {
				return err
			}
			bar.set(created - first)
		}
		setup += time.Since(t0)
		bar.done(fmt.Sprintf("%d new, %.1f ms each", n-first, float64(time.Since(t0).Microseconds())/1000/float64(max(n-first, 1))))

		r := &archResult{arch: archDB, tenants: n, setup: setup}
		bar = prog.step(fmt.Sprintf("%s %d: migrate each database", archDB, n), n)
		for i := 1; i <= n; i++ {
			t0 := time.Now()
			conn, err := srv.connect(ctx, dbName(i), ownerRole)
			if err != nil {
				return err
			}
			if _, err := conn.Exec(ctx, migrationSQL("", n, false)); err != nil {
				conn.Close(ctx)
				return err
			}
			r.migrate += time.Since(t0)
			err = addCatalogStats(ctx, conn, r)
			conn.Close(ctx)
			if err != nil {
				return err
			}
			bar.set(i)
		}
		bar.done(fmt.Sprintf("migration %v", r.migrate.Round(time.Millisecond)))
		res.arch = append(res.arch, r)
		last = r
	}
	// On an external server, free the disk before the next architecture (a
	// throwaway cluster is removed as a whole at the end, much faster).
	if srv.cluster == nil {
		bar := prog.step(archDB+": drop the databases", created)
		for i := 1; i <= created; i++ {
			if err := srv.dropDB(ctx, admin, dbName(i)); err != nil {
				return err
			}
			bar.set(i)
		}
		bar.done("")
	}

	// Schema per tenant: one database, a schema per tenant.
	const schemaDB = "pgtenancy_bench_schemas"
	if err := srv.createDB(ctx, admin, schemaDB, ""); err != nil {
		return err
	}
	conn, err := srv.connect(ctx, schemaDB, ownerRole)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema := func(i int) string { return fmt.Sprintf("t_%05d", i) }
	created, setup = 0, 0
	for _, n := range ns {
		bar := prog.step(fmt.Sprintf("%s %d: create schemas", archSchema, n), n-created)
		first := created
		t0 := time.Now()
		for created < n {
			created++
			if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema(created)+";"+fmt.Sprintf(tenantDDL, schema(created)+".")); err != nil {
				return err
			}
			bar.set(created - first)
		}
		setup += time.Since(t0)
		bar.done("")
		r := &archResult{arch: archSchema, tenants: n, setup: setup}
		bar = prog.step(fmt.Sprintf("%s %d: migrate each schema", archSchema, n), n)
		t0 = time.Now()
		for i := 1; i <= n; i++ {
			if _, err := conn.Exec(ctx, migrationSQL(schema(i)+".", n, false)); err != nil {
				return err
			}
			bar.set(i)
		}
		r.migrate = time.Since(t0)
		if err := addCatalogStats(ctx, conn, r); err != nil {
			return err
		}
		bar.done(fmt.Sprintf("migration %v", r.migrate.Round(time.Millisecond)))
		res.arch = append(res.arch, r)
	}
	conn.Close(ctx)
	if err := srv.dropDB(ctx, admin, schemaDB); err != nil {
		return err
	}

	// Shared tables under pgtenancy: one set of tables, a tenant_id column.
	const sharedDB = "pgtenancy_bench_shared"
	if err := srv.createDB(ctx, admin, sharedDB, ""); err != nil {
		return err
	}
	conn, err = srv.connect(ctx, sharedDB, ownerRole)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	ddl := sharedDDL
	for _, t := range []string{"categories", "products", "orders"} {
		ddl += testschema.RLS(t)
	}
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return err
	}
	// The rows are loaded as the superuser: FORCE ROW LEVEL SECURITY holds
	// the owner to the policies.
	loader, err := srv.connect(ctx, sharedDB, "")
	if err != nil {
		return err
	}
	defer loader.Close(context.WithoutCancel(ctx))
	created, setup = 0, time.Since(t0)
	for _, n := range ns {
		bar := prog.step(fmt.Sprintf("%s %d: add tenants' rows", archShared, n), 1)
		t0 := time.Now()
		if _, err := loader.Exec(ctx, fmt.Sprintf(sharedData, created+1, n)); err != nil {
			return err
		}
		created = n
		setup += time.Since(t0)
		bar.done("")
		for _, t := range []string{"categories", "products"} {
			if _, err := conn.Exec(ctx, "VACUUM ANALYZE "+t); err != nil {
				return err
			}
		}
		// Once for every tenant: the median of three runs (each adds its own
		// column and index).
		r := &archResult{arch: archShared, tenants: n, setup: setup}
		bar = prog.step(fmt.Sprintf("%s %d: migrate once (median of 3)", archShared, n), 3)
		var times []time.Duration
		for k := range 3 {
			t0 := time.Now()
			if _, err := conn.Exec(ctx, migrationSQL("", n*10+k, true)); err != nil {
				return err
			}
			times = append(times, time.Since(t0))
			bar.set(k + 1)
		}
		slices.Sort(times)
		r.migrate = times[1]
		if err := addCatalogStats(ctx, conn, r); err != nil {
			return err
		}
		bar.done(fmt.Sprintf("migration %v", r.migrate.Round(time.Millisecond)))
		res.arch = append(res.arch, r)
	}
	return nil
}

// migrationSQL adds a column sku_<k> and an index on it to products, in
// schema prefix.
func migrationSQL(prefix string, k int, shared bool) string {
	col := fmt.Sprintf("sku_%d", k)
	cols := col
	if shared {
		cols = "tenant_id, " + col
	}
	return fmt.Sprintf("ALTER TABLE %[1]sproducts ADD COLUMN %[2]s text; CREATE INDEX products_%[2]s ON %[1]sproducts (%[3]s)",
		prefix, col, cols)
}

// addCatalogStats adds the catalog size of conn's database to r.
func addCatalogStats(ctx context.Context, conn *pgx.Conn, r *archResult) error {
	var rows, catalog, db int64
	err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class),
		(SELECT sum(pg_total_relation_size(oid))::bigint FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r' AND NOT relisshared),
		pg_database_size(current_database())`).Scan(&rows, &catalog, &db)
	r.pgClass += rows
	r.catalogBytes += catalog
	r.dbBytes += db
	return err
}

// execAs runs sql in database db as the owner role.
func execAs(ctx context.Context, srv *server, db, sql string) error {
	conn, err := srv.connect(ctx, db, ownerRole)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// archFor returns the results of one architecture, in tenant order.
func archFor(all []*archResult, arch string) []*archResult {
	var out []*archResult
	for _, r := range all {
		if r.arch == arch {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *archResult) int { return a.tenants - b.tenants })
	return out
}

// archLabel is the display name of an architecture.
func archLabel(a string) string {
	return strings.ReplaceAll(a, "-", " ")
}
