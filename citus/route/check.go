package route

import (
	"bufio"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/pool"
)

// Query is one statement for [Check].
type Query struct {
	// Name names the statement in reports (sqlc's query name).
	Name string
	// SQL is the statement, with $1, $2, ... parameters.
	SQL string
}

// Finding is a statement that Citus does not run on one shard.
type Finding struct {
	Query
	// TaskCount is the highest Task Count of the plan's Citus scans.
	TaskCount int
	// Outcome and Reason are the rewriter's answer for the statement.
	Outcome Outcome
	Reason  string
	// Tables are the tables that made it fan out: the tenant tables the
	// rewriter could not give the predicate (a statement left alone), or,
	// when every tenant table got it, the other distributed tables the
	// statement names (distributed by another column than the tenant's).
	// Empty when neither explains it: a view or a function that reads
	// tenant tables.
	Tables []string
	// Err is set when EXPLAIN failed; TaskCount is 0 then.
	Err error
}

func (f Finding) String() string {
	if f.Err != nil {
		return fmt.Sprintf("%s: EXPLAIN failed: %v", f.Name, f.Err)
	}
	s := fmt.Sprintf("%s: Task Count %d (%s", f.Name, f.TaskCount, f.Outcome)
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	s += ")"
	if len(f.Tables) > 0 {
		s += "; fans out on " + strings.Join(f.Tables, ", ")
	}
	return s
}

var taskCount = regexp.MustCompile(`Task Count: (\d+)`)

// Check runs EXPLAIN for each query through p, a pool with Config.Citus
// and this Rewriter as Config.Rewriter connected as the application role,
// with the tenant of ctx (any tenant: routing does not depend on which),
// and returns a Finding for every statement that is not a single-shard
// router query: a Citus scan with Task Count above 1, or an EXPLAIN that
// failed. The statements' own parameters are bound to NULL; EXPLAIN does
// not run them (not even an UPDATE or DELETE). A comparison with a NULL
// parameter can let the planner prove a condition false and prune every
// shard: a statement whose other conditions decide its shards (id = $1
// without the tenant) may then look routed. Such statements are reported
// correctly when the tenant table is left alone by the rewriter, which
// Finding.Outcome shows. Run it in the tests of an
// application, with its queries (from [ParseSQLC] or a list), against a
// cluster with the application's schema: an empty result means that every
// statement routes.
func (r *Rewriter) Check(ctx context.Context, p *pool.Pool, queries []Query) ([]Finding, error) {
	var out []Finding
	for _, q := range queries {
		res := r.Analyze(q.SQL)
		f := Finding{Query: q, Outcome: res.Outcome, Reason: res.Reason}
		args := make([]any, res.Params)
		var plan []string
		rows, err := p.Query(ctx, "EXPLAIN "+strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(q.SQL), ";")), args...)
		if err == nil {
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			f.Err = err
			out = append(out, f)
			continue
		}
		for _, l := range plan {
			if m := taskCount.FindStringSubmatch(l); m != nil {
				c, _ := strconv.Atoi(m[1])
				f.TaskCount = max(f.TaskCount, c)
			}
		}
		if f.TaskCount <= 1 {
			continue
		}
		f.Tables, err = r.culprits(ctx, p, res)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

// culprits names the tables that make the statement of res fan out.
func (r *Rewriter) culprits(ctx context.Context, p *pool.Pool, res Result) ([]string, error) {
	var out []string
	if res.Outcome == LeftAlone {
		for _, n := range res.Named {
			if r.names(n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	for _, n := range res.Named {
		if r.names(n) {
			continue
		}
		var dist bool
		err := p.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
			WHERE logicalrelid = pg_catalog.to_regclass($1) AND partmethod = 'h')`, quoteName(n)).Scan(&dist)
		if err != nil {
			return nil, err
		}
		if dist {
			out = append(out, n)
		}
	}
	return out, nil
}

// names reports whether n ("schema.name" or "name") is a tenant table.
func (r *Rewriter) names(n string) bool {
	if s, t, ok := strings.Cut(n, "."); ok {
		_, found := r.byQName[[2]string{s, t}]
		return found
	}
	_, found := r.byName[n]
	return found
}

// quoteName quotes "schema.name" or "name" for to_regclass.
func quoteName(n string) string {
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
	if s, t, ok := strings.Cut(n, "."); ok {
		return q(s) + "." + q(t)
	}
	return q(n)
}

// ParseSQLC reads an sqlc queries file: each query starts with a
// "-- name: Name :kind" comment and runs to the next one. Queries that use
// sqlc's macros (sqlc.arg, sqlc.narg, sqlc.slice, @name) are PostgreSQL
// only after sqlc generates them: pass the generated SQL for those.
func ParseSQLC(text string) ([]Query, error) {
	var out []Query
	var cur *Query
	var b strings.Builder
	flush := func() {
		if cur != nil {
			cur.SQL = strings.TrimSpace(b.String())
			out = append(out, *cur)
		}
		b.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			flush()
			f := strings.Fields(rest)
			if len(f) == 0 {
				return nil, fmt.Errorf("route: sqlc query without a name: %q", line)
			}
			cur = &Query{Name: f[0]}
			continue
		}
		if cur != nil {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	if len(out) == 0 {
		return nil, fmt.Errorf("route: no \"-- name:\" query in the sqlc file")
	}
	return out, nil
}
