package tenantotel_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/observe"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/tenantotel"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

var schema = &pgtenancytest.Template{Name: "tenantotel", Setup: func(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `
CREATE TABLE tenants (id bigint PRIMARY KEY);
CREATE TABLE notes (tenant_id bigint NOT NULL REFERENCES tenants (id), id int, body text, PRIMARY KEY (tenant_id, id));
INSERT INTO tenants VALUES (1), (2);
INSERT INTO notes VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c');`); err != nil {
		return err
	}
	if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
		return err
	}
	gen, err := policy.Generate(&policy.Model{KeyType: rls.BigInt, AppRole: pgtenancytest.AppRole, Tables: []policy.Table{
		{Name: "tenants", TenantColumn: "id", Root: true},
		{Name: "notes", TenantColumn: "tenant_id"},
	}})
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, gen.Up)
	return err
}}

type setup struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	p      *pool.Pool
}

func newSetup(t *testing.T, hasher *observe.Hasher) *setup {
	t.Helper()
	s := &setup{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	obs, err := tenantotel.New(tenantotel.Options{TracerProvider: s.tp, MeterProvider: mp, Hasher: hasher, Guard: observe.GuardOptions{TopN: 1}})
	require.NoError(t, err)
	db := pgtenancytest.NewDB(t, schema)
	cfg, err := pool.ParseConfig(db.AppURL)
	require.NoError(t, err)
	cfg.Observer = obs
	s.p, err = pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(s.p.Close)
	return s
}

func attrs(kv []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range kv {
		m[a.Key] = a.Value
	}
	return m
}

// TestSpans: each unit of work is a span, a child of the caller's span,
// with the tenant (or its hash), the kind and the rows.
func TestSpans(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	ctx, parent := s.tp.Tracer("test").Start(rls.WithTenant(context.Background(), rls.Int64(1)), "handler")
	rows, err := s.p.Query(ctx, "SELECT body FROM notes ORDER BY id")
	require.NoError(t, err)
	bodies, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, bodies)
	_, err = s.p.Exec(rls.WithTenant(ctx, rls.Int64(2)), "SELECT 1/0")
	require.Error(t, err)
	parent.End()

	spans := s.spans.Ended()
	require.Len(t, spans, 3)
	q, e := spans[0], spans[1]
	assert.Equal(t, "pgtenancy.query", q.Name())
	assert.Equal(t, parent.SpanContext().SpanID(), q.Parent().SpanID())
	a := attrs(q.Attributes())
	assert.Equal(t, "1", a[tenantotel.TenantKey].AsString())
	assert.Equal(t, "query", a[tenantotel.KindKey].AsString())
	assert.Equal(t, int64(2), a[tenantotel.RowsKey].AsInt64())
	assert.False(t, q.EndTime().Before(q.StartTime()))

	assert.Equal(t, "pgtenancy.exec", e.Name())
	assert.Equal(t, "2", attrs(e.Attributes())[tenantotel.TenantKey].AsString())
	assert.Equal(t, codes.Error, e.Status().Code)
	assert.Contains(t, e.Status().Description, "division by zero")
}

// TestHashedTenant: with a Hasher, spans and metrics carry the hash, never
// the id.
func TestHashedTenant(t *testing.T) {
	t.Parallel()
	h, err := observe.NewHasher([]byte("a secret key of 32 bytes........"))
	require.NoError(t, err)
	s := newSetup(t, h)
	ctx := rls.WithTenant(context.Background(), rls.Int64(2))
	var n int
	require.NoError(t, s.p.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n))
	assert.Equal(t, 1, n)
	spans := s.spans.Ended()
	require.Len(t, spans, 1)
	a := attrs(spans[0].Attributes())
	assert.Equal(t, h.Hash(rls.Int64(2)), a[tenantotel.TenantHashKey].AsString())
	_, has := a[tenantotel.TenantKey]
	assert.False(t, has, "no id in clear")

	var rm metricdata.ResourceMetrics
	require.NoError(t, s.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range sum.DataPoints {
					v, _ := dp.Attributes.Value(tenantotel.LabelKey)
					assert.Equal(t, h.Hash(rls.Int64(2)), v.AsString(), m.Name)
				}
			}
		}
	}
}

// TestMetrics: per-tenant units, errors, rows and time, the tenants past
// the top N as "other".
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	one := rls.WithTenant(context.Background(), rls.Int64(1))
	two := rls.WithTenant(context.Background(), rls.Int64(2))
	for range 3 {
		_, err := s.p.Exec(one, "UPDATE notes SET body = body")
		require.NoError(t, err)
	}
	_, err := s.p.Exec(two, "UPDATE notes SET body = body")
	require.NoError(t, err)
	_, err = s.p.Exec(two, "SELECT 1/0")
	require.Error(t, err)
	_, err = s.p.Exec(context.Background(), "SELECT 1")
	require.ErrorIs(t, err, rls.ErrNoTenant)

	var rm metricdata.ResourceMetrics
	require.NoError(t, s.reader.Collect(context.Background(), &rm))
	units := map[string]int64{}
	rows := map[string]int64{}
	var durations uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch m.Name {
			case "pgtenancy.units":
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					l, _ := dp.Attributes.Value(tenantotel.LabelKey)
					o, _ := dp.Attributes.Value(tenantotel.OutcomeKey)
					units[l.AsString()+"/"+o.AsString()] += dp.Value
				}
			case "pgtenancy.rows":
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					l, _ := dp.Attributes.Value(tenantotel.LabelKey)
					rows[l.AsString()] += dp.Value
				}
			case "pgtenancy.unit.duration":
				for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
					durations += dp.Count
				}
			}
		}
	}
	// TopN 1: tenant 1 came first and has its label; tenant 2 is "other".
	assert.Equal(t, map[string]int64{"1/ok": 3, "other/ok": 1, "other/error": 1, "none/error": 1}, units)
	assert.Equal(t, map[string]int64{"1": 6, "other": 1}, rows)
	assert.Equal(t, uint64(6), durations)
}
