package citus

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Querier runs queries. *pgx.Conn, pgx.Tx and *pgxpool.Pool satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotDistributed is returned for a table that is not hash-distributed
// by Citus (a local or reference table, or no citus extension).
var ErrNotDistributed = errors.New("citus: table is not a hash-distributed Citus table")

// ShardPlacement is where one table's rows of a tenant live.
type ShardPlacement struct {
	// Table is the table, as regclass prints it (schema-qualified when
	// its schema is not on the search_path).
	Table string
	// ShardID is the shard that holds the tenant's rows of Table.
	ShardID int64
	// Host and Port name a node that holds the shard (one placement per
	// node; more than one only with replicated shards).
	Host string
	Port int
	// Isolated reports that the shard holds this tenant only: its hash
	// range is the tenant's single hash value, as after [Isolate].
	Isolated bool
}

const distColumnSQL = `
SELECT p.partmethod::text, coalesce(pg_catalog.format_type(a.atttypid, NULL), '')
FROM pg_catalog.pg_dist_partition p
LEFT JOIN pg_catalog.pg_attribute a
    ON a.attrelid = p.logicalrelid AND a.attname = column_to_column_name(p.logicalrelid, p.partkey)
WHERE p.logicalrelid = $1::text::regclass`

// TenantKeyType returns the tenant key type that fits the distribution
// column of table: bigint, integer, smallint, uuid, or text (text and
// varchar columns). It returns [ErrNotDistributed] for a table that is not
// hash-distributed.
func TenantKeyType(ctx context.Context, q Querier, table string) (rls.KeyType, error) {
	var method, typ string
	err := q.QueryRow(ctx, distColumnSQL, table).Scan(&method, &typ)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && method != "h" {
		return 0, fmt.Errorf("%w: %s", ErrNotDistributed, table)
	}
	if err != nil {
		return 0, wrapMetadata(err)
	}
	switch typ {
	case "bigint":
		return rls.BigInt, nil
	case "integer":
		return rls.Integer, nil
	case "smallint":
		return rls.SmallInt, nil
	case "uuid":
		return rls.UUID, nil
	case "text", "character varying":
		return rls.Text, nil
	}
	return 0, fmt.Errorf("citus: %s is distributed by a column of type %s, which is not a pgtenancy tenant key type", table, typ)
}

// placementSQL lists, for each table co-located with $1, the shard of the
// tenant $2 and its placements. Citus converts the text value to the
// distribution column's type.
const placementSQL = `
WITH tables AS (
    SELECT p.logicalrelid
    FROM pg_catalog.pg_dist_partition p
    WHERE p.partmethod = 'h' AND p.colocationid = (
        SELECT colocationid FROM pg_catalog.pg_dist_partition
        WHERE logicalrelid = $1::text::regclass AND partmethod = 'h')
), shards AS (
    SELECT logicalrelid, get_shard_id_for_distribution_column(logicalrelid, $2::text) AS shardid
    FROM tables
)
SELECT s.logicalrelid::regclass::text, s.shardid, pl.nodename::text, pl.nodeport,
    sh.shardminvalue IS NOT NULL AND sh.shardminvalue = sh.shardmaxvalue
FROM shards s
JOIN pg_catalog.pg_dist_shard sh ON sh.shardid = s.shardid
JOIN pg_catalog.pg_dist_shard_placement pl ON pl.shardid = s.shardid
ORDER BY 1, 3, 4`

// Placement returns where tenant's rows live: for table and every table
// co-located with it, the shard that holds the tenant's rows and the nodes
// that hold the shard, by table name then node. The tenant need not have
// rows: the shards are those its rows would go to. It returns
// [ErrNotDistributed] when table is not hash-distributed.
func Placement(ctx context.Context, q Querier, table string, tenant rls.Tenant) ([]ShardPlacement, error) {
	if tenant.IsZero() {
		return nil, fmt.Errorf("citus: %w: zero tenant", rls.ErrInvalidTenant)
	}
	if _, err := TenantKeyType(ctx, q, table); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, placementSQL, table, tenant.String())
	if err != nil {
		return nil, wrapMetadata(err)
	}
	places, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ShardPlacement, error) {
		var p ShardPlacement
		err := row.Scan(&p.Table, &p.ShardID, &p.Host, &p.Port, &p.Isolated)
		return p, err
	})
	if err != nil {
		return nil, wrapMetadata(err)
	}
	return places, nil
}

// IsolateOptions configure [Isolate].
type IsolateOptions struct {
	// TransferMode is the shard_transfer_mode of
	// isolate_tenant_to_new_shard: "auto" (Citus's default when empty,
	// logical replication, which needs wal_level = logical and a replica
	// identity on every table), "force_logical" or "block_writes" (writes
	// to the shards wait while the rows are copied).
	TransferMode string
}

// Isolate moves tenant's rows of table and of every table co-located with
// it onto new shards that hold that tenant only
// (isolate_tenant_to_new_shard with CASCADE), and returns the new shard of
// table. A tenant already isolated is left as it is and its shard
// returned. The new shards stay on the node of the old ones; move them
// with citus_move_shard_placement. It returns [ErrNotDistributed] when
// table is not hash-distributed.
func Isolate(ctx context.Context, q Querier, table string, tenant rls.Tenant, opts IsolateOptions) (int64, error) {
	switch opts.TransferMode {
	case "", "auto", "force_logical", "block_writes":
	default:
		return 0, fmt.Errorf("citus: transfer mode %q is not auto, force_logical or block_writes", opts.TransferMode)
	}
	places, err := Placement(ctx, q, table, tenant)
	if err != nil {
		return 0, err
	}
	for _, p := range places {
		if p.Isolated && sameTable(ctx, q, p.Table, table) {
			return p.ShardID, nil
		}
	}
	mode := opts.TransferMode
	if mode == "" {
		mode = "auto"
	}
	var shard int64
	// The mode is one of three words checked above; as a literal it needs
	// no USAGE on schema citus, which the enum's cast would.
	err = q.QueryRow(ctx, "SELECT isolate_tenant_to_new_shard($1::text::regclass, $2::text, 'CASCADE', shard_transfer_mode => '"+mode+"')",
		table, tenant.String()).Scan(&shard)
	if err != nil {
		return 0, fmt.Errorf("citus: isolate tenant %s of %s: %w", tenant, table, err)
	}
	return shard, nil
}

// sameTable reports whether two names denote the same table.
func sameTable(ctx context.Context, q Querier, a, b string) bool {
	var same bool
	err := q.QueryRow(ctx, "SELECT $1::text::regclass = $2::text::regclass", a, b).Scan(&same)
	return err == nil && same
}

func wrapMetadata(err error) error {
	return fmt.Errorf("citus: reading Citus metadata: %w", err)
}
