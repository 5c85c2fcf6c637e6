package pool

import (
	"testing"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
)

// BenchmarkResetsCached is what reading a unit's SQL for session state
// costs on the hot path: a cached SQL text that creates none.
func BenchmarkResetsCached(b *testing.B) {
	t := &tenancy{}
	const sql = "SELECT name, price FROM items_rls WHERE id = $1"
	t.resets(sql)
	b.ReportAllocs()
	for b.Loop() {
		if t.resets(sql) != nil {
			b.Fatal("flagged")
		}
	}
}

// BenchmarkScanUncached is the scan of a typical statement, without the
// cache.
func BenchmarkScanUncached(b *testing.B) {
	const sql = "SELECT p.id, p.name, p.price_cents FROM products p JOIN stores s ON s.id = p.store_id WHERE p.name LIKE $1 AND s.name <> 'x' ORDER BY p.id LIMIT 50"
	b.ReportAllocs()
	for b.Loop() {
		if !sessionsql.Scan(sql).Empty() {
			b.Fatal("flagged")
		}
	}
}
