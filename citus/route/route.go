package route

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgtenancy/pgtenancy/policy"
)

// ErrConfig matches, with errors.Is, every error about an invalid table
// list given to [New].
var ErrConfig = errors.New("route: invalid configuration")

// Table is a distributed tenant table: a table that Citus distributes by
// its tenant column.
type Table struct {
	// Schema and Name name the table. A schema-qualified reference in SQL
	// matches when both are equal (as identifiers after parsing: an
	// unquoted name is lower case).
	Schema, Name string
	// Column is the tenant column, which must be the table's
	// distribution column: the rewrite adds "<table>.<Column> = $N" with
	// $N bound to the tenant.
	Column string
	// Visible makes an unqualified reference to Name mean this table: the
	// application's search_path finds it first. [Load] sets it as
	// pg_table_is_visible reports it for the loading connection.
	Visible bool
}

// FromModel returns the tables of a schema model whose tables Citus
// distributes by their tenant column (a model with Citus true, as
// policy.Generate distributes them). Table names without a schema are in
// the model's Schema, or public, and are Visible.
func FromModel(m *policy.Model) ([]Table, error) {
	if m == nil || !m.Citus {
		return nil, fmt.Errorf("%w: the model does not distribute its tables with Citus (Model.Citus is false)", ErrConfig)
	}
	def := m.Schema
	if def == "" {
		def = "public"
	}
	var ts []Table
	for _, t := range m.Tables {
		schema, name, visible := def, t.Name, m.Schema == "" || m.Schema == "public"
		if s, n, ok := splitDot(t.Name); ok {
			schema, name, visible = s, n, s == "public"
		}
		ts = append(ts, Table{Schema: schema, Name: name, Column: t.TenantColumn, Visible: visible})
	}
	return ts, nil
}

// splitDot splits an unquoted "schema.name".
func splitDot(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// Options tune a [Rewriter].
type Options struct {
	// CacheSize bounds the number of distinct SQL texts whose rewrite is
	// kept; 4096 when 0. When the cache is full, an old entry makes room.
	CacheSize int
	// MaxSQL is the longest SQL text (in bytes) that is cached; 64 KiB
	// when 0. Longer texts are analysed at every use.
	MaxSQL int
}

// Rewriter adds the tenant predicate to SQL so that Citus routes it to
// the tenant's shard. It implements the pool's Config.Rewriter. A
// Rewriter is safe for concurrent use.
type Rewriter struct {
	byQName map[[2]string]Table
	byName  map[string]Table
	opts    Options

	mu    sync.Mutex
	cache map[string]*Result

	stats struct {
		rewritten, noTenant, leftAlone, unparsed, hits, misses atomic.Int64
	}
	leftAloneMu sync.Mutex
	leftAlone   []Result // the first few statements left alone
}

// maxLeftAlone bounds the statements that [Rewriter.LeftAlone] returns.
const maxLeftAlone = 100

// New returns a Rewriter for tables.
func New(tables []Table, opts Options) (*Rewriter, error) {
	if opts.CacheSize < 0 || opts.MaxSQL < 0 {
		return nil, fmt.Errorf("%w: negative CacheSize or MaxSQL", ErrConfig)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 4096
	}
	if opts.MaxSQL == 0 {
		opts.MaxSQL = 64 << 10
	}
	r := &Rewriter{byQName: map[[2]string]Table{}, byName: map[string]Table{}, opts: opts, cache: map[string]*Result{}}
	for _, t := range tables {
		if t.Schema == "" || t.Name == "" || t.Column == "" {
			return nil, fmt.Errorf("%w: table %q.%q: Schema, Name and Column must not be empty", ErrConfig, t.Schema, t.Name)
		}
		k := [2]string{t.Schema, t.Name}
		if _, dup := r.byQName[k]; dup {
			return nil, fmt.Errorf("%w: table %s.%s given twice", ErrConfig, t.Schema, t.Name)
		}
		r.byQName[k] = t
		if t.Visible {
			if o, dup := r.byName[t.Name]; dup {
				return nil, fmt.Errorf("%w: %s.%s and %s.%s are both Visible", ErrConfig, o.Schema, o.Name, t.Schema, t.Name)
			}
			r.byName[t.Name] = t
		}
	}
	return r, nil
}

// lookup returns the tenant table that rv names.
func (r *Rewriter) lookup(rv *pg_query.RangeVar) (Table, bool) {
	if rv.Schemaname == "" {
		t, ok := r.byName[rv.Relname]
		return t, ok
	}
	t, ok := r.byQName[[2]string{rv.Schemaname, rv.Relname}]
	return t, ok
}

// Rewrite returns the SQL to send for sql and the number N of the
// parameter $N that it adds, to be bound to the tenant; or sql and 0 when
// it leaves sql unchanged. It is the method the pool's Config.Rewriter
// calls before every statement; the result for a text is cached.
func (r *Rewriter) Rewrite(sql string) (string, int) {
	res := r.Analyze(sql)
	return res.SQL, res.Param
}

// Analyze returns the full [Result] for sql, from the cache when it has
// one. Each distinct text is analysed once while it stays in the cache,
// and counted in [Stats] then.
func (r *Rewriter) Analyze(sql string) Result {
	r.mu.Lock()
	res, ok := r.cache[sql]
	r.mu.Unlock()
	if ok {
		r.stats.hits.Add(1)
		return *res
	}
	r.stats.misses.Add(1)
	v := r.analyze(sql)
	switch v.Outcome {
	case Rewritten:
		r.stats.rewritten.Add(1)
	case NoTenantTable:
		r.stats.noTenant.Add(1)
	case LeftAlone:
		r.stats.leftAlone.Add(1)
		r.leftAloneMu.Lock()
		if len(r.leftAlone) < maxLeftAlone {
			r.leftAlone = append(r.leftAlone, v)
		}
		r.leftAloneMu.Unlock()
	case Unparsed:
		r.stats.unparsed.Add(1)
	}
	if len(sql) <= r.opts.MaxSQL {
		r.mu.Lock()
		if len(r.cache) >= r.opts.CacheSize {
			for k := range r.cache { // an arbitrary entry
				delete(r.cache, k)
				break
			}
		}
		r.cache[sql] = &v
		r.mu.Unlock()
	}
	return v
}

// Stats counts what a [Rewriter] did. Outcomes count distinct SQL texts
// (analysed ones: a text that leaves the cache and comes back counts
// again); Hits and Misses count calls.
type Stats struct {
	Rewritten, NoTenantTable, LeftAlone, Unparsed int64
	// Hits are calls answered by the cache; Misses are calls that
	// analysed their text.
	Hits, Misses int64
}

// Stats returns the counts so far.
func (r *Rewriter) Stats() Stats {
	return Stats{
		Rewritten: r.stats.rewritten.Load(), NoTenantTable: r.stats.noTenant.Load(),
		LeftAlone: r.stats.leftAlone.Load(), Unparsed: r.stats.unparsed.Load(),
		Hits: r.stats.hits.Load(), Misses: r.stats.misses.Load(),
	}
}

// LeftAlone returns the first statements (up to 100) that the rewriter
// left unchanged although they name a tenant table, with the reason: the
// ones that Citus may send to every shard.
func (r *Rewriter) LeftAlone() []Result {
	r.leftAloneMu.Lock()
	defer r.leftAloneMu.Unlock()
	return append([]Result(nil), r.leftAlone...)
}
