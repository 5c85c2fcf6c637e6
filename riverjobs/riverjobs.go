package riverjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/pgtenancy/pgtenancy/rls"
)

// MetadataKey is the key, in a job's metadata (a JSON object), of the
// tenant that the job was inserted for:
//
//	{"pgtenancy_tenant": {"key": "bigint", "id": "42"}}
//
// "key" is the tenant's [rls.KeyType] and "id" its canonical value
// ([rls.Tenant.String]).
const MetadataKey = "pgtenancy_tenant"

// ErrNoTenant matches, with errors.Is, the error of a job that was worked
// without a tenant in its metadata while its kind is not declared
// tenant-free ([Options.TenantFree]). River records the error and retries
// the job as it retries any failed job: a job inserted without a tenant
// never runs its worker. The error also matches [rls.ErrNoTenant]. With
// [Options.StrictInsert], the insert of such a job fails with this error
// instead.
var ErrNoTenant = errors.New("riverjobs: the job has no tenant (insert it with a tenant in the context, or declare its kind tenant-free)")

// ErrTenantMismatch matches, with errors.Is, the error of an insert whose
// job metadata already names a tenant other than the context's.
var ErrTenantMismatch = errors.New("riverjobs: the job's metadata names another tenant than the context's")

// ErrBadMetadata matches, with errors.Is, the error about job metadata
// whose tenant entry cannot be read (not JSON, an unknown key type, an
// invalid id). At insert, the insert fails; at work, the job is cancelled
// (river.JobCancel), since no retry can repair it.
var ErrBadMetadata = errors.New("riverjobs: the job's tenant metadata is invalid")

// Options configure a [Middleware].
type Options struct {
	// TenantFree lists the job kinds that run without a tenant: their
	// workers get the context River gives, with no tenant, and work that
	// they run on a pgtenancy pool fails with rls.ErrNoTenant. Periodic
	// jobs, which River's leader inserts without a caller's context, are
	// typically tenant-free and fan out per tenant with rls.WithTenant. A
	// tenant-free job inserted with a tenant in the context still records
	// it, and its worker gets it.
	TenantFree []string

	// StrictInsert makes the insert of a job fail with [ErrNoTenant] when
	// the context has no tenant, the job's metadata names none and its
	// kind is not tenant-free; the whole batch of InsertMany fails then,
	// before anything is written. Without it such a job is inserted and
	// fails when worked.
	StrictInsert bool
}

// Middleware carries the tenant of a context into River jobs and back. It
// is both River insert middleware and worker middleware:
//
//   - at insert (Insert, InsertTx, InsertMany, InsertManyTx), it records
//     the tenant of the insert's context in each job's metadata
//     ([MetadataKey]), unless the metadata names one already (then the two
//     must agree);
//   - when a job is worked, it restores that tenant into the work context
//     ([rls.WithTenant]) before the worker (and any middleware installed
//     after it) runs, on every attempt: retries, snoozes and scheduled
//     jobs keep their tenant, since River keeps a job's metadata;
//   - a job without a tenant fails closed with [ErrNoTenant], unless its
//     kind is tenant-free ([Options.TenantFree]).
//
// Install it first in river.Config.Middleware so that the middleware after
// it (logging, tracing) sees the tenant:
//
//	client, err := river.NewClient(riverpgxv5.New(tenantPool.Unwrap()), &river.Config{
//		Middleware: []rivertype.Middleware{riverjobs.NewMiddleware(riverjobs.Options{})},
//		...
//	})
//
// The worker then runs its work on a pgtenancy pool with the context it
// was given, and row level security shows it its tenant's rows only.
type Middleware struct {
	river.MiddlewareDefaults
	free   map[string]bool
	strict bool
}

var (
	_ rivertype.JobInsertMiddleware = (*Middleware)(nil)
	_ rivertype.WorkerMiddleware    = (*Middleware)(nil)
)

// NewMiddleware returns a Middleware with opts.
func NewMiddleware(opts Options) *Middleware {
	m := &Middleware{free: map[string]bool{}, strict: opts.StrictInsert}
	for _, k := range opts.TenantFree {
		m.free[k] = true
	}
	return m
}

// tenantJSON is the value of MetadataKey.
type tenantJSON struct {
	Key string `json:"key"`
	ID  string `json:"id"`
}

// readMetadata returns the metadata object and the tenant it names, if
// any. Empty metadata is an empty object.
func readMetadata(md []byte) (map[string]json.RawMessage, rls.Tenant, bool, error) {
	obj := map[string]json.RawMessage{}
	if len(md) > 0 {
		if err := json.Unmarshal(md, &obj); err != nil {
			return nil, rls.Tenant{}, false, fmt.Errorf("%w: %w", ErrBadMetadata, err)
		}
		if obj == nil { // "null"
			obj = map[string]json.RawMessage{}
		}
	}
	raw, ok := obj[MetadataKey]
	if !ok {
		return obj, rls.Tenant{}, false, nil
	}
	var tj tenantJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, rls.Tenant{}, false, fmt.Errorf("%w: %s: %w", ErrBadMetadata, MetadataKey, err)
	}
	key, err := rls.ParseKeyType(tj.Key)
	if err != nil {
		return nil, rls.Tenant{}, false, fmt.Errorf("%w: %s: %w", ErrBadMetadata, MetadataKey, err)
	}
	t, err := rls.Parse(key, tj.ID)
	if err != nil {
		return nil, rls.Tenant{}, false, fmt.Errorf("%w: %s: %w", ErrBadMetadata, MetadataKey, err)
	}
	return obj, t, true, nil
}

// TenantOf returns the tenant recorded in a job's metadata: ok is false
// when it names none. The error matches [ErrBadMetadata] when the
// metadata cannot be read.
func TenantOf(job *rivertype.JobRow) (t rls.Tenant, ok bool, err error) {
	_, t, ok, err = readMetadata(job.Metadata)
	return t, ok, err
}

// InsertMany records the context's tenant in the metadata of each job. It
// implements rivertype.JobInsertMiddleware.
func (m *Middleware) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	t, has := rls.FromContext(ctx)
	// Check every job before changing any: a failed batch leaves the
	// params as they were.
	mds := make([][]byte, len(many))
	for i, p := range many {
		obj, named, ok, err := readMetadata(p.Metadata)
		if err != nil {
			return nil, fmt.Errorf("riverjobs: job of kind %q: %w", p.Kind, err)
		}
		switch {
		case ok && has && named != t:
			return nil, fmt.Errorf("%w: job of kind %q names %s %q, the context %s %q",
				ErrTenantMismatch, p.Kind, named.Key(), named, t.Key(), t)
		case ok:
			// Named explicitly (a system process inserting for a
			// tenant): kept.
		case has:
			b, err := json.Marshal(tenantJSON{Key: t.Key().String(), ID: t.String()})
			if err != nil {
				return nil, err
			}
			obj[MetadataKey] = b
			if mds[i], err = json.Marshal(obj); err != nil {
				return nil, err
			}
		case m.strict && !m.free[p.Kind]:
			return nil, fmt.Errorf("%w: job of kind %q inserted without a tenant in the context: %w", ErrNoTenant, p.Kind, rls.ErrNoTenant)
		}
	}
	for i, p := range many {
		if mds[i] != nil {
			p.Metadata = mds[i]
		}
	}
	return doInner(ctx)
}

// Work restores the job's tenant into the context that the worker gets.
// It implements rivertype.WorkerMiddleware.
func (m *Middleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	t, ok, err := TenantOf(job)
	switch {
	case err != nil:
		return river.JobCancel(fmt.Errorf("riverjobs: job %d of kind %q: %w", job.ID, job.Kind, err))
	case ok:
		return doInner(rls.WithTenant(ctx, t))
	case m.free[job.Kind]:
		return doInner(ctx)
	}
	return fmt.Errorf("%w: job %d of kind %q: %w", ErrNoTenant, job.ID, job.Kind, rls.ErrNoTenant)
}
