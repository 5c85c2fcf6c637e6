// Package attack holds pgtenancy's attack tests, and nothing else. Each test
// mounts one attack on tenant isolation as real requests and queries
// against a real PostgreSQL, as the application role, and shows that pgtenancy
// prevents it or that verify.Run reports the setup that lets it
// through; the tests that probe what still leaks (unique and foreign-key
// checks, sequences) measure exactly what an attacker learns, as
// documented in docs/security.md.
//
//	go test -race ./attack/
package attack
