package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Fairness: with Config.MaxConnsPerTenant, a tenant's units of work hold
// at most that many of the pool's connections at once; the others wait,
// before pgxpool's Acquire, for one of the tenant's own to come back. A
// burst of one tenant then queues behind itself and leaves the rest of
// the pool to the other tenants.
//
// A slot is taken before Acquire and given back when the connection
// returns to the pool (release, and the few places that call
// pgxpool.Conn.Release themselves): the connection carries its slot in
// its pgconn CustomData.

// ErrTenantWait matches, with errors.Is, the error of a unit of work whose
// context ended while it waited for one of its tenant's connections
// ([Config.MaxConnsPerTenant]); the error matches the context's error too.
var ErrTenantWait = errors.New("pool: the context ended while waiting for a connection of the tenant")

const slotKey = "github.com/pgtenancy/pgtenancy/pool.slot"

// fairness holds a semaphore per tenant that has work in flight.
type fairness struct {
	max int
	mu  sync.Mutex
	m   map[rls.Tenant]*tenantSem
}

type tenantSem struct {
	ch   chan struct{}
	refs int // holders and waiters; the entry goes at 0
}

// slot is one connection's hold on its tenant's semaphore.
type slot struct {
	f    *fairness
	t    rls.Tenant
	done atomic.Bool
}

func newFairness(max int32) *fairness {
	if max <= 0 {
		return nil
	}
	return &fairness{max: int(max), m: map[rls.Tenant]*tenantSem{}}
}

// take waits for a slot of t, or for ctx to end.
func (f *fairness) take(ctx context.Context, t rls.Tenant) (*slot, error) {
	f.mu.Lock()
	s := f.m[t]
	if s == nil {
		s = &tenantSem{ch: make(chan struct{}, f.max)}
		f.m[t] = s
	}
	s.refs++
	f.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
		return &slot{f: f, t: t}, nil
	default:
	}
	select {
	case s.ch <- struct{}{}:
		return &slot{f: f, t: t}, nil
	case <-ctx.Done():
		f.unref(t, s)
		return nil, fmt.Errorf("%w: %w", ErrTenantWait, context.Cause(ctx))
	}
}

func (f *fairness) unref(t rls.Tenant, s *tenantSem) {
	f.mu.Lock()
	if s.refs--; s.refs == 0 {
		delete(f.m, t)
	}
	f.mu.Unlock()
}

// free gives the slot back, once.
func (s *slot) free() {
	if s == nil || !s.done.CompareAndSwap(false, true) {
		return
	}
	s.f.mu.Lock()
	ts := s.f.m[s.t]
	s.f.mu.Unlock()
	<-ts.ch
	s.f.unref(s.t, ts)
}

// acquire acquires a connection for a unit of work of t, after a slot of
// t when the pool has a per-tenant limit.
func (p *Pool) acquire(ctx context.Context, t rls.Tenant) (*pgxpool.Conn, error) {
	if p.fair == nil {
		return p.p.Acquire(ctx)
	}
	s, err := p.fair.take(ctx, t)
	if err != nil {
		return nil, err
	}
	c, err := p.p.Acquire(ctx)
	if err != nil {
		s.free()
		return nil, err
	}
	c.Conn().PgConn().CustomData()[slotKey] = s
	return c, nil
}

// slotOf returns the slot that c holds, or nil.
func slotOf(c *pgxpool.Conn) *slot {
	s, _ := c.Conn().PgConn().CustomData()[slotKey].(*slot)
	return s
}

// releaseConn returns c to the pool and gives its tenant's slot back.
func releaseConn(c *pgxpool.Conn) {
	if s := slotOf(c); s != nil {
		delete(c.Conn().PgConn().CustomData(), slotKey)
		s.free()
	}
	c.Release()
}
