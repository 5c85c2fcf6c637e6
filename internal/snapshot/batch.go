package snapshot

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// batch is a list of statements sent together in one round trip, whatever
// the connection's query exec mode: each is parsed, bound and executed
// unnamed (as pgx's exec mode does), so nothing is prepared first, no
// statement is left behind on the connection, and it works through
// PgBouncer in transaction pooling mode.
type batch struct {
	queries []query
}

type query struct {
	sql  string
	args []any                // string, []string or []uint32
	scan func(pgx.Rows) error // nil: no rows wanted
}

// add queues sql with args; scan reads its rows.
func (b *batch) add(sql string, scan func(pgx.Rows) error, args ...any) {
	b.queries = append(b.queries, query{sql: sql, args: args, scan: scan})
}

// each returns a scan function that scans every row into dest and calls fn.
func each(dest []any, fn func() error) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, dest, fn)
		return err
	}
}

// send runs the batch in tx and scans the results.
func (b *batch) send(ctx context.Context, tx pgx.Tx) error {
	if len(b.queries) == 0 {
		return nil
	}
	conn := tx.Conn()
	m := conn.TypeMap()
	pb := &pgconn.Batch{}
	for _, q := range b.queries {
		params := make([][]byte, len(q.args))
		oids := make([]uint32, len(q.args))
		for i, a := range q.args {
			var err error
			switch a := a.(type) {
			case string:
				oids[i], params[i] = pgtype.TextOID, []byte(a)
			case []string:
				oids[i] = pgtype.TextArrayOID
				params[i], err = m.Encode(oids[i], pgtype.TextFormatCode, a, nil)
			case []uint32:
				oids[i] = pgtype.OIDArrayOID
				params[i], err = m.Encode(oids[i], pgtype.TextFormatCode, a, nil)
			default:
				err = fmt.Errorf("unsupported argument %T", a)
			}
			if err != nil {
				return err
			}
		}
		pb.ExecParams(q.sql, params, oids, nil, nil)
	}
	mrr := conn.PgConn().ExecBatch(ctx, pb)
	var first error
	for i := 0; mrr.NextResult(); i++ {
		rr := mrr.ResultReader()
		if i >= len(b.queries) || b.queries[i].scan == nil {
			if _, err := rr.Close(); err != nil && first == nil {
				first = err
			}
			continue
		}
		rows := pgx.RowsFromResultReader(m, rr)
		if err := b.queries[i].scan(rows); err != nil && first == nil {
			first = err
		}
		rows.Close()
	}
	if err := mrr.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
