package snapshot

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Options say what [Read] reads.
type Options struct {
	// Schemas are the schemas whose tables are read; every user schema
	// when empty.
	Schemas []string
	// AppRole is the application role whose privileges are read; none
	// when empty.
	AppRole string
	// Audit reads the policies' parse trees and [Audit] as well: what
	// verify needs to judge a setup it did not build.
	Audit bool
	// AdminRole is the role for cross-tenant work, which Snapshot.Admin
	// describes; none when empty.
	AdminRole string
	// Copy reads [Column.Copy] as well: how each column's values move
	// between databases, and the sequences that fill it.
	Copy bool
}

// inScope is the condition on n.nspname that selects the schemas $1.
const inScope = `(n.nspname = ANY ($1::text[]) OR (cardinality($1::text[]) = 0
    AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'))`

const serverSQL = `
SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus'),
    r.oid IS NOT NULL, coalesce(r.rolsuper, false), coalesce(r.rolbypassrls, false), coalesce(r.rolcreaterole, false),
    coalesce((SELECT bool_or(pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE')) FROM pg_catalog.pg_namespace n
              WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'), false),
    ARRAY(SELECT m.rolname::text FROM pg_catalog.pg_roles m
          WHERE m.oid <> r.oid AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER')
            AND (m.rolsuper OR m.rolbypassrls
                 OR m.rolname IN ('pg_execute_server_program', 'pg_read_server_files', 'pg_write_server_files'))
          ORDER BY 1),
    ARRAY(SELECT m.rolname::text FROM pg_catalog.pg_roles m
          WHERE m.oid <> r.oid AND pg_catalog.pg_has_role(r.oid, m.oid, 'MEMBER') ORDER BY 1),
    ARRAY(SELECT m.rolname::text FROM pg_catalog.pg_roles m
          WHERE m.oid <> r.oid AND pg_catalog.pg_has_role(m.oid, r.oid, 'MEMBER') ORDER BY 1),
    ARRAY(SELECT DISTINCT pg_catalog.pg_get_userbyid(p.proowner)::text FROM pg_catalog.pg_proc p
          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1)
FROM (SELECT) one
LEFT JOIN pg_catalog.pg_roles r ON r.rolname = $1::text`

// The queries below take the schemas as $1 and, when they need it, the
// application role's name as $2; appOID is its OID, NULL when there is none or it does not exist,
// which makes the privilege functions return NULL.

const appOID = `(SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2::text)`

// appOID1 is appOID for the queries that take only the role, as $1.
const appOID1 = `(SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1::text)`

const tablesSQL = `
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind = 'p', c.relispartition,
    coalesce(CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid)::oid END, 0),
    c.relrowsecurity, c.relforcerowsecurity, pg_catalog.pg_get_userbyid(c.relowner)::text,
    coalesce(pg_catalog.pg_has_role(r.app, c.relowner, 'MEMBER'), false),
    ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
          WHERE pg_catalog.has_table_privilege(r.app, c.oid, p)),
    ARRAY(SELECT p FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
          WHERE pg_catalog.has_any_column_privilege(r.app, c.oid, p)),
    c.relowner,
    EXISTS (SELECT FROM pg_catalog.pg_depend e
            WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e'),
    ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
    coalesce(acl.grantees, '{}'), coalesce(acl.privs, '{}'),
    coalesce(pg_catalog.has_schema_privilege(r.app, n.oid, 'USAGE'), true)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT ` + appOID + ` AS app) r
LEFT JOIN LATERAL (
    SELECT array_agg(a.grantee ORDER BY a.grantee, a.privilege_type) AS grantees,
        array_agg(a.privilege_type::text ORDER BY a.grantee, a.privilege_type) AS privs
    FROM pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
) acl ON true
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')`

const columnsSQL = `
SELECT a.attrelid, a.attnum, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`

const constraintsSQL = `
SELECT k.conrelid, k.conname::text, k.contype::text,
    ARRAY(SELECT a.attname::text
          FROM unnest(k.conkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num
          ORDER BY u.ord),
    k.confrelid, coalesce(rn.nspname::text, ''), coalesce(rc.relname::text, ''),
    ARRAY(SELECT a.attname::text
          FROM unnest(k.confkey) WITH ORDINALITY AS u(num, ord)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num
          ORDER BY u.ord),
    k.confdeltype::text, k.confupdtype::text, k.confmatchtype = 'f', k.condeferrable, k.condeferred,
    k.convalidated, k.confdelsetcols IS NOT NULL, CONDEF, k.oid,
    coalesce((SELECT tg.tgname::text FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_proc tp ON tp.oid = tg.tgfoid
              WHERE tg.tgconstraint = k.oid AND tg.tgrelid = k.conrelid AND tp.proname = 'RI_FKey_check_ins'), '')
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON rc.oid = k.confrelid
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
WHERE ` + inScope + ` AND k.contype IN ('p', 'u', 'f') AND k.conparentid = 0
  AND c.relkind IN ('r', 'p')`

const indexesSQL = `
SELECT i.indrelid, ic.relname::text, i.indisunique, i.indisprimary, coalesce(k.conname::text, ''),
    ARRAY(SELECT coalesce(a.attname::text, '')
          FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS u(num, ord)
          LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.num AND u.num > 0
          WHERE u.ord <= i.indnkeyatts
          ORDER BY u.ord),
    i.indpred IS NOT NULL, i.indexrelid, am.amname::text
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')`

// policiesSQL takes the columns of the expressions (EXPRS) and of their parse
// trees (TREES): the first without the audit, the second with it (then
// [Snapshot.Expect] reads the expressions that verify needs).
const policiesSQL = `
SELECT p.polrelid, p.polname::text, p.polpermissive, p.polcmd::text,
    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END
          FROM unnest(p.polroles) r ORDER BY 1),
    EXPRS, coalesce(dep.names, '{}'), coalesce(dep.types, '{}'),
    ARRAY(SELECT r FROM unnest(p.polroles) r ORDER BY 1), TREES, p.oid
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
WHERE ` + inScope + ``

const exprsSQL = `coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''),
    coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')`

// viewsSQL finds the views and materialized views of every user schema that
// read tables of the schemas $1, directly or through other views,
// following the dependencies of their rewrite rules.
const viewsSQL = `
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
), tables AS (
    SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE ` + inScope + ` AND c.relkind IN ('r', 'p')
)
SELECT v.oid, n.nspname::text, v.relname::text, v.relkind = 'm', coalesce(v.reloptions, '{}'::text[]),
    coalesce(pg_catalog.has_any_column_privilege(r.app, v.oid, 'SELECT'), true),
    array_agg(DISTINCT reach.rel ORDER BY reach.rel), v.relowner, pg_catalog.pg_get_userbyid(v.relowner)::text
FROM reach
JOIN pg_catalog.pg_class v ON v.oid = reach.view
JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
CROSS JOIN (SELECT ` + appOID + ` AS app) r
WHERE reach.rel IN (SELECT oid FROM tables)
GROUP BY v.oid, n.nspname, v.relname, v.relkind, v.reloptions, v.relowner, r.app`

const funcsSQL = `
SELECT p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)::text, coalesce(p.prosrc, ''),
    ARRAY(SELECT d.refobjid FROM pg_catalog.pg_depend d
          WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
            AND d.refclassid = 'pg_catalog.pg_class'::regclass),
    coalesce(p.proconfig, '{}'), p.oid,
    p.prorettype IN ('pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN (SELECT ` + appOID1 + ` AS app) r
WHERE p.prosecdef AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
  AND coalesce(pg_catalog.has_function_privilege(r.app, p.oid, 'EXECUTE'), true)
`

const librarySQL = `
SELECT p.prosrc, p.prosecdef, l.lanname::text,
    coalesce(pg_catalog.has_function_privilege(r.app, p.oid, 'EXECUTE')
             AND pg_catalog.has_schema_privilege(r.app, p.pronamespace, 'USAGE'), true)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
CROSS JOIN (SELECT ` + appOID1 + ` AS app) r
WHERE p.oid = pg_catalog.to_regprocedure('pgtenancy.set_tenant(text)')`

// sequencesSQL lists the sequences owned by serial columns (deptype 'a')
// of the tables of the schemas; identity columns' sequences (deptype 'i')
// need no privilege for INSERT.
const sequencesSQL = `
SELECT pg_catalog.format('%I.%I', sn.nspname, s.relname), d.refobjid,
    coalesce(pg_catalog.has_sequence_privilege(r.app, s.oid, 'USAGE'), false)
FROM pg_catalog.pg_depend d
CROSS JOIN (SELECT ` + appOID + ` AS app) r
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = d.refobjid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE d.classid = 'pg_catalog.pg_class'::regclass
  AND d.refclassid = 'pg_catalog.pg_class'::regclass
  AND d.deptype = 'a' AND ` + inScope + `
ORDER BY sn.nspname, s.relname`

const roleSettingsSQL = `
SELECT s.setdatabase <> 0, s.setrole <> 0, false, split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1)
FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) cfg
WHERE s.setrole IN (0, coalesce(` + appOID1 + `, 0))
  AND s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
UNION ALL
SELECT false, false, true, 'citus.propagate_set_commands',
    coalesce((SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'citus.propagate_set_commands'), 'none')`

var actionCodes = map[string]string{"a": "", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

// Read reads the snapshot in tx, with one batch of queries (one round
// trip). It sets search_path to pg_catalog, pg_temp for the rest of the
// transaction, so that the constraint definitions it keeps name every
// table with its schema; the caller rolls tx back.
func Read(ctx context.Context, tx pgx.Tx, opts Options) (*Snapshot, error) {
	s := &Snapshot{byOID: map[uint32]*Table{}, byName: map[QName]*Table{}}
	schemas := opts.Schemas
	if schemas == nil {
		schemas = []string{}
	}
	role := &Role{Name: opts.AppRole}
	b := &batch{}
	b.add("SET LOCAL search_path = pg_catalog, pg_temp", nil)
	b.add(serverSQL, each([]any{&s.Citus, &role.Exists, &role.Super, &role.Bypass, &role.CreateRole, &role.CanCreate, &role.CanBecome, &role.Member, &role.Members, &role.DefinerOwners}, func() error { return nil }), opts.AppRole)
	var t Table
	var grantees []uint32
	var privs []string
	b.add(tablesSQL, each([]any{&t.OID, &t.Name.Schema, &t.Name.Name, &t.Partitioned, &t.Partition, &t.PartRoot,
		&t.RLS, &t.Force, &t.Owner, &t.AppOwns, &t.Privs, &t.ColPrivs, &t.OwnerOID, &t.Extension, &t.Parents,
		&grantees, &privs, &t.AppSchemaUsage}, func() error {
		t.ACL = aclItems(grantees, privs)
		c := t
		s.Tables = append(s.Tables, &c)
		s.byOID[c.OID] = &c
		s.byName[c.Name] = &c
		t = Table{}
		return nil
	}), schemas, opts.AppRole)
	var oid uint32
	var col Column
	b.add(columnsSQL, each([]any{&oid, &col.Num, &col.Name, &col.Type, &col.NotNull}, func() error {
		if t := s.byOID[oid]; t != nil {
			t.Columns = append(t.Columns, col)
		}
		return nil
	}), schemas)
	var con Constraint
	var contype, delType, updType string
	condef, exprs, trees := "pg_catalog.pg_get_constraintdef(k.oid)", exprsSQL, "'', ''"
	if opts.Audit {
		// Printing every constraint and expression costs a second per
		// 5,000 tables: the audit reads the few it needs in Expect.
		condef, exprs, trees = "''", "'', ''", "coalesce(p.polqual::text, ''), coalesce(p.polwithcheck::text, '')"
	}
	b.add(strings.Replace(constraintsSQL, "CONDEF", condef, 1), each([]any{&oid, &con.Name, &contype, &con.Columns, &con.Ref, &con.RefName.Schema, &con.RefName.Name,
		&con.RefCols, &delType, &updType, &con.MatchFull, &con.Deferrable, &con.Deferred, &con.Validated, &con.SetColumns,
		&con.Definition, &con.OID, &con.CheckTrigger}, func() error {
		if t := s.byOID[oid]; t != nil {
			con.Type = contype[0]
			if con.Type == 'f' {
				con.OnDelete, con.OnUpdate = actionCodes[delType], actionCodes[updType]
			} else {
				con.Ref, con.RefName, con.RefCols = 0, QName{}, nil
			}
			t.Constraints = append(t.Constraints, con)
		}
		con = Constraint{}
		return nil
	}), schemas)
	var ix Index
	b.add(indexesSQL, each([]any{&oid, &ix.Name, &ix.Unique, &ix.Primary, &ix.Constraint, &ix.Columns, &ix.Partial,
		&ix.OID, &ix.Method}, func() error {
		if t := s.byOID[oid]; t != nil {
			t.Indexes = append(t.Indexes, ix)
		}
		ix = Index{}
		return nil
	}), schemas)
	var pol Policy
	b.add(strings.NewReplacer("EXPRS", exprs, "TREES", trees).Replace(policiesSQL), each([]any{&oid, &pol.Name, &pol.Permissive, &pol.Cmd, &pol.Roles, &pol.Using, &pol.Check,
		&pol.DepColumns, &pol.DepTypes, &pol.RoleOIDs, &pol.UsingTree, &pol.CheckTree, &pol.OID}, func() error {
		if t := s.byOID[oid]; t != nil {
			t.Policies = append(t.Policies, pol)
		}
		pol = Policy{}
		return nil
	}), schemas)
	var v View
	b.add(viewsSQL, each([]any{&v.OID, &v.Name.Schema, &v.Name.Name, &v.Matview, &v.Options, &v.AppSelect, &v.Reads,
		&v.OwnerOID, &v.Owner}, func() error {
		s.Views = append(s.Views, v)
		v = View{}
		return nil
	}), schemas, opts.AppRole)
	var f Func
	b.add(funcsSQL, each([]any{&f.Signature, &f.Owner, &f.Source, &f.Deps, &f.Config, &f.OID, &f.Trigger}, func() error {
		s.Funcs = append(s.Funcs, f)
		f = Func{}
		return nil
	}), opts.AppRole)
	var lib Library
	b.add(librarySQL, each([]any{&lib.Source, &lib.SecDef, &lib.Language, &lib.CanExec}, func() error {
		l := lib
		s.Library = &l
		return nil
	}), opts.AppRole)
	var seq Sequence
	b.add(sequencesSQL, each([]any{&seq.Name, &seq.Table, &seq.AppUsage}, func() error {
		s.Sequences = append(s.Sequences, seq)
		return nil
	}), schemas, opts.AppRole)
	if opts.Copy {
		s.addCopy(b, schemas)
	}
	var rs RoleSetting
	b.add(roleSettingsSQL, each([]any{&rs.PerDatabase, &rs.PerRole, &rs.Default, &rs.Name, &rs.Value}, func() error {
		s.RoleSettings = append(s.RoleSettings, rs)
		return nil
	}), opts.AppRole)
	if opts.Audit {
		addAudit(b, s, schemas, opts.AppRole)
	}
	addAdoption(b, s, schemas, opts)
	if err := b.send(ctx, tx); err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	finishAdoption(s)
	if opts.AppRole != "" {
		s.Role = role
		if role.Exists {
			s.AppRole = opts.AppRole
		}
	}
	slices.SortFunc(s.Tables, func(a, b *Table) int { return a.Name.Compare(b.Name) })
	for _, t := range s.Tables {
		slices.SortFunc(t.Constraints, func(a, b Constraint) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(t.Indexes, func(a, b Index) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(t.Policies, func(a, b Policy) int { return strings.Compare(a.Name, b.Name) })
	}
	return s, nil
}
