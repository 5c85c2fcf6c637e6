package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/nodetree"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
)

// class is what a policy expression does to the rows it is asked about,
// judged from the server's parse tree of it (pg_policy.polqual and
// polwithcheck), whatever the policy is called. The order matters: AND
// keeps the most restrictive class of its arms, OR the least.
type class uint8

const (
	// clsNever admits no row: false, NULL.
	clsNever class = iota
	// clsTenant admits only rows whose tenant column equals a value read
	// from a setting (the tenant), or rows found in a tenant table.
	clsTenant
	// clsShared admits the tenant's rows and the rows whose tenant column
	// is NULL (tenant_id IS NULL OR ...): rows shared by all tenants. Safe
	// to read; a hole in WITH CHECK, where a tenant writes rows that all
	// then read.
	clsShared
	// clsLookup admits rows found in other tables (EXISTS, IN); the
	// second pass decides whether those are tenant tables.
	clsLookup
	// clsUnsure depends on a setting or a function in a way verify cannot
	// follow: it is given the benefit of the doubt, with a warning.
	clsUnsure
	// clsRows admits rows by a condition that does not involve the
	// tenant: a flag, a constant, the role's name, another operator.
	clsRows
	// clsSwitch does not depend on the row: it admits every row or none,
	// as the session decides.
	clsSwitch
	// clsVacuous is always true: it admits every row.
	clsVacuous
)

// protects reports whether an expression of the class, as the only
// permissive policy, keeps other tenants' rows out.
func (c class) protects() bool {
	return c == clsNever || c == clsTenant || c == clsShared || c == clsUnsure
}

// pseudoSetting names the role a session runs as (current_user), which
// policies of tenants that are roles compare with: a source of the tenant
// like a setting, but no setting.
const pseudoSetting = "current_user"

// verdict is the classification of one expression.
type verdict struct {
	cls      class
	cols     []string // clsTenant: the tenant columns compared with the setting
	settings []string // the settings it reads: "app.tenant", "request.jwt.claims->>tenant_id"
	lookups  []uint32 // clsLookup: the relations read
	// immutable are the IMMUTABLE functions through which it reads the
	// tenant: the planner may fold them into a constant and cache it.
	immutable []string
	// why says, for a class that does not protect, what makes it so.
	why string
	// mentions are the columns compared with a setting anywhere in the
	// expression, whatever its class (inside OR true, by >=), each with
	// the setting it is compared with: what inference learns the tenant
	// columns and settings from.
	mentions []mention
}

// mention is a column compared with a setting; setting is "" for a column
// passed to a function that reads settings in a way verify cannot follow
// (is_member(org_id)).
type mention struct {
	col, setting string
	// lookup: the column is matched against rows another table holds,
	// which the setting selects (org_id IN (SELECT org_id FROM members
	// WHERE user_id = setting)): a tenant column, but not compared with
	// the setting.
	lookup bool
}

// mentionsOf pairs each column with each setting.
func mentionsOf(cols, settings []string) []mention {
	var out []mention
	for _, c := range cols {
		if len(settings) == 0 {
			out = append(out, mention{col: c})
		}
		for _, s := range settings {
			out = append(out, mention{col: c, setting: s})
		}
	}
	return out
}

func uniqMentions(m []mention) []mention {
	if len(m) == 0 {
		return nil
	}
	m = slices.Clone(m)
	slices.SortFunc(m, func(a, b mention) int {
		return cmp.Or(strings.Compare(a.col, b.col), strings.Compare(a.setting, b.setting), boolCmp(a.lookup, b.lookup))
	})
	return slices.Compact(m)
}

// exprResolver knows the functions and operators of the snapshot, parses
// trees once and resolves getter functions once.
type exprResolver struct {
	audit   *snapshot.Audit
	trees   map[string]*parsedTree // by text without locations
	texts   map[string]*parsedTree // by text as read
	getters map[uint32]*getterInfo
	// named maps the names verdicts use for functions, "schema.name()",
	// to the functions.
	named map[string]*snapshot.ExprFunc
	// signedTenant returns the settings that a function read as a getter
	// by trust rather than by its body (pgtenancy.tenant() as installed,
	// see state.signedTenantSettings), or nil; nil itself for none.
	signedTenant func(*snapshot.ExprFunc) []string
	// role reports, for a role's name, whether the application role runs
	// as it (is) or can run as it (can: by SET ROLE, or as the owner of a
	// SECURITY DEFINER function or trigger); nil without an application
	// role.
	role func(name string) (is, can bool)
}

type parsedTree struct {
	v  nodetree.Value
	ok bool
}

// getterInfo is what a user function returns, when it is a getter of
// settings: no arguments, and a body that only reads settings.
type getterInfo struct {
	ok        bool
	settings  []string
	immutable bool
	resolving bool
	// signed: pgtenancy.tenant() as installed, which verifies the
	// setting's signature.
	signed bool
}

func newResolver(a *snapshot.Audit) *exprResolver {
	if a == nil {
		a = &snapshot.Audit{}
	}
	return &exprResolver{audit: a, trees: map[string]*parsedTree{}, texts: map[string]*parsedTree{}, getters: map[uint32]*getterInfo{}, named: map[string]*snapshot.ExprFunc{}}
}

// parse parses a tree's text once. Trees that differ only in their
// :location fields (offsets into the statement that created them) are one.
func (r *exprResolver) parse(text string) (nodetree.Value, bool) {
	p := r.tree(text)
	return p.v, p.ok
}

func (r *exprResolver) tree(text string) *parsedTree {
	if p, ok := r.texts[text]; ok {
		return p
	}
	key := stripLocations(text)
	p, ok := r.trees[key]
	if !ok {
		v, err := nodetree.Parse(key)
		p = &parsedTree{v, err == nil}
		r.trees[key] = p
	}
	r.texts[text] = p
	return p
}

// stripLocations removes the ":location N" fields of a tree's text.
func stripLocations(text string) string {
	const field = " :location "
	if !strings.Contains(text, field) {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	for {
		i := strings.Index(text, field)
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		j := i + len(field)
		if j < len(text) && text[j] == '-' {
			j++
		}
		for j < len(text) && text[j] >= '0' && text[j] <= '9' {
			j++
		}
		text = text[j:]
	}
}

func (r *exprResolver) op(v nodetree.Value) string {
	oid, err := strconv.ParseUint(v.Node.Str("opno"), 10, 32)
	if err != nil {
		return ""
	}
	return r.audit.Operators[uint32(oid)]
}

func (r *exprResolver) fn(v nodetree.Value) *snapshot.ExprFunc {
	oid, err := strconv.ParseUint(v.Node.Str("funcid"), 10, 32)
	if err != nil {
		return nil
	}
	return r.audit.Funcs[uint32(oid)]
}

// getter resolves a user function that a policy calls.
func (r *exprResolver) getter(f *snapshot.ExprFunc) *getterInfo {
	if g, ok := r.getters[f.OID]; ok {
		if g.resolving {
			return &getterInfo{}
		}
		return g
	}
	g := &getterInfo{resolving: true}
	r.getters[f.OID] = g
	defer func() { g.resolving = false }()
	g.immutable = f.Volatile == "i"
	if f.NArgs != 0 {
		return g
	}
	if r.signedTenant != nil {
		if settings := r.signedTenant(f); len(settings) > 0 {
			g.ok, g.settings, g.signed = true, settings, true
			return g
		}
	}
	switch {
	case f.Body != "":
		body, ok := r.parse(f.Body)
		if !ok {
			return g
		}
		var queries []nodetree.Value
		nodetree.Walk(body, func(v nodetree.Value) bool {
			if v.Is("QUERY") {
				queries = append(queries, v)
				return false
			}
			return true
		})
		if len(queries) != 1 {
			return g
		}
		q := queries[0].Node
		targets := q.Get("targetList").Items()
		if len(q.Get("rtable").Items()) > 0 || len(targets) != 1 || !targets[0].Is("TARGETENTRY") {
			return g
		}
		c := &classifier{r: r}
		vi := c.value(targets[0].Node.Get("expr"), 0)
		if !vi.rowDep && len(vi.settings) > 0 && len(vi.opaque) == 0 && len(vi.rels) == 0 {
			g.ok, g.settings = true, vi.settings
			g.immutable = g.immutable || len(vi.immutable) > 0
		}
	case f.Language == "sql" || f.Language == "plpgsql":
		if settings, ok := recognizeGetter(f.Source); ok {
			g.ok, g.settings = true, settings
		}
	}
	return g
}

// classifier classifies the expressions of one table's policies.
type classifier struct {
	r *exprResolver
	// cols maps attnum to column name.
	cols map[int16]string
	// tenantRel reports whether a relation is a tenant table; nil in the
	// first pass, when lookups stay clsLookup.
	tenantRel func(uint32) bool
	// settings are the tenant settings, once given or inferred; nil
	// accepts any. settingGiven: the one given (Options.Setting or a
	// model), whose JSON claims count too.
	settings     []string
	settingGiven bool
	// signed: signed mode is in use, so a tenant read without the
	// signature check of pgtenancy.tenant() does not limit rows to the
	// tenant.
	signed bool
	// tenantCol is the table's tenant column, in the second pass.
	tenantCol string
	// cache holds the verdicts of trees already classified for a table
	// with the same columns, in this pass; colsKey names those columns.
	cache   map[verdictKey]*verdict
	colsKey string
}

type verdictKey struct {
	tree *parsedTree
	cols string
}

// classifyTree classifies a policy expression from its tree's text; an
// empty text is no expression.
func (c *classifier) classifyTree(text string) *verdict {
	if text == "" {
		return nil
	}
	p := c.r.tree(text)
	if !p.ok {
		return &verdict{cls: clsUnsure, why: "its parse tree could not be read"}
	}
	key := verdictKey{p, c.colsKey}
	if vd, ok := c.cache[key]; ok && c.cache != nil {
		return vd
	}
	vd := c.classify(p.v, 0)
	if c.cache != nil {
		c.cache[key] = &vd
	}
	return &vd
}

// valInfo describes a value expression (not a condition).
type valInfo struct {
	rowDep    bool     // reads the policy table's row
	settings  []string // settings read (through getters too)
	opaque    []string // user functions that could not be read, called without the row
	immutable []string // IMMUTABLE getters
	rels      []uint32 // relations read by subqueries
	nonConst  bool     // calls functions, reads parameters or subqueries: not a constant
	// raw: it reads a setting other than through pgtenancy.tenant()
	// (which verifies its signature), as injected SQL can set it.
	raw bool
	// fromRows: it is a value of rows of other tables that settings only
	// select ((SELECT org_id FROM members WHERE user_id = setting),
	// ARRAY(...) of it): a lookup, like IN (SELECT ...).
	fromRows bool
	// helperCols are the columns of the row passed to user functions
	// that read a setting: is_member(org_id). Inference takes them for
	// tenant columns.
	helperCols []string
}

func (a *valInfo) merge(b valInfo) {
	a.rowDep = a.rowDep || b.rowDep
	a.settings = append(a.settings, b.settings...)
	a.opaque = append(a.opaque, b.opaque...)
	a.immutable = append(a.immutable, b.immutable...)
	a.rels = append(a.rels, b.rels...)
	a.nonConst = a.nonConst || b.nonConst
	a.raw = a.raw || b.raw
	a.fromRows = a.fromRows || b.fromRows
	a.helperCols = append(a.helperCols, b.helperCols...)
}

// castFormat reports whether a FUNCEXPR is a cast (explicit or implicit),
// from its funcformat.
func castFormat(n *nodetree.Tree) bool {
	f := n.Str("funcformat")
	return f == "1" || f == "2"
}

// value analyses a value expression at subquery depth depth.
func (c *classifier) value(v nodetree.Value, depth int) valInfo {
	var vi valInfo
	switch v.Kind {
	case nodetree.List:
		for _, it := range v.List {
			vi.merge(c.value(it, depth))
		}
		return vi
	case nodetree.Node:
	default:
		return vi
	}
	n := v.Node
	switch n.Type {
	case "VAR":
		if lv, _ := strconv.Atoi(n.Str("varlevelsup")); lv == depth {
			vi.rowDep = true
		}
		return vi
	case "CONST":
		return vi
	case "SQLVALUEFUNCTION":
		vi.nonConst = true
		switch n.Str("op") {
		case "9", "10", "11", "12": // CURRENT_ROLE, CURRENT_USER, USER, SESSION_USER
			vi.settings = append(vi.settings, pseudoSetting)
		}
		return vi
	case "PARAM":
		vi.nonConst = true
		return vi
	case "FUNCEXPR":
		args := n.Get("args")
		vi.merge(c.value(args, depth))
		if castFormat(n) {
			return vi
		}
		vi.nonConst = true
		f := c.r.fn(v)
		switch {
		case f == nil:
		case f.Schema == "pg_catalog" && f.Name == "current_setting":
			items := args.Items()
			if len(items) > 0 && items[0].Is("CONST") {
				if s, ok := nodetree.Text(items[0].Node.Get("constvalue")); ok {
					vi.settings = append(vi.settings, s)
					vi.raw = true
					return vi
				}
			}
			vi.opaque = append(vi.opaque, "current_setting with a computed name")
		case f.Schema == "pg_catalog" && (strings.HasSuffix(f.Name, "_extract_path_text") || strings.HasSuffix(f.Name, "_extract_path")):
			// json(b)_extract_path(_text)(claims, 'a', 'b'): the claim
			// claims->>a->>b, named like ->> names it.
			if items := args.Items(); len(items) == 2 && items[1].Is("ARRAYEXPR") {
				first := c.value(items[0], depth)
				var path []string
				for _, el := range items[1].Node.Get("elements").Items() {
					if k, ok := constText(el); ok {
						path = append(path, k)
					} else {
						path = nil
						break
					}
				}
				if len(path) > 0 && len(first.settings) > 0 && !first.rowDep {
					for i, st := range first.settings {
						first.settings[i] = st + "->>" + strings.Join(path, "->>")
					}
					first.nonConst = true
					return first
				}
			}
		case f.Schema != "pg_catalog":
			g := c.r.getter(f)
			name := f.Schema + "." + f.Name + "()"
			c.r.named[name] = f
			switch {
			case g.ok:
				vi.settings = append(vi.settings, g.settings...)
				vi.raw = vi.raw || !g.signed
				if g.immutable {
					vi.immutable = append(vi.immutable, name)
				}
			default:
				vi.opaque = append(vi.opaque, name)
				if c.r.readsSetting(f) {
					for _, a := range args.Items() {
						if col, ok := c.column(a, depth); ok {
							vi.helperCols = append(vi.helperCols, col)
						}
					}
				}
			}
		}
		return vi
	case "OPEXPR":
		args := n.Get("args").Items()
		op := c.r.op(v)
		if (op == "->>" || op == "->") && len(args) == 2 {
			left := c.value(args[0], depth)
			if key, ok := constText(args[1]); ok && len(left.settings) > 0 {
				for i, s := range left.settings {
					left.settings[i] = s + "->>" + key
				}
				return left
			}
		}
	case "SUBLINK":
		vi.nonConst = true
		vi.merge(c.value(n.Get("testexpr"), depth))
		sub := n.Get("subselect")
		vi.rels = append(vi.rels, relids(sub)...)
		if sub.Is("QUERY") {
			// Only the value the subquery returns names the setting
			// read; its quals (such as pgtenancy's transaction stamp)
			// only filter.
			sv := c.value(sub, depth+1)
			tv := c.value(sub.Node.Get("targetList"), depth+1)
			sv.settings = tv.settings
			if len(sv.settings) == 0 {
				sv.settings = c.value(sub, depth+1).settings
				sv.fromRows = len(relids(sub)) > 0 && len(sv.settings) > 0 && len(sv.opaque) == 0
			}
			vi.merge(sv)
		}
		return vi
	case "RANGETBLENTRY":
		return c.value(n.Get("subquery"), depth)
	}
	for _, f := range n.Fields {
		vi.merge(c.value(f.Value, depth))
	}
	return vi
}

// readsSetting reports whether a function's source reads a setting: it
// calls current_setting, or a getter that policies call (auth.uid() and
// the like), by name.
func (r *exprResolver) readsSetting(f *snapshot.ExprFunc) bool {
	src := strings.ToLower(f.Source) + " " + f.Body
	if strings.Contains(src, "current_setting") || strings.Contains(src, ":funcid 2077 ") || strings.Contains(src, ":funcid 3294 ") {
		return true
	}
	for _, g := range r.audit.Funcs {
		if g.OID != f.OID && g.Schema != "pg_catalog" && r.getter(g).ok &&
			(strings.Contains(src, strings.ToLower(g.Name)+"(") || strings.Contains(src, ":funcid "+strconv.FormatUint(uint64(g.OID), 10)+" ")) {
			return true
		}
	}
	return false
}

// relids returns the relations a subquery reads.
func relids(v nodetree.Value) []uint32 {
	var out []uint32
	nodetree.Walk(v, func(x nodetree.Value) bool {
		if x.Is("RANGETBLENTRY") && x.Node.Str("rtekind") == "0" {
			if oid, err := strconv.ParseUint(x.Node.Str("relid"), 10, 32); err == nil {
				out = append(out, uint32(oid))
			}
		}
		return true
	})
	return out
}

func constText(v nodetree.Value) (string, bool) {
	if !v.Is("CONST") || v.Node.Str("constisnull") == "true" {
		return "", false
	}
	return nodetree.Text(v.Node.Get("constvalue"))
}

// column returns the column of the policy's table that v is, through
// casts, at depth depth.
func (c *classifier) column(v nodetree.Value, depth int) (string, bool) {
	for v.Kind == nodetree.Node {
		n := v.Node
		switch n.Type {
		case "RELABELTYPE", "COERCEVIAIO", "COERCETODOMAIN":
			v = n.Get("arg")
			continue
		case "FUNCEXPR":
			if args := n.Get("args").Items(); castFormat(n) && len(args) >= 1 {
				v = args[0]
				continue
			}
		case "VAR":
			lv, _ := strconv.Atoi(n.Str("varlevelsup"))
			no, _ := strconv.Atoi(n.Str("varno"))
			attno, _ := strconv.Atoi(n.Str("varattno"))
			if lv != depth || no != 1 || attno <= 0 {
				return "", false
			}
			name, ok := c.cols[int16(attno)]
			return name, ok
		}
		return "", false
	}
	return "", false
}

// classify classifies a condition at subquery depth depth.
func (c *classifier) classify(v nodetree.Value, depth int) verdict {
	if v.Kind != nodetree.Node {
		return verdict{cls: clsUnsure, why: "its parse tree has an unexpected form"}
	}
	n := v.Node
	switch n.Type {
	case "BOOLEXPR":
		args := n.Get("args").Items()
		switch n.Str("boolop") {
		case "and":
			out := verdict{cls: clsVacuous, why: "it is always true"}
			for _, a := range args {
				out = and(out, c.classify(a, depth))
			}
			return out
		case "or":
			out := verdict{cls: clsNever}
			for _, a := range args {
				out = or(out, c.classify(a, depth))
			}
			return out
		case "not":
			if len(args) == 1 {
				inner := c.classify(args[0], depth)
				switch inner.cls {
				case clsNever:
					return verdict{cls: clsVacuous, why: "NOT of a condition that is never true is always true"}
				case clsVacuous:
					return verdict{cls: clsNever}
				case clsSwitch:
					return inner
				case clsTenant, clsLookup:
					return verdict{cls: clsRows, settings: inner.settings, mentions: inner.mentions,
						why: "NOT of the tenant condition admits every other tenant's rows"}
				}
				return verdict{cls: inner.cls, settings: inner.settings, why: inner.why, mentions: inner.mentions}
			}
		}
	case "CONST":
		if n.Str("constisnull") == "true" {
			return verdict{cls: clsNever}
		}
		if n.Str("consttype") == "16" {
			if nodetree.True(n.Get("constvalue")) {
				return verdict{cls: clsVacuous, why: "it is the constant true"}
			}
			return verdict{cls: clsNever}
		}
	case "OPEXPR", "DISTINCTEXPR":
		return c.compare(v, depth)
	case "SCALARARRAYOPEXPR":
		args := n.Get("args").Items()
		if c.r.op(v) == "=" && n.Str("useOr") == "true" && len(args) == 2 {
			if col, ok := c.column(args[0], depth); ok {
				if vd, ok := c.tenantValue(col, c.value(args[1], depth)); ok {
					return vd
				}
			}
		}
	case "SUBLINK":
		return c.sublink(v, depth)
	case "NULLTEST":
		if col, ok := c.column(n.Get("arg"), depth); ok && n.Str("nulltesttype") == "0" && col == c.tenantCol && col != "" {
			return verdict{cls: clsShared, cols: []string{col}, why: "it admits the rows whose tenant column " + col + " is NULL, shared by all tenants"}
		}
	case "CASEEXPR":
		if vd, ok := c.caseExpr(n, depth); ok {
			return vd
		}
	case "COALESCEEXPR":
		args := n.Get("args").Items()
		if len(args) >= 2 {
			last := args[len(args)-1]
			first := c.classify(args[0], depth)
			if last.Is("CONST") && n.Get("args").Kind == nodetree.List {
				lv := c.classify(last, depth)
				switch lv.cls {
				case clsVacuous:
					return or(first, verdict{cls: clsSwitch, why: "COALESCE(..., true) admits every row when the condition is NULL, as when no tenant is set"})
				case clsNever:
					return first
				}
			}
			out := first
			for _, a := range args[1:] {
				out = or(out, c.classify(a, depth))
			}
			return out
		}
	}
	return c.fallback(v, depth)
}

func switchWhy(vi valInfo) string {
	why := "it does not depend on the row, so it admits every row or none, as the session decides"
	if len(vi.settings) > 0 {
		why += " (it reads " + strings.Join(uniq(vi.settings), ", ") + ", which any session can set)"
	}
	return why
}

func unsureWhy(vi valInfo) string {
	switch {
	case len(vi.opaque) > 0:
		return "verify cannot read " + strings.Join(uniq(vi.opaque), ", ") + " to tell whether it limits rows to the tenant"
	case len(vi.rels) > 0:
		return "it reads other tables in a way verify cannot follow"
	}
	return "it reads " + strings.Join(uniq(vi.settings), ", ") + " in a way verify cannot follow"
}

// tenantValue returns the verdict of col = value when the value is read
// from the tenant setting without the row, or from rows of other tables
// that settings select (a lookup).
func (c *classifier) tenantValue(col string, val valInfo) (verdict, bool) {
	if val.rowDep || len(val.settings) == 0 {
		return verdict{}, false
	}
	if val.fromRows {
		vd := verdict{cls: clsLookup, lookups: uniqOIDs(val.rels), settings: uniq(val.settings), mentions: mentionsOf([]string{col}, uniq(val.settings))}
		for i := range vd.mentions {
			vd.mentions[i].lookup = true
		}
		return c.resolveLookup(vd), true
	}
	settings := uniq(val.settings)
	if c.settings != nil && !slices.ContainsFunc(settings, func(s string) bool { return isTenantSetting(s, c.settings, c.settingGiven) }) {
		return verdict{cls: clsRows, settings: settings, mentions: mentionsOf([]string{col}, settings),
			why: "it compares " + col + " with " + strings.Join(settings, ", ") + ", not with the tenant setting " + strings.Join(c.settings, " or ")}, true
	}
	if c.signed && val.raw {
		return verdict{cls: clsRows, settings: settings, mentions: mentionsOf([]string{col}, settings),
			why: "it compares " + col + " with " + strings.Join(settings, ", ") + " read without the signature check of " + signedFunction + ": in signed mode, SQL that sets the setting reads any tenant"}, true
	}
	return verdict{cls: clsTenant, cols: []string{col}, settings: settings, immutable: uniq(val.immutable),
		mentions: mentionsOf([]string{col}, settings)}, true
}

// isTenantSetting reports whether a setting read is one of the tenant
// settings: itself; with claims, a JSON
// claim of one (request.jwt.claims->>tenant_id of request.jwt.claims), as
// when the setting was given. Inferred settings name their claims:
// request.jwt.claims, read whole or by a path verify does not name, does
// not make its claim ->>sub (a user) the tenant's.
func isTenantSetting(read string, tenant []string, claims bool) bool {
	if slices.Contains(tenant, read) {
		return true
	}
	base, _, _ := strings.Cut(read, "->>")
	return claims && slices.Contains(tenant, base)
}

// comparisons are the operators that compare values but not for equality.
var comparisons = map[string]bool{"<>": true, "!=": true, "<": true, ">": true, "<=": true, ">=": true}

func (c *classifier) compare(v nodetree.Value, depth int) verdict {
	n := v.Node
	op := c.r.op(v)
	if n.Type == "DISTINCTEXPR" {
		op = "IS DISTINCT FROM"
	}
	args := n.Get("args").Items()
	if len(args) != 2 {
		return c.fallback(v, depth)
	}
	lv, rv := c.value(args[0], depth), c.value(args[1], depth)
	if op == "=" {
		lc, lok := c.column(args[0], depth)
		rc, rok := c.column(args[1], depth)
		if vd, ok := c.coalesceCompare(lc, lok, args[1], depth); ok {
			return vd
		}
		if vd, ok := c.coalesceCompare(rc, rok, args[0], depth); ok {
			return vd
		}
		if lok && rok {
			if lc == rc {
				return verdict{cls: clsVacuous, why: "it compares " + lc + " with itself"}
			}
			return verdict{cls: clsRows, why: "it compares two columns of the row"}
		}
		for _, side := range []struct {
			col   string
			ok    bool
			other valInfo
		}{{lc, lok, rv}, {rc, rok, lv}} {
			if !side.ok || side.other.rowDep {
				continue
			}
			if vd, ok := c.tenantValue(side.col, side.other); ok {
				return vd
			}
			switch o := side.other; {
			case len(o.opaque) > 0:
				return verdict{cls: clsUnsure, why: unsureWhy(o)}
			case len(o.rels) > 0:
				return verdict{cls: clsRows, why: "it compares " + side.col + " with a value read from a table, not from the tenant setting"}
			case !o.nonConst:
				return verdict{cls: clsRows, why: "it compares " + side.col + " with a constant: every tenant sees that tenant's rows"}
			}
			return verdict{cls: clsRows, why: "it compares " + side.col + " with a value that is not read from the tenant setting"}
		}
	}
	if !lv.rowDep && !rv.rowDep {
		if !lv.nonConst && !rv.nonConst {
			return constCompare(op, args)
		}
		if vd, ok := c.roleCompare(op, args); ok {
			return vd
		}
		vi := lv
		vi.merge(rv)
		return fromValue(vi)
	}
	vi := lv
	vi.merge(rv)
	if len(vi.settings) > 0 && comparisons[op] {
		vd := verdict{cls: clsRows, settings: uniq(vi.settings), why: "it compares the row with the setting by " + op + ", not by ="}
		for _, side := range []struct {
			arg   nodetree.Value
			other valInfo
		}{{args[0], rv}, {args[1], lv}} {
			if col, ok := c.column(side.arg, depth); ok && !side.other.rowDep && len(side.other.settings) > 0 {
				vd.mentions = mentionsOf([]string{col}, uniq(side.other.settings))
			}
		}
		return vd
	}
	return c.fallback(v, depth)
}

// coalesceCompare classifies col = COALESCE(a1, a2, ...): the value is a1,
// or when it is NULL a2, and so on, so the comparison admits what any of
// col = ai admits. col = COALESCE(setting, col) admits every row when no
// tenant is set: it fails open.
func (c *classifier) coalesceCompare(col string, ok bool, other nodetree.Value, depth int) (verdict, bool) {
	for ok && other.Is("RELABELTYPE") {
		other = other.Node.Get("arg")
	}
	if !ok || !other.Is("COALESCEEXPR") {
		return verdict{}, false
	}
	args := other.Node.Get("args").Items()
	if len(args) < 2 {
		return verdict{}, false
	}
	out := verdict{cls: clsNever}
	for i, a := range args {
		var vd verdict
		if ac, aok := c.column(a, depth); aok {
			if ac != col {
				return verdict{}, false
			}
			vd = verdict{cls: clsVacuous, why: "it compares " + col + " with itself"}
		} else {
			av := c.value(a, depth)
			if av.rowDep {
				return verdict{}, false
			}
			if tv, tok := c.tenantValue(col, av); tok {
				vd = tv
			} else if !av.nonConst && a.Is("CONST") && a.Node.Str("constisnull") != "true" {
				vd = verdict{cls: clsRows, why: "it compares " + col + " with a constant: every tenant sees that tenant's rows"}
			} else {
				vd = fromValue(av)
			}
		}
		if i > 0 && vd.cls == clsVacuous {
			vd = verdict{cls: clsSwitch, why: "COALESCE(..., " + col + ") compares " + col + " with itself when the tenant is NULL, so it admits every row when no tenant is set"}
		}
		out = or(out, vd)
	}
	return out, true
}

// caseExpr classifies CASE WHEN c1 THEN r1 ... ELSE d END: any branch may
// be taken, so it admits what any of its results admits. A result that is
// always true, behind a condition that the session decides (no tenant
// set, a bypass setting), fails open.
func (c *classifier) caseExpr(n *nodetree.Tree, depth int) (verdict, bool) {
	if arg := n.Get("arg"); arg.Kind == nodetree.Node {
		return verdict{}, false // CASE x WHEN v: left to the fallback
	}
	out := verdict{cls: clsNever}
	branch := func(cond nodetree.Value, result nodetree.Value) {
		vd := c.classify(result, depth)
		if cond.Kind == nodetree.Node && vd.cls == clsVacuous {
			cv := c.value(cond, depth)
			if cv.rowDep {
				vd = verdict{cls: clsRows, why: "a CASE branch admits every row that its condition selects"}
			} else {
				vd = verdict{cls: clsSwitch, settings: uniq(cv.settings), why: "a CASE branch is true whenever its condition holds, which the session decides (as when no tenant is set), so it admits every row then"}
			}
		}
		out = or(out, vd)
	}
	for _, w := range n.Get("args").Items() {
		if !w.Is("CASEWHEN") {
			return verdict{}, false
		}
		branch(w.Node.Get("expr"), w.Node.Get("result"))
	}
	def := n.Get("defresult")
	if def.Kind == nodetree.Node {
		branch(nodetree.Value{}, def)
	} else {
		out = or(out, verdict{cls: clsNever}) // no ELSE: NULL
	}
	return out, true
}

// constCompare classifies a comparison of two constants.
func constCompare(op string, args []nodetree.Value) verdict {
	same := args[0].Is("CONST") && args[1].Is("CONST") &&
		slices.Equal(args[0].Node.Get("constvalue").Bytes, args[1].Node.Get("constvalue").Bytes) &&
		args[0].Node.Str("consttype") == args[1].Node.Str("consttype")
	switch {
	case op == "=" && same, op == "<=" && same, op == ">=" && same:
		return verdict{cls: clsVacuous, why: "it compares a constant with itself, which is always true"}
	case (op == "<>" || op == "!=" || op == "<" || op == ">") && same, op == "=" && args[0].Is("CONST") && args[1].Is("CONST"):
		return verdict{cls: clsNever}
	}
	return verdict{cls: clsVacuous, why: "it is made of constants only, so it is the same for every row"}
}

// roleCompare classifies current_user = 'name' (or <>, current_role) for
// the application role: its statements run as itself,
// so the comparison is the same in every one of them, unless it can SET
// ROLE to that name, when the session decides.
func (c *classifier) roleCompare(op string, args []nodetree.Value) (verdict, bool) {
	if c.r.role == nil || op != "=" && op != "<>" && op != "!=" {
		return verdict{}, false
	}
	for i, a := range args {
		if !isSessionRole(a) {
			continue
		}
		name, ok := roleName(args[1-i])
		if !ok {
			continue
		}
		is, can := c.r.role(name)
		switch {
		case can:
			return verdict{cls: clsSwitch, settings: []string{pseudoSetting}, why: fmt.Sprintf("it compares the session's role with %q, which the application role can run as (by SET ROLE, or in a SECURITY DEFINER function or trigger it owns)", name)}, true
		case is == (op == "="):
			return verdict{cls: clsVacuous, why: fmt.Sprintf("it compares the session's role with %q, which is always true for the application role", name)}, true
		}
		return verdict{cls: clsNever}, true
	}
	return verdict{}, false
}

// isSessionRole reports whether v is current_user, current_role or user,
// through casts. Not session_user: the role that logged in, which may be
// another role that SET ROLE to the application role (PostgREST's
// authenticator).
func isSessionRole(v nodetree.Value) bool {
	for v.Kind == nodetree.Node {
		n := v.Node
		switch n.Type {
		case "RELABELTYPE", "COERCEVIAIO":
			v = n.Get("arg")
			continue
		case "FUNCEXPR":
			if args := n.Get("args").Items(); castFormat(n) && len(args) == 1 {
				v = args[0]
				continue
			}
		case "SQLVALUEFUNCTION":
			switch n.Str("op") {
			case "9", "10", "11": // CURRENT_ROLE, CURRENT_USER, USER
				return true
			}
		}
		return false
	}
	return false
}

// roleName returns the text of a constant of type name or text, through
// casts.
func roleName(v nodetree.Value) (string, bool) {
	for v.Is("RELABELTYPE") || v.Is("COERCEVIAIO") {
		v = v.Node.Get("arg")
	}
	if !v.Is("CONST") || v.Node.Str("constisnull") == "true" {
		return "", false
	}
	if v.Node.Str("consttype") == "19" { // name: NUL-padded, by value of 64 bytes
		b := v.Node.Get("constvalue").Bytes
		if i := slices.Index(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b), len(b) > 0
	}
	return constText(v)
}

// fallback classifies what no rule above knows, from what it reads: a
// constant is the same for every row; a function verify cannot read gets
// the benefit of the doubt (its columns are tenant columns for
// inference); what reads the session but not the row is a switch; a
// condition on the row that reads a setting or other tables in an unknown
// way is unsure; the rest is a row condition.
func (c *classifier) fallback(v nodetree.Value, depth int) verdict {
	return fromValue(c.value(v, depth))
}

func fromValue(vi valInfo) verdict {
	switch {
	case !vi.rowDep && !vi.nonConst:
		return verdict{cls: clsVacuous, why: "it is made of constants only, so it is the same for every row"}
	case len(vi.opaque) > 0:
		return verdict{cls: clsUnsure, settings: uniq(vi.settings), why: unsureWhy(vi), mentions: mentionsOf(uniq(vi.helperCols), nil)}
	case !vi.rowDep:
		return verdict{cls: clsSwitch, settings: uniq(vi.settings), why: switchWhy(vi)}
	case len(vi.settings) > 0 || len(vi.rels) > 0:
		return verdict{cls: clsUnsure, settings: uniq(vi.settings), why: unsureWhy(vi)}
	}
	return verdict{cls: clsRows, why: "it is a condition on the row that does not involve the tenant setting"}
}

// sublink classifies EXISTS (...), x IN (SELECT ...) and the like.
func (c *classifier) sublink(v nodetree.Value, depth int) verdict {
	n := v.Node
	sub := n.Get("subselect")
	kind := n.Str("subLinkType")
	if (kind != "0" && kind != "2") || !sub.Is("QUERY") {
		return c.fallback(v, depth)
	}
	rels := relids(sub)
	if kind == "2" && len(rels) == 0 {
		// col IN (SELECT <setting>): the tenant, as an IN list.
		test := n.Get("testexpr")
		targets := sub.Node.Get("targetList").Items()
		if test.Is("OPEXPR") && c.r.op(test) == "=" && len(targets) == 1 {
			if targs := test.Node.Get("args").Items(); len(targs) == 2 {
				if col, ok := c.column(targs[0], depth); ok {
					if vd, ok := c.tenantValue(col, c.value(targets[0].Node.Get("expr"), depth+1)); ok {
						return vd
					}
				}
			}
		}
		return c.fallback(v, depth)
	}
	inner := c.value(sub, depth+1)
	test := c.value(n.Get("testexpr"), depth)
	correlated := test.rowDep || refersOut(sub, depth+1)
	if !correlated {
		inner.merge(test)
		return verdict{cls: clsSwitch, settings: uniq(inner.settings), why: "it reads other tables but not the row, so it admits every row or none" + settingsNote(inner.settings)}
	}
	vd := verdict{cls: clsLookup, lookups: uniqOIDs(rels), settings: uniq(inner.settings)}
	if len(vd.settings) > 0 {
		// The row's column matched against what the session may see
		// (org_id IN (SELECT org_id FROM members WHERE user_id = ...)):
		// the tenant column, for inference.
		if col := c.lookupColumn(n, sub, depth); col != "" {
			vd.mentions = mentionsOf([]string{col}, vd.settings)
			for i := range vd.mentions {
				vd.mentions[i].lookup = true
			}
		}
	}
	return c.resolveLookup(vd)
}

func settingsNote(settings []string) string {
	if len(settings) == 0 {
		return ""
	}
	return " (it reads " + strings.Join(uniq(settings), ", ") + ")"
}

// resolveLookup decides, in the second pass, whether a lookup reads a
// tenant table.
func (c *classifier) resolveLookup(vd verdict) verdict {
	if c.tenantRel == nil {
		return vd
	}
	if slices.ContainsFunc(vd.lookups, c.tenantRel) {
		vd.cls = clsTenant
		return vd
	}
	if len(vd.settings) > 0 {
		vd.cls, vd.why = clsUnsure, "it reads other tables, none of them a tenant table, with "+strings.Join(vd.settings, ", ")
		return vd
	}
	vd.cls, vd.why = clsRows, "it reads other tables, none of them a tenant table"
	return vd
}

// lookupColumn returns the column of the row that a lookup matches: the
// left side of col IN (SELECT ...), or the outer column an EXISTS
// subquery compares with =; "" when there is none.
func (c *classifier) lookupColumn(n *nodetree.Tree, sub nodetree.Value, depth int) string {
	if test := n.Get("testexpr"); test.Is("OPEXPR") {
		if args := test.Node.Get("args").Items(); len(args) == 2 {
			if col, ok := c.column(args[0], depth); ok {
				return col
			}
		}
		return ""
	}
	found := ""
	nodetree.Walk(sub.Node.Get("jointree"), func(x nodetree.Value) bool {
		if found != "" {
			return false
		}
		if x.Is("OPEXPR") && c.r.op(x) == "=" {
			for _, a := range x.Node.Get("args").Items() {
				if col, ok := c.column(a, depth+1); ok {
					found = col
				}
			}
		}
		return !x.Is("SUBLINK")
	})
	return found
}

// refersOut reports whether a subquery at depth depth reads the row of the
// policy's table (a Var one level up per nesting).
func refersOut(sub nodetree.Value, depth int) bool {
	found := false
	var walk func(v nodetree.Value, d int)
	walk = func(v nodetree.Value, d int) {
		if found {
			return
		}
		switch v.Kind {
		case nodetree.List:
			for _, it := range v.List {
				walk(it, d)
			}
		case nodetree.Node:
			n := v.Node
			if n.Type == "VAR" {
				if lv, _ := strconv.Atoi(n.Str("varlevelsup")); lv == d {
					found = true
				}
				return
			}
			if n.Type == "SUBLINK" {
				walk(n.Get("testexpr"), d)
				walk(n.Get("subselect"), d+1)
				return
			}
			for _, f := range n.Fields {
				walk(f.Value, d)
			}
		}
	}
	walk(sub, depth)
	return found
}

// and combines the verdicts of two arms of AND: the more restrictive wins.
func and(a, b verdict) verdict {
	if b.cls < a.cls {
		a, b = b, a
	}
	if a.cls == b.cls {
		a.cols = append(a.cols, b.cols...)
		a.lookups = append(a.lookups, b.lookups...)
	}
	a.settings = uniq(append(a.settings, b.settings...))
	a.immutable = uniq(append(a.immutable, b.immutable...))
	a.mentions = uniqMentions(append(a.mentions, b.mentions...))
	return a
}

// or combines the verdicts of two arms of OR: the less restrictive wins.
func or(a, b verdict) verdict {
	mentions := uniqMentions(append(slices.Clone(a.mentions), b.mentions...))
	a, b = orArms(a, b)
	a.mentions = mentions
	return a
}

func orArms(a, b verdict) (verdict, verdict) {
	if a.cls == clsNever {
		return b, a
	}
	if b.cls == clsNever {
		return a, b
	}
	if b.cls > a.cls {
		a, b = b, a
	}
	if a.cls == b.cls {
		a.cols = append(a.cols, b.cols...)
		a.lookups = append(a.lookups, b.lookups...)
	}
	a.settings = uniq(append(a.settings, b.settings...))
	a.immutable = uniq(append(a.immutable, b.immutable...))
	if a.why != "" && b.cls != a.cls && !strings.HasPrefix(a.why, "an OR arm") {
		a.why = "an OR arm: " + a.why
	}
	return a, b
}

func uniq(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func uniqOIDs(s []uint32) []uint32 {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// recognizeGetter reads the source text of a SQL or PL/pgSQL function
// without arguments and returns the settings it returns, when its body is
// one expression made only of current_setting calls, NULLIF, COALESCE,
// casts, ->> and constants: "SELECT current_setting('app.tenant')::bigint",
// "BEGIN RETURN NULLIF(current_setting('x', true), ”)::uuid; END".
func recognizeGetter(src string) ([]string, bool) {
	toks, ok := sqlTokens(src)
	if !ok {
		return nil, false
	}
	trim := func(words ...string) {
		for len(toks) > 0 && slices.Contains(words, toks[0]) {
			toks = toks[1:]
		}
	}
	trimEnd := func(words ...string) {
		for len(toks) > 0 && slices.Contains(words, toks[len(toks)-1]) {
			toks = toks[:len(toks)-1]
		}
	}
	trim("begin")
	trim("return", "select")
	trimEnd(";", "end", ";")
	trimEnd(";")
	if len(toks) == 0 {
		return nil, false
	}
	allowed := map[string]bool{
		"current_setting": true, "pg_catalog.current_setting": true, "nullif": true, "coalesce": true,
		"cast": true, "as": true, "true": true, "false": true, "null": true,
		"(": true, ")": true, ",": true, "::": true, "->>": true, "->": true,
	}
	var settings []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t[0] == '\'':
			if i >= 2 && (toks[i-2] == "current_setting" || toks[i-2] == "pg_catalog.current_setting") && toks[i-1] == "(" {
				settings = append(settings, t[1:])
			} else if i >= 1 && (toks[i-1] == "->>" || toks[i-1] == "->") && len(settings) > 0 {
				for j := range settings {
					if !strings.Contains(settings[j], "->>") {
						settings[j] += "->>" + t[1:]
					}
				}
			}
		case t[0] >= '0' && t[0] <= '9':
		case allowed[t]:
		case i >= 1 && (toks[i-1] == "::" || toks[i-1] == "as" || toks[i-1] == "character"):
			// a type name; "character varying" and a length follow
		case t == "varying" || t == "precision":
		default:
			return nil, false
		}
	}
	return settings, len(settings) > 0
}

// sqlTokens splits SQL text into lower-cased words, string literals (as
// ' and their content), numbers and the punctuation a getter uses; false
// for anything else (a quoted identifier, E” strings, dollar quotes,
// comments are dropped).
func sqlTokens(src string) ([]string, bool) {
	var out []string
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '-' && i+1 < len(src) && src[i+1] == '-':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, false
			}
			i += end + 4
		case c == '\'':
			var b strings.Builder
			b.WriteByte('\'')
			i++
			for {
				if i >= len(src) {
					return nil, false
				}
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(src[i])
				i++
			}
			out = append(out, b.String())
		case strings.HasPrefix(src[i:], "->>"):
			out = append(out, "->>")
			i += 3
		case strings.HasPrefix(src[i:], "->"), strings.HasPrefix(src[i:], "::"):
			out = append(out, src[i:i+2])
			i += 2
		case c == '(' || c == ')' || c == ',' || c == ';':
			out = append(out, string(c))
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '.' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			w := strings.ToLower(src[i:j])
			if (w == "e" || w == "u&" || w == "b" || w == "x") && j < len(src) && src[j] == '\'' {
				return nil, false
			}
			out = append(out, w)
			i = j
		default:
			return nil, false
		}
	}
	return out, true
}
