package pool

import (
	"context"
	"time"

	"github.com/pgtenancy/pgtenancy/observe"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Observing units of work (Config.Observer). Each unit is reported once,
// when it ends: Exec and CopyFrom when they return, Query and QueryRow
// when their rows close, SendBatch when its results close, a transaction
// when it commits or rolls back, AcquireFunc when it returns. Without an
// observer none of this reads the clock.

// begin returns the start time of a unit, or the zero time without an
// observer.
func (p *Pool) begin() time.Time {
	if p.obs == nil {
		return time.Time{}
	}
	return time.Now()
}

// observe reports a unit that ended now.
func (p *Pool) observe(ctx context.Context, k observe.Kind, start time.Time, rows int64, err error) {
	if p.obs == nil {
		return
	}
	t, _ := rls.FromContext(ctx)
	p.obs.ObserveUnit(ctx, observe.Unit{Tenant: t, Kind: k, Rows: rows, Err: err, Start: start, Duration: time.Since(start)})
}

// pending is a unit of work that ends later (rows, batch results, a
// transaction). Its zero value reports nothing.
type pending struct {
	obs   observe.Observer
	ctx   context.Context
	kind  observe.Kind
	start time.Time
}

// pending returns the pending report of a unit that began at start.
func (p *Pool) pending(ctx context.Context, k observe.Kind, start time.Time) pending {
	if p.obs == nil {
		return pending{}
	}
	return pending{obs: p.obs, ctx: ctx, kind: k, start: start}
}

// end reports the unit, once.
func (u *pending) end(rows int64, err error) {
	if u.obs == nil {
		return
	}
	t, _ := rls.FromContext(u.ctx)
	u.obs.ObserveUnit(u.ctx, observe.Unit{Tenant: t, Kind: u.kind, Rows: rows, Err: err, Start: u.start, Duration: time.Since(u.start)})
	u.obs = nil
}
