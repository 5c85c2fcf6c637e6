package observe

import (
	"context"
	"log/slog"

	"github.com/pgtenancy/pgtenancy/rls"
)

// LogOptions configure [NewLogHandler].
type LogOptions struct {
	// Key is the attribute's key; "tenant" when empty.
	Key string
	// Hasher, when not nil, logs the tenant's hash instead of its id.
	Hasher *Hasher
}

// NewLogHandler returns a handler that adds the tenant of a record's
// context to the record, as the attribute Key, and passes it to next.
// Records logged without a context, or with one that carries no tenant,
// pass unchanged. Use the logger's Context methods (InfoContext, ...) so
// that the record has the context:
//
//	logger := slog.New(observe.NewLogHandler(slog.NewJSONHandler(os.Stderr, nil), nil))
//	logger.InfoContext(ctx, "order placed") // ... "tenant":"42"
//
// After WithGroup, the attribute goes into the group, as every attribute
// added by a handler does.
func NewLogHandler(next slog.Handler, opts *LogOptions) slog.Handler {
	h := &logHandler{next: next, key: "tenant"}
	if opts != nil {
		if opts.Key != "" {
			h.key = opts.Key
		}
		h.hasher = opts.Hasher
	}
	return h
}

type logHandler struct {
	next   slog.Handler
	key    string
	hasher *Hasher
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if t, ok := rls.FromContext(ctx); ok {
			r.AddAttrs(slog.String(h.key, h.hasher.Label(t)))
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{next: h.next.WithAttrs(attrs), key: h.key, hasher: h.hasher}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: h.next.WithGroup(name), key: h.key, hasher: h.hasher}
}
