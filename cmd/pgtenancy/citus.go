package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/citus"
	"github.com/pgtenancy/pgtenancy/rls"
)

const placementSynopsis = `--tenant ID [flags]

Prints where a tenant's rows live on a Citus cluster: for the table and
every table co-located with it, the shard that holds the tenant's rows and
the node (host:port) that holds the shard. ISOLATED is yes when the shard
holds that tenant only (after citus-isolate). The tenant's key type follows
from the distribution column's type.

Examples:
  pgtenancy citus-placement --database-url $DATABASE_URL --table stores --tenant 42
  pgtenancy citus-placement --tenant 42 --format json`

const isolateSynopsis = `--tenant ID [flags]

Moves a large tenant's rows of the table and of every table co-located with
it onto new shards that hold that tenant only (isolate_tenant_to_new_shard
with CASCADE), then prints where they are. The new shards stay on their
node; move them with citus_move_shard_placement. A tenant already isolated
is left as it is. Needs the tables' owner or a superuser.

Examples:
  pgtenancy citus-isolate --database-url $DATABASE_URL --table stores --tenant 42
  pgtenancy citus-isolate --tenant 42 --transfer-mode block_writes`

// citusFlags are the flags of the Citus verbs.
type citusFlags struct {
	url, table, tenant, format string
}

func addCitusFlags(f *citusFlags, args []string, name, synopsis string, stderr io.Writer, extra func(fsAdd func(name, value, usage string) *string)) (int, bool) {
	fs := newFlagSet(name, stderr, synopsis)
	fs.StringVar(&f.url, "database-url", "", "Citus coordinator to connect to (default $DATABASE_URL)")
	fs.StringVar(&f.table, "table", "stores", "a distributed tenant table (the root table, usually)")
	fs.StringVar(&f.tenant, "tenant", "", "the tenant's key (required)")
	fs.StringVar(&f.format, "format", "text", "output format: text or json")
	if extra != nil {
		extra(fs.String)
	}
	code, ok := parseFlags(fs, args)
	if !ok {
		return code, false
	}
	switch {
	case f.tenant == "":
		fmt.Fprintf(stderr, "pgtenancy %s: --tenant is required\n", name)
		return exitError, false
	case f.format != "text" && f.format != "json":
		fmt.Fprintf(stderr, "pgtenancy %s: --format %q: want text or json\n", name, f.format)
		return exitError, false
	}
	return 0, true
}

// citusTenant connects and parses the tenant for the table's distribution
// column type.
func citusTenant(ctx context.Context, f *citusFlags) (*pgx.Conn, rls.Tenant, error) {
	dsn := databaseURL(f.url)
	if dsn == "" {
		return nil, rls.Tenant{}, errors.New("no database: pass --database-url or set DATABASE_URL")
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, rls.Tenant{}, err
	}
	key, err := citus.TenantKeyType(ctx, conn, f.table)
	if err == nil {
		var t rls.Tenant
		if t, err = rls.Parse(key, f.tenant); err == nil {
			return conn, t, nil
		}
	}
	conn.Close(context.WithoutCancel(ctx))
	return nil, rls.Tenant{}, err
}

// runPlacement is `pgtenancy citus-placement`.
func runPlacement(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "citus-placement"
	var f citusFlags
	if code, ok := addCitusFlags(&f, args, name, placementSynopsis, stderr, nil); !ok {
		return code
	}
	conn, tenant, err := citusTenant(ctx, &f)
	if err != nil {
		return fail(stderr, name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	places, err := citus.Placement(ctx, conn, f.table, tenant)
	if err != nil {
		return fail(stderr, name, err)
	}
	if err := printPlacement(stdout, f.format, tenant, places); err != nil {
		return fail(stderr, name, err)
	}
	return exitOK
}

// runIsolate is `pgtenancy citus-isolate`.
func runIsolate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "citus-isolate"
	var f citusFlags
	var mode *string
	code, ok := addCitusFlags(&f, args, name, isolateSynopsis, stderr, func(add func(string, string, string) *string) {
		mode = add("transfer-mode", "", "shard_transfer_mode: auto (Citus's default: logical replication, needs wal_level=logical), force_logical or block_writes")
	})
	if !ok {
		return code
	}
	conn, tenant, err := citusTenant(ctx, &f)
	if err != nil {
		return fail(stderr, name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := citus.Isolate(ctx, conn, f.table, tenant, citus.IsolateOptions{TransferMode: *mode}); err != nil {
		return fail(stderr, name, err)
	}
	places, err := citus.Placement(ctx, conn, f.table, tenant)
	if err != nil {
		return fail(stderr, name, err)
	}
	if err := printPlacement(stdout, f.format, tenant, places); err != nil {
		return fail(stderr, name, err)
	}
	return exitOK
}

func printPlacement(w io.Writer, format string, tenant rls.Tenant, places []citus.ShardPlacement) error {
	if format == "json" {
		type place struct {
			Table    string `json:"table"`
			ShardID  int64  `json:"shard_id"`
			Host     string `json:"host"`
			Port     int    `json:"port"`
			Isolated bool   `json:"isolated"`
		}
		out := struct {
			Tenant string  `json:"tenant"`
			Shards []place `json:"shards"`
		}{Tenant: tenant.String(), Shards: []place{}}
		for _, p := range places {
			out.Shards = append(out.Shards, place(p))
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSHARD\tNODE\tISOLATED")
	for _, p := range places {
		iso := "no"
		if p.Isolated {
			iso = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s:%d\t%s\n", p.Table, p.ShardID, p.Host, p.Port, iso)
	}
	return tw.Flush()
}
