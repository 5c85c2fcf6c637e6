package snapshot

// ACLItem is one privilege of one grantee in an access control list, as
// aclexplode returns it.
type ACLItem struct {
	Grantee uint32 // 0 for PUBLIC
	Priv    string // SELECT, INSERT, ...
}

// Audit is what [Read] reads with [Options.Audit]: what verify needs to
// judge a setup it did not build, beyond what discovery and planning use.
type Audit struct {
	// Database is the current database's name.
	Database string
	// Roles are the roles that matter to the tables read: their owners,
	// the grantees of their privileges and default privileges, the roles
	// of their policies, the application role, the owners of views, the
	// users of user mappings. By OID.
	Roles map[uint32]*RoleInfo
	// Operators are the names of all operators, by OID.
	Operators map[uint32]string
	// Funcs are the functions that policies call, directly or through the
	// bodies of SQL functions (as pg_depend records them), and
	// pg_catalog.current_setting. By OID.
	Funcs map[uint32]*ExprFunc
	// DefaultACLs are the default privileges on tables and sequences
	// granted to others than the role that creates the objects.
	DefaultACLs []DefaultACL
	// Leakproof are the signatures of the LEAKPROOF functions outside
	// system schemas and extensions.
	Leakproof []string
	// ForeignTables are the foreign tables of user schemas.
	ForeignTables []ForeignTable
	// UserMappings are the user mappings of foreign servers.
	UserMappings []UserMapping
	// LargeObjects summarises the large objects the application role (or,
	// without one, PUBLIC) can read.
	LargeObjects LargeObjects
	// SeqUses are the sequences that column defaults and trigger
	// functions of the tables read call nextval on.
	SeqUses []SeqUse
	// CustomSettings are the pg_db_role_setting entries of custom
	// (dotted) settings in the current database or all databases, for
	// every role.
	CustomSettings []RoleSetting
	// ServerSettings are the custom settings set in the server's
	// configuration (file, command line).
	ServerSettings []ServerSetting
}

// RoleInfo is one role.
type RoleInfo struct {
	OID                              uint32
	Name                             string
	Super, Bypass, CreateRole, Login bool
	// Usage are the roles of [Audit.Roles] whose privileges it has
	// (pg_has_role USAGE), itself included; Member those it can become
	// (MEMBER).
	Usage, Member []uint32
}

// ExprFunc is a function that a policy calls.
type ExprFunc struct {
	OID    uint32
	Schema string
	Name   string
	// Volatile is provolatile: i(mmutable), s(table) or v(olatile).
	Volatile string
	Language string
	NArgs    int
	// Source is prosrc; Body is prosqlbody as text (a parse tree, for a
	// SQL function written with BEGIN ATOMIC or RETURN), or "".
	Source, Body string
}

// DefaultACL is the default privileges of one grantee on one kind of
// object created by one role.
type DefaultACL struct {
	Owner string // the role whose new objects get them
	// Schema is the schema they apply in; "" for all schemas.
	Schema string
	// ObjType is 'r' (tables) or 'S' (sequences).
	ObjType    string
	Grantee    uint32 // 0 for PUBLIC
	GranteeStr string // the grantee's name, "public" for PUBLIC
	Privs      []string
}

// ForeignTable is a foreign table.
type ForeignTable struct {
	Name     QName
	Server   string
	OwnerOID uint32
	ACL      []ACLItem
	// AppSelect reports that the application role can read it.
	AppSelect bool
}

// UserMapping is one user mapping of a foreign server.
type UserMapping struct {
	Server string
	// User is the role's name, "public" for PUBLIC; UserOID is 0 then.
	User    string
	UserOID uint32
	// AppUsage reports that the application role has USAGE on the
	// server, and AppApplies that the mapping is the application role's
	// (its own, one of a role whose privileges it has, or PUBLIC's).
	AppUsage, AppApplies bool
	// PublicUsage reports that PUBLIC has USAGE on the server.
	PublicUsage bool
}

// LargeObjects counts readable large objects.
type LargeObjects struct {
	Readable int64
	// Sample are the OIDs of up to five of them.
	Sample []uint32
	// Compat reports lo_compat_privileges on: every role reads every
	// large object.
	Compat bool
	// Total is the number of large objects.
	Total int64
}

// SeqUse is a sequence that a default or trigger of a table calls.
type SeqUse struct {
	// Seq is the sequence's quoted, qualified name.
	Seq   string
	Table uint32
	// Via says where: "default of column x" or "trigger t".
	Via string
	// AppUsage reports that the application role can call nextval on
	// it (USAGE or UPDATE).
	AppUsage bool
}

// ServerSetting is a custom setting set outside the database.
type ServerSetting struct {
	Name, Value, Source string
}

// The audit's queries take the schemas as $1 and the application role's
// name as $2, like the others.

const rolesSQL = `
WITH rel AS (
    SELECT c.relowner AS r FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE ` + inScope + ` AND c.relkind IN ('r', 'p', 'f')
    UNION
    SELECT a.grantee FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
        pg_catalog.aclexplode(c.relacl) a
    WHERE ` + inScope + ` AND c.relkind IN ('r', 'p', 'f')
    UNION
    SELECT unnest(p.polroles) FROM pg_catalog.pg_policy p
    UNION
    SELECT d.defaclrole FROM pg_catalog.pg_default_acl d
    UNION
    SELECT a.grantee FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a
    UNION
    SELECT c.relowner FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
    UNION
    SELECT umuser FROM pg_catalog.pg_user_mappings
    UNION
    SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $2::text
)
SELECT r.oid, r.rolname::text, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcanlogin,
    ARRAY(SELECT x.r FROM rel x WHERE x.r <> 0 AND pg_catalog.pg_has_role(r.oid, x.r, 'USAGE') ORDER BY 1),
    ARRAY(SELECT x.r FROM rel x WHERE x.r <> 0 AND pg_catalog.pg_has_role(r.oid, x.r, 'MEMBER') ORDER BY 1)
FROM pg_catalog.pg_roles r
WHERE r.oid IN (SELECT r FROM rel)`

const operatorsSQL = `SELECT oid, oprname::text FROM pg_catalog.pg_operator`

// exprFuncsSQL reads the functions that policies call, through the
// dependencies that CREATE POLICY and SQL function bodies record (built-in
// functions have none), and current_setting.
const exprFuncsSQL = `
WITH RECURSIVE f(oid) AS (
    SELECT d.refobjid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.refclassid = 'pg_catalog.pg_proc'::regclass
    UNION
    SELECT d.refobjid FROM f JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::regclass
        AND d.objid = f.oid AND d.refclassid = 'pg_catalog.pg_proc'::regclass
)
SELECT p.oid, n.nspname::text, p.proname::text, p.provolatile::text, l.lanname::text, p.pronargs::int,
    coalesce(p.prosrc, ''), coalesce(p.prosqlbody::text, '')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.oid IN (SELECT oid FROM f) OR (n.nspname = 'pg_catalog' AND p.proname IN ('current_setting',
    'jsonb_extract_path_text', 'jsonb_extract_path', 'json_extract_path_text', 'json_extract_path'))`

const defaultACLsSQL = `
SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text, coalesce(n.nspname::text, ''), d.defaclobjtype::text,
    a.grantee, CASE WHEN a.grantee = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
    array_agg(a.privilege_type::text ORDER BY a.privilege_type)
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) a
WHERE d.defaclobjtype IN ('r', 'S') AND a.grantee <> d.defaclrole
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 5`

const leakproofSQL = `
SELECT p.oid::pg_catalog.regprocedure::text
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proleakproof AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
ORDER BY 1`

const foreignTablesSQL = `
SELECT n.nspname::text, c.relname::text, s.srvname::text, c.relowner,
    coalesce(acl.grantees, '{}'), coalesce(acl.privs, '{}'),
    coalesce(pg_catalog.has_table_privilege(r.app, c.oid, 'SELECT'), false)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
CROSS JOIN (SELECT ` + appOID + ` AS app) r
LEFT JOIN LATERAL (
    SELECT array_agg(a.grantee ORDER BY a.grantee, a.privilege_type) AS grantees,
        array_agg(a.privilege_type::text ORDER BY a.grantee, a.privilege_type) AS privs
    FROM pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
) acl ON true
WHERE c.relkind = 'f' AND ` + inScope + `
ORDER BY 1, 2`

const userMappingsSQL = `
SELECT m.srvname::text, coalesce(m.usename::text, 'public'), m.umuser,
    coalesce(pg_catalog.has_server_privilege(r.app, m.srvid, 'USAGE'), false),
    m.umuser = 0 OR coalesce(pg_catalog.pg_has_role(r.app, m.umuser, 'USAGE'), false),
    EXISTS (SELECT FROM pg_catalog.pg_foreign_server s, pg_catalog.aclexplode(s.srvacl) a
            WHERE s.oid = m.srvid AND a.grantee = 0 AND a.privilege_type = 'USAGE')
FROM pg_catalog.pg_user_mappings m
CROSS JOIN (SELECT ` + appOID1 + ` AS app) r
ORDER BY 1, 2`

const largeObjectsSQL = `
SELECT count(*) FILTER (WHERE readable), coalesce((array_agg(oid ORDER BY oid) FILTER (WHERE readable))[1:5], '{}'),
    coalesce((SELECT setting FROM pg_catalog.pg_settings WHERE name = 'lo_compat_privileges'), 'off') = 'on',
    count(*)
FROM (
    SELECT m.oid, EXISTS (
        SELECT FROM pg_catalog.aclexplode(coalesce(m.lomacl, pg_catalog.acldefault('L', m.lomowner))) a
        WHERE a.privilege_type = 'SELECT'
          AND (a.grantee = 0 OR coalesce(pg_catalog.pg_has_role(r.app, a.grantee, 'USAGE'), false))) AS readable
    FROM pg_catalog.pg_largeobject_metadata m
    CROSS JOIN (SELECT ` + appOID1 + ` AS app) r
) lo`

// seqUsesSQL finds the sequences that column defaults depend on (nextval
// with a regclass constant records that), and those that trigger functions
// of the tables name in nextval('...') calls.
const seqUsesSQL = `
WITH uses AS (
    SELECT d.refobjid AS seq, ad.adrelid AS tbl, 'default of column ' || pg_catalog.quote_ident(a.attname) AS via
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
        AND d.refclassid = 'pg_catalog.pg_class'::regclass
    UNION
    SELECT sq.oid, tg.tgrelid, 'trigger ' || pg_catalog.quote_ident(tg.tgname)
    FROM pg_catalog.pg_trigger tg
    JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
    CROSS JOIN LATERAL pg_catalog.regexp_matches(p.prosrc, 'nextval\s*\(\s*''([^'']+)''', 'gi') m
    CROSS JOIN LATERAL (
        SELECT s.oid FROM pg_catalog.pg_class s JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
        WHERE s.relkind = 'S' AND (sn.nspname || '.' || s.relname = m[1] OR pg_catalog.format('%I.%I', sn.nspname, s.relname) = m[1]
            OR (strpos(m[1], '.') = 0 AND s.relname = m[1]))
        ORDER BY sn.nspname = 'public' DESC, sn.nspname LIMIT 1
    ) sq
    WHERE NOT tg.tgisinternal
)
SELECT pg_catalog.format('%I.%I', sn.nspname, s.relname), u.tbl, u.via,
    coalesce(pg_catalog.has_sequence_privilege(r.app, s.oid, 'USAGE')
             OR pg_catalog.has_sequence_privilege(r.app, s.oid, 'UPDATE'), false)
FROM uses u
JOIN pg_catalog.pg_class s ON s.oid = u.seq AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_class c ON c.oid = u.tbl
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (SELECT ` + appOID + ` AS app) r
WHERE ` + inScope + `
ORDER BY 2, 1, 3`

const customSettingsSQL = `
SELECT s.setdatabase <> 0, s.setrole <> 0, false, coalesce(r.rolname::text, ''),
    split_part(cfg, '=', 1), substr(cfg, strpos(cfg, '=') + 1)
FROM pg_catalog.pg_db_role_setting s
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
CROSS JOIN LATERAL unnest(s.setconfig) cfg
WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
  AND strpos(split_part(cfg, '=', 1), '.') > 0
ORDER BY 4, 5`

const serverSettingsSQL = `
SELECT name, coalesce(reset_val, ''), source
FROM pg_catalog.pg_settings
WHERE strpos(name, '.') > 0 AND source IN ('configuration file', 'command line', 'environment variable')
ORDER BY 1`

// addAudit queues the audit's queries.
func addAudit(b *batch, s *Snapshot, schemas []string, appRole string) {
	a := &Audit{Roles: map[uint32]*RoleInfo{}, Operators: map[uint32]string{}, Funcs: map[uint32]*ExprFunc{}}
	s.Audit = a
	b.add("SELECT pg_catalog.current_database()::text", each([]any{&a.Database}, func() error { return nil }))
	var ri RoleInfo
	b.add(rolesSQL, each([]any{&ri.OID, &ri.Name, &ri.Super, &ri.Bypass, &ri.CreateRole, &ri.Login, &ri.Usage, &ri.Member}, func() error {
		r := ri
		a.Roles[r.OID] = &r
		ri = RoleInfo{}
		return nil
	}), schemas, appRole)
	var oid uint32
	var name string
	b.add(operatorsSQL, each([]any{&oid, &name}, func() error {
		a.Operators[oid] = name
		return nil
	}))
	var f ExprFunc
	b.add(exprFuncsSQL, each([]any{&f.OID, &f.Schema, &f.Name, &f.Volatile, &f.Language, &f.NArgs, &f.Source, &f.Body}, func() error {
		x := f
		a.Funcs[x.OID] = &x
		return nil
	}))
	var d DefaultACL
	b.add(defaultACLsSQL, each([]any{&d.Owner, &d.Schema, &d.ObjType, &d.Grantee, &d.GranteeStr, &d.Privs}, func() error {
		a.DefaultACLs = append(a.DefaultACLs, d)
		d = DefaultACL{}
		return nil
	}))
	b.add(leakproofSQL, each([]any{&name}, func() error {
		a.Leakproof = append(a.Leakproof, name)
		return nil
	}))
	var ft ForeignTable
	var grantees []uint32
	var privs []string
	b.add(foreignTablesSQL, each([]any{&ft.Name.Schema, &ft.Name.Name, &ft.Server, &ft.OwnerOID, &grantees, &privs, &ft.AppSelect}, func() error {
		ft.ACL = aclItems(grantees, privs)
		a.ForeignTables = append(a.ForeignTables, ft)
		ft = ForeignTable{}
		return nil
	}), schemas, appRole)
	var um UserMapping
	b.add(userMappingsSQL, each([]any{&um.Server, &um.User, &um.UserOID, &um.AppUsage, &um.AppApplies, &um.PublicUsage}, func() error {
		a.UserMappings = append(a.UserMappings, um)
		return nil
	}), appRole)
	lo := &a.LargeObjects
	b.add(largeObjectsSQL, each([]any{&lo.Readable, &lo.Sample, &lo.Compat, &lo.Total}, func() error { return nil }), appRole)
	var su SeqUse
	b.add(seqUsesSQL, each([]any{&su.Seq, &su.Table, &su.Via, &su.AppUsage}, func() error {
		a.SeqUses = append(a.SeqUses, su)
		return nil
	}), schemas, appRole)
	var rs RoleSetting
	b.add(customSettingsSQL, each([]any{&rs.PerDatabase, &rs.PerRole, &rs.Default, &rs.Role, &rs.Name, &rs.Value}, func() error {
		a.CustomSettings = append(a.CustomSettings, rs)
		return nil
	}))
	var ss ServerSetting
	b.add(serverSettingsSQL, each([]any{&ss.Name, &ss.Value, &ss.Source}, func() error {
		a.ServerSettings = append(a.ServerSettings, ss)
		return nil
	}))
}

// aclItems zips the grantees and privileges that the queries return as two
// arrays.
func aclItems(grantees []uint32, privs []string) []ACLItem {
	if len(grantees) != len(privs) {
		return nil
	}
	out := make([]ACLItem, len(grantees))
	for i := range grantees {
		out[i] = ACLItem{Grantee: grantees[i], Priv: privs[i]}
	}
	return out
}
