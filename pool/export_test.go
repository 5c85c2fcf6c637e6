package pool

// SetTenantSQL replaces the statement that sets the tenant (its one
// parameter), so that benchmarks can compare alternatives.
func SetTenantSQL(p *Pool, sql string) { p.setSQL = sql }
