package pool

import (
	"testing"

	"github.com/pgtenancy/pgtenancy/internal/sessionsql"
	"github.com/pgtenancy/pgtenancy/internal/unit"
)

// BenchmarkResetsCached is what reading a unit's SQL for session state
// costs on the hot path: a cached SQL text that creates none.
func BenchmarkResetsCached(b *testing.B) {
	t := &unit.Tenancy{}
	const sql = "SELECT name, price FROM items_rls WHERE id = $1"
	t.Resets(sql)
	b.ReportAllocs()
	for b.Loop() {
		if t.Resets(sql) != nil {
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
