// Package route makes Citus route each statement of a tenant to the
// tenant's shard, by adding the tenant predicate that row level security
// keeps implicit.
//
// On Citus, a query such as SELECT * FROM products WHERE id = $1 goes to
// every shard, each applying the policy: Citus routes on the distribution
// column compared with a constant or parameter in the query itself, and a
// policy does not count. A [Rewriter] parses each statement with
// libpg_query (PostgreSQL's own parser, through
// github.com/pganalyze/pg_query_go, cgo), adds
//
//	<table or alias>.<tenant column> OPERATOR(pg_catalog.=) $N
//
// for every distributed tenant table the statement reads or writes, with
// $N a new parameter (one more than the highest of the statement) that the
// pool binds to the unit's tenant, and deparses it. It is a routing
// optimisation only: isolation stays with row level security, which the
// predicate never replaces. It lives in a module of its own so that users
// who are not on Citus never build libpg_query.
//
// # Enabling it
//
//	tables, err := route.Load(ctx, ownerOrAppConn) // or route.FromModel(model)
//	rw, err := route.New(tables, route.Options{})
//	cfg, err := pool.ParseConfig(appURL)
//	cfg.Citus = true
//	cfg.Rewriter = rw
//	p, err := pool.NewWithConfig(ctx, cfg)
//
// # What is rewritten
//
// Every query level of a SELECT, UPDATE, DELETE, INSERT ... SELECT,
// EXPLAIN or DECLARE CURSOR: FROM items, inner joins and the preserved
// side of outer joins get the predicate in their level's WHERE; the
// nullable side of a LEFT or RIGHT JOIN gets it in the join's ON (in the
// WHERE it would drop the rows the outer join keeps); the target of an
// UPDATE or DELETE in its WHERE; subqueries, LATERAL subqueries, WITH
// queries (data-modifying ones too) and each branch of UNION, INTERSECT
// and EXCEPT at their own level. The target of an INSERT needs nothing:
// Citus routes by the inserted tenant column. Each added predicate is
// true for every row that row level security lets the statement see, so
// the result does not change.
//
// # What is left alone
//
// A statement is sent unchanged, and counted in [Stats].LeftAlone and
// listed by [Rewriter.LeftAlone], when it names a tenant table and the
// rewriter cannot prove the rewrite safe: MERGE, SELECT INTO, utility
// statements (COPY, LOCK, TRUNCATE, ...), FULL JOIN, a tenant table
// inside a join with an alias (its name is hidden), an alias that renames
// columns, the nullable side of a USING or NATURAL outer join, WHERE
// CURRENT OF, a WITH query named like a tenant table, or SQL that the
// deparser does not reproduce exactly (each rewrite is checked: the
// original statement deparses and parses back to the same tree, and the
// rewritten one parses back to the rewritten tree). Those statements still
// run under row level security; Citus may send them to every shard.
// Functions and views that read tenant tables are not seen into. [Check]
// finds, on a cluster, the statements that still fan out.
//
// SQL texts are analysed once and cached (bounded by
// [Options].CacheSize): the cost on the hot path is a map lookup.
package route
