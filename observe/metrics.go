package observe

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Other is the label of the tenants outside a [Guard]'s top N.
const Other = "other"

// GuardOptions configure a [Guard].
type GuardOptions struct {
	// TopN is the number of tenants that get a label of their own; 10
	// when 0.
	TopN int
	// Window is how often the top N are chosen again, from the time the
	// tenants spent in the window that ends; one minute when 0.
	Window time.Duration
	// Hasher, when not nil, labels tenants with their hash.
	Hasher *Hasher
}

// Guard bounds the number of tenant label values in metrics: the TopN
// tenants that spent the most database time in the last window get a
// label of their own (their id, or their hash), work without a tenant is
// "none", and every other tenant is "other". Until the first window ends,
// the first TopN tenants seen get their own label.
//
// It counts the time of at most 16*TopN (at least 256) tenants per window,
// with the space-saving algorithm: when a new tenant comes and the table
// is full, it replaces the tenant with the least time and inherits that
// time. A tenant that spends more than 1/(16*TopN) of a window's time is
// always counted. So memory is bounded whatever the number of tenants,
// and at most TopN+2 label values are in use in a window; over many
// windows, the tenants that were once on top keep the series they had.
//
// A Guard is safe for concurrent use.
type Guard struct {
	topN   int
	window time.Duration
	hasher *Hasher
	now    func() time.Time

	mu     sync.Mutex
	start  time.Time            // of the current window
	counts map[string]*guardCnt // the window's counts, by label
	top    map[string]bool      // labels with a series of their own
	boot   bool                 // before the first window ends
	cap    int
}

type guardCnt struct {
	label string
	time  time.Duration
}

// NewGuard returns a Guard.
func NewGuard(opts GuardOptions) *Guard {
	g := &Guard{
		topN: cmp.Or(opts.TopN, 10), window: cmp.Or(opts.Window, time.Minute),
		hasher: opts.Hasher, now: time.Now, boot: true,
		counts: map[string]*guardCnt{}, top: map[string]bool{},
	}
	g.cap = max(16*g.topN, 256)
	return g
}

// Label records that t spent d and returns its label: its own, "other"
// or "none".
func (g *Guard) Label(t rls.Tenant, d time.Duration) string {
	label := g.hasher.Label(t)
	if t.IsZero() {
		return label
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.start.IsZero() {
		g.start = now
	}
	if now.Sub(g.start) >= g.window {
		g.rotate(now)
	}
	c := g.counts[label]
	if c == nil {
		if len(g.counts) >= g.cap {
			// Space-saving: the new tenant takes the place, and the
			// count, of the one with the least.
			var least *guardCnt
			for _, x := range g.counts {
				if least == nil || x.time < least.time {
					least = x
				}
			}
			delete(g.counts, least.label)
			c = &guardCnt{label: label, time: least.time}
		} else {
			c = &guardCnt{label: label}
		}
		g.counts[label] = c
	}
	c.time += max(d, 1)
	if g.top[label] {
		return label
	}
	if g.boot && len(g.top) < g.topN {
		g.top[label] = true
		return label
	}
	return Other
}

// Rotate ends the current window now: the top N are chosen from it.
func (g *Guard) Rotate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.rotate(g.now())
}

func (g *Guard) rotate(now time.Time) {
	all := make([]*guardCnt, 0, len(g.counts))
	for _, c := range g.counts {
		all = append(all, c)
	}
	slices.SortFunc(all, func(a, b *guardCnt) int {
		if c := cmp.Compare(b.time, a.time); c != 0 {
			return c
		}
		return cmp.Compare(a.label, b.label)
	})
	clear(g.top)
	for _, c := range all[:min(len(all), g.topN)] {
		g.top[c.label] = true
	}
	clear(g.counts)
	g.start, g.boot = now, false
}

// TenantStats are the totals of one label of [Metrics].
type TenantStats struct {
	Tenant string        // a tenant's label, "other" or "none"
	Units  int64         // units of work
	Errors int64         // units that failed
	Rows   int64         // rows returned or changed
	Time   time.Duration // time spent, waits for a connection included
}

// Metrics is an [Observer] that keeps per-tenant totals of units of work,
// errors, rows and time in memory, the tenants labelled by a [Guard]. Read
// them with [Metrics.Snapshot]; tenantotel exports the same figures to
// OpenTelemetry.
type Metrics struct {
	guard *Guard
	mu    sync.Mutex
	stats map[string]*TenantStats
}

// NewMetrics returns a Metrics whose labels come from a Guard with opts.
func NewMetrics(opts GuardOptions) *Metrics {
	return &Metrics{guard: NewGuard(opts), stats: map[string]*TenantStats{}}
}

// Guard returns the guard that labels the tenants.
func (m *Metrics) Guard() *Guard { return m.guard }

// ObserveUnit adds u to the totals of its tenant's label.
func (m *Metrics) ObserveUnit(_ context.Context, u Unit) {
	label := m.guard.Label(u.Tenant, u.Duration)
	m.mu.Lock()
	s := m.stats[label]
	if s == nil {
		s = &TenantStats{Tenant: label}
		m.stats[label] = s
	}
	s.Units++
	if u.Err != nil {
		s.Errors++
	}
	s.Rows += u.Rows
	s.Time += u.Duration
	m.mu.Unlock()
}

// Snapshot returns the totals so far, by label, the most time first.
func (m *Metrics) Snapshot() []TenantStats {
	m.mu.Lock()
	out := make([]TenantStats, 0, len(m.stats))
	for _, s := range m.stats {
		out = append(out, *s)
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b TenantStats) int {
		if c := cmp.Compare(b.Time, a.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Tenant, b.Tenant)
	})
	return out
}
