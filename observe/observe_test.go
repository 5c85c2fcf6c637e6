package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/observe"
	"github.com/pgtenancy/pgtenancy/rls"
)

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(observe.NewLogHandler(slog.NewJSONHandler(&buf, nil), nil))
	ctx := rls.WithTenant(context.Background(), rls.Int64(42))
	log.InfoContext(ctx, "with")
	log.InfoContext(context.Background(), "without")
	log.With("a", 1).WithGroup("g").InfoContext(ctx, "grouped", "b", 2)
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 3)
	var recs [3]map[string]any
	for i, l := range lines {
		require.NoError(t, json.Unmarshal(l, &recs[i]))
	}
	assert.Equal(t, "42", recs[0]["tenant"])
	assert.NotContains(t, recs[1], "tenant")
	assert.Equal(t, map[string]any{"b": float64(2), "tenant": "42"}, recs[2]["g"])
	assert.Equal(t, float64(1), recs[2]["a"])

	h, err := observe.NewHasher([]byte("0123456789abcdef"))
	require.NoError(t, err)
	buf.Reset()
	log = slog.New(observe.NewLogHandler(slog.NewJSONHandler(&buf, nil), &observe.LogOptions{Key: "tenant_hash", Hasher: h}))
	log.InfoContext(ctx, "hashed")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec))
	assert.Equal(t, h.Hash(rls.Int64(42)), rec["tenant_hash"])
	assert.NotContains(t, buf.String(), `"42"`)

	// Enabled follows the wrapped handler.
	quiet := observe.NewLogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), nil)
	assert.False(t, quiet.Enabled(ctx, slog.LevelInfo))
}

func TestHasher(t *testing.T) {
	_, err := observe.NewHasher([]byte("short"))
	assert.ErrorIs(t, err, observe.ErrShortKey)
	h1, err := observe.NewHasher([]byte("0123456789abcdef"))
	require.NoError(t, err)
	h2, err := observe.NewHasher([]byte("0123456789abcdeF"))
	require.NoError(t, err)
	a := h1.Hash(rls.Int64(1))
	assert.Len(t, a, 16)
	assert.Equal(t, a, h1.Hash(rls.Int64(1)), "stable")
	assert.NotEqual(t, a, h1.Hash(rls.Int64(2)))
	assert.NotEqual(t, a, h2.Hash(rls.Int64(1)), "keyed")
	assert.NotEqual(t, a, h1.Hash(rls.MustParse(rls.Text, "1")), "the key type is hashed too")
	assert.Equal(t, "", h1.Hash(rls.Tenant{}))
	assert.Equal(t, observe.NoTenant, h1.Label(rls.Tenant{}))
	var nilHasher *observe.Hasher
	assert.Equal(t, "7", nilHasher.Label(rls.Int64(7)))
}

func TestGuardTopN(t *testing.T) {
	g := observe.NewGuard(observe.GuardOptions{TopN: 2, Window: time.Hour})
	// Before the first window ends, the first two tenants get labels.
	assert.Equal(t, "1", g.Label(rls.Int64(1), time.Millisecond))
	assert.Equal(t, "2", g.Label(rls.Int64(2), time.Millisecond))
	assert.Equal(t, observe.Other, g.Label(rls.Int64(3), time.Second))
	assert.Equal(t, observe.NoTenant, g.Label(rls.Tenant{}, time.Second))
	// Tenant 3 spent the most: after the window, it has a label; 2 spent
	// more than 1.
	g.Label(rls.Int64(2), 2*time.Millisecond)
	g.Rotate()
	assert.Equal(t, "3", g.Label(rls.Int64(3), 0))
	assert.Equal(t, "2", g.Label(rls.Int64(2), 0))
	assert.Equal(t, observe.Other, g.Label(rls.Int64(1), 0))
}

func TestGuardBoundedMemory(t *testing.T) {
	g := observe.NewGuard(observe.GuardOptions{TopN: 1, Window: time.Hour})
	// A noisy tenant among 100,000 quiet ones is found.
	for i := range 100000 {
		g.Label(rls.Int64(int64(i+10)), time.Microsecond)
		if i%10 == 0 {
			g.Label(rls.Int64(1), time.Millisecond)
		}
	}
	g.Rotate()
	assert.Equal(t, "1", g.Label(rls.Int64(1), 0))
	labels := map[string]bool{}
	for i := range 1000 {
		labels[g.Label(rls.Int64(int64(i+10)), 0)] = true
	}
	assert.Equal(t, map[string]bool{observe.Other: true}, labels)
}

func TestMetrics(t *testing.T) {
	m := observe.NewMetrics(observe.GuardOptions{TopN: 2})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			u := observe.Unit{Tenant: rls.Int64(int64(i%4 + 1)), Kind: observe.Exec, Rows: 2, Duration: time.Millisecond}
			if i%10 == 0 {
				u.Err = errors.New("boom")
			}
			m.ObserveUnit(ctx, u)
		})
	}
	wg.Wait()
	m.ObserveUnit(ctx, observe.Unit{Kind: observe.Query, Err: rls.ErrNoTenant})
	var units, errs, rows int64
	labels := map[string]bool{}
	for _, s := range m.Snapshot() {
		units += s.Units
		errs += s.Errors
		rows += s.Rows
		labels[s.Tenant] = true
	}
	assert.Equal(t, int64(101), units)
	assert.Equal(t, int64(11), errs)
	assert.Equal(t, int64(200), rows)
	assert.LessOrEqual(t, len(labels), 4, "two tenants, other and none: %v", labels)
	assert.True(t, labels[observe.NoTenant])
	assert.True(t, labels[observe.Other])
}

func TestKindString(t *testing.T) {
	assert.Equal(t, "exec", observe.Exec.String())
	assert.Equal(t, "acquire_func", observe.AcquireFunc.String())
	assert.Equal(t, "Kind(0)", observe.Kind(0).String())
	assert.Equal(t, "Kind(99)", fmt.Sprint(observe.Kind(99)))
}
