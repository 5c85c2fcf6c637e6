package pool

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgrls/pgrls/rls"
)

// copyTable is the temporary table that CopyFrom copies into.
var copyTable = pgx.Identifier{"pg_temp", "pgrls_copy"}

// CopyFrom copies rows into a table under row level security, where COPY
// FROM itself is refused (SQLSTATE 0A000), so that code written for
// [pgx.Conn.CopyFrom] and sqlc's :copyfrom works unchanged. It returns the
// number of rows inserted, and [rls.ErrNoTenant] before any I/O when the
// context has no tenant.
//
// In one transaction with the tenant set, it creates a temporary table
// shaped like the target's columns (dropped at commit), COPYs the rows into
// it, and moves them with INSERT INTO table (columns) SELECT columns, so
// the policies check every row: a row of another tenant fails the whole
// copy and nothing is inserted. Besides the COPY, that costs two round
// trips (one more to describe the columns, unless the statement cache has
// them). The application role needs the TEMPORARY privilege on the
// database, which PUBLIC has by default.
func (p *Pool) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	t, err := rls.Require(ctx)
	if err != nil {
		return 0, err
	}
	if err := checkCopyArgs(table, columns); err != nil {
		return 0, err
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer release(ctx, c)
	conn := c.Conn()
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(p.setSQL, t.String())
	b.Queue(createCopyTable(table, columns, true))
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err // release rolls back
	}
	return copyVia(ctx, conn, table, columns, src, true)
}

func checkCopyArgs(table pgx.Identifier, columns []string) error {
	if len(table) == 0 {
		return errors.New("pool: CopyFrom: empty table name")
	}
	if len(columns) == 0 {
		return errors.New("pool: CopyFrom: no columns")
	}
	return nil
}

func columnList(columns []string) string {
	var sb strings.Builder
	for i, c := range columns {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(pgx.Identifier{c}.Sanitize())
	}
	return sb.String()
}

func createCopyTable(table pgx.Identifier, columns []string, dropOnCommit bool) string {
	sql := "CREATE TEMPORARY TABLE " + copyTable[1]
	if dropOnCommit {
		sql += " ON COMMIT DROP"
	}
	return sql + " AS SELECT " + columnList(columns) +
		" FROM " + table.Sanitize() + " WITH NO DATA"
}

// copyVia copies src into table through the temporary table, on conn inside
// a transaction. own reports that the transaction and the temporary table
// (dropped at commit) belong to the copy, which then commits; otherwise
// copyVia creates the table and drops it after use.
func copyVia(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, columns []string, src pgx.CopyFromSource, own bool) (int64, error) {
	if err := checkCopyArgs(table, columns); err != nil {
		return 0, err
	}
	if !own {
		if _, err := conn.Exec(ctx, createCopyTable(table, columns, false)); err != nil {
			return 0, err
		}
	}
	if _, err := conn.CopyFrom(ctx, copyTable, columns, src); err != nil {
		return 0, err
	}
	cols := columnList(columns)
	b := &pgx.Batch{}
	insert := b.Queue("INSERT INTO " + table.Sanitize() + " (" + cols + ") SELECT " + cols + " FROM " + copyTable.Sanitize())
	var n int64
	insert.Exec(func(tag pgconn.CommandTag) error {
		n = tag.RowsAffected()
		return nil
	})
	if own {
		b.Queue("commit")
	} else {
		b.Queue("DROP TABLE " + copyTable.Sanitize())
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return 0, err
	}
	return n, nil
}
