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
	// beyond the current tenant.
	GuardPolicy = "pgtenancy_tenant_guard"
)

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
//   - ENABLE and FORCE ROW LEVEL SECURITY;
//   - the policies [IsolationPolicy] (permissive) and [GuardPolicy]
//     (restrictive), FOR ALL TO PUBLIC, both with USING and WITH CHECK
//     [PolicyExpr] ([CitusPolicyExpr] with Citus, [SignedPolicyExpr] with
//     Signed);
//   - when [Model.AppRole] is set: SELECT, INSERT, UPDATE, DELETE on tenant
//     tables; TRUNCATE, REFERENCES and TRIGGER revoked from it and from
//     PUBLIC; SELECT on global tables; USAGE (not SELECT) on the sequences
//     of serial columns of tenant tables, which their defaults need
//     (identity columns need nothing).
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

// pgtenancyPolicies are the two policies on every tenant table, in the order
// Generate creates them.
var pgtenancyPolicies = [...]struct {
	name       string
	permissive bool
}{{IsolationPolicy, true}, {GuardPolicy, false}}

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
			switch fk.onDelete {
			case "", "NO ACTION":
			case "SET NULL", "SET DEFAULT":
				up += fmt.Sprintf(" ON DELETE %s (%s)", fk.onDelete, identList(fk.cols))
			default:
				up += " ON DELETE " + fk.onDelete
			}
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
		steps = append(steps, step{
			kind: stepPlainFKDrop, table: c.table, name: c.name,
			up:   fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tbl, name),
			down: restore + ";",
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
		expr := PolicyExpr(t.column, p.key, p.setting)
		switch {
		case p.citus:
			expr = CitusPolicyExpr(t.column, p.key, p.setting)
		case p.signed:
			expr = SignedPolicyExpr(t.column, p.key)
		}
		for _, pol := range pgtenancyPolicies {
			kind := "RESTRICTIVE"
			if pol.permissive {
				kind = "PERMISSIVE"
			}
			steps = append(steps, step{
				kind: stepPolicy, table: t.q, policy: pol.name,
				up: p.ddl(fmt.Sprintf("CREATE POLICY %s ON %s AS %s FOR ALL TO PUBLIC\n    USING (%s)\n    WITH CHECK (%s);",
					sqlquote.Ident(pol.name), tbl, kind, expr, expr)),
				down: p.ddl(fmt.Sprintf("DROP POLICY %s ON %s;", sqlquote.Ident(pol.name), tbl)),
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
		steps = append(steps, step{
			kind: stepSelect, table: g,
			up:   fmt.Sprintf("GRANT SELECT ON TABLE %s TO %s;", g.sql(), role),
			down: fmt.Sprintf("REVOKE SELECT ON TABLE %s FROM %s;", g.sql(), role),
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
