package attack_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/verify"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// notesDDL adds a tenant table keyed the recommended way: the tenant
// column first in its primary key. Store 2 has note 7.
const notesDDL = `
CREATE TABLE notes (
    store_id bigint NOT NULL REFERENCES stores (id),
    id bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (store_id, id)
);
INSERT INTO notes VALUES (2, 7, 'B note 7');`

// model is the store model plus notes.
func model(key rls.KeyType) *policy.Model {
	m := testschema.Model(key, pgtenancytest.AppRole)
	if key == rls.BigInt {
		m.Tables = append(m.Tables, policy.Table{Name: "notes", TenantColumn: "store_id"})
	}
	return m
}

// setup returns a template Setup: the store schema for key, seeded with
// stores A, B and C, the library installed and isolation applied.
func setup(key rls.KeyType) func(ctx context.Context, conn *pgx.Conn) error {
	return func(ctx context.Context, conn *pgx.Conn) error {
		ddl := testschema.DDL(key) + testschema.Seed(key)
		if key == rls.BigInt {
			ddl += notesDDL
		}
		if _, err := conn.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
			return err
		}
		gen, err := policy.Generate(model(key))
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, gen.Up)
		return err
	}
}

var (
	bigintStore = &pgtenancytest.Template{Name: "attack_bigint", Setup: setup(rls.BigInt)}
	textStore   = &pgtenancytest.Template{Name: "attack_text", Setup: setup(rls.Text)}
)

// Tenants A, B and C of the bigint store: A has products 101-103, B 201
// and 202, C 301.
var tenantA, tenantB = rls.Int64(1), rls.Int64(2)

func as(t rls.Tenant) context.Context { return rls.WithTenant(context.Background(), t) }

// newPool returns a pgtenancy pool on connURL (by default the app role's).
func newPool(t *testing.T, connURL string, mode pgx.QueryExecMode) *pool.Pool {
	t.Helper()
	cfg, err := pool.ParseConfig(connURL)
	require.NoError(t, err)
	cfg.PoolConfig.MaxConns = 2
	if mode != 0 {
		cfg.PoolConfig.ConnConfig.DefaultQueryExecMode = mode
	}
	p, err := pool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

// storeIDs returns the store_id of every row of table that the context's
// tenant sees through p, as text.
func storeIDs(t *testing.T, ctx context.Context, p interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) []string {
	t.Helper()
	rows, err := p.Query(ctx, "SELECT store_id::text FROM "+table+" ORDER BY 1")
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func constraintName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// verifyCodes runs verify.Run on db with the store model and returns the
// codes of its findings, each with its object ("code object").
func verifyCodes(t *testing.T, db *pgtenancytest.DB, key rls.KeyType, appRole string) []string {
	t.Helper()
	rep, err := verify.Run(context.Background(), db.AdminConn(t), verify.Options{Model: model(key), AppRole: appRole})
	require.NoError(t, err)
	var out []string
	for _, f := range rep.Findings {
		out = append(out, string(f.Code)+" "+f.Object)
	}
	return out
}

// hostile are tenant values that would do damage if they were pasted into
// SQL text.
var hostile = []string{
	"x'; DROP TABLE products; --",
	"1; DROP TABLE products",
	"1 OR 1=1",
	"' OR ''='",
	`"products"`,
	`\'; SELECT pg_sleep(10); --`,
	"$$; DROP TABLE products; $$",
}

// TestHostileTenantValues sends tenant values carrying quotes, semicolons,
// NUL bytes and megabytes through rls.Parse, the middleware and the pool.
// Values invalid for the key type fail with a typed error (400 from the
// middleware) before any I/O; values that are valid text tenants travel as
// bind parameters, never as SQL text: each sees only its own rows (none
// for an unknown tenant), and the tables are intact afterwards.
func TestHostileTenantValues(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("9", 1<<20)

	t.Run("Parse", func(t *testing.T) {
		t.Parallel()
		for _, key := range []rls.KeyType{rls.BigInt, rls.UUID, rls.Text} {
			for _, v := range append(slices.Clone(hostile), "a\x00b", "1\x00", huge, "a\nb") {
				got, err := rls.Parse(key, v)
				if key == rls.Text && !strings.ContainsAny(v, "\x00\n") && len(v) <= rls.MaxTextLen {
					require.NoError(t, err, "%s %q", key, v)
					require.Equal(t, v, got.String(), "a text tenant is kept byte for byte")
					continue
				}
				require.ErrorIs(t, err, rls.ErrInvalidTenant, "%s %.40q", key, v)
				var ite *rls.InvalidTenantError
				require.ErrorAs(t, err, &ite)
				require.Equal(t, key, ite.Key)
				require.LessOrEqual(t, len(ite.Value), 50, "the error quotes a shortened value")
				require.True(t, got.IsZero())
			}
		}
	})

	t.Run("middleware", func(t *testing.T) {
		t.Parallel()
		for _, key := range []rls.KeyType{rls.BigInt, rls.UUID, rls.Text} {
			called := 0
			mw, err := middleware.New(middleware.Config{KeyType: key, Resolver: middleware.Header(""), Authorize: testCallerMayUseAny})
			require.NoError(t, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called++ }))
			for _, v := range append(slices.Clone(hostile), "a\x00b", huge, "a\r\nX-Evil: 1") {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header["X-Tenant-Id"] = []string{v} // raw: net/http's own checks are not the defence here
				rec := httptest.NewRecorder()
				before := called
				h.ServeHTTP(rec, r)
				valid := key == rls.Text && !strings.ContainsAny(v, "\x00\r\n") && len(v) <= rls.MaxTextLen
				if valid {
					assert.Equal(t, before+1, called, "%s %q", key, v)
					continue
				}
				assert.Equal(t, http.StatusBadRequest, rec.Code, "%s %.40q", key, v)
				assert.Equal(t, before, called, "next must not run for %s %.40q", key, v)
				assert.NotContains(t, rec.Body.String(), "DROP", "the response never echoes the value")
			}
		}
	})

	t.Run("pool", func(t *testing.T) {
		t.Parallel()
		db := pgtenancytest.NewDB(t, textStore)
		admin := db.AdminConn(t)
		ctx := context.Background()
		var seedRows int
		require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&seedRows))
		// One hostile value becomes a real store with a product.
		owned := hostile[0]
		_, err := admin.Exec(ctx, "INSERT INTO stores (id, name) VALUES ($1, 'hostile')", owned)
		require.NoError(t, err)
		_, err = admin.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, 'hostile product', 1, 'EUR')", owned)
		require.NoError(t, err)
		modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
			pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
		for _, mode := range modes {
			p := newPool(t, db.AppURL, mode)
			for _, v := range hostile {
				tenant := rls.MustParse(rls.Text, v)
				got := storeIDs(t, as(tenant), p, "products")
				if v == owned {
					require.Equal(t, []string{owned}, got, "%v: the hostile store sees its product, matched byte for byte", mode)
				} else {
					require.Empty(t, got, "%v: tenant %q", mode, v)
				}
				// The same value written as a row lands as that value.
				var store string
				err := p.QueryRow(as(tenant), "SELECT current_setting('app.current_tenant')").Scan(&store)
				require.NoError(t, err)
				require.Equal(t, v, store, "%v: the setting holds the value unchanged", mode)
			}
			// The seeded text tenants with a quote and a backslash see
			// exactly their own rows.
			for _, tn := range testschema.Tenants(rls.Text) {
				for _, id := range storeIDs(t, as(tn), p, "products") {
					require.Equal(t, tn.String(), id, "%v", mode)
				}
			}
		}
		var after int
		require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&after))
		require.Equal(t, seedRows+1, after, "products is intact: the seed rows and the one hostile product")

		// End to end: an HTTP request whose header carries SQL.
		p := newPool(t, db.AppURL, 0)
		mw, err := middleware.New(middleware.Config{
			KeyType: rls.Text, Resolver: middleware.Header(""), Authorize: testCallerMayUseAny,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				status := http.StatusInternalServerError
				var e *middleware.Error
				if assert.ErrorAs(t, err, &e) {
					status = e.Status
				}
				w.Header().Set("X-Refused-By", "pgtenancy")
				http.Error(w, "refused", status)
			},
		})
		require.NoError(t, err)
		srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rows, err := p.Query(r.Context(), "SELECT store_id FROM products ORDER BY id")
			if err != nil {
				http.Error(w, "db", http.StatusInternalServerError)
				return
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				http.Error(w, "db", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, strings.Join(ids, "|"))
		})))
		t.Cleanup(srv.Close)
		get := func(tenant string) (int, string) {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			req.Header.Set("X-Tenant-ID", tenant)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp.StatusCode, string(body)
		}
		code, body := get(owned)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, owned, body)
		code, body = get("1; DROP TABLE products")
		require.Equal(t, http.StatusOK, code)
		require.Empty(t, body)
		code, body = get("o'brien")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "o'brien|o'brien", body)

		// Over the wire: net/http's server refuses a NUL byte itself (400)
		// and headers over its 1 MiB limit (431); a 1 MiB value fits and
		// the middleware refuses it (400).
		code, byPgtenancy := rawStatus(t, srv.URL, "a\x00b")
		require.Equal(t, http.StatusBadRequest, code)
		require.False(t, byPgtenancy)
		code, byPgtenancy = rawStatus(t, srv.URL, huge)
		require.Equal(t, http.StatusBadRequest, code)
		require.True(t, byPgtenancy)
		code, byPgtenancy = rawStatus(t, srv.URL, huge+huge)
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, code)
		require.False(t, byPgtenancy)

		var tables int
		require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('products', 'stores', 'purchases')").Scan(&tables))
		require.Equal(t, 3, tables)
	})
}

// rawStatus sends a GET with header X-Tenant-ID: value as raw bytes (the
// net/http client refuses to send invalid values) and returns the status,
// and whether the middleware (rather than net/http) refused it.
func rawStatus(t *testing.T, serverURL, value string) (int, bool) {
	t.Helper()
	u, err := url.Parse(serverURL)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	go func() {
		// The server may answer and close before it read all of a huge
		// request; a failed write is expected then.
		_, _ = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: "+value+"\r\nConnection: close\r\n\r\n")
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Refused-By") == "pgtenancy"
}

// TestForgedJWT: a token signed with another key, with alg "none", with a
// payload swapped under a valid signature, with an algorithm outside the
// list, expired, or without an expiry is refused with 401; a valid token
// for a tenant the caller may not use gets 403; a valid token whose claim
// carries SQL gets 400. In every refused case the handler never runs and
// the pool is never touched.
func TestForgedJWT(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, bigintStore)
	p := newPool(t, db.AppURL, 0)
	key := []byte("the application's HS256 key, 32+ bytes long")
	mw, err := middleware.New(middleware.Config{
		KeyType: rls.BigInt,
		Resolver: middleware.JWTClaim(middleware.JWTOptions{
			Claim:   "tenant",
			Keyfunc: func(*jwt.Token) (any, error) { return key, nil },
			Methods: []string{"HS256"},
		}),
		Authorize: func(r *http.Request, tn rls.Tenant) error {
			if tn == rls.Int64(3) {
				return middleware.ErrForbidden
			}
			return nil
		},
	})
	require.NoError(t, err)
	calls := 0
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		var n int
		if err := p.QueryRow(r.Context(), "SELECT count(*) FROM products").Scan(&n); err != nil {
			http.Error(w, "db", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, n)
	})))
	t.Cleanup(srv.Close)

	future, past := time.Now().Add(time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	sign := func(m jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(k)
		require.NoError(t, err)
		return s
	}
	valid := sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": "1", "exp": future})
	parts := strings.Split(valid, ".")
	swapped := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"exp":%d,"tenant":"2"}`, future))) + "." + parts[2]

	do := func(tokens ...string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		for _, tok := range tokens {
			req.Header.Add("Authorization", "Bearer "+tok)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	code, body := do(valid)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "3", body, "tenant A sees its 3 products")
	require.Equal(t, 1, calls)
	acquires := p.Stat().AcquireCount()

	for _, c := range []struct {
		name   string
		tokens []string
		status int
	}{
		{"signed with another key", []string{sign(jwt.SigningMethodHS256, []byte("an attacker's key, also 32+ bytes"), jwt.MapClaims{"tenant": "2", "exp": future})}, http.StatusUnauthorized},
		{"alg none", []string{sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"tenant": "2", "exp": future})}, http.StatusUnauthorized},
		{"payload swapped under a valid signature", []string{swapped}, http.StatusUnauthorized},
		{"HS512, not in Methods", []string{sign(jwt.SigningMethodHS512, key, jwt.MapClaims{"tenant": "2", "exp": future})}, http.StatusUnauthorized},
		{"expired", []string{sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": "2", "exp": past})}, http.StatusUnauthorized},
		{"no expiry", []string{sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": "2"})}, http.StatusUnauthorized},
		{"truncated", []string{valid[:len(valid)-3]}, http.StatusUnauthorized},
		{"two tokens", []string{valid, valid}, http.StatusUnauthorized},
		{"tenant the caller may not use", []string{sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": "3", "exp": future})}, http.StatusForbidden},
		{"SQL in a valid token's claim", []string{sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": "2; DROP TABLE products", "exp": future})}, http.StatusBadRequest},
		{"claim is a number", []string{sign(jwt.SigningMethodHS256, key, jwt.MapClaims{"tenant": 2, "exp": future})}, http.StatusBadRequest},
	} {
		code, body := do(c.tokens...)
		assert.Equal(t, c.status, code, c.name)
		assert.NotContains(t, body, "DROP", c.name)
	}
	require.Equal(t, 1, calls, "the handler never ran for a refused token")
	require.Equal(t, acquires, p.Stat().AcquireCount(), "no database work for a refused token")
}

// TestAppRoleOwnerOrSuperuser: an application that connects as the
// tables' owner or as a superuser is reported by verify; the owner is held
// by FORCE ROW LEVEL SECURITY, and sees every tenant without it; a
// superuser sees every tenant regardless.
func TestAppRoleOwnerOrSuperuser(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, bigintStore)
	ctx := context.Background()
	admin := db.AdminConn(t)

	require.Empty(t, errorsOf(t, db, pgtenancytest.AppRole), "the app role is clean")
	assert.Contains(t, verifyCodes(t, db, rls.BigInt, pgtenancytest.OwnerRole), "app_role_owns_table public.products")

	owner := newPool(t, db.OwnerURL, 0)
	require.Equal(t, []string{"1", "1", "1"}, storeIDs(t, as(tenantA), owner, "products"), "FORCE holds the owner to the policy")
	_, err := admin.Exec(ctx, "ALTER TABLE products NO FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)
	require.Equal(t, []string{"1", "1", "1", "2", "2", "3"}, storeIDs(t, as(tenantA), owner, "products"), "without FORCE the owner sees every tenant")
	assert.Contains(t, verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole), "rls_not_forced public.products")
	_, err = admin.Exec(ctx, "ALTER TABLE products FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)

	su, err := url.Parse(db.AdminURL)
	require.NoError(t, err)
	var super bool
	require.NoError(t, admin.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
	if !super {
		t.Skip("the admin role of PGTENANCY_TEST_DATABASE_URL is not a superuser")
	}
	assert.Contains(t, verifyCodes(t, db, rls.BigInt, su.User.Username()), "app_role_superuser "+su.User.Username())
	superPool := newPool(t, db.AdminURL, 0)
	require.Len(t, storeIDs(t, as(tenantA), superPool, "products"), 6, "a superuser ignores FORCE and every policy")
}

// errorsOf returns verify's error findings for appRole.
func errorsOf(t *testing.T, db *pgtenancytest.DB, appRole string) []string {
	t.Helper()
	rep, err := verify.Run(context.Background(), db.AdminConn(t), verify.Options{Model: model(rls.BigInt), AppRole: appRole})
	require.NoError(t, err)
	var out []string
	for _, f := range rep.Errors() {
		out = append(out, string(f.Code)+" "+f.Object)
	}
	return out
}

// TestViewWithoutSecurityInvoker: a view runs with its owner's rights.
// Owned by a superuser, it shows the app role every tenant's rows; owned
// by the tables' owner it leaks only once FORCE is off. Verify reports
// both; with security_invoker = true neither leaks and verify is quiet.
func TestViewWithoutSecurityInvoker(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, bigintStore)
	ctx := context.Background()
	admin, owner := db.AdminConn(t), db.OwnerConn(t)
	app := newPool(t, db.AppURL, 0)
	grant := "GRANT SELECT ON %s TO " + pgtenancytest.AppRole
	_, err := admin.Exec(ctx, "CREATE VIEW admin_view AS SELECT store_id, name FROM products")
	require.NoError(t, err)
	_, err = admin.Exec(ctx, fmt.Sprintf(grant, "admin_view"))
	require.NoError(t, err)
	_, err = owner.Exec(ctx, "CREATE VIEW owner_view AS SELECT store_id, name FROM products")
	require.NoError(t, err)
	_, err = owner.Exec(ctx, fmt.Sprintf(grant, "owner_view"))
	require.NoError(t, err)

	all := []string{"1", "1", "1", "2", "2", "3"}
	require.Equal(t, all, storeIDs(t, as(tenantA), app, "admin_view"), "a superuser's view leaks every tenant")
	require.Equal(t, []string{"1", "1", "1"}, storeIDs(t, as(tenantA), app, "owner_view"), "the owner's view is held by FORCE")
	found := verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole)
	assert.Contains(t, found, "view_not_security_invoker public.admin_view")
	assert.Contains(t, found, "view_not_security_invoker public.owner_view")

	_, err = admin.Exec(ctx, "ALTER TABLE products NO FORCE ROW LEVEL SECURITY")
	require.NoError(t, err)
	require.Equal(t, all, storeIDs(t, as(tenantA), app, "owner_view"), "without FORCE the owner's view leaks too")

	_, err = admin.Exec(ctx, "ALTER VIEW admin_view SET (security_invoker = true); ALTER VIEW owner_view SET (security_invoker = true)")
	require.NoError(t, err)
	require.Equal(t, []string{"1", "1", "1"}, storeIDs(t, as(tenantA), app, "admin_view"))
	require.Equal(t, []string{"1", "1", "1"}, storeIDs(t, as(tenantA), app, "owner_view"))
	for _, f := range verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole) {
		assert.NotContains(t, f, "view_not_security_invoker")
	}
}

// TestSecurityDefinerFunction: a SECURITY DEFINER function owned by a
// superuser returns every tenant's rows to the app role (PUBLIC may
// execute a new function). Verify reports it; revoking EXECUTE stops it.
func TestSecurityDefinerFunction(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, bigintStore)
	ctx := context.Background()
	admin := db.AdminConn(t)
	app := newPool(t, db.AppURL, 0)
	_, err := admin.Exec(ctx, "CREATE FUNCTION product_stores() RETURNS SETOF bigint LANGUAGE sql SECURITY DEFINER SET search_path = public AS 'SELECT store_id FROM products'")
	require.NoError(t, err)

	rows, err := app.Query(as(tenantA), "SELECT s::text FROM product_stores() s ORDER BY 1")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"1", "1", "1", "2", "2", "3"}, got, "the function leaks every tenant's rows")
	assert.Contains(t, errorsOf(t, db, pgtenancytest.AppRole), "security_definer_function public.product_stores()")

	_, err = admin.Exec(ctx, "REVOKE EXECUTE ON FUNCTION product_stores() FROM PUBLIC")
	require.NoError(t, err)
	_, err = app.Exec(as(tenantA), "SELECT product_stores()")
	require.Equal(t, "42501", sqlState(err), "%v", err)
	require.Empty(t, errorsOf(t, db, pgtenancytest.AppRole))
}

// TestProbingKeys measures what a tenant learns about other tenants'
// rows through key checks, which row level security does not cover. See
// docs/security.md, "What still leaks, exactly".
func TestProbingKeys(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, bigintStore)
	ctx := context.Background()
	admin := db.AdminConn(t)
	app := newPool(t, db.AppURL, 0)
	a := as(tenantA)
	insertProduct := "INSERT INTO products (store_id, id, name, price_cents, currency) VALUES (1, $1, 'probe', 1, 'EUR')"

	t.Run("global primary key", func(t *testing.T) {
		// products has PRIMARY KEY (id): an explicit id of B's product
		// collides; an unused one does not. A learns that 201 exists.
		_, err := app.Exec(a, insertProduct, 201)
		require.Equal(t, "23505", sqlState(err), "%v", err)
		require.Equal(t, "products_pkey", constraintName(err))
		_, err = app.Exec(a, insertProduct, 424242)
		require.NoError(t, err)
		// ON CONFLICT DO NOTHING says the same silently: 0 rows.
		tag, err := app.Exec(a, insertProduct+" ON CONFLICT (id) DO NOTHING", 202)
		require.NoError(t, err)
		require.Zero(t, tag.RowsAffected())
		tag, err = app.Exec(a, insertProduct+" ON CONFLICT (id) DO NOTHING", 424243)
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		// ON CONFLICT DO UPDATE on B's row fails the policy instead.
		_, err = app.Exec(a, insertProduct+" ON CONFLICT (id) DO UPDATE SET name = 'mine'", 201)
		require.Equal(t, "42501", sqlState(err), "%v", err)
		// B's rows are untouched, and A still cannot read them.
		require.Equal(t, []string{"2", "2"}, storeIDs(t, as(tenantB), app, "products"))
		var n int
		require.NoError(t, app.QueryRow(a, "SELECT count(*) FROM products WHERE id IN (201, 202)").Scan(&n))
		require.Zero(t, n)
		assert.Contains(t, verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole), "key_without_tenant products_pkey")
	})

	t.Run("tenant-first primary key", func(t *testing.T) {
		// notes has PRIMARY KEY (store_id, id): B's note 7 does not
		// collide with A's; only A's own rows do.
		const insertNote = "INSERT INTO notes (store_id, id, body) VALUES (1, $1, 'A note')"
		_, err := app.Exec(a, insertNote, 7)
		require.NoError(t, err)
		_, err = app.Exec(a, insertNote, 7)
		require.Equal(t, "23505", sqlState(err), "A's own note 7 collides")
		tag, err := app.Exec(a, insertNote+" ON CONFLICT (store_id, id) DO NOTHING", 8)
		require.NoError(t, err)
		require.EqualValues(t, 1, tag.RowsAffected())
		for _, f := range verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole) {
			assert.NotContains(t, f, "notes_pkey")
		}
	})

	t.Run("foreign keys", func(t *testing.T) {
		// The composite key refuses a reference to B's product 201 and to
		// a product that exists nowhere alike (23503)...
		const insertPurchase = "INSERT INTO purchases (store_id, product_id, quantity) VALUES (1, $1, 1)"
		_, errB := app.Exec(a, insertPurchase, 201)
		_, errNone := app.Exec(a, insertPurchase, 999999)
		require.Equal(t, "23503", sqlState(errB))
		require.Equal(t, "23503", sqlState(errNone))
		// ...but this store's SQL came from a declared model, which does
		// not know the single-column key that the schema had before pgtenancy:
		// it is still there and checked first, and its name in the error
		// tells 201 (exists, in another tenant) from 999999 (exists
		// nowhere).
		require.Equal(t, "purchases_store_id_product_id_pgtenancy_fkey", constraintName(errB))
		require.Equal(t, "purchases_product_id_fkey", constraintName(errNone))
		assert.Contains(t, verifyCodes(t, db, rls.BigInt, pgtenancytest.AppRole), "fk_beside_composite purchases_product_id_fkey")
		// Plan completes the model from the catalog (Resolve) and drops
		// the redundant key, which closes it.
		owner := db.OwnerConn(t)
		plan, err := catalog.Plan(ctx, owner, model(rls.BigInt))
		require.NoError(t, err)
		require.Contains(t, plan.Up, `ALTER TABLE "public"."purchases" DROP CONSTRAINT "purchases_product_id_fkey";`)
		_, err = owner.Exec(ctx, plan.Up)
		require.NoError(t, err)
		_, errB = app.Exec(a, insertPurchase, 201)
		_, errNone = app.Exec(a, insertPurchase, 999999)
		require.Equal(t, constraintName(errB), constraintName(errNone))
		require.Equal(t, "purchases_store_id_product_id_pgtenancy_fkey", constraintName(errNone))
	})

	t.Run("sequences", func(t *testing.T) {
		// products.id is an identity column: one sequence for all tenants.
		next := func(ctx context.Context) int64 {
			var id int64
			require.NoError(t, app.QueryRow(ctx,
				"INSERT INTO products (store_id, name, price_cents, currency) VALUES (current_setting('app.current_tenant')::bigint, 'seq', 1, 'EUR') RETURNING id").Scan(&id))
			return id
		}
		first := next(a)
		for range 5 {
			next(as(tenantB))
		}
		// A rolled-back insert of B's consumes a value too.
		require.Error(t, app.BeginFunc(as(tenantB), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO products (store_id, name, price_cents, currency) VALUES (2, 'seq', 1, 'EUR')"); err != nil {
				return err
			}
			return errors.New("roll back")
		}))
		second := next(a)
		require.Equal(t, first+7, second, "A's two ids 1 apart plus B's 6 inserts (5 committed, 1 rolled back)")

		// Generate grants nothing on an identity column's sequence: inserts
		// get their ids all the same, and reading the global counter
		// directly fails. Only the gaps between one's own ids remain.
		var usage, sel bool
		require.NoError(t, admin.QueryRow(ctx, "SELECT has_sequence_privilege($1, 'products_id_seq', 'USAGE'), has_sequence_privilege($1, 'products_id_seq', 'SELECT')",
			pgtenancytest.AppRole).Scan(&usage, &sel))
		require.False(t, usage || sel, "the app role holds USAGE %v, SELECT %v on products_id_seq", usage, sel)
		third := next(a)
		require.Equal(t, second+1, third)
		for _, q := range []string{"SELECT last_value FROM products_id_seq", "SELECT nextval('products_id_seq')",
			"SELECT currval('products_id_seq')"} {
			_, err := app.Exec(a, q)
			require.Equal(t, "42501", sqlState(err), "%s: %v", q, err)
		}
		// pg_sequence_last_value without a privilege: 15 to 17 refuse
		// (42501); 18 returns NULL instead of an error, which reveals
		// nothing either.
		var last *int64
		err := app.QueryRow(a, "SELECT pg_sequence_last_value('products_id_seq')").Scan(&last)
		switch major := serverMajor(t, admin); major {
		case 15, 16, 17:
			require.Equal(t, "42501", sqlState(err), "PostgreSQL %d: pg_sequence_last_value without a privilege: %v (value %v)", major, err, last)
		case 18:
			require.NoError(t, err, "PostgreSQL 18: pg_sequence_last_value without a privilege")
			require.Nil(t, last, "PostgreSQL 18: pg_sequence_last_value without a privilege returned %v", last)
		default:
			t.Fatalf("PostgreSQL %d: what pg_sequence_last_value does without a privilege is not measured here: "+
				"measure it, then add the version to this test and to docs/security.md", major)
		}
		// The pg_sequences view hides the value on every version.
		require.NoError(t, app.QueryRow(a, "SELECT last_value FROM pg_sequences WHERE schemaname = 'public' AND sequencename = 'products_id_seq'").Scan(&last))
		require.Nil(t, last, "pg_sequences shows products_id_seq's value to the app role")

		// With USAGE, which the default of a serial column needs, every
		// version reveals the counter without inserting anything.
		_, err = admin.Exec(ctx, "CREATE SEQUENCE serial_probe; SELECT nextval('serial_probe'), nextval('serial_probe'); "+
			"GRANT USAGE ON SEQUENCE serial_probe TO "+pgtenancytest.AppRole)
		require.NoError(t, err)
		for _, q := range []string{"SELECT pg_sequence_last_value('serial_probe')",
			"SELECT last_value FROM pg_sequences WHERE schemaname = 'public' AND sequencename = 'serial_probe'"} {
			require.NoError(t, app.QueryRow(a, q).Scan(&last), q)
			require.NotNil(t, last, q)
			require.EqualValues(t, 2, *last, q)
		}
	})
}

// serverMajor returns the major version of the server of conn, from
// server_version_num.
func serverMajor(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var num int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT current_setting('server_version_num')::int").Scan(&num))
	return num / 10000
}

// testCallerMayUseAny is the Authorize hook of tests whose one caller may
// act for every tenant (an application checks membership here).
func testCallerMayUseAny(*http.Request, rls.Tenant) error { return nil }
