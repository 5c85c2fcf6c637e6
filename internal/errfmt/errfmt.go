// Package errfmt formats the errors of pgtenancy's packages alike.
package errfmt

import (
	"strconv"
	"strings"
)

// Problem formats a problem with a table and a column: prefix: table "t"
// column "c": reason. Either name may be empty.
func Problem(prefix, table, column, reason string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if table != "" {
		b.WriteString(": table ")
		b.WriteString(strconv.Quote(table))
	}
	if column != "" {
		if table == "" {
			b.WriteString(":")
		}
		b.WriteString(" column ")
		b.WriteString(strconv.Quote(column))
	}
	b.WriteString(": ")
	b.WriteString(reason)
	return b.String()
}
