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
	name   string
	tables map[uint32]map[string]bool // the columns compared with it, by table
	cols   map[string]bool            // the columns compared with it, keys of tenant tables aside
	roots  map[uint32]string          // the tables whose sole key is compared with it
}

// tenantWords and otherWords make a setting's name look like the tenant's
// or like something else (a user, a locale) compared with a column too:
// words of its last part, split at underscores.
var (
	tenantWords = []string{"tenant", "account", "org", "organization", "organisation", "workspace", "company", "team", "customer", "client", "store", "shop", "site", "realm", "project", "group"}
	otherWords  = []string{"user", "uid", "sub", "member", "locale", "lang", "language", "role", "email", "session", "person", "profile", "actor", "author", "owner"}
)

// nameWords returns the words of a setting's name that tell what it holds:
// of its JSON claim, or of its last dotted part, split at underscores.
func nameWords(setting string) []string {
	name := strings.ToLower(setting)
	if _, key, ok := strings.Cut(name, "->>"); ok {
		name = key
	} else if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	return strings.Split(name, "_")
}

// hasWord reports whether one of words is one of list, alone or with a
// suffix id or s (orgid, tenants).
func hasWord(words, list []string) bool {
	return slices.ContainsFunc(words, func(w string) bool {
		return slices.ContainsFunc(list, func(l string) bool { return w == l || w == l+"id" || w == l+"s" })
	})
}

// tenantSettings picks the tenant settings among those the policies
// compare columns with: the one given, when compared; else pgtenancy's
// library's, when installed and compared; else, in this order, the one
// whose name says tenant (tenant, account, org, ...) and not user (user,
// sub, locale, ...), the one compared on most tables with a column that
// references another table (a tenant column referencing the tenants) or
// with a table's own key, the one whose name or columns look most like a
// tenant's, the one compared on most tables. With it count the settings
// compared with the same columns, or with columns that reference the same
// tables, unless some table compares both with different columns
// (owner_id is the tenant on one table, a user on another). The others (a
// user id, a locale) only select rows within the tenant's, as their
// policies are judged.
func (s *state) tenantSettings(uses map[string]*settingUse) []string {
	e := s.exp
	if len(uses) == 0 {
		return nil
	}
	cands := make([]*settingUse, 0, len(uses))
	for _, u := range uses {
		cands = append(cands, u)
	}
	given := func(u *settingUse) bool { return e.settingGiven && isTenantSetting(u.name, []string{e.setting}, true) }
	clear := func(u *settingUse) bool {
		w := nameWords(u.name)
		return u.name != pseudoSetting && hasWord(w, tenantWords) && !hasWord(w, otherWords)
	}
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
		w := nameWords(u.name)
		if hasWord(w, tenantWords) {
			score += 2
		}
		if hasWord(w, otherWords) {
			score--
		}
		return score
	}
	// targets returns, per table compared, the tables that the compared
	// columns reference by a foreign key of that column alone.
	targets := func(u *settingUse) map[uint32]bool {
		out := map[uint32]bool{}
		for oid, cols := range u.tables {
			t := s.tables[oid]
			for _, fk := range foreignKeys(t) {
				if fk.Ref != t.OID && len(fk.Columns) == 1 && cols[fk.Columns[0]] {
					out[fk.Ref] = true
				}
			}
		}
		return out
	}
	structure := func(u *settingUse) int {
		n := len(u.roots)
		for oid, cols := range u.tables {
			t := s.tables[oid]
			if _, root := u.roots[oid]; !root && slices.ContainsFunc(foreignKeys(t), func(fk snapshot.Constraint) bool {
				return fk.Ref != t.OID && len(fk.Columns) == 1 && cols[fk.Columns[0]]
			}) {
				n++
			}
		}
		return n
	}
	var primary *settingUse
	if s.snap.Library != nil && !e.settingGiven {
		primary = uses[e.setting]
	}
	if primary == nil {
		slices.SortFunc(cands, func(a, b *settingUse) int {
			return cmp.Or(boolCmp(given(b), given(a)), boolCmp(clear(b), clear(a)), cmp.Compare(structure(b), structure(a)),
				cmp.Compare(looks(b), looks(a)), cmp.Compare(len(b.tables), len(a.tables)), strings.Compare(a.name, b.name))
		})
		primary = cands[0]
	}
	out := []string{primary.name}
	ptargets := targets(primary)
	for _, u := range cands {
		if u == primary {
			continue
		}
		same := false
		for col := range u.cols {
			same = same || primary.cols[col]
		}
		for oid := range u.roots {
			_, ok := primary.roots[oid]
			same = same || ok
		}
		for ref := range targets(u) {
			same = same || ptargets[ref]
		}
		// Not where the tenant's is decided on the same table otherwise:
		// by the tenant's setting with another column (owner_id may be
		// the tenant on one table and a user on another), or by a lookup
		// into other tables.
		for oid, cols := range u.tables {
			if pcols := primary.tables[oid]; pcols != nil {
				for col := range cols {
					same = same && pcols[col]
				}
			} else if s.looksUp(s.tables[oid]) {
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
		tenantPredicates(t, func(_ *polInfo, m mention) {
			if m.setting == "" || m.lookup {
				return
			}
			u := uses[m.setting]
			if u == nil {
				u = &settingUse{name: m.setting, tables: map[uint32]map[string]bool{}, cols: map[string]bool{}, roots: map[uint32]string{}}
				uses[m.setting] = u
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
	// A column that another setting is compared with and that
	// references another table may be the tenant's under a name verify
	// ranked lower: a table that has it holds tenant data, unless found
	// otherwise.
	type suspect struct{ col, setting string }
	var suspects []suspect
	for _, u := range uses {
		if isTenantSetting(u.name, s.settings, false) {
			continue
		}
		for oid, cols := range u.tables {
			t := s.tables[oid]
			for _, fk := range foreignKeys(t) {
				if fk.Ref != t.OID && len(fk.Columns) == 1 && cols[fk.Columns[0]] {
					suspects = append(suspects, suspect{fk.Columns[0], u.name})
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
