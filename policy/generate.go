package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/rls"
)

// The names of the two policies [Generate] creates on every tenant table.
const (
	// IsolationPolicy is the PERMISSIVE policy that grants access to the
	// current tenant's rows.
	IsolationPolicy = "pgtenancy_tenant_isolation"
	// GuardPolicy is the RESTRICTIVE policy with the same expression: every
	// row must pass it, so no other permissive policy can widen access
	// beyond the current tenant. On a table with [Table.SharedRows] its
	// USING admits the shared rows too ([SharedGuardExpr]); its WITH CHECK
	// does not.
	GuardPolicy = "pgtenancy_tenant_guard"
)

// The names of the three more policies [Generate] creates on a table with
// [Table.SharedRows].
const (
	// SharedReadPolicy is the PERMISSIVE policy FOR SELECT that admits the
	// shared rows, those with a NULL tenant ([SharedReadExpr]).
	SharedReadPolicy = "pgtenancy_shared_read"
	// SharedUpdateGuard and SharedDeleteGuard are RESTRICTIVE policies
	// FOR UPDATE and FOR DELETE with USING [PolicyExpr]: the shared rows
	// that [GuardPolicy] admits for reading cannot be changed or deleted,
	// whatever other permissive policy the table has.
	SharedUpdateGuard = "pgtenancy_shared_update_guard"
	SharedDeleteGuard = "pgtenancy_shared_delete_guard"
)

// PolicyNames are the names of every policy pgtenancy creates. [Plan]
// drops one that a table has but should not (say, the shared-rows
// policies of a table that no longer has [Table.SharedRows]).
var PolicyNames = []string{IsolationPolicy, GuardPolicy, SharedReadPolicy, SharedUpdateGuard, SharedDeleteGuard}

// PolicyDef is one policy that pgtenancy creates on a tenant table.
type PolicyDef struct {
	Name       string
	Permissive bool
	// Command is ALL, SELECT, INSERT, UPDATE or DELETE.
	Command string
	// Using and Check are the expressions as pgtenancy writes them; ""
	// when absent.
	Using, Check string
}

// TablePolicies returns the policies pgtenancy creates on a tenant table,
// in the order it creates them, all TO PUBLIC:
//
//   - [IsolationPolicy], PERMISSIVE FOR ALL, USING and WITH CHECK the
//     tenant expression ([PolicyExpr], or [CitusPolicyExpr] with citus);
//   - [GuardPolicy], RESTRICTIVE FOR ALL, the same; with shared, its USING
//     is [SharedGuardExpr] (the tenant's rows or the shared ones);
//   - with shared: [SharedReadPolicy], PERMISSIVE FOR SELECT USING
//     [SharedReadExpr]; [SharedUpdateGuard] and [SharedDeleteGuard],
//     RESTRICTIVE FOR UPDATE and FOR DELETE USING the tenant expression.
//
// So every tenant reads its rows and the shared ones, and writes only its
// own: INSERT and the new row of an UPDATE must pass both WITH CHECKs, and
// UPDATE and DELETE see only the tenant's rows.
func TablePolicies(column string, key rls.KeyType, setting string, shared, citus bool) []PolicyDef {
	expr := PolicyExpr(column, key, setting)
	if citus {
		expr = CitusPolicyExpr(column, key, setting)
	}
	return tablePolicies(column, expr, SharedGuardExpr(column, key, setting), shared)
}

// SignedTablePolicies returns the policies pgtenancy creates on a tenant
// table of a [Model] with Signed set: those of [TablePolicies], with
// [SignedPolicyExpr] as the tenant expression and, with shared,
// [SignedSharedGuardExpr] as the USING of [GuardPolicy].
func SignedTablePolicies(column string, key rls.KeyType, shared bool) []PolicyDef {
	return tablePolicies(column, SignedPolicyExpr(column, key), SignedSharedGuardExpr(column, key), shared)
}

// tablePolicies returns the policies of a tenant table with the tenant
// expression expr and, with shared, the guard's USING sharedGuard.
func tablePolicies(column, expr, sharedGuard string, shared bool) []PolicyDef {
	defs := []PolicyDef{
		{Name: IsolationPolicy, Permissive: true, Command: "ALL", Using: expr, Check: expr},
		{Name: GuardPolicy, Command: "ALL", Using: expr, Check: expr},
	}
	if shared {
		defs[1].Using = sharedGuard
		defs = append(defs,
			PolicyDef{Name: SharedReadPolicy, Permissive: true, Command: "SELECT", Using: SharedReadExpr(column)},
			PolicyDef{Name: SharedUpdateGuard, Command: "UPDATE", Using: expr},
			PolicyDef{Name: SharedDeleteGuard, Command: "DELETE", Using: expr},
		)
	}
	return defs
}

// SQL returns the CREATE POLICY statement of d on the quoted, qualified
// table tbl.
func (d PolicyDef) SQL(tbl string) string {
	kind := "RESTRICTIVE"
	if d.Permissive {
		kind = "PERMISSIVE"
	}
	sql := fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR %s TO PUBLIC", sqlquote.Ident(d.Name), tbl, kind, d.Command)
	if d.Using != "" {
		sql += "\n    USING (" + d.Using + ")"
	}
	if d.Check != "" {
		sql += "\n    WITH CHECK (" + d.Check + ")"
	}
	return sql + ";"
}

// SharedReadExpr is the expression of [SharedReadPolicy]: "column" IS NULL.
func SharedReadExpr(column string) string { return sqlquote.Ident(column) + " IS NULL" }

// SharedGuardExpr is the USING expression of [GuardPolicy] on a table with
// [Table.SharedRows]: the tenant's rows or the shared ones,
// ([PolicyExpr]) OR "column" IS NULL.
func SharedGuardExpr(column string, key rls.KeyType, setting string) string {
	return "(" + PolicyExpr(column, key, setting) + ") OR " + SharedReadExpr(column)
}

// SignedSharedGuardExpr is the USING expression of [GuardPolicy] on a
// table with [Table.SharedRows] of a signed [Model]: the rows of the
// verified tenant or the shared ones, ([SignedPolicyExpr]) OR "column" IS
// NULL.
func SignedSharedGuardExpr(column string, key rls.KeyType) string {
	return "(" + SignedPolicyExpr(column, key) + ") OR " + SharedReadExpr(column)
}

// TenantDefaultExpr is the default that [Generate] gives the tenant column
// of every tenant table but the root, so that an INSERT that does not name
// the tenant takes the transaction's:
//
//	NULLIF(current_setting('app.current_tenant', true), '')::bigint
//
// It does not check the transaction's stamp (a column default cannot hold
// a subquery); the policies' WITH CHECK does, so a row that took its tenant
// from a session-level leftover is refused all the same. Without a tenant
// it is NULL, which the policies refuse too.
func TenantDefaultExpr(key rls.KeyType, setting string) string { return settingExpr(key, setting) }

// SignedTenantDefaultExpr is the default that [Generate] gives the tenant
// column of every tenant table but the root in a [Model] with Signed set,
// where the setting holds a signed value that no cast reads:
//
//	pgtenancy.tenant()::bigint
//
// It is the verified tenant of the transaction, or NULL, which the
// policies refuse.
func SignedTenantDefaultExpr(key rls.KeyType) string {
	return SignedTenantFunction + "::" + key.String()
}

// tenantDefault is the default of a non-root tenant column of type key.
func (p *spec) tenantDefault(key rls.KeyType) string {
	if p.signed {
		return SignedTenantDefaultExpr(key)
	}
	return TenantDefaultExpr(key, p.setting)
}

// PolicyExpr returns the expression of both pgtenancy policies for a tenant
// column on PostgreSQL, without outer parentheses:
//
//	"store_id" = (SELECT NULLIF(current_setting('app.current_tenant', true), '')::bigint
//	    WHERE current_setting('app.current_tenant_xact', true) = extract(epoch FROM now())::text)
//
// It reads the setting with missing_ok, and turns the empty string that a
// setting holds after its SET LOCAL ended into NULL, so that a transaction
// without a tenant sees no rows instead of failing on a cast. It admits the
// tenant only when the setting's companion ([rls.XactSetting]) holds the
// stamp of the current transaction ([rls.XactStamp]), which the pool and
// pgtenancy.set_tenant set together with the tenant: a tenant left at
// session level, by application or injected SQL, is inert in every later
// transaction on that connection, through a pool or PgBouncer alike.
//
// The scalar subquery makes PostgreSQL read the settings once per statement
// (an InitPlan) instead of once per row checked: the same result (unless
// the statement changes the setting itself midway), at a third less server
// time for bulk inserts (docs/benchmarks.md). Index scans still use it as
// an index condition; the planner estimates row counts for an average
// tenant rather than the current one (docs/concepts.md). Citus rejects
// subqueries in policies; see [CitusPolicyExpr]. setting is not validated
// here; see [rls.Setting].
func PolicyExpr(column string, key rls.KeyType, setting string) string {
	return sqlquote.Ident(column) + " = (SELECT " + settingExpr(key, setting) +
		" WHERE current_setting(" + sqlquote.Literal(rls.XactSetting(setting)) + ", true) = " + xactStampExpr + ")"
}

// xactStampExpr is [rls.XactStamp] as written in a policy, where names are
// resolved once, when the policy is created.
const xactStampExpr = "extract(epoch FROM now())::text"

// CitusPolicyExpr returns the policy expression that [Generate] writes for
// a [Model] with Citus set, which rejects subqueries in policies:
//
//	"store_id" = NULLIF(current_setting('app.current_tenant', true), '')::bigint
//
// It reads the setting once per row checked and does not check the
// transaction's stamp: the shards run transactions of their own, with other
// start times. A tenant left at session level on the coordinator does not
// reach shards on other nodes, since Citus propagates only SET LOCAL; but
// where the node the application connects to holds shards itself (a
// single-node cluster, a coordinator with shouldhaveshards, queries sent to
// a worker), Citus reads them in the same backend, where a session-level
// tenant is live. Connect the application to a coordinator without shards
// (docs/citus.md).
func CitusPolicyExpr(column string, key rls.KeyType, setting string) string {
	return sqlquote.Ident(column) + " = " + settingExpr(key, setting)
}

// SignedPolicyExpr returns the policy expression that [Generate] writes
// for a [Model] with Signed set:
//
//	"store_id" = (SELECT pgtenancy.tenant()::bigint)
//
// pgtenancy.tenant() (installed by the library, see [Library]) returns the
// tenant of the setting when its HMAC verifies with a key of
// pgtenancy.signing_keys, it has not expired, and the setting was made in
// the current transaction (the stamp of [PolicyExpr]); NULL otherwise, so
// no rows are visible and every write fails its WITH CHECK. The scalar
// subquery makes it an InitPlan: one verification per statement.
func SignedPolicyExpr(column string, key rls.KeyType) string {
	return sqlquote.Ident(column) + " = (SELECT " + SignedTenantFunction + "::" + key.String() + ")"
}

// SignedTenantFunction is the call of the function that verifies a signed
// tenant setting, as policies write it.
const SignedTenantFunction = "pgtenancy.tenant()"

func settingExpr(key rls.KeyType, setting string) string {
	return "NULLIF(current_setting(" + sqlquote.Literal(setting) + ", true), '')::" + key.String()
}

// Generate returns the SQL that turns on tenant isolation for the model. It
// validates the model first ([Model.Validate]) and returns no SQL at all if
// it is invalid. The output depends on the model only: the same model, with
// its tables and foreign keys in any order, gives byte-identical SQL.
//
// Up holds, in this order, each step for every table in name order:
//
//   - UNIQUE (tenant column, referenced columns...) on every tenant table a
//     foreign key references;
//   - composite foreign keys (tenant column, columns...) REFERENCES
//     table (tenant column, columns...), the tenant column first on both
//     sides as Citus needs; SET NULL and SET DEFAULT get a column list so the
//     tenant column is never changed;
//   - the tenant column's default, [TenantDefaultExpr], on every tenant
//     table but the root: an INSERT need not name the tenant (with Citus,
//     which refuses ALTER TABLE on a distribution column, before the table
//     is distributed; [Plan] cannot add it to a table distributed already);
//   - ENABLE and FORCE ROW LEVEL SECURITY;
//   - the policies [IsolationPolicy] (permissive) and [GuardPolicy]
//     (restrictive), FOR ALL TO PUBLIC, both with USING and WITH CHECK
//     [PolicyExpr] ([CitusPolicyExpr] with Citus, [SignedPolicyExpr] with
//     Signed), and on a table with [Table.SharedRows] three more
//     ([TablePolicies], [SignedTablePolicies]);
//   - when [Model.AppRole] is set: SELECT, INSERT, UPDATE, DELETE on tenant
//     tables; TRUNCATE, REFERENCES and TRIGGER revoked from it and from
//     PUBLIC; SELECT on global tables, and INSERT, UPDATE, DELETE too on
//     [Model.WritableGlobal] ones; USAGE (not SELECT) on the sequences of
//     serial columns of tenant and writable global tables, which their
//     defaults need (identity columns need nothing), in a DO block that
//     finds them when it runs. [Plan], which knows the database, grants
//     instead, in plain GRANT statements, USAGE on the sequences those
//     tables' inserts use: of serial columns, named by column defaults,
//     and named by trigger functions.
//
// Down drops and revokes what Up created and granted, in reverse order. It
// re-grants nothing that Up revoked, and it revokes Up's grants even if the
// role held them before Up ran. Names are always quoted and
// schema-qualified, so the SQL does not depend on search_path.
//
// Generate knows nothing of a database: its SQL is for one that has the
// model's tables and none of these objects. For a database that has some
// of them, or keys that the composite ones replace, use [Plan] (or
// catalog.Plan, which reads what is there): on a database that has none of
// them, Plan returns exactly Generate's SQL.
func Generate(m *Model) (*Migration, error) {
	return Plan(m, nil)
}

// steps returns every step of Generate's SQL, section by section and, in
// each, table by table in name order.
func (p *spec) steps() []step {
	names := p.constraintNames()
	var steps []step
	if p.citus {
		steps = p.citusSteps()
	}
	for _, t := range p.tables {
		tbl := t.q.sql()
		for _, k := range p.keysFor(t) {
			name := sqlquote.Ident(names[keyID(t, k)])
			steps = append(steps, step{
				kind: stepKey, table: t.q,
				up:   p.ddl(fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE (%s);", tbl, name, identList(k))),
				down: p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tbl, name)),
			})
		}
		for _, fk := range t.fks {
			if fk.exists {
				continue
			}
			name := sqlquote.Ident(names[fkID(t, fk)])
			up := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
				tbl, name, identList(prepend(t.column, fk.cols)),
				fk.ref.q.sql(), identList(prepend(fk.ref.column, fk.refCols)))
			up += onDeleteSQL(fk.onDelete, fk.cols) + deferrableSQL(fk.deferrable, fk.deferred)
			steps = append(steps, step{
				kind: stepFK, table: t.q,
				up:   p.ddl(up + ";"),
				down: p.ddl(fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tbl, name)),
			})
		}
	}

	for _, c := range p.plainFKs {
		tbl, name := c.table.sql(), sqlquote.Ident(c.name)
		restore := fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)",
			tbl, name, identList(c.cols), c.ref.sql(), identList(c.refCols))
		if c.onDelete != "" && c.onDelete != "NO ACTION" {
			restore += " ON DELETE " + c.onDelete
		}
		restore += deferrableSQL(c.deferrable, c.deferred)
		steps = append(steps, step{
			kind: stepPlainFKDrop, table: c.table, name: c.name,
			up:   fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tbl, name),
			down: restore + ";",
		})
	}

	for _, t := range p.tables {
		if t.root {
			continue
		}
		// Citus refuses ALTER TABLE on a distribution column: with Citus
		// the default is set before the table is distributed.
		kind := stepDefault
		if p.citus {
			kind = stepCitusDefault
		}
		alter := "ALTER TABLE " + t.q.sql() + " ALTER COLUMN " + sqlquote.Ident(t.column)
		steps = append(steps, step{
			kind: kind, table: t.q,
			up:   p.ddl(alter + " SET DEFAULT " + p.tenantDefault(t.key) + ";"),
			down: p.ddl(alter + " DROP DEFAULT;"),
		})
	}

	var tables []string
	for _, t := range p.tables {
		tbl := t.q.sql()
		tables = append(tables, tbl)
		steps = append(steps,
			step{kind: stepEnable, table: t.q, up: p.ddl("ALTER TABLE " + tbl + " ENABLE ROW LEVEL SECURITY;"), down: p.ddl("ALTER TABLE " + tbl + " DISABLE ROW LEVEL SECURITY;")},
			step{kind: stepForce, table: t.q, up: p.ddl("ALTER TABLE " + tbl + " FORCE ROW LEVEL SECURITY;"), down: p.ddl("ALTER TABLE " + tbl + " NO FORCE ROW LEVEL SECURITY;")},
		)
		for _, pol := range p.tablePolicies(t) {
			steps = append(steps, step{
				kind: stepPolicy, table: t.q, policy: pol.Name,
				up:   p.ddl(pol.SQL(tbl)),
				down: p.ddl(fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(pol.Name), tbl)),
			})
		}
	}

	if p.appRole == "" {
		return steps
	}
	role := sqlquote.Ident(p.appRole)
	for _, t := range p.tables {
		tbl := t.q.sql()
		steps = append(steps,
			step{
				kind: stepGrant, table: t.q,
				up:   fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %s;", tbl, role),
				down: fmt.Sprintf("REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLE %s FROM %s;", tbl, role),
			},
			step{kind: stepRevoke, table: t.q, up: fmt.Sprintf("REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLE %s FROM %s, PUBLIC;", tbl, role)},
		)
	}
	for _, g := range p.global {
		privs := "SELECT"
		if p.writable[g] {
			privs = "SELECT, INSERT, UPDATE, DELETE"
			tables = append(tables, g.sql())
		}
		steps = append(steps, step{
			kind: stepSelect, table: g,
			up:   fmt.Sprintf("GRANT %s ON TABLE %s TO %s;", privs, g.sql(), role),
			down: fmt.Sprintf("REVOKE %s ON TABLE %s FROM %s;", privs, g.sql(), role),
		})
	}
	return append(steps, step{
		kind: stepSequences,
		up:   sequenceGrants(tables, "GRANT USAGE ON SEQUENCE %s TO %I", p.appRole),
		down: sequenceGrants(tables, "REVOKE USAGE ON SEQUENCE %s FROM %I", p.appRole),
	})
}

// keysFor returns the unique keys (tenant column first) that foreign keys to
// t need and that t does not already have (from the facts of an Existing),
// in canonical order.
func (p *spec) keysFor(t *ptable) [][]string {
	var keys [][]string
	for _, src := range p.tables {
		for _, fk := range src.fks {
			if fk.ref != t || fk.exists {
				continue
			}
			k := prepend(t.column, fk.refCols)
			if slices.ContainsFunc(t.existing, func(e []string) bool { return slices.Equal(e, k) }) ||
				slices.ContainsFunc(keys, func(e []string) bool { return slices.Equal(e, k) }) {
				continue
			}
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, slices.Compare)
	return keys
}

// A constraint's identity, used to look up its generated name.
func keyID(t *ptable, cols []string) string {
	return "key\x00" + t.q.String() + "\x00" + strings.Join(cols, "\x00")
}

func fkID(t *ptable, fk pfk) string {
	return "fkey\x00" + t.q.String() + "\x00" + strings.Join(fk.cols, "\x00") + "\x00\x00" +
		fk.ref.q.String() + "\x00" + strings.Join(fk.refCols, "\x00")
}

// constraintNames names every constraint Generate creates:
// <table>_<columns>_pgtenancy_key and <table>_<columns>_pgtenancy_fkey, cut to 63
// bytes with a short hash when longer. Names that would clash within a
// schema (a unique constraint's index shares the schema's namespace) get a
// hash of their definition too.
func (p *spec) constraintNames() map[string]string {
	type entry struct {
		id, schema, table, suffix string
		cols                      []string
	}
	var entries []entry
	for _, t := range p.tables {
		for _, k := range p.keysFor(t) {
			entries = append(entries, entry{keyID(t, k), t.q.schema, t.q.name, "_pgtenancy_key", k})
		}
		for _, fk := range t.fks {
			if !fk.exists {
				entries = append(entries, entry{fkID(t, fk), t.q.schema, t.q.name, "_pgtenancy_fkey", prepend(t.column, fk.cols)})
			}
		}
	}
	names := make(map[string]string, len(entries))
	count := map[[2]string]int{}
	for _, e := range entries {
		n := constraintName(e.table, e.cols, e.suffix, "")
		names[e.id] = n
		count[[2]string{e.schema, n}]++
	}
	for _, e := range entries {
		if count[[2]string{e.schema, names[e.id]}] > 1 {
			names[e.id] = constraintName(e.table, e.cols, e.suffix, e.id)
		}
	}
	return names
}

func constraintName(table string, cols []string, suffix, salt string) string {
	base := table + "_" + strings.Join(cols, "_")
	if salt == "" && len(base)+len(suffix) <= maxIdentLen {
		return base + suffix
	}
	h := sha256.Sum256([]byte(salt + "\x00" + base + suffix))
	tag := "_" + hex.EncodeToString(h[:4])
	return truncateUTF8(base, maxIdentLen-len(suffix)-len(tag)) + tag + suffix
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// sequenceGrants returns a DO block that runs stmt, a format() string with
// %s for the sequence and %I for the role, on every sequence owned by a
// serial column of the tables (deptype 'a'). Identity columns (deptype 'i')
// need no privilege for INSERT, and USAGE would let the role read the
// counter that every tenant's inserts advance.
func sequenceGrants(tables []string, stmt, role string) string {
	lits := make([]string, len(tables))
	for i, t := range tables {
		lits[i] = sqlquote.Literal(t)
	}
	body := fmt.Sprintf(`
DECLARE
    seq regclass;
BEGIN
    FOR seq IN
        SELECT d.objid::regclass
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE d.classid = 'pg_catalog.pg_class'::regclass
          AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.deptype = 'a'
          AND d.refobjid = ANY (ARRAY[%s]::regclass[])
        ORDER BY 1
    LOOP
        EXECUTE format(%s, seq, %s);
    END LOOP;
END
`, strings.Join(lits, ", "), sqlquote.Literal(stmt), sqlquote.Literal(role))
	return "-- Sequences owned by tenant table columns.\nDO " + dollarQuote(body) + ";"
}

// onDeleteSQL returns the ON DELETE clause of a composite foreign key
// whose own columns are cols: SET NULL and SET DEFAULT get the column
// list, so that the tenant column is never changed.
func onDeleteSQL(action string, cols []string) string {
	switch action {
	case "", "NO ACTION":
		return ""
	case "SET NULL", "SET DEFAULT":
		return fmt.Sprintf(" ON DELETE %s (%s)", action, identList(cols))
	}
	return " ON DELETE " + action
}

// deferrableSQL returns the DEFERRABLE clause of a foreign key.
func deferrableSQL(deferrable, deferred bool) string {
	switch {
	case deferrable && deferred:
		return " DEFERRABLE INITIALLY DEFERRED"
	case deferrable:
		return " DEFERRABLE"
	}
	return ""
}

func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = sqlquote.Ident(c)
	}
	return strings.Join(q, ", ")
}

func prepend(first string, rest []string) []string {
	return append([]string{first}, rest...)
}

// tablePolicies returns the policies of the tenant table t in this model:
// [SignedTablePolicies] for a signed one, [TablePolicies] otherwise.
func (p *spec) tablePolicies(t *ptable) []PolicyDef {
	if p.signed {
		return SignedTablePolicies(t.column, t.key, t.shared)
	}
	return TablePolicies(t.column, t.key, p.setting, t.shared, p.citus)
}
