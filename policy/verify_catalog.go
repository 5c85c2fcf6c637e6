package policy

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/rls"
)

// expectation is what Verify and Plan expect, from the options and model.
type expectation struct {
	plan     *plan // nil without a model
	appRole  string
	setting  string
	schemas  []string // schemas whose tables are read
	columns  []string // column names read for every table
	unlisted []string // tenant column names of tables a model must list
	column   string   // VerifyOptions.TenantColumn
	declared map[qname]bool
}

func (o VerifyOptions) expect() (*expectation, error) {
	bad := func(format string, args ...any) error {
		return &ModelError{Reason: "VerifyOptions: " + fmt.Sprintf(format, args...)}
	}
	e := &expectation{appRole: o.AppRole, column: o.TenantColumn, setting: cmp.Or(o.Setting, DefaultSetting), declared: map[qname]bool{}}
	if o.TenantColumn != "" {
		if r := checkIdent(o.TenantColumn); r != "" {
			return nil, bad("TenantColumn: %s", r)
		}
		e.columns = append(e.columns, o.TenantColumn)
		e.unlisted = append(e.unlisted, o.TenantColumn)
	}
	if o.AppRole != "" {
		if r := checkRole(o.AppRole); r != "" {
			return nil, bad("AppRole %q: %s", o.AppRole, r)
		}
	}
	for _, s := range o.Schemas {
		if r := checkIdent(s); r != "" {
			return nil, bad("schema %q: %s", s, r)
		}
	}
	e.schemas = slices.Clone(o.Schemas)
	if o.Model == nil {
		if err := CheckSetting(e.setting); err != nil {
			return nil, err
		}
		if len(e.schemas) == 0 {
			e.schemas = []string{"public"}
		}
	} else {
		p, err := normalize(o.Model)
		if err != nil {
			return nil, err
		}
		e.plan = p
		e.appRole = cmp.Or(o.AppRole, p.appRole)
		e.setting = p.setting
		for _, t := range p.tables {
			e.schemas = append(e.schemas, t.q.schema)
			e.columns = append(e.columns, t.column)
			if !t.root {
				e.unlisted = append(e.unlisted, t.column)
			}
			e.declared[t.q] = true
		}
		for _, g := range p.global {
			e.schemas = append(e.schemas, g.schema)
			e.declared[g] = true
		}
	}
	for _, s := range []*[]string{&e.schemas, &e.columns, &e.unlisted} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return e, nil
}

// snapshot is what Verify reads from the catalog.
type snapshot struct {
	exp      *expectation
	appRole  string // exp.appRole if the role exists, else ""
	role     *vrole // nil without an app role
	citus    bool
	tables   map[uint32]*vtable
	byName   map[qname]*vtable
	order    []*vtable // every table read, by name
	tenants  []*vtable // the tenant tables, by name
	absent   []string  // model tables that do not exist
	views    []vview
	funcs    []vfunc
	library  *vlibrary // nil when missing
	citusSet *citusSnapshot
}

type vrole struct {
	name      string
	exists    bool
	super     bool
	bypass    bool
	canBecome []string // superuser or BYPASSRLS roles it is a member of
}

type vtable struct {
	oid        uint32
	q          qname
	partition  bool
	partRoot   uint32
	rls, force bool
	owner      string
	appOwns    bool
	privs      []string          // table privileges of the app role
	colPrivs   []string          // SELECT, INSERT, UPDATE, REFERENCES on the table or any column
	cols       map[string]string // name -> type, for the names in exp.columns
	policies   []vpolicy
	indexes    []vindex
	fks        []vfk

	// Set on tenant tables.
	tenant  bool
	isRoot  bool
	column  string
	colType string // "" when the column is missing
	key     rls.KeyType
	// expected are the server's texts of PolicyExpr and CitusPolicyExpr
	// for the table's column; "" if unknown.
	expected [2]string
}

// accepted returns the texts of the policy expressions that are right for
// the table: both forms, or on a Citus database only CitusPolicyExpr's
// (Citus cannot distribute a policy with a subquery).
func (t *vtable) accepted(citus bool) []string {
	var out []string
	for i, e := range t.expected {
		if e != "" && (!citus || i == 1) {
			out = append(out, e)
		}
	}
	return out
}

// has reports whether the app role holds a privilege on the whole table.
func (t *vtable) has(priv string) bool { return slices.Contains(t.privs, priv) }

// hasSome reports whether it holds it on the table or on some column.
func (t *vtable) hasSome(priv string) bool { return t.has(priv) || slices.Contains(t.colPrivs, priv) }

type vpolicy struct {
	name       string
	permissive bool
	cmd        string
	roles      []string
	qual       string
	check      string
	depCols    []string
	depTypes   []string
}

type vindex struct {
	name       string
	unique     bool
	primary    bool
	constraint string
	cols       []string // key columns; "" for expressions
	partial    bool
}

type vfk struct {
	name    string
	cols    []string
	ref     uint32
	refCols []string
}

type vview struct {
	oid       uint32
	q         qname
	matview   bool
	options   []string
	appSelect bool
	reads     []uint32 // tenant tables read, directly or through views
}

type vfunc struct {
	signature string
	owner     string
	src       string
	deps      []uint32
}

type vlibrary struct {
	src      string
	secdef   bool
	language string
	canExec  bool
}

const verifyServerSQL = `
SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus'),
    r.oid IS NOT NULL, coalesce(r.rolsuper, false), coalesce(r.rolbypassrls, false),
    ARRAY(SELECT m.rolname::text FROM pg_catalog.pg_roles m
          WHERE m.oid <> r.oid AND (m.rolsuper OR m.rolbypassrls) AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER')
          ORDER BY 1)
FROM (SELECT) one
LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1::text`

const verifyTablesSQL = `
SELECT c.oid, n.nspname::text, c.relname::text, c.relispartition,
    coalesce(CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::oid END, 0),
    c.relrowsecurity, c.relforcerowsecurity, pg_catalog.pg_get_userbyid(c.relowner)::text,
    CASE WHEN $2::text = '' THEN false ELSE pg_catalog.pg_has_role($2::text, c.relowner, 'MEMBER') END,
    CASE WHEN $2::text = '' THEN '{}'::text[] ELSE ARRAY(
        SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
        WHERE pg_catalog.has_table_privilege($2::text, c.oid, p)) END,
    CASE WHEN $2::text = '' THEN '{}'::text[] ELSE ARRAY(
        SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
        WHERE pg_catalog.has_any_column_privilege($2::text, c.oid, p)) END
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p')`

const verifyColumnsSQL = `
SELECT a.attrelid, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY ($2::text[])`

const verifyPoliciesSQL = `
SELECT p.polrelid, p.polname::text, p.polpermissive, p.polcmd::text,
    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END
          FROM unnest(p.polroles) r ORDER BY 1),
    coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),
    coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), ''),
    coalesce(dep.names, '{}'), coalesce(dep.types, '{}')
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
        array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = p.polrelid AND a.attnum IN (
        SELECT d.refobjsubid FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
          AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = p.polrelid)
) dep ON true
WHERE n.nspname = ANY ($1::text[])`

const verifyIndexesSQL = `
SELECT i.indrelid, ic.relname::text, i.indisunique, i.indisprimary, coalesce(k.conname::text, ''),
    ARRAY(SELECT coalesce(a.attname::text, '')
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(num, ord)
          LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.num AND u.num > 0
          WHERE u.ord <= i.indnkeyatts
          ORDER BY u.ord),
    i.indpred IS NOT NULL
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
WHERE n.nspname = ANY ($1::text[]) AND c.relkind IN ('r', 'p')`

const verifyFKsSQL = `
SELECT k.conrelid, k.conname::text,
    ARRAY(SELECT a.attname::text
          FROM unnest(k.conkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
          ORDER BY u.ord),
    k.confrelid,
    ARRAY(SELECT a.attname::text
          FROM unnest(k.confkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
          ORDER BY u.ord)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY ($1::text[]) AND k.contype = 'f' AND k.conparentid = 0`

// verifyViewsSQL finds the views and materialized views that read the
// tenant tables $1, directly or through other views, following the
// dependencies of their rewrite rules.
const verifyViewsSQL = `
WITH RECURSIVE edges AS (
    SELECT DISTINCT r.ev_class AS view, d.refobjid AS rel
    FROM pg_catalog.pg_rewrite r
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind IN ('v', 'm')
    JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
        AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> r.ev_class
    WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
), reach (view, rel) AS (
    SELECT view, rel FROM edges
    UNION
    SELECT e.view, r.rel FROM edges e JOIN reach r ON r.view = e.rel
)
SELECT v.oid, n.nspname::text, v.relname::text, v.relkind = 'm', coalesce(v.reloptions, '{}'::text[]),
    CASE WHEN $2::text = '' THEN true ELSE pg_catalog.has_any_column_privilege($2::text, v.oid, 'SELECT') END,
    array_agg(DISTINCT reach.rel ORDER BY reach.rel)
FROM reach
JOIN pg_catalog.pg_class v ON v.oid = reach.view
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
WHERE reach.rel = ANY ($1::oid[])
GROUP BY v.oid, n.nspname, v.relname, v.relkind, v.reloptions`

const verifyFuncsSQL = `
SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)::text, coalesce(p.prosrc, ''),
    ARRAY(SELECT d.refobjid FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
            AND d.refclassid = 'pg_catalog.pg_class'::regclass)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
  AND CASE WHEN $1::text = '' THEN true ELSE pg_catalog.has_function_privilege($1::text, p.oid, 'EXECUTE') END`

const verifyLibrarySQL = `
SELECT p.prosrc, p.prosecdef, l.lanname::text,
    CASE WHEN $1::text = '' THEN true
         ELSE pg_catalog.has_function_privilege($1::text, p.oid, 'EXECUTE')
              AND pg_catalog.has_schema_privilege($1::text, p.pronamespace, 'USAGE') END
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.oid = pg_catalog.to_regprocedure('pgtenancy.set_tenant(text)')`

// loadSnapshot reads the catalog in tx. It creates temporary objects in tx,
// which the caller rolls back.
func loadSnapshot(ctx context.Context, tx pgx.Tx, e *expectation) (*snapshot, error) {
	s := &snapshot{exp: e, tables: map[uint32]*vtable{}, byName: map[qname]*vtable{}}
	wrap := func(what string, err error) error { return fmt.Errorf("policy: verify: reading %s: %w", what, err) }

	role := &vrole{name: e.appRole}
	if err := tx.QueryRow(ctx, verifyServerSQL, e.appRole).Scan(&s.citus, &role.exists, &role.super, &role.bypass, &role.canBecome); err != nil {
		return nil, wrap("the server", err)
	}
	if e.appRole != "" {
		s.role = role
		if role.exists {
			s.appRole = e.appRole
		}
	}

	rows, err := tx.Query(ctx, verifyTablesSQL, e.schemas, s.appRole)
	if err != nil {
		return nil, wrap("tables", err)
	}
	var t vtable
	_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.q.schema, &t.q.name, &t.partition, &t.partRoot, &t.rls, &t.force, &t.owner, &t.appOwns, &t.privs, &t.colPrivs}, func() error {
		c := t
		c.cols = map[string]string{}
		s.tables[c.oid] = &c
		s.byName[c.q] = &c
		s.order = append(s.order, &c)
		return nil
	})
	if err != nil {
		return nil, wrap("tables", err)
	}
	slices.SortFunc(s.order, func(a, b *vtable) int { return compareQname(a.q, b.q) })

	if len(e.columns) > 0 {
		var oid uint32
		var name, typ string
		rows, err = tx.Query(ctx, verifyColumnsSQL, e.schemas, e.columns)
		if err != nil {
			return nil, wrap("columns", err)
		}
		_, err = pgx.ForEachRow(rows, []any{&oid, &name, &typ}, func() error {
			if t := s.tables[oid]; t != nil {
				t.cols[name] = typ
			}
			return nil
		})
		if err != nil {
			return nil, wrap("columns", err)
		}
	}

	var oid uint32
	var pol vpolicy
	rows, err = tx.Query(ctx, verifyPoliciesSQL, e.schemas)
	if err != nil {
		return nil, wrap("policies", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&oid, &pol.name, &pol.permissive, &pol.cmd, &pol.roles, &pol.qual, &pol.check, &pol.depCols, &pol.depTypes}, func() error {
		if t := s.tables[oid]; t != nil {
			t.policies = append(t.policies, pol)
		}
		pol = vpolicy{}
		return nil
	})
	if err != nil {
		return nil, wrap("policies", err)
	}

	var ix vindex
	rows, err = tx.Query(ctx, verifyIndexesSQL, e.schemas)
	if err != nil {
		return nil, wrap("indexes", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&oid, &ix.name, &ix.unique, &ix.primary, &ix.constraint, &ix.cols, &ix.partial}, func() error {
		if t := s.tables[oid]; t != nil {
			t.indexes = append(t.indexes, ix)
		}
		ix = vindex{}
		return nil
	})
	if err != nil {
		return nil, wrap("indexes", err)
	}

	var fk vfk
	rows, err = tx.Query(ctx, verifyFKsSQL, e.schemas)
	if err != nil {
		return nil, wrap("foreign keys", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&oid, &fk.name, &fk.cols, &fk.ref, &fk.refCols}, func() error {
		if t := s.tables[oid]; t != nil {
			t.fks = append(t.fks, fk)
		}
		fk = vfk{}
		return nil
	})
	if err != nil {
		return nil, wrap("foreign keys", err)
	}
	for _, t := range s.order {
		slices.SortFunc(t.policies, func(a, b vpolicy) int { return strings.Compare(a.name, b.name) })
		slices.SortFunc(t.indexes, func(a, b vindex) int { return strings.Compare(a.name, b.name) })
		slices.SortFunc(t.fks, func(a, b vfk) int { return strings.Compare(a.name, b.name) })
	}

	s.resolveTenants()
	if err := s.loadExpected(ctx, tx); err != nil {
		return nil, err
	}

	tenantOIDs := make([]uint32, len(s.tenants))
	for i, t := range s.tenants {
		tenantOIDs[i] = t.oid
	}
	var v vview
	rows, err = tx.Query(ctx, verifyViewsSQL, tenantOIDs, s.appRole)
	if err != nil {
		return nil, wrap("views", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&v.oid, &v.q.schema, &v.q.name, &v.matview, &v.options, &v.appSelect, &v.reads}, func() error {
		s.views = append(s.views, v)
		v = vview{}
		return nil
	})
	if err != nil {
		return nil, wrap("views", err)
	}

	var f vfunc
	rows, err = tx.Query(ctx, verifyFuncsSQL, s.appRole)
	if err != nil {
		return nil, wrap("functions", err)
	}
	_, err = pgx.ForEachRow(rows, []any{&f.signature, &f.owner, &f.src, &f.deps}, func() error {
		s.funcs = append(s.funcs, f)
		f = vfunc{}
		return nil
	})
	if err != nil {
		return nil, wrap("functions", err)
	}

	var lib vlibrary
	err = tx.QueryRow(ctx, verifyLibrarySQL, s.appRole).Scan(&lib.src, &lib.secdef, &lib.language, &lib.canExec)
	switch {
	case err == pgx.ErrNoRows:
	case err != nil:
		return nil, wrap("the library function", err)
	default:
		s.library = &lib
	}

	if s.citus {
		if s.citusSet, err = loadCitus(ctx, tx, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// resolveTenants marks the tenant tables: the model's, or without a model
// those with the tenant column, row level security or a pgtenancy policy.
func (s *snapshot) resolveTenants() {
	e := s.exp
	if e.plan != nil {
		for _, pt := range e.plan.tables {
			t := s.byName[pt.q]
			if t == nil || t.partition {
				s.absent = append(s.absent, pt.q.String())
				continue
			}
			t.tenant, t.isRoot, t.column, t.colType = true, pt.root, pt.column, t.cols[pt.column]
			t.key = e.plan.key
			s.tenants = append(s.tenants, t)
		}
		slices.SortFunc(s.tenants, func(a, b *vtable) int { return compareQname(a.q, b.q) })
		return
	}
	for _, t := range s.order {
		if t.partition {
			continue
		}
		var pgtenancy *vpolicy
		for i := range t.policies {
			if p := &t.policies[i]; p.name == IsolationPolicy || (p.name == GuardPolicy && pgtenancy == nil) {
				pgtenancy = p
			}
		}
		_, hasCol := t.cols[e.column]
		if !(e.column != "" && hasCol) && !t.rls && pgtenancy == nil {
			continue
		}
		t.tenant = true
		switch {
		case e.column != "" && hasCol:
			t.column, t.colType = e.column, t.cols[e.column]
		case pgtenancy != nil && len(pgtenancy.depCols) == 1:
			t.column, t.colType = pgtenancy.depCols[0], pgtenancy.depTypes[0]
		}
		t.key = keyTypeOf(t.colType)
		s.tenants = append(s.tenants, t)
	}
}

// tempTypeRE matches the column types whose names loadExpected writes into
// SQL: the types a tenant column may have, as format_type prints them.
var tempTypeRE = regexp.MustCompile(`^(bigint|uuid|text|character varying(\([0-9]+\))?)$`)

// loadExpected asks the server how it prints the expected policy expression
// of each tenant table: it creates the pgtenancy policies on temporary tables
// with the same column names and types, and reads them back. That text is
// exactly what pg_get_expr gives for a correct policy, whatever the server
// version and the column's type (a varchar column gets a cast, say).
func (s *snapshot) loadExpected(ctx context.Context, tx pgx.Tx) error {
	type colKey struct{ name, typ string }
	byType := map[string][]string{}
	seen := map[colKey]bool{}
	for _, t := range s.tenants {
		k := colKey{t.column, t.colType}
		if t.column == "" || !tempTypeRE.MatchString(t.colType) || keyTypeOf(t.colType) != t.key || seen[k] {
			continue
		}
		seen[k] = true
		byType[t.colType] = append(byType[t.colType], t.column)
	}
	if len(byType) == 0 {
		return nil
	}
	types := make([]string, 0, len(byType))
	for typ := range byType {
		types = append(types, typ)
	}
	slices.Sort(types)
	var b strings.Builder
	type expectedPolicy struct {
		col  colKey
		form int
	}
	polName := map[string]expectedPolicy{}
	for i, typ := range types {
		cols := byType[typ]
		slices.Sort(cols)
		tbl := fmt.Sprintf("pg_temp.pgtenancy_verify_expected_%d", i)
		defs := make([]string, len(cols))
		for j, c := range cols {
			defs[j] = sqlquote.Ident(c) + " " + typ
		}
		fmt.Fprintf(&b, "CREATE TEMPORARY TABLE %s (%s) ON COMMIT DROP;\n", tbl, strings.Join(defs, ", "))
		for j, c := range cols {
			// Both forms are right: PolicyExpr, and CitusPolicyExpr,
			// which Generate writes for Citus and wrote for PostgreSQL
			// before 2026-11-26.
			for f, expr := range []string{PolicyExpr(c, keyTypeOf(typ), s.exp.setting), CitusPolicyExpr(c, keyTypeOf(typ), s.exp.setting)} {
				name := fmt.Sprintf("e_%d_%d_%d", i, j, f)
				polName[name] = expectedPolicy{colKey{c, typ}, f}
				fmt.Fprintf(&b, "CREATE POLICY %s ON %s USING (%s);\n", name, tbl, expr)
			}
		}
	}
	if _, err := tx.Exec(ctx, b.String()); err != nil {
		return fmt.Errorf("policy: verify: creating the expected policies on a temporary table (the role needs the TEMPORARY privilege): %w", err)
	}
	rows, err := tx.Query(ctx, `
SELECT p.polname::text, pg_catalog.pg_get_expr(p.polqual, p.polrelid)
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relname LIKE 'pgtenancy\_verify\_expected\_%'`)
	if err != nil {
		return fmt.Errorf("policy: verify: reading the expected policies: %w", err)
	}
	expected := map[colKey][2]string{}
	var name, text string
	_, err = pgx.ForEachRow(rows, []any{&name, &text}, func() error {
		if e, ok := polName[name]; ok {
			texts := expected[e.col]
			texts[e.form] = text
			expected[e.col] = texts
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("policy: verify: reading the expected policies: %w", err)
	}
	for _, t := range s.tenants {
		if seen[colKey{t.column, t.colType}] {
			t.expected = expected[colKey{t.column, t.colType}]
		}
	}
	return nil
}
