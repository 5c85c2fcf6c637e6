package unit

import (
	"container/list"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

// TestStmtCacheFailed: which errors drop a statement, and that an error
// without a SQLSTATE (a proxy may send one) does not panic.
func TestStmtCacheFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kept bool
	}{
		{&pgconn.PgError{Message: "from a proxy"}, false},
		{&pgconn.PgError{Code: "42501"}, true},
		{&pgconn.PgError{Code: "23505"}, true},
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "0A000"}, false}, // cached plan must not change result type
		{&pgconn.PgError{Code: "42703"}, false},
		{&pgconn.PgError{Code: "26000"}, false},
	} {
		sc := &StmtCache{capacity: 4, entries: map[string]*list.Element{}}
		sc.entries["q"] = sc.lru.PushFront(&stmtEntry{sql: "q", sd: &pgconn.StatementDescription{Name: "pgtenancy_q"}})
		sc.Failed("q", tc.err)
		_, kept := sc.entries["q"]
		stale := sc.stale
		assert.Equal(t, tc.kept, kept, "%v", tc.err)
		if !tc.kept {
			assert.Equal(t, []string{"pgtenancy_q"}, stale, "%v", tc.err)
		}
	}
}
