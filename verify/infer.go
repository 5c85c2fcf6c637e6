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
	switch {
	case s.exp.settingGiven:
		settings = []string{s.exp.setting}
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
		c := &classifier{r: s.res, cols: cols, tenantRel: tenantRel, settings: settings, settingGiven: s.exp.settingGiven, signed: signed, cache: cache, colsKey: key.String()}
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
// or like something else (a user, a locale) compared with a column too.
var (
	tenantWords = []string{"tenant", "account", "org", "workspace", "company", "team", "customer", "client", "store", "shop", "site", "realm", "project", "group"}
	otherWords  = []string{"user", "uid", "sub", "member", "locale", "lang", "role", "email", "session", "person", "profile"}
)

// tenantSettings picks the tenant settings among those the policies
// compare columns with, which tell the tenant columns (the policies are
// then judged by the setting given, if one was): the one given, when
// compared; else pgtenancy's library's, when
// installed and compared; else the one that looks most like the tenant's
// (by its name and its columns' names, then by a column referencing a
// table whose key it is compared with, then by how many tables compare
// it), and with it every setting compared with the same columns or keys.
// The others (a user id, a locale) only select rows within the tenant's,
// as their policies are judged.
func (s *state) tenantSettings(uses map[string]*settingUse) []string {
	e := s.exp
	if len(uses) == 0 {
		return nil
	}
	cands := make([]*settingUse, 0, len(uses))
	for _, u := range uses {
		cands = append(cands, u)
	}
	looks := func(u *settingUse) int {
		name := strings.ToLower(u.name)
		if _, key, ok := strings.Cut(name, "->>"); ok {
			name = key
		} else if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		score := 0
		if e.settingGiven && isTenantSetting(u.name, []string{e.setting}, true) {
			score += 8
		}
		if e.column != "" && u.cols[e.column] {
			score += 4
		}
		for col := range u.cols {
			if slices.Contains(conventionalNames, col) || strings.Contains(col, "tenant") {
				score += 2
				break
			}
		}
		if slices.ContainsFunc(tenantWords, func(w string) bool { return strings.Contains(name, w) }) {
			score += 2
		}
		if slices.ContainsFunc(otherWords, func(w string) bool { return strings.Contains(name, w) }) {
			score--
		}
		return score
	}
	referenced := func(u *settingUse) bool {
		for oid := range u.tables {
			t := s.tables[oid]
			for _, fk := range foreignKeys(t) {
				if _, ok := u.roots[fk.Ref]; ok && fk.Ref != t.OID && len(fk.Columns) == 1 && u.cols[fk.Columns[0]] {
					return true
				}
			}
		}
		return false
	}
	var primary *settingUse
	if s.snap.Library != nil {
		primary = uses[e.setting]
	}
	if primary == nil {
		slices.SortFunc(cands, func(a, b *settingUse) int {
			return cmp.Or(cmp.Compare(looks(b), looks(a)), boolCmp(referenced(b), referenced(a)),
				cmp.Compare(len(b.tables), len(a.tables)), strings.Compare(a.name, b.name))
		})
		primary = cands[0]
	}
	out := []string{primary.name}
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
		// Not where both are compared on one table, with other columns:
		// owner_id may be the tenant on one table and a user on another.
		for oid, cols := range u.tables {
			if pcols := primary.tables[oid]; pcols != nil {
				for col := range cols {
					same = same && pcols[col]
				}
			}
		}
		if same {
			out = append(out, u.name)
		}
	}
	slices.Sort(out)
	return out
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
			if m.setting == "" {
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
	tenant := func(m mention) bool { return m.setting == "" || isTenantSetting(m.setting, s.settings, false) }
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
