package observe

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/pgtenancy/pgtenancy/rls"
)

// Kind is the kind of a unit of work.
type Kind uint8

// The kinds of units of work of a pool.
const (
	Exec        Kind = iota + 1 // one statement without rows (Exec)
	Query                       // one statement with rows (Query, QueryRow)
	Batch                       // a batch (SendBatch)
	Tx                          // a transaction (Begin ... Commit or Rollback)
	Copy                        // a bulk insert (CopyFrom)
	AcquireFunc                 // a transaction on an acquired connection
)

var kindNames = [...]string{"", "exec", "query", "batch", "tx", "copy", "acquire_func"}

// String returns the kind's name: "exec", "query", "batch", "tx", "copy"
// or "acquire_func".
func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Unit is a unit of work that ended.
type Unit struct {
	// Tenant is the unit's tenant; the zero Tenant when the context had
	// none (the unit then failed before any I/O with rls.ErrNoTenant).
	Tenant rls.Tenant
	// Kind is what ran.
	Kind Kind
	// Rows is the number of rows the unit returned or changed, as its
	// command tag says (the last statement's for a transaction or a
	// batch: 0 when unknown).
	Rows int64
	// Err is the unit's error, or nil.
	Err error
	// Start is when the unit began (before it waited for a connection).
	Start time.Time
	// Duration is how long it took, the wait for a connection included.
	Duration time.Duration
}

// Observer is told about each unit of work when it ends. ObserveUnit is
// called from the goroutine that ran the unit, with the unit's context,
// so it must be quick and safe for concurrent use; it must not run work
// on the pool.
type Observer interface {
	ObserveUnit(ctx context.Context, u Unit)
}

// Observers returns an Observer that tells each of obs in turn (nil ones
// are skipped).
func Observers(obs ...Observer) Observer {
	var list multi
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	return list
}

type multi []Observer

func (m multi) ObserveUnit(ctx context.Context, u Unit) {
	for _, o := range m {
		o.ObserveUnit(ctx, u)
	}
}

// Hasher replaces tenant ids with a keyed hash for logs, metrics and
// traces. A Hasher is safe for concurrent use.
type Hasher struct {
	key   []byte
	cache sync.Map // tenant id -> hash, up to hashCacheMax entries
	n     int
	mu    sync.Mutex
}

const hashCacheMax = 10000

// ErrShortKey is returned by [NewHasher] for a key shorter than 16 bytes.
var ErrShortKey = errors.New("observe: the hasher's key must have at least 16 bytes")

// NewHasher returns a Hasher with a secret key of at least 16 bytes. Keep
// the key as secret as the ids: with it, ids can be found again by trying
// them.
func NewHasher(key []byte) (*Hasher, error) {
	if len(key) < 16 {
		return nil, ErrShortKey
	}
	return &Hasher{key: append([]byte(nil), key...)}, nil
}

// Hash returns the tenant's hash: 16 hex digits of HMAC-SHA-256 over its
// key type and id. The zero Tenant hashes to "".
func (h *Hasher) Hash(t rls.Tenant) string {
	if t.IsZero() {
		return ""
	}
	id := t.Key().String() + ":" + t.String()
	if v, ok := h.cache.Load(id); ok {
		return v.(string)
	}
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(id))
	s := hex.EncodeToString(m.Sum(nil)[:8])
	h.mu.Lock()
	if h.n < hashCacheMax {
		h.n++
		h.cache.Store(id, s)
	}
	h.mu.Unlock()
	return s
}

// Label returns how a tenant shows in telemetry: its id, or its hash when
// h is not nil; "none" for the zero Tenant.
func (h *Hasher) Label(t rls.Tenant) string {
	switch {
	case t.IsZero():
		return NoTenant
	case h == nil:
		return t.String()
	}
	return h.Hash(t)
}

// NoTenant is the label of work without a tenant.
const NoTenant = "none"
