package stdlib

import "github.com/jackc/pgx/v5"

// PgxConn returns the pgx connection of a database/sql driver connection
// (from sql.Conn.Raw).
func PgxConn(driverConn any) *pgx.Conn { return driverConn.(*conn).pgx() }
