// Package stress holds pgtenancy's load and fault tests, and nothing else: its
// tests run 64 goroutines across 1,000 tenants through a pool.Pool, directly
// and behind PgBouncer in transaction pooling mode, while backends are
// killed, contexts cancelled, statements timed out, transaction callbacks
// panic and the server restarts once, and then check that no tenant saw or
// wrote another tenant's rows and that every acknowledged write is there.
//
//	go test -race -run TestStress ./stress/                          # 20 s
//	go test -race -run TestStress ./stress/ -stress.duration=5m      # longer
//
// It also checks that closing a pool and a middleware server leaves no
// goroutine behind.
package stress
