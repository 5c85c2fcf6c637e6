// Package tenantotel exports pgtenancy's units of work to OpenTelemetry:
// a span per unit of work that carries its tenant, and per-tenant metrics
// whose tenant label is bounded by a top-N guard.
//
// It is a module of its own, so that applications that do not use
// OpenTelemetry do not depend on it. Install its [Observer] as the pool's
// Observer:
//
//	obs, err := tenantotel.New(tenantotel.Options{Hasher: hasher})
//	cfg.Observer = obs // pool.Config
//
// A configured pgx tracer (otelpgx, say) keeps working beside it: the
// pool's direct path calls the tracer for each statement, as a plain
// pgxpool does. The unit's span is a child of the span in the unit's
// context, so a tracer's query span and the unit's span share their
// parent.
package tenantotel

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgtenancy/pgtenancy/observe"
)

// ScopeName is the instrumentation scope of the spans and metrics.
const ScopeName = "github.com/pgtenancy/pgtenancy/tenantotel"

// Attribute keys.
const (
	// TenantKey is the span attribute of the unit's tenant id (without a
	// Hasher).
	TenantKey = attribute.Key("pgtenancy.tenant")
	// TenantHashKey is the span attribute of the tenant's keyed hash
	// (with a Hasher); the id is not recorded then.
	TenantHashKey = attribute.Key("pgtenancy.tenant.hash")
	// KindKey is the kind of the unit: exec, query, batch, tx, copy,
	// acquire_func.
	KindKey = attribute.Key("pgtenancy.unit.kind")
	// RowsKey is the number of rows the unit returned or changed.
	RowsKey = attribute.Key("pgtenancy.unit.rows")
	// LabelKey is the metrics' tenant label: a tenant's id or hash for
	// the top N tenants, "other" or "none".
	LabelKey = attribute.Key("pgtenancy.tenant")
	// OutcomeKey is "ok" or "error" on the units counter.
	OutcomeKey = attribute.Key("pgtenancy.outcome")
)

// Options configure an [Observer]. The zero value uses the global
// providers, ids in clear and a guard of the top 10 tenants a minute.
type Options struct {
	// TracerProvider makes the spans; otel.GetTracerProvider() when nil.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics; otel.GetMeterProvider() when nil.
	MeterProvider metric.MeterProvider
	// Hasher, when not nil, puts the tenant's keyed hash in spans and
	// metrics instead of its id.
	Hasher *observe.Hasher
	// Guard bounds the metrics' tenant label values (its Hasher is
	// replaced by Options.Hasher); TopN 10 and a one-minute window when
	// zero.
	Guard observe.GuardOptions
	// NoSpans turns spans off (metrics only).
	NoSpans bool
}

// Observer is an observe.Observer that records each unit of work as a span
// (from its start to its end, a child of the span in the unit's context)
// and in three metrics, all by tenant label and kind:
//
//   - pgtenancy.units (counter; with pgtenancy.outcome "ok" or "error"),
//   - pgtenancy.unit.duration (histogram, seconds; the wait for a
//     connection included),
//   - pgtenancy.rows (counter).
type Observer struct {
	tracer   trace.Tracer
	noSpans  bool
	hasher   *observe.Hasher
	guard    *observe.Guard
	units    metric.Int64Counter
	duration metric.Float64Histogram
	rows     metric.Int64Counter
}

var _ observe.Observer = (*Observer)(nil)

// New returns an Observer.
func New(opts Options) (*Observer, error) {
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	gopts := opts.Guard
	gopts.Hasher = opts.Hasher
	o := &Observer{
		tracer:  tp.Tracer(ScopeName),
		noSpans: opts.NoSpans,
		hasher:  opts.Hasher,
		guard:   observe.NewGuard(gopts),
	}
	m := mp.Meter(ScopeName)
	var err error
	if o.units, err = m.Int64Counter("pgtenancy.units", metric.WithUnit("{unit}"),
		metric.WithDescription("Units of work run by pgtenancy pools, by tenant")); err != nil {
		return nil, err
	}
	if o.duration, err = m.Float64Histogram("pgtenancy.unit.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of units of work, the wait for a connection included, by tenant")); err != nil {
		return nil, err
	}
	if o.rows, err = m.Int64Counter("pgtenancy.rows", metric.WithUnit("{row}"),
		metric.WithDescription("Rows returned or changed by units of work, by tenant")); err != nil {
		return nil, err
	}
	return o, nil
}

// Guard returns the guard of the metrics' tenant label.
func (o *Observer) Guard() *observe.Guard { return o.guard }

// ObserveUnit records u. It implements observe.Observer.
func (o *Observer) ObserveUnit(ctx context.Context, u observe.Unit) {
	kind := KindKey.String(u.Kind.String())
	if !o.noSpans {
		tenant := TenantKey.String(o.hasher.Label(u.Tenant))
		if o.hasher != nil {
			tenant = TenantHashKey.String(o.hasher.Label(u.Tenant))
		}
		_, span := o.tracer.Start(ctx, "pgtenancy."+u.Kind.String(),
			trace.WithTimestamp(u.Start), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(tenant, kind, RowsKey.Int64(u.Rows), attribute.String("db.system.name", "postgresql")))
		if u.Err != nil {
			span.RecordError(u.Err)
			span.SetStatus(codes.Error, u.Err.Error())
		}
		span.End(trace.WithTimestamp(u.Start.Add(u.Duration)))
	}
	label := LabelKey.String(o.guard.Label(u.Tenant, u.Duration))
	attrs := metric.WithAttributes(label, kind)
	outcome := OutcomeKey.String("ok")
	if u.Err != nil {
		outcome = OutcomeKey.String("error")
	}
	o.units.Add(ctx, 1, metric.WithAttributes(label, kind, outcome))
	o.duration.Record(ctx, u.Duration.Seconds(), attrs)
	if u.Rows > 0 {
		o.rows.Add(ctx, u.Rows, attrs)
	}
}
