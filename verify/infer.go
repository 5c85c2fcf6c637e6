package verify

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
)

// classify classifies the expressions of every policy. The first pass
// (tenantRel nil) leaves lookups undecided and takes any setting for the
// tenant's unless one was given; the second, once the tenant tables and
// settings are known, decides them.
func (s *state) classify(tenantRel func(uint32) bool) {
	var settings []string
	signed := tenantRel != nil && s.signed != nil && s.signed.installed && s.signedInUse()
	claims := s.exp.settingGiven
	switch {
	case s.exp.settingGiven:
		settings = []string{s.exp.setting}
		switch {
		case tenantRel == nil:
		case slices.Contains(s.settings, s.exp.setting):
			// Compared, so the settings compared with the same
			// columns count too.
			settings = append(settings, s.settings...)
		case slices.ContainsFunc(s.settings, func(x string) bool { return isTenantSetting(x, settings, true) }):
			// Claims of the setting given are compared: the tenant's
			// are those inference ranked first (->>tenant_id, not
			// ->>sub).
			settings, claims = s.settings, false
		}
	case tenantRel != nil && len(s.settings) > 0:
		settings = s.settings
	}
	cache := map[verdictKey]*verdict{}
	var key strings.Builder
	for _, t := range s.order {
		if len(t.Policies) == 0 {
			continue
		}
		cols := make(map[int16]string, len(t.Columns))
		key.Reset()
		for _, c := range t.Columns {
			cols[c.Num] = c.Name
			fmt.Fprintf(&key, "%d:%s\x00", c.Num, c.Name)
		}
		t.colsKey = key.String()
		if tenantRel != nil {
			fmt.Fprintf(&key, "tenant:%s", t.column)
		}
		c := &classifier{r: s.res, cols: cols, tenantRel: tenantRel, settings: settings, settingGiven: claims, signed: signed, cache: cache, colsKey: key.String()}
		if tenantRel != nil {
			c.tenantCol = t.column
		}
		t.pols = t.pols[:0]
		for i := range t.Policies {
			p := &t.Policies[i]
			t.pols = append(t.pols, &polInfo{Policy: p, using: c.classifyTree(p.UsingTree), check: c.classifyTree(p.CheckTree)})
		}
	}
}

// conventionalNames are the tenant column names that inference falls back
// on when no policy names a tenant column at all: a database with tenant
// columns and no row level security anywhere is the hole verify must not
// pass.
var conventionalNames = []string{"tenant_id", "account_id", "organization_id", "organisation_id", "org_id", "workspace_id", "company_id"}

// soleKey reports whether col is, alone, the primary key or a unique key
// of t: a tenant predicate on it makes t the table of the tenants.
func soleKey(t *table, col string) bool {
	return slices.ContainsFunc(t.Indexes, func(ix snapshot.Index) bool {
		return ix.Unique && !ix.Partial && slices.Equal(ix.Columns, []string{col})
	})
}

// tenantPredicates calls fn for every column that t's policies compare
// with a setting, even where that does not limit the rows (in an OR with
// true, by >=): the policy's author meant it for the tenant.
func tenantPredicates(t *table, fn func(p *polInfo, m mention)) {
	for _, p := range t.pols {
		for _, v := range []*verdict{p.using, p.check} {
			if v != nil {
				for _, m := range v.mentions {
					fn(p, m)
				}
			}
		}
	}
}

// settingUse is what the policies do with one setting.
type settingUse struct {
	name    string
	tables  map[uint32]map[string]bool // the columns compared with it, by table
	cols    map[string]bool            // the columns compared with it, keys of tenant tables aside
	roots   map[uint32]string          // the tables whose sole key is compared with it
	lookups int                        // the tables whose rows a lookup it selects admits
}

// tenantWords and otherWords make a setting's name look like the tenant's
// or like something else (a user, a locale) compared with a column too:
// words of its name, split at dots and underscores, generic ones
// (app, request, current, id, ...) aside.
var (
	tenantWords  = []string{"tenant", "account", "org", "organization", "organisation", "workspace", "company", "team", "customer", "client", "store", "shop", "site", "realm", "project", "group"}
	otherWords   = []string{"user", "uid", "sub", "member", "locale", "lang", "language", "role", "email", "session", "person", "profile", "actor", "author", "owner"}
	genericWords = []string{"app", "myapp", "request", "jwt", "claim", "claims", "current", "id", "value", "setting", "settings"}
)

// nameWords returns the words of a setting's name: of its JSON claim and
// the setting itself, split at dots and underscores, without the generic
// ones.
func nameWords(setting string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(setting), func(r rune) bool { return r == '.' || r == '_' || r == '-' || r == '>' }) {
		if !slices.Contains(genericWords, w) {
			out = append(out, w)
		}
	}
	return out
}

// hasWord reports whether one of words is one of list, alone or with a
// suffix id or s (orgid, tenants).
func hasWord(words, list []string) bool {
	return slices.ContainsFunc(words, func(w string) bool {
		return slices.ContainsFunc(list, func(l string) bool { return w == l || w == l+"id" || w == l+"s" })
	})
}

// nameClass ranks what a setting's name says: 2 the tenant (a tenant word
// and no other), 1 nothing, 0 something else (a user, a locale; the role
// the session runs as).
func nameClass(setting string) int {
	w := nameWords(setting)
	switch {
	case setting == pseudoSetting || hasWord(w, otherWords):
		return 0
	case hasWord(w, tenantWords):
		return 2
	}
	return 1
}

// fkTargets returns the tables that col of t references by a foreign key
// of that column alone.
func fkTargets(t *table, col string) []uint32 {
	var out []uint32
	for _, fk := range foreignKeys(t) {
		if fk.Ref != t.OID && len(fk.Columns) == 1 && fk.Columns[0] == col {
			out = append(out, fk.Ref)
		}
	}
	return out
}

// tenantSettings picks the tenant settings among those the policies
// compare columns with: the one given, when compared; else pgtenancy's
// library's, when installed and compared; else, in this order, the one
// whose name says tenant (tenant, account, org, ...), then one whose name
// says nothing, before one that says user, sub, locale, ...; then the one
// compared on most tables with a column that references another table (a
// tenant column referencing the tenants) or with a table's own key, or
// selecting the rows of lookups; then the one whose name or columns look
// most like a tenant's; then the one compared on most tables. With it count
// the settings compared with the same columns (referencing the same
// tables, if they reference any), or with columns that reference the same
// tables, except where the tenant's is decided on a table otherwise: by
// the first with columns that reference other tables (owner_id is the
// tenant on one table, a user on another), or by a lookup. The others (a
// user id, a locale) only select rows within the tenant's, as their
// policies are judged.
func (s *state) tenantSettings(uses map[string]*settingUse) []string {
	e := s.exp
	if len(uses) == 0 {
		return nil
	}
	cands := make([]*settingUse, 0, len(uses))
	for _, u := range uses {
		if len(u.tables) > 0 {
			cands = append(cands, u)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	given := func(u *settingUse) bool { return e.settingGiven && isTenantSetting(u.name, []string{e.setting}, true) }
	looks := func(u *settingUse) int {
		score := 0
		if e.column != "" && u.cols[e.column] {
			score += 4
		}
		for col := range u.cols {
			if slices.Contains(conventionalNames, col) || strings.Contains(col, "tenant") {
				score += 2
				break
			}
		}
		return score + nameClass(u.name)
	}
	// targets returns the tables that the columns compared with u
	// reference, on the tables given (all when nil).
	targets := func(u *settingUse, only map[uint32]bool) map[uint32]bool {
		out := map[uint32]bool{}
		for oid, cols := range u.tables {
			if only != nil && !only[oid] {
				continue
			}
			for col := range cols {
				for _, ref := range fkTargets(s.tables[oid], col) {
					out[ref] = true
				}
			}
		}
		return out
	}
	colTargets := func(u *settingUse, col string) map[uint32]bool {
		out := map[uint32]bool{}
		for oid, cols := range u.tables {
			if cols[col] {
				for _, ref := range fkTargets(s.tables[oid], col) {
					out[ref] = true
				}
			}
		}
		return out
	}
	structure := func(u *settingUse) int {
		n := len(u.roots)
		for oid, cols := range u.tables {
			if _, root := u.roots[oid]; root {
				continue
			}
			for col := range cols {
				if len(fkTargets(s.tables[oid], col)) > 0 {
					n++
					break
				}
			}
		}
		return n
	}
	var primary *settingUse
	if s.snap.Library != nil && !e.settingGiven {
		primary = uses[e.setting]
		if primary != nil && len(primary.tables) == 0 {
			primary = nil
		}
	}
	if primary == nil {
		slices.SortFunc(cands, func(a, b *settingUse) int {
			return cmp.Or(boolCmp(given(b), given(a)), cmp.Compare(nameClass(b.name), nameClass(a.name)), cmp.Compare(structure(b), structure(a)),
				cmp.Compare(looks(b), looks(a)), cmp.Compare(b.lookups, a.lookups), cmp.Compare(len(b.tables), len(a.tables)), strings.Compare(a.name, b.name))
		})
		primary = cands[0]
	}
	out := []string{primary.name}
	ptargets := targets(primary, nil)
	disjoint := func(a, b map[uint32]bool) bool {
		if len(a) == 0 || len(b) == 0 {
			return false
		}
		for k := range a {
			if b[k] {
				return false
			}
		}
		return true
	}
	for _, u := range cands {
		if u == primary {
			continue
		}
		same := false
		for col := range u.cols {
			// The same name, unless the two reference other tables.
			same = same || primary.cols[col] && !disjoint(colTargets(u, col), colTargets(primary, col))
		}
		for oid := range u.roots {
			_, ok := primary.roots[oid]
			same = same || ok
		}
		for ref := range targets(u, nil) {
			same = same || ptargets[ref]
		}
		// Not where the tenant's is decided on the same table otherwise.
		for oid, cols := range u.tables {
			t := s.tables[oid]
			pcols := primary.tables[oid]
			switch {
			case pcols != nil:
				// Another column on the same table: a user id, even where
				// it references the table of the tenants (accounts that
				// are users and orgs).
				for col := range cols {
					same = same && pcols[col]
				}
			case s.looksUp(t):
				same = false
			}
		}
		if same {
			out = append(out, u.name)
		}
	}
	slices.Sort(out)
	return out
}

// looksUp reports whether a policy of t admits rows by a lookup into other
// tables (EXISTS, IN a subquery), as the first pass classified it.
func (s *state) looksUp(t *table) bool {
	return slices.ContainsFunc(t.pols, func(p *polInfo) bool {
		return p.using != nil && p.using.cls == clsLookup || p.check != nil && p.check.cls == clsLookup
	})
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// infer finds the tenant tables without a model: from the tenant columns
// and settings that the policies compare (or Options.TenantColumn), the
// tables that have such a column or such a policy, then the tables that
// reference those by foreign key and their partitions and inheritance
// children, until nothing changes.
func (s *state) infer() {
	e := s.exp
	names := map[string]bool{}
	if e.column != "" {
		names[e.column] = true
	}
	uses := map[string]*settingUse{}
	for _, t := range s.order {
		if !t.inScope || e.global[t.Name] {
			continue
		}
		looked := map[string]bool{}
		tenantPredicates(t, func(_ *polInfo, m mention) {
			if m.setting == "" {
				return
			}
			u := uses[m.setting]
			if u == nil {
				u = &settingUse{name: m.setting, tables: map[uint32]map[string]bool{}, cols: map[string]bool{}, roots: map[uint32]string{}}
				uses[m.setting] = u
			}
			if m.lookup {
				// Evidence for the ranking only: the setting selects
				// rows of another table, it is not compared here.
				if !looked[m.setting] {
					looked[m.setting] = true
					u.lookups++
				}
				return
			}
			if u.tables[t.OID] == nil {
				u.tables[t.OID] = map[string]bool{}
			}
			u.tables[t.OID][m.col] = true
			if soleKey(t, m.col) {
				u.roots[t.OID] = m.col
			} else {
				u.cols[m.col] = true
			}
		})
	}
	s.settings = s.tenantSettings(uses)
	tenant := func(m mention) bool {
		return m.setting == "" || m.lookup || isTenantSetting(m.setting, s.settings, false)
	}
	rootCol := map[uint32]string{}
	predicate := map[uint32]string{}
	for _, t := range s.order {
		if !t.inScope || e.global[t.Name] {
			continue
		}
		tenantPredicates(t, func(p *polInfo, m mention) {
			if !tenant(m) {
				return
			}
			switch {
			case soleKey(t, m.col):
				rootCol[t.OID] = m.col
			case e.column == "":
				names[m.col] = true
			}
			if _, ok := predicate[t.OID]; !ok {
				with := m.setting
				if with == "" {
					with = "a function that reads a setting"
				}
				predicate[t.OID] = fmt.Sprintf("its policy %q compares %s with %s", p.Name, m.col, with)
			}
		})
	}
	fallback := false
	if len(names) == 0 {
		for _, n := range conventionalNames {
			count, referencing := 0, false
			for _, t := range s.order {
				if t.inScope && !t.Partition && t.Column(n) != nil {
					count++
					// One table whose column references another table
					// (tenants.id) is enough.
					referencing = referencing || slices.ContainsFunc(foreignKeys(t), func(fk snapshot.Constraint) bool {
						return fk.Ref != t.OID && slices.Equal(fk.Columns, []string{n})
					})
				}
			}
			if count >= 2 || referencing {
				names[n] = true
				fallback = true
			}
		}
	}
	for n := range names {
		s.names = append(s.names, n)
	}
	slices.Sort(s.names)

	for _, t := range s.order {
		if !t.inScope || t.Partition || e.global[t.Name] {
			continue
		}
		switch col, ok := rootCol[t.OID]; {
		case ok:
			s.roots[t.OID] = true
			t.isRoot = true
			s.mark(t, col, "it is the table of the tenants: "+predicate[t.OID], nil, nil)
		case s.nameIn(t) != "":
			col := s.nameIn(t)
			why := "it has the tenant column " + col
			if fallback {
				why += " (a conventional name: no policy compares a column with a setting)"
			}
			s.mark(t, col, why, nil, nil)
		case predicate[t.OID] != "":
			col := ""
			tenantPredicates(t, func(_ *polInfo, m mention) {
				if col == "" && tenant(m) {
					col = m.col
				}
			})
			s.mark(t, col, predicate[t.OID], nil, nil)
		}
	}
	// A column that another setting, whose name does not say it holds
	// something else, is compared with and that references another table
	// (a table declared global too: it may be the tenants'), or has a
	// conventional tenant name, may be
	// the tenant's under a setting verify ranked lower: a table that has it
	// holds tenant data, unless found otherwise.
	type suspect struct{ col, setting string }
	var suspects []suspect
	for _, u := range uses {
		// Not a setting whose name says what else it holds (a user, a
		// locale).
		if isTenantSetting(u.name, s.settings, false) || nameClass(u.name) == 0 {
			continue
		}
		for oid, cols := range u.tables {
			t := s.tables[oid]
			for col := range cols {
				if len(fkTargets(t, col)) > 0 || slices.Contains(conventionalNames, col) {
					suspects = append(suspects, suspect{col, u.name})
				}
			}
		}
	}
	slices.SortFunc(suspects, func(a, b suspect) int {
		return cmp.Or(strings.Compare(a.col, b.col), strings.Compare(a.setting, b.setting))
	})
	for _, t := range s.order {
		if !t.inScope || t.Partition || e.global[t.Name] || t.tenant {
			continue
		}
		for _, sp := range suspects {
			if t.Column(sp.col) != nil {
				s.mark(t, sp.col, fmt.Sprintf("it has the column %s, which policies compare with %s and which references another table", sp.col, sp.setting), nil, nil)
				break
			}
		}
	}
	s.inferRoots()
	s.closure(func(t *table) bool { return t.inScope && !e.global[t.Name] }, s.mark)
}

// nameIn returns the first tenant column name that t has, or "".
func (s *state) nameIn(t *table) string {
	for _, n := range s.names {
		if t.Column(n) != nil {
			return n
		}
	}
	return ""
}

// inferRoots marks as roots the tables that tenant columns reference by a
// foreign key of that column alone: the tables of the tenants.
func (s *state) inferRoots() {
	for _, t := range s.order {
		if !t.tenant || t.column == "" || t.isRoot {
			continue
		}
		for _, fk := range foreignKeys(t) {
			if ref := s.tables[fk.Ref]; ref != nil && ref != t && slices.Equal(fk.Columns, []string{t.column}) && len(fk.RefCols) == 1 {
				s.roots[ref.OID] = true
				ref.isRoot = true
				if ref.column == "" {
					ref.column, ref.colType = fk.RefCols[0], ref.typeOf(fk.RefCols[0])
				}
			}
		}
	}
}

// mark makes t a tenant table, for why.
func (s *state) mark(t *table, col, why string, parent *table, fk *snapshot.Constraint) {
	if t.tenant {
		return
	}
	t.tenant, t.why, t.parent, t.fk = true, why, parent, fk
	if col != "" && t.column == "" {
		t.column = col
	}
	if t.column != "" {
		t.colType = t.typeOf(t.column)
		t.key = snapshot.KeyTypeOf(t.colType)
	}
	if !t.Partition {
		s.tenants = append(s.tenants, t)
	}
}

// closure follows foreign keys to tenant tables or roots, partitions and
// inheritance children of tenant tables, and their parents (in any
// schema), from the
// tenant tables found so far, and calls add for each table reached that
// eligible accepts (and for every partition or child, eligible or not).
func (s *state) closure(eligible func(*table) bool, add func(t *table, col, why string, parent *table, fk *snapshot.Constraint)) {
	children := map[uint32][]*table{}
	referrers := map[uint32][]*table{}
	for _, t := range s.order {
		for _, p := range t.Parents {
			children[p] = append(children[p], t)
		}
		for _, fk := range foreignKeys(t) {
			if fk.Ref != t.OID {
				referrers[fk.Ref] = append(referrers[fk.Ref], t)
			}
		}
	}
	seen := map[uint32]bool{}
	var queue []*table
	for _, t := range s.order {
		if t.tenant || s.roots[t.OID] || t.unlisted != "" {
			queue = append(queue, t)
			seen[t.OID] = true
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p.OID] {
			if seen[c.OID] {
				continue
			}
			seen[c.OID] = true
			why := "it inherits from " + p.Name.String()
			if c.Partition {
				why = "it is a partition of " + p.Name.String()
			}
			col := ""
			if p.column != "" && c.Column(p.column) != nil {
				col = p.column
			}
			add(c, col, why, p, nil)
			queue = append(queue, c)
		}
		// A query on a parent reads its children's rows under the
		// parent's policies, not theirs: the parent of a table holding
		// tenant data holds it too.
		for _, po := range p.Parents {
			par := s.tables[po]
			if par == nil || seen[po] {
				continue
			}
			seen[po] = true
			why := "its child " + p.Name.String() + " holds tenant data, and a query on it reads the child's rows under its own policies"
			if p.Partition {
				why = "its partition " + p.Name.String() + " holds tenant data"
			}
			col := ""
			if p.column != "" && par.Column(p.column) != nil {
				col = p.column
			}
			add(par, col, why, p, nil)
			queue = append(queue, par)
		}
		for _, r := range referrers[p.OID] {
			if seen[r.OID] || !eligible(r) || r.Partition {
				continue
			}
			fk := firstFK(r, p.OID)
			seen[r.OID] = true
			why := fmt.Sprintf("it references %s (%s), ", p.Name, strings.Join(fk.Columns, ", "))
			if s.roots[p.OID] {
				why += "the table of the tenants"
			} else {
				why += "which holds tenant data"
			}
			add(r, s.nameIn(r), why, p, fk)
			queue = append(queue, r)
		}
	}
}

func firstFK(t *table, ref uint32) *snapshot.Constraint {
	for i := range t.Constraints {
		if c := &t.Constraints[i]; c.Type == 'f' && c.Ref == ref {
			return c
		}
	}
	return &snapshot.Constraint{}
}
