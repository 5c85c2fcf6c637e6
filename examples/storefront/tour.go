package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5"
)

// tour runs the scripted walk through the storefront over real HTTP and
// checks every answer; it fails on the first surprise.
func tour(ctx context.Context, out io.Writer, base string, e *env, pgtenancyBin string) error {
	t := &tourist{ctx: ctx, out: out, base: base}

	t.step("1. Store A (alice) lists its products. The handler's query has no WHERE store_id:")
	fmt.Fprintln(out, "     SELECT id, name, price_cents, currency FROM products ORDER BY id;")
	var products []map[string]any
	t.expect(t.call("GET", "/products", "1", "alice-token", "", &products), 200)
	t.check(len(products) == 3 && allNamesStart(products, "A "), "store A sees exactly its 3 products")

	t.step("2. Store B (bob) lists its products, then asks for store A's product 101")
	t.expect(t.call("GET", "/products", "2", "bob-token", "", &products), 200)
	t.check(len(products) == 2 && allNamesStart(products, "B "), "store B sees exactly its 2 products, none of A's")
	t.expect(t.call("GET", "/products/101", "2", "bob-token", "", nil), 404)

	t.step("3. Store A buys its own product, then forges a purchase of store B's product 201")
	t.expect(t.call("POST", "/purchases", "1", "alice-token", `{"product_id": 102, "quantity": 1}`, nil), 201)
	var refusal apiError
	t.expect(t.call("POST", "/purchases", "1", "alice-token", `{"product_id": 201, "quantity": 1}`, &refusal), 422)
	t.check(refusal.SQLState == "23503" && refusal.Constraint == "purchases_store_id_product_id_pgtenancy_fkey",
		"PostgreSQL refused it on the composite foreign key (store_id, product_id) -> products (store_id, id)")

	t.step("4. alice sends store B's id in the header (a forged tenant)")
	t.expect(t.call("GET", "/products", "2", "alice-token", "", nil), 403)

	t.step("5. A request without a tenant")
	t.expect(t.call("GET", "/products", "", "alice-token", "", nil), 400)

	t.step("6. The app role without a tenant, straight through psql-like SQL: RLS returns nothing")
	if n, err := countAsApp(ctx, e.appURL); err != nil {
		t.failf("query as the app role: %v", err)
	} else {
		fmt.Fprintf(out, "     SELECT count(*) FROM products;  -> %d\n", n)
		t.check(n == 0, "no tenant set: 0 rows")
	}

	if pgtenancyBin == "" {
		t.step("7. pgtenancy verify: skipped (pass -pgtenancy path/to/pgtenancy; make demo does)")
		return t.err
	}
	t.step("7. pgtenancy verify on the storefront database")
	t.check(t.verify(pgtenancyBin, e) == 0, "pgtenancy verify reports no errors (exit 0)")

	t.step("8. Someone weakens the database: NO FORCE on products, a wide-open policy on purchases")
	weaken := "ALTER TABLE products NO FORCE ROW LEVEL SECURITY; CREATE POLICY wide_open ON purchases USING (true);"
	fmt.Fprintln(out, "     "+weaken)
	if err := execAs(ctx, e.ownerURL, weaken); err != nil {
		t.failf("weaken: %v", err)
	}
	t.check(t.verify(pgtenancyBin, e) == 1, "pgtenancy verify reports the holes (exit 1)")
	return t.err
}

type tourist struct {
	ctx  context.Context
	out  io.Writer
	base string
	err  error
}

func (t *tourist) step(title string) { fmt.Fprintf(t.out, "\n== %s\n", title) }

func (t *tourist) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(t.out, "   FAILED:", msg)
	t.err = errors.Join(t.err, errors.New(msg))
}

func (t *tourist) check(ok bool, what string) {
	if ok {
		fmt.Fprintln(t.out, "   ok:", what)
		return
	}
	t.failf("%s", what)
}

func (t *tourist) expect(status, want int) {
	t.check(status == want, fmt.Sprintf("HTTP %d", want))
}

// call sends a request and prints it with the response; it decodes a JSON
// body into v when v is not nil and returns the status (0 on failure).
func (t *tourist) call(method, path, tenant, token, body string, v any) int {
	req, err := http.NewRequestWithContext(t.ctx, method, t.base+path, strings.NewReader(body))
	if err != nil {
		t.failf("%v", err)
		return 0
	}
	line := method + " " + path
	if tenant != "" {
		req.Header.Set("X-Tenant-ID", tenant)
		line += "  X-Tenant-ID: " + tenant
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		line += "  (bearer " + token + ")"
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		line += "  " + body
	}
	fmt.Fprintln(t.out, "   >", line)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.failf("%v", err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Fprintf(t.out, "   < %d %s\n", resp.StatusCode, compact(b))
	if v != nil && resp.StatusCode < 500 {
		if err := json.Unmarshal(b, v); err != nil {
			t.failf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode
}

// verify runs the pgtenancy CLI and returns its exit code.
func (t *tourist) verify(bin string, e *env) int {
	args := []string{"verify", "--database-url", e.ownerURL, "--app-role", appRole}
	fmt.Fprintf(t.out, "   $ pgtenancy %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(t.ctx, bin, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	for _, l := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(t.out, "     "+l)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.failf("run %s: %v", bin, err)
	return -1
}

func countAsApp(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM products").Scan(&n)
	return n, err
}

func execAs(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func allNamesStart(items []map[string]any, prefix string) bool {
	for _, it := range items {
		name, _ := it["name"].(string)
		if !strings.HasPrefix(name, prefix) {
			return false
		}
	}
	return true
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return strings.TrimSpace(string(b))
	}
	s := buf.String()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
