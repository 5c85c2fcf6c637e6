package stress_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// workers is the number of goroutines per pool.
const workers = 64

// opTimeout bounds every unit of work that is not meant to be cancelled: an
// op that reaches it is reported as hung.
const opTimeout = 30 * time.Second

// TestStress runs 64 goroutines across 1,000 tenants through a pgtenancy pool
// connected directly, and 64 more through a pool behind PgBouncer in
// transaction pooling mode (each on its own database), for -stress.duration
// (20 s by default). Every goroutine runs a random mix of units of work
// (selects, joins, inserts, updates, deletes, batches, transactions with
// savepoints, CopyFrom, AcquireFunc, cross-tenant writes that must be
// refused, and raw probes of pooled connections) and checks every row it
// sees. Meanwhile backends of the app role are killed, contexts are
// cancelled mid-query, statements time out, transaction callbacks panic,
// and the server restarts once (not with PGTENANCY_TEST_DATABASE_URL).
//
// Afterwards, with an admin connection: no row seen by the wrong tenant, no
// row written into the wrong tenant, no cross-tenant write accepted, no
// pooled connection holding a tenant or an open transaction, every
// acknowledged write present and every rolled-back or deleted one absent.
//
// It does not call t.Parallel: the restart ends every connection of the
// process.
func TestStress(t *testing.T) {
	d := *stressDuration
	if testing.Short() && d > 5*time.Second {
		d = 5 * time.Second
	}
	seed := *stressSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("duration %v, %d goroutines per pool, %d tenants, seed %d (-stress.seed=%d replays the choices, not the timing)",
		d, workers, numTenants, seed, seed)

	targets := []*target{newTarget(t, "direct", pgx.QueryExecModeCacheStatement, false)}
	if tg := newTarget(t, "pgbouncer", pgx.QueryExecModeCacheDescribe, true); tg != nil {
		targets = append(targets, tg)
	}

	ctx := context.Background()
	start := time.Now()
	deadline := start.Add(d)
	stop := make(chan struct{})
	var faults sync.WaitGroup
	var kills atomic.Int64
	faults.Add(1)
	go func() {
		defer faults.Done()
		kills.Store(killBackends(t, targets, stop, seed))
	}()

	// The restart, 40% into the run.
	restarted := make(chan time.Time, 1)
	if c := pgtenancytest.Local(t); c == nil {
		t.Log("no server restart: PGTENANCY_TEST_DATABASE_URL names a server this test does not control")
		close(restarted)
	} else {
		faults.Add(1)
		go func() {
			defer faults.Done()
			time.Sleep(d * 4 / 10)
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			began := time.Now()
			if err := c.Restart(rctx); err != nil {
				t.Errorf("restart: %v", err)
				close(restarted)
				return
			}
			now := time.Now()
			for _, tg := range targets {
				tg.st.restartDone.Store(now.UnixNano())
			}
			t.Logf("server restarted at %v in %v", began.Sub(start).Round(time.Millisecond), now.Sub(began).Round(time.Millisecond))
			restarted <- now
		}()
	}

	var wg sync.WaitGroup
	for ti, tg := range targets {
		for g := range workers {
			w := &worker{tg: tg, g: g, rng: rand.New(rand.NewPCG(seed, uint64(ti*workers+g))), l: newLedger()}
			tg.ledgers = append(tg.ledgers, w.l)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(ctx, deadline)
			}()
		}
	}
	wg.Wait()
	close(stop)
	faults.Wait()
	elapsed := time.Since(start)
	restartAt, didRestart := <-restarted

	for _, tg := range targets {
		tg.check(t, restartAt, didRestart)
		s := &tg.st
		summary := fmt.Sprintf("STRESS %s: %v, %d ops (%d ok, %d failed by faults, %d ok after the restart), "+
			"rows seen %d, seen by the wrong tenant %d, writes acknowledged %d, in the wrong tenant %d, "+
			"acknowledged but missing %d, rolled back or deleted but present %d, cross-tenant writes refused %d, accepted %d, "+
			"backends killed %d (both pools), cancelled %d, statement timeouts %d, panics %d, "+
			"probes of pooled connections %d, dirty %d, idle connections checked at the end %d, dirty %d, unexpected errors %d",
			tg.name, elapsed.Round(time.Millisecond), s.ops.Load(), s.ok.Load(), s.faults.Load(), s.okAfterRestart.Load(),
			s.rowsSeen.Load(), s.wrongRows.Load(), tg.acked, tg.wrongTenant, tg.missing, tg.resurrected,
			s.refused.Load(), s.crossAccepted.Load(), kills.Load(), s.cancels.Load(), s.timeouts.Load(), s.panics.Load(),
			s.probes.Load(), s.dirtyProbes.Load(), tg.idleChecked, tg.idleDirty, s.unexpected.Load())
		t.Log(summary)
		t.Logf("%s: faults by kind: %v", tg.name, &tg.faultKinds)
		fmt.Println(summary)
	}
}

// target is one pool under load, its database and its tallies.
type target struct {
	name       string
	db         *pgtenancytest.DB
	faultKinds tally
	p          *pool.Pool
	st         stats
	ledgers    []*ledger

	// results of check
	acked, wrongTenant, missing, resurrected int
	idleChecked, idleDirty                   int
}

// tally counts strings, safe for concurrent use.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *tally) add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[k]++
}

// String lists the counts, largest first.
func (c *tally) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return c.m[keys[i]] > c.m[keys[j]] || c.m[keys[i]] == c.m[keys[j]] && keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, c.m[k])
	}
	return b.String()
}

// faultKind names the kind of a fault error for the summary.
func faultKind(err error) string {
	if s := sqlState(err); s != "" {
		return "SQLSTATE " + s
	}
	var connectErr *pgconn.ConnectError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "context"
	case errors.As(err, &connectErr):
		return "connect"
	case pgconn.Timeout(err):
		return "timeout"
	}
	return "connection lost"
}

// stats are the counts the workers keep while running.
type stats struct {
	ops, ok, faults, okAfterRestart atomic.Int64
	rowsSeen, wrongRows             atomic.Int64
	refused, crossAccepted          atomic.Int64
	cancels, timeouts, panics       atomic.Int64
	probes, dirtyProbes             atomic.Int64
	unexpected                      atomic.Int64
	restartDone                     atomic.Int64 // unix nanos when the restart finished, 0 before
}

// newTarget creates a database from storeTemplate and a pgtenancy pool on it
// as the app role, directly or through pgbouncer (nil when pgbouncer is
// not installed).
func newTarget(t *testing.T, name string, mode pgx.QueryExecMode, bounce bool) *target {
	t.Helper()
	db := pgtenancytest.NewDB(t, storeTemplate)
	u := db.AppURL
	if bounce {
		if u = startPgBouncer(t, db, 4); u == "" {
			return nil
		}
	}
	cfg, err := pool.ParseConfig(u)
	require.NoError(t, err)
	cfg.PoolConfig.MaxConns = 16
	cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = mode
	cfg.PoolConfig.ConnConfig.ConnectTimeout = 5 * time.Second
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return &target{name: name, db: db, p: p}
}

// tokState is what the workers know about a row they wrote.
type tokState uint8

const (
	// acked: the write was acknowledged; the row must be there.
	acked tokState = iota + 1
	// deleted: an acknowledged delete removed it; it must be gone.
	deleted
	// absent: it was never committed (rolled back, refused); it must not
	// be there.
	absent
	// unknown: a fault hit the write or the delete; either is fine, but
	// never in another tenant.
	unknown
)

// ledger is one worker's record of the rows it wrote, keyed by token.
type ledger struct {
	state map[string]tokState
	live  []string // acked tokens not deleted, for deletes
}

func newLedger() *ledger { return &ledger{state: map[string]tokState{}} }

func (l *ledger) set(tok string, s tokState) {
	l.state[tok] = s
	if s == acked {
		l.live = append(l.live, tok)
	}
}

// tokenTenant returns the tenant a token was written for.
func tokenTenant(tok string) (int64, bool) {
	var tenant int64
	var g, seq int
	_, err := fmt.Sscanf(tok, tokenPrefix+"%d:%d:%d", &tenant, &g, &seq)
	return tenant, err == nil
}

// worker runs units of work for random tenants until the deadline.
type worker struct {
	tg  *target
	g   int
	rng *rand.Rand
	l   *ledger
	seq int
}

func (w *worker) token(tenant int64) string {
	w.seq++
	return fmt.Sprintf("%s%d:%d:%d", tokenPrefix, tenant, w.g, w.seq)
}

// opKinds lists the units of work with their weights.
var opKinds = []struct {
	name   string
	weight int
	run    func(w *worker, ctx context.Context, tenant int64) error
}{
	{"select", 3, (*worker).opSelect},
	{"join", 2, (*worker).opJoin},
	{"insert", 2, (*worker).opInsert},
	{"insert returning", 1, (*worker).opInsertReturning},
	{"update", 1, (*worker).opUpdate},
	{"cross-tenant update", 1, (*worker).opCrossUpdate},
	{"delete", 1, (*worker).opDelete},
	{"cross-tenant delete", 1, (*worker).opCrossDelete},
	{"batch", 2, (*worker).opBatch},
	{"batch transaction", 1, (*worker).opBatchTx},
	{"savepoints", 2, (*worker).opSavepoints},
	{"statement timeout", 1, (*worker).opTimeout},
	{"panic", 1, (*worker).opPanic},
	{"cancel", 2, (*worker).opCancel},
	{"copy", 1, (*worker).opCopy},
	{"acquire", 1, (*worker).opAcquire},
	{"probe", 1, (*worker).opProbe},
}

var opWeights = func() int {
	n := 0
	for _, k := range opKinds {
		n += k.weight
	}
	return n
}()

func (w *worker) run(ctx context.Context, deadline time.Time) {
	s := &w.tg.st
	for time.Now().Before(deadline) {
		tenant := int64(firstTenant + w.rng.IntN(numTenants))
		pick := w.rng.IntN(opWeights)
		k := 0
		for pick >= opKinds[k].weight {
			pick -= opKinds[k].weight
			k++
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		err := opKinds[k].run(w, rls.WithTenant(octx, rls.Int64(tenant)), tenant)
		hung := octx.Err() != nil
		cancel()
		s.ops.Add(1)
		switch {
		case hung:
			w.unexpected(fmt.Errorf("%s for tenant %d: still running after %v: %v", opKinds[k].name, tenant, opTimeout, err))
		case err == nil:
			s.ok.Add(1)
			if s.restartDone.Load() != 0 {
				s.okAfterRestart.Add(1)
			}
		case isFault(err):
			s.faults.Add(1)
			w.tg.faultKinds.add(faultKind(err))
		default:
			w.unexpected(fmt.Errorf("%s for tenant %d: %w", opKinds[k].name, tenant, err))
		}
	}
}

// unexpected records an error that no fault explains.
func (w *worker) unexpected(err error) {
	if w.tg.st.unexpected.Add(1) <= 20 {
		unexpectedMu.Lock()
		unexpectedErrs = append(unexpectedErrs, fmt.Sprintf("%s goroutine %d: %v", w.tg.name, w.g, err))
		unexpectedMu.Unlock()
	}
}

var (
	unexpectedMu   sync.Mutex
	unexpectedErrs []string
)

// errCheck is an isolation failure found by a worker; it is not a fault.
type errCheck struct{ msg string }

func (e *errCheck) Error() string { return e.msg }

func checkFailed(format string, args ...any) error { return &errCheck{fmt.Sprintf(format, args...)} }

// other returns a tenant that is not tenant.
func (w *worker) other(tenant int64) int64 {
	return firstTenant + (tenant-firstTenant+1+int64(w.rng.IntN(numTenants-1)))%numTenants
}

// seeStores reads a column of store ids and counts them; any other than
// tenant is a row seen by the wrong tenant.
func (w *worker) seeStores(rows pgx.Rows, tenant int64, min int) error {
	defer rows.Close()
	n := 0
	for rows.Next() {
		var store int64
		if err := rows.Scan(&store); err != nil {
			return err
		}
		n++
		if store != tenant {
			w.tg.st.wrongRows.Add(1)
			return checkFailed("tenant %d saw a row of store %d", tenant, store)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.tg.st.rowsSeen.Add(int64(n))
	if n < min {
		return checkFailed("tenant %d saw %d rows, want at least %d (its seed rows)", tenant, n, min)
	}
	return nil
}

func (w *worker) opSelect(ctx context.Context, tenant int64) error {
	p := w.tg.p
	var args []any
	if w.rng.IntN(4) == 0 {
		// A per-query exec mode runs in an explicit transaction: another
		// path through the pool.
		args = append(args, pgx.QueryExecModeSimpleProtocol)
	}
	rows, err := p.Query(ctx, "SELECT store_id FROM products", args...)
	if err != nil {
		return err
	}
	return w.seeStores(rows, tenant, 2)
}

func (w *worker) opJoin(ctx context.Context, tenant int64) error {
	rows, err := w.tg.p.Query(ctx, `
		SELECT unnest(ARRAY[s.id, p.store_id, pu.store_id])
		FROM purchases pu
		JOIN products p ON p.id = pu.product_id
		JOIN stores s ON s.id = pu.store_id`)
	if err != nil {
		return err
	}
	if err := w.seeStores(rows, tenant, 3); err != nil {
		return err
	}
	var others int64
	if err := w.tg.p.QueryRow(ctx, "SELECT count(*) FROM products WHERE store_id <> $1", tenant).Scan(&others); err != nil {
		return err
	}
	if others != 0 {
		w.tg.st.wrongRows.Add(others)
		return checkFailed("tenant %d counted %d rows of other stores", tenant, others)
	}
	return nil
}

// opInsert inserts without store_id: the column's default reads the
// tenant setting.
func (w *worker) opInsert(ctx context.Context, tenant int64) error {
	tok := w.token(tenant)
	_, err := w.tg.p.Exec(ctx, "INSERT INTO products (name, price_cents, currency) VALUES ($1, 1, 'EUR')", tok)
	if err != nil {
		w.l.set(tok, unknown)
		return err
	}
	w.l.set(tok, acked)
	return nil
}

func (w *worker) opInsertReturning(ctx context.Context, tenant int64) error {
	tok := w.token(tenant)
	var store int64
	err := w.tg.p.QueryRow(ctx,
		"INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, $2, 2, 'USD') RETURNING store_id",
		tenant, tok).Scan(&store)
	if err != nil {
		w.l.set(tok, unknown)
		return err
	}
	w.l.set(tok, acked)
	if store != tenant {
		return checkFailed("tenant %d inserted into store %d", tenant, store)
	}
	return nil
}

func (w *worker) opUpdate(ctx context.Context, tenant int64) error {
	rows, err := w.tg.p.Query(ctx,
		"UPDATE products SET price_cents = price_cents + 1 WHERE id = (SELECT min(id) FROM products) RETURNING store_id")
	if err != nil {
		return err
	}
	return w.seeStores(rows, tenant, 1)
}

// opCrossUpdate tries to move a row to another tenant: the policy's WITH
// CHECK must refuse it (42501).
func (w *worker) opCrossUpdate(ctx context.Context, tenant int64) error {
	_, err := w.tg.p.Exec(ctx,
		"UPDATE products SET store_id = $1 WHERE id = (SELECT min(id) FROM products)", w.other(tenant))
	return w.refused(err, "42501")
}

// refused checks the outcome of a write that must fail with one of codes.
func (w *worker) refused(err error, codes ...string) error {
	switch {
	case err == nil:
		w.tg.st.crossAccepted.Add(1)
		return checkFailed("a cross-tenant write was accepted")
	case isFault(err):
		return err
	}
	for _, c := range codes {
		if sqlState(err) == c {
			w.tg.st.refused.Add(1)
			return nil
		}
	}
	return fmt.Errorf("cross-tenant write failed with %v, want SQLSTATE %v", err, codes)
}

func (w *worker) liveToken() (string, int64, bool) {
	if len(w.l.live) == 0 {
		return "", 0, false
	}
	i := w.rng.IntN(len(w.l.live))
	tok := w.l.live[i]
	if w.l.state[tok] != acked {
		w.l.live[i] = w.l.live[len(w.l.live)-1]
		w.l.live = w.l.live[:len(w.l.live)-1]
		return "", 0, false
	}
	tenant, _ := tokenTenant(tok)
	return tok, tenant, true
}

// opDelete deletes one of the worker's acknowledged rows, as its tenant
// (not the tenant the loop picked).
func (w *worker) opDelete(ctx context.Context, _ int64) error {
	tok, tenant, ok := w.liveToken()
	if !ok {
		return nil
	}
	ctx = rls.WithTenant(ctx, rls.Int64(tenant))
	tag, err := w.tg.p.Exec(ctx, "DELETE FROM products WHERE name = $1", tok)
	if err != nil {
		w.l.set(tok, unknown)
		return err
	}
	w.l.set(tok, deleted)
	if tag.RowsAffected() != 1 {
		return checkFailed("tenant %d deleted %d rows of its acknowledged row %s, want 1", tenant, tag.RowsAffected(), tok)
	}
	return nil
}

// opCrossDelete tries to delete one of the worker's rows as another
// tenant: it must delete nothing.
func (w *worker) opCrossDelete(ctx context.Context, tenant int64) error {
	tok, owner, ok := w.liveToken()
	if !ok {
		return nil
	}
	if owner == tenant {
		tenant = w.other(owner)
	}
	ctx = rls.WithTenant(ctx, rls.Int64(tenant))
	tag, err := w.tg.p.Exec(ctx, "DELETE FROM products WHERE name = $1 OR store_id = $2", tok, owner)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 0 {
		w.tg.st.crossAccepted.Add(1)
		w.l.set(tok, unknown)
		return checkFailed("tenant %d deleted %d rows of tenant %d", tenant, tag.RowsAffected(), owner)
	}
	w.tg.st.refused.Add(1)
	return nil
}

func (w *worker) opBatch(ctx context.Context, tenant int64) error {
	tok := w.token(tenant)
	w.l.set(tok, unknown)
	b := &pgx.Batch{}
	b.Queue("INSERT INTO products (name, price_cents, currency) VALUES ($1, 3, 'EUR')", tok)
	b.Queue("SELECT store_id FROM products")
	b.Queue("SELECT count(*) FROM products WHERE store_id <> $1", tenant)
	br := w.tg.p.SendBatch(ctx, b)
	err := func() error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		if err := w.seeStores(rows, tenant, 3); err != nil {
			return err
		}
		var others int64
		if err := br.QueryRow().Scan(&others); err != nil {
			return err
		}
		if others != 0 {
			w.tg.st.wrongRows.Add(others)
			return checkFailed("tenant %d counted %d rows of other stores in a batch", tenant, others)
		}
		return nil
	}()
	if closeErr := br.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		w.l.set(tok, acked)
	}
	return err
}

// opBatchTx sends a batch that begins a transaction (pgx.Batch.BeginTx),
// then commits or rolls back the transaction it returns.
func (w *worker) opBatchTx(ctx context.Context, tenant int64) error {
	tok := w.token(tenant)
	w.l.set(tok, unknown)
	commit := w.rng.IntN(2) == 0
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue("INSERT INTO products (name, price_cents, currency) VALUES ($1, 4, 'EUR')", tok)
	br := w.tg.p.SendBatch(ctx, b)
	err := br.Close()
	tx := br.Tx()
	if err != nil {
		if tx != nil {
			_ = tx.Rollback(ctx)
		}
		return err
	}
	if tx == nil {
		return checkFailed("a batch with BeginTx returned no transaction")
	}
	rows, err := tx.Query(ctx, "SELECT store_id FROM products")
	if err == nil {
		err = w.seeStores(rows, tenant, 3)
	}
	if err != nil || !commit {
		if rbErr := tx.Rollback(ctx); rbErr == nil {
			w.l.set(tok, absent)
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	w.l.set(tok, acked)
	return nil
}

// opSavepoints runs a transaction with a savepoint that is released or
// rolled back.
func (w *worker) opSavepoints(ctx context.Context, tenant int64) error {
	outer, inner := w.token(tenant), w.token(tenant)
	w.l.set(outer, unknown)
	w.l.set(inner, unknown)
	keepInner := w.rng.IntN(2) == 0
	innerGone := false
	err := w.tg.p.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO products (name, price_cents, currency) VALUES ($1, 5, 'EUR')", outer); err != nil {
			return err
		}
		sp, err := tx.Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := sp.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, $2, 6, 'EUR')", tenant, inner); err != nil {
			_ = sp.Rollback(ctx)
			return err
		}
		if keepInner {
			err = sp.Commit(ctx)
		} else if err = sp.Rollback(ctx); err == nil {
			innerGone = true
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT store_id FROM products WHERE name = ANY($1)", []string{outer, inner})
		if err != nil {
			return err
		}
		want := 1
		if keepInner {
			want = 2
		}
		if err := w.seeStores(rows, tenant, want); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, "SELECT store_id FROM products")
		if err != nil {
			return err
		}
		return w.seeStores(rows, tenant, 2+want)
	})
	if innerGone {
		w.l.set(inner, absent)
	}
	if err != nil {
		return err
	}
	w.l.set(outer, acked)
	if keepInner {
		w.l.set(inner, acked)
	}
	return nil
}

// opTimeout runs a statement that outlives a SET LOCAL statement_timeout:
// the transaction fails with 57014 and its insert must not survive.
func (w *worker) opTimeout(ctx context.Context, tenant int64) error {
	tok := w.token(tenant)
	err := w.tg.p.BeginFunc(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = '20ms'"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO products (name, price_cents, currency) VALUES ($1, 7, 'EUR')", tok); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT pg_sleep(0.3)")
		return err
	})
	if err == nil {
		w.l.set(tok, acked)
		return checkFailed("pg_sleep(0.3) outlived statement_timeout = 20ms")
	}
	// The function failed, so the transaction never committed.
	w.l.set(tok, absent)
	if sqlState(err) == "57014" {
		w.tg.st.timeouts.Add(1)
		return nil
	}
	return err
}

var errStressPanic = errors.New("stress: deliberate panic")

// opPanic panics inside a transaction callback (BeginFunc or AcquireFunc)
// after a write, and recovers: the write must be rolled back.
func (w *worker) opPanic(ctx context.Context, tenant int64) (err error) {
	tok := w.token(tenant)
	w.l.set(tok, absent) // whatever happens, nothing commits
	defer func() {
		if r := recover(); r != nil {
			if r != errStressPanic {
				panic(r)
			}
			w.tg.st.panics.Add(1)
			err = nil
		}
	}()
	const insert = "INSERT INTO products (name, price_cents, currency) VALUES ($1, 8, 'EUR')"
	if w.rng.IntN(2) == 0 {
		err = w.tg.p.BeginFunc(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, insert, tok); err != nil {
				return err
			}
			panic(errStressPanic)
		})
	} else {
		err = w.tg.p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
			if _, err := c.Exec(ctx, insert, tok); err != nil {
				return err
			}
			panic(errStressPanic)
		})
	}
	return err
}

// opCancel runs work under a context that ends within 0-4 ms: mid-query,
// mid-batch or mid-transaction.
func (w *worker) opCancel(ctx context.Context, tenant int64) error {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(w.rng.IntN(4000))*time.Microsecond)
	defer cancel()
	var err error
	switch w.rng.IntN(3) {
	case 0:
		tok := w.token(tenant)
		if _, err = w.tg.p.Exec(cctx, "INSERT INTO products (name, price_cents, currency) SELECT $1, 9, 'EUR' FROM pg_sleep(0.002)", tok); err == nil {
			w.l.set(tok, acked)
		} else {
			w.l.set(tok, unknown)
		}
	case 1:
		var rows pgx.Rows
		if rows, err = w.tg.p.Query(cctx, "SELECT store_id FROM products, pg_sleep(0.001)"); err == nil {
			err = w.seeStores(rows, tenant, 2)
		}
	default:
		tok := w.token(tenant)
		w.l.set(tok, unknown)
		var tx pgx.Tx
		if tx, err = w.tg.p.Begin(cctx); err != nil {
			break
		}
		if _, err = tx.Exec(cctx, "INSERT INTO products (name, price_cents, currency) VALUES ($1, 10, 'EUR')", tok); err != nil {
			_ = tx.Rollback(cctx)
			break
		}
		time.Sleep(time.Millisecond)
		if err = tx.Commit(cctx); err == nil {
			w.l.set(tok, acked)
		}
	}
	if err != nil && cctx.Err() != nil {
		w.tg.st.cancels.Add(1)
	}
	var check *errCheck
	if errors.As(err, &check) {
		return err
	}
	if err != nil && cctx.Err() != nil && ctx.Err() == nil {
		// The cancellation did it, in whatever words: a fault.
		return context.Canceled
	}
	return err
}

// opCopy copies rows with pool.CopyFrom; one time in four a row of another
// tenant rides along, and the policy must refuse the whole copy.
func (w *worker) opCopy(ctx context.Context, tenant int64) error {
	n := 5 + w.rng.IntN(20)
	attack := w.rng.IntN(4) == 0
	withStore := attack || w.rng.IntN(2) == 0
	toks := make([]string, n)
	rows := make([][]any, n)
	for i := range n {
		toks[i] = w.token(tenant)
		store := tenant
		if attack && i == n/2 {
			store = w.other(tenant)
		}
		if withStore {
			rows[i] = []any{store, toks[i], int64(11), "EUR"}
		} else {
			rows[i] = []any{toks[i], int64(11), "EUR"}
		}
	}
	cols := []string{"name", "price_cents", "currency"}
	if withStore {
		cols = append([]string{"store_id"}, cols...)
	}
	got, err := w.tg.p.CopyFrom(ctx, pgx.Identifier{"products"}, cols, pgx.CopyFromRows(rows))
	state := unknown
	switch {
	case attack && err != nil && !isFault(err):
		state = absent
	case !attack && err == nil:
		state = acked
	}
	for _, tok := range toks {
		w.l.set(tok, state)
	}
	if attack {
		return w.refused(err, "42501")
	}
	if err == nil && got != int64(n) {
		return checkFailed("CopyFrom of %d rows returned %d", n, got)
	}
	return err
}

func (w *worker) opAcquire(ctx context.Context, tenant int64) error {
	return w.tg.p.AcquireFunc(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, "SELECT store_id FROM products")
		if err != nil {
			return err
		}
		return w.seeStores(rows, tenant, 2)
	})
}

// opProbe takes a connection straight from the underlying pgxpool, as a
// careless caller would, and checks that it holds no tenant, no
// transaction and no leftover statement_timeout, and sees no tenant rows.
func (w *worker) opProbe(ctx context.Context, _ int64) error {
	c, err := w.tg.p.Unwrap().Acquire(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	defer c.Release()
	w.tg.st.probes.Add(1)
	if s := c.Conn().PgConn().TxStatus(); s != 'I' {
		w.tg.st.dirtyProbes.Add(1)
		return checkFailed("pooled connection in transaction status %q", s)
	}
	var tenant *string
	var timeout string
	var rows int64
	err = c.QueryRow(ctx, "SELECT current_setting('app.current_tenant', true), current_setting('statement_timeout'), (SELECT count(*) FROM products)").
		Scan(&tenant, &timeout, &rows)
	if err != nil {
		return err
	}
	if tenant != nil && *tenant != "" || timeout != "0" || rows != 0 {
		w.tg.st.dirtyProbes.Add(1)
		t := "NULL"
		if tenant != nil {
			t = fmt.Sprintf("%q", *tenant)
		}
		return checkFailed("pooled connection holds tenant %s, statement_timeout %s, sees %d rows without a tenant", t, timeout, rows)
	}
	return nil
}

// killBackends terminates one or two random backends of the app role in
// the targets' databases every 50-250 ms until stop closes, and returns
// how many it killed. It rides out the restart.
func killBackends(t *testing.T, targets []*target, stop chan struct{}, seed uint64) int64 {
	cfg, err := pgxpool.ParseConfig(pgtenancytest.ServerURL(t))
	if err != nil {
		t.Errorf("killer: %v", err)
		return 0
	}
	cfg.MaxConns = 1
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	admin, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Errorf("killer: %v", err)
		return 0
	}
	defer admin.Close()
	var dbs []string
	for _, tg := range targets {
		dbs = append(dbs, tg.db.Name)
	}
	rng := rand.New(rand.NewPCG(seed, 1<<40))
	var kills int64
	for {
		select {
		case <-stop:
			return kills
		case <-time.After(time.Duration(50+rng.IntN(200)) * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var n int64
		err := admin.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
			FROM (SELECT pid FROM pg_stat_activity
			      WHERE usename = $1 AND datname = ANY($2) AND pid <> pg_backend_pid()
			      ORDER BY random() LIMIT $3) s`,
			pgtenancytest.AppRole, dbs, 1+rng.IntN(2)).Scan(&n)
		cancel()
		if err == nil {
			kills += n
		} else if !isFault(err) {
			t.Errorf("killer: %v", err)
		}
	}
}

// check compares the database with the ledgers and checks the idle
// connections of the pool.
func (tg *target) check(t *testing.T, restartAt time.Time, didRestart bool) {
	t.Helper()
	ctx := context.Background()
	s := &tg.st

	unexpectedMu.Lock()
	for _, e := range unexpectedErrs {
		if strings.HasPrefix(e, tg.name+" ") {
			t.Errorf("unexpected: %s", e)
		}
	}
	unexpectedMu.Unlock()
	if n := s.unexpected.Load(); n > 0 {
		t.Errorf("%s: %d unexpected errors (first 20 above)", tg.name, n)
	}
	if didRestart && !restartAt.IsZero() && s.okAfterRestart.Load() == 0 {
		t.Errorf("%s: no unit of work succeeded after the restart", tg.name)
	}

	admin := tg.db.AdminConn(t)
	rows, err := admin.Query(ctx, "SELECT name, store_id FROM products WHERE name LIKE 'stress:%'")
	require.NoError(t, err)
	present := map[string]bool{}
	for rows.Next() {
		var name string
		var store int64
		require.NoError(t, rows.Scan(&name, &store))
		present[name] = true
		want, ok := tokenTenant(name)
		if !ok || want != store {
			tg.wrongTenant++
			if tg.wrongTenant <= 10 {
				t.Errorf("%s: row %q is in store %d", tg.name, name, store)
			}
		}
	}
	require.NoError(t, rows.Err())

	var problems []string
	for _, l := range tg.ledgers {
		for tok, st := range l.state {
			switch {
			case st == acked && !present[tok]:
				tg.missing++
				problems = append(problems, "acknowledged but missing: "+tok)
			case (st == deleted || st == absent) && present[tok]:
				tg.resurrected++
				problems = append(problems, "rolled back, refused or deleted but present: "+tok)
			}
			if st == acked {
				tg.acked++
			}
		}
	}
	sort.Strings(problems)
	for i, p := range problems {
		if i == 10 {
			t.Errorf("%s: ... %d more", tg.name, len(problems)-i)
			break
		}
		t.Errorf("%s: %s", tg.name, p)
	}

	// Rows the workers did not write: seed rows stay in their stores, and
	// every purchase's product is in the purchase's store.
	var movedSeeds, crossPurchases, foreign int64
	require.NoError(t, admin.QueryRow(ctx, `
		SELECT
			(SELECT count(*) FROM products WHERE name LIKE 'seed %' AND store_id <> split_part(name, ' ', 2)::bigint),
			(SELECT count(*) FROM purchases pu JOIN products p ON p.id = pu.product_id WHERE p.store_id <> pu.store_id),
			(SELECT count(*) FROM products WHERE name NOT LIKE 'stress:%' AND name NOT LIKE 'seed %' AND store_id >= $1)`,
		firstTenant).Scan(&movedSeeds, &crossPurchases, &foreign))
	if movedSeeds != 0 || crossPurchases != 0 || foreign != 0 {
		t.Errorf("%s: %d seed rows moved to another store, %d purchases of another store's product, %d rows nobody wrote",
			tg.name, movedSeeds, crossPurchases, foreign)
	}
	tg.wrongTenant += int(movedSeeds + crossPurchases)

	// Every written token is known to a ledger: nothing else wrote rows.
	known := 0
	for _, l := range tg.ledgers {
		for tok := range present {
			if _, ok := l.state[tok]; ok {
				known++
			}
		}
	}
	if known != len(present) {
		t.Errorf("%s: %d rows carry a token no worker wrote", tg.name, len(present)-known)
	}

	// Idle connections: no tenant, no transaction.
	conns := tg.p.Unwrap().AcquireAllIdle(ctx)
	for _, c := range conns {
		if c.Conn().PgConn().TxStatus() != 'I' {
			tg.idleDirty++
			continue
		}
		var tenant *string
		var timeout string
		err := c.QueryRow(ctx, "SELECT current_setting('app.current_tenant', true), current_setting('statement_timeout')",
			pgx.QueryExecModeSimpleProtocol).Scan(&tenant, &timeout)
		switch {
		case err != nil && isFault(err):
			// Killed while idle; pgxpool will replace it.
		case err != nil:
			t.Errorf("%s: idle connection: %v", tg.name, err)
		case tenant != nil && *tenant != "" || timeout != "0":
			tg.idleDirty++
		default:
			tg.idleChecked++
		}
		c.Release()
	}
	if tg.idleDirty != 0 {
		t.Errorf("%s: %d idle pooled connections hold a tenant, a statement_timeout or a transaction", tg.name, tg.idleDirty)
	}
	if tg.idleChecked == 0 {
		t.Errorf("%s: no idle connection to check", tg.name)
	}

	if s.wrongRows.Load() != 0 || s.crossAccepted.Load() != 0 || s.dirtyProbes.Load() != 0 {
		t.Errorf("%s: %d rows seen by the wrong tenant, %d cross-tenant writes accepted, %d dirty pooled connections",
			tg.name, s.wrongRows.Load(), s.crossAccepted.Load(), s.dirtyProbes.Load())
	}
	// The faults must have happened, or the test proved less than it says.
	if s.timeouts.Load() == 0 || s.panics.Load() == 0 || s.cancels.Load() == 0 || s.refused.Load() == 0 || s.probes.Load() == 0 {
		t.Errorf("%s: a fault kind never happened: timeouts %d, panics %d, cancels %d, refused %d, probes %d",
			tg.name, s.timeouts.Load(), s.panics.Load(), s.cancels.Load(), s.refused.Load(), s.probes.Load())
	}
}
