package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
)

// subject is a role whose access verify judges: the application role, or
// without one each role that holds privileges on the tables (and PUBLIC
// when it does), or a table's owner when no other role can use it.
type subject struct {
	name  string
	oid   uint32
	usage map[uint32]bool // roles whose privileges it has, itself and PUBLIC (0) included
	app   bool
	// owner marks a table's owner judged for want of any other role; all
	// marks PUBLIC judged for a table that no role bound by row level
	// security can use: as if anyone could.
	owner, all bool
}

// label names the subject in messages.
func (u *subject) label() string {
	switch {
	case u.app:
		return "the application role"
	case u.oid == 0:
		return "PUBLIC"
	case u.owner:
		return fmt.Sprintf("its owner %q (no other role holds privileges on it)", u.name)
	}
	return fmt.Sprintf("role %q", u.name)
}

func newSubject(r *snapshot.RoleInfo) *subject {
	u := &subject{name: r.Name, oid: r.OID, usage: map[uint32]bool{0: true, r.OID: true}}
	for _, o := range r.Usage {
		u.usage[o] = true
	}
	return u
}

// dml are the commands row level security governs.
var dml = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}

// cmdCodes maps commands to pg_policy.polcmd.
var cmdCodes = map[string]string{"SELECT": "r", "INSERT": "a", "UPDATE": "w", "DELETE": "d"}

// subjects sets up whose access is judged.
func (s *state) subjects() {
	a := s.audit
	if name := s.snap.AppRole; name != "" {
		for _, r := range a.Roles {
			if r.Name == name {
				s.app = newSubject(r)
			}
		}
		if s.app == nil {
			s.app = &subject{name: name, usage: map[uint32]bool{0: true}}
		}
		s.app.app = true
		return
	}
	cands := map[uint32]bool{}
	public := false
	for _, t := range s.order {
		if !t.inScope {
			continue
		}
		for _, it := range t.ACL {
			if it.Grantee == t.OwnerOID || !slices.Contains(dml, it.Priv) {
				continue
			}
			if it.Grantee == 0 {
				public = true
			} else {
				cands[it.Grantee] = true
			}
		}
		for _, p := range t.Policies {
			for _, r := range p.RoleOIDs {
				if r != 0 {
					cands[r] = true
				}
			}
		}
	}
	for oid := range cands {
		r := a.Roles[oid]
		if r == nil || strings.HasPrefix(r.Name, "pg_") {
			continue
		}
		if r.Super || r.Bypass {
			s.bypassers = append(s.bypassers, r)
			continue
		}
		s.grantees = append(s.grantees, newSubject(r))
	}
	slices.SortFunc(s.bypassers, func(x, y *snapshot.RoleInfo) int { return strings.Compare(x.Name, y.Name) })
	slices.SortFunc(s.grantees, func(x, y *subject) int { return strings.Compare(x.name, y.name) })
	if public {
		s.grantees = append(s.grantees, &subject{name: "PUBLIC", usage: map[uint32]bool{0: true}})
	}
}

// commands returns the commands of dml that u holds on t.
func (s *state) commands(u *subject, t *table) []string {
	switch {
	case u.app:
		if !t.AppSchemaUsage {
			return nil
		}
		var out []string
		for _, c := range dml {
			if c == "DELETE" && t.Has(c) || c != "DELETE" && t.HasSome(c) {
				out = append(out, c)
			}
		}
		return out
	case u.owner, u.all, u.usage[t.OwnerOID]:
		return dml
	}
	var out []string
	for _, c := range dml {
		if slices.ContainsFunc(t.ACL, func(it snapshot.ACLItem) bool { return it.Priv == c && u.usage[it.Grantee] }) {
			out = append(out, c)
		}
	}
	return out
}

// audience returns the subjects that can use t, with the commands each
// holds. With an application role that cannot use it, none. Without one,
// the roles that hold privileges on it (none when roles hold privileges on
// other tables only); when no role holds privileges on any table, its
// owner, or when the owner ignores row level security anyway, PUBLIC as if
// it could use everything (known is false then).
func (s *state) audience(t *table) (subs []*subject, cmds [][]string, known bool) {
	if s.app != nil {
		if c := s.commands(s.app, t); len(c) > 0 {
			return []*subject{s.app}, [][]string{c}, true
		}
		return nil, nil, true
	}
	for _, g := range s.grantees {
		if c := s.commands(g, t); len(c) > 0 {
			subs, cmds = append(subs, g), append(cmds, c)
		}
	}
	if len(s.grantees) > 0 {
		// Other roles hold privileges, on this table or others: the
		// application is one of them, and the owner a migration role.
		return subs, cmds, true
	}
	if r := s.audit.Roles[t.OwnerOID]; r != nil && !r.Super && !r.Bypass {
		u := newSubject(r)
		u.owner = true
		return []*subject{u}, [][]string{dml}, true
	}
	return []*subject{{name: "PUBLIC", usage: map[uint32]bool{0: true}, all: true}}, [][]string{dml}, false
}

// owns reports whether u bypasses t's row level security as its owner.
func owns(u *subject, t *table) bool { return u.owner || u.usage[t.OwnerOID] }

// applies reports whether a policy applies to u.
func applies(u *subject, p *polInfo) bool {
	return slices.ContainsFunc(p.RoleOIDs, func(r uint32) bool { return u.usage[r] })
}

// sides are the expressions of one command: USING for the rows it reads,
// WITH CHECK for the rows it writes.
type side struct {
	cmd   string
	check bool
}

func sidesOf(cmds []string) []side {
	var out []side
	for _, c := range cmds {
		if c != "INSERT" {
			out = append(out, side{c, false})
		}
		if c == "INSERT" || c == "UPDATE" {
			out = append(out, side{c, true})
		}
	}
	return out
}

// expr returns the expression of p that governs a side, or nil when p
// adds none: WITH CHECK falls back to USING; an INSERT policy has no
// USING.
func (sd side) expr(p *polInfo) *verdict {
	if p.Cmd != "*" && p.Cmd != cmdCodes[sd.cmd] {
		return nil
	}
	if sd.check {
		if p.check != nil {
			return p.check
		}
		return p.using
	}
	if p.Cmd == "a" {
		return nil
	}
	return p.using
}

// judgment is what judge found for one table.
type judgment struct {
	// open are the permissive policies that admit other tenants' rows
	// on some side, by side; guards the restrictive ones that applied
	// there and did not help.
	open   map[*polInfo][]side
	guards map[*polInfo]bool
	// covered are the permissive policies that admit other tenants' rows
	// but that a restrictive tenant policy holds back; unsure those the
	// protection rests on without verify understanding them.
	covered, unsure map[*polInfo]bool
	// shared are the permissive policies that let every tenant read the
	// rows without a tenant.
	shared map[*polInfo]bool
	// who are the subjects that get other tenants' rows.
	who map[*subject][]side
}

// judge combines the policies of t as PostgreSQL does, for each subject
// and command it holds: the permissive ones OR'ed, the restrictive ones
// AND'ed, those applying to the role and command only. A side is safe when
// no permissive policy applies (no row passes), when a restrictive policy
// limits rows to the tenant, or when every permissive policy does.
func (s *state) judge(t *table, subs []*subject, cmds [][]string) *judgment {
	j := &judgment{open: map[*polInfo][]side{}, guards: map[*polInfo]bool{}, covered: map[*polInfo]bool{},
		unsure: map[*polInfo]bool{}, shared: map[*polInfo]bool{}, who: map[*subject][]side{}}
	for i, u := range subs {
		for _, sd := range sidesOf(cmds[i]) {
			var perm, restr []*polInfo
			for _, p := range t.pols {
				if v := sd.expr(p); v != nil && applies(u, p) {
					if p.Permissive {
						perm = append(perm, p)
					} else {
						restr = append(restr, p)
					}
				}
			}
			if len(perm) == 0 {
				continue
			}
			guarded, guardSure := false, false
			for _, p := range restr {
				if v := sd.expr(p); v.cls == clsTenant || v.cls == clsNever || v.cls == clsShared && sd.cmd == "SELECT" {
					guarded, guardSure = true, true
				} else if v.cls == clsUnsure {
					guarded = true
				}
			}
			var bad, doubt, shared []*polInfo
			for _, p := range perm {
				switch sd.expr(p).cls {
				case clsTenant, clsNever:
				case clsShared:
					// Reading the shared rows is the point; changing or
					// deleting them, or writing new ones, changes what
					// every other tenant reads.
					if sd.check || sd.cmd != "SELECT" {
						bad = append(bad, p)
					} else {
						shared = append(shared, p)
					}
				case clsUnsure:
					doubt = append(doubt, p)
				default:
					bad = append(bad, p)
				}
			}
			switch {
			case guarded:
				for _, p := range bad {
					j.covered[p] = true
				}
				if !guardSure {
					for _, p := range restr {
						if sd.expr(p).cls == clsUnsure {
							j.unsure[p] = true
						}
					}
				}
			case len(bad) > 0:
				for _, p := range bad {
					if !slices.Contains(j.open[p], sd) {
						j.open[p] = append(j.open[p], sd)
					}
				}
				for _, p := range restr {
					j.guards[p] = true
				}
				j.who[u] = append(j.who[u], sd)
			default:
				for _, p := range doubt {
					j.unsure[p] = true
				}
				for _, p := range shared {
					j.shared[p] = true
				}
			}
		}
	}
	for p := range j.open {
		delete(j.covered, p)
	}
	return j
}

// polDesc describes a policy for messages: its kind, command and roles.
func polDesc(p *polInfo) string {
	kind := "permissive"
	if !p.Permissive {
		kind = "restrictive"
	}
	return fmt.Sprintf("%s policy %q (FOR %s TO %s)", kind, p.Name, snapshot.CommandNames[p.Cmd], strings.Join(p.Roles, ", "))
}

// sideText lists sides as "SELECT, UPDATE" and "INSERT, UPDATE".
func sideText(sides []side, check bool) string {
	var out []string
	for _, sd := range sides {
		if sd.check == check && !slices.Contains(out, sd.cmd) {
			out = append(out, sd.cmd)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(dml, a) - slices.Index(dml, b) })
	return strings.Join(out, ", ")
}

// whoText names the subjects of a judgment.
func (j *judgment) whoText() string {
	var out []string
	for u := range j.who {
		out = append(out, u.label())
	}
	slices.Sort(out)
	return strings.Join(out, " and ")
}

// checkPolicies reports what judge found on t.
func (c *checker) checkPolicies(t *table, j *judgment) {
	name, model := t.Name.String(), c.s.exp.model != nil
	pgtenancyOwn := func(p *polInfo) bool { return model && isPgtenancyPolicy(p.Name) }
	who := j.whoText()
	for _, p := range sortedPols(j.open) {
		if pgtenancyOwn(p) {
			continue
		}
		sides := j.open[p]
		reads, writes := sideText(sides, false), sideText(sides, true)
		switch {
		case reads != "":
			msg := fmt.Sprintf("%s admits rows of every tenant: USING %s, where %s; %s can %s them",
				polDesc(p), exprText(p.Using), p.using.why, who, reads)
			if writes != "" {
				msg += fmt.Sprintf(", and %s rows for any tenant", writes)
			}
			fix := c.s.fixPolicy(t, p, true, writes != "")
			if p.using != nil && p.using.cls == clsShared && p.Cmd == "*" && strings.HasPrefix(fix, "ALTER POLICY") {
				// Keep reading the shared rows, in a policy of its own.
				fix += fmt.Sprintf("\nCREATE POLICY %s ON %s FOR SELECT USING %s;", sqlquote.Ident(p.Name+"_read_shared"), t.Name.SQL(), exprText(p.Using))
				msg = fmt.Sprintf("%s lets every tenant change the rows that all tenants share: USING %s, where %s; %s can %s them",
					polDesc(p), exprText(p.Using), p.using.why, who, reads)
				if writes != "" {
					msg += fmt.Sprintf(", and %s rows for any tenant", writes)
				}
			}
			c.add(SeverityError, CodePermissivePolicy, "policy", p.Name, name, fix, "%s", msg)
		default:
			v := p.check
			what := "WITH CHECK " + exprText(p.Check) + ", where " + whyOf(v)
			if v == nil {
				v = p.using
				what = "it has no WITH CHECK, so its USING " + exprText(p.Using) + " checks new rows, where " + whyOf(v)
			}
			c.add(SeverityError, CodePolicyCheckOpen, "policy", p.Name, name, c.s.fixPolicy(t, p, false, true),
				"%s lets %s %s rows for any tenant: %s", polDesc(p), who, writes, what)
		}
	}
	for _, p := range sortedPols(j.covered) {
		if pgtenancyOwn(p) {
			continue
		}
		v := p.using
		if v == nil || v.cls.protects() {
			v = p.check
		}
		c.add(SeverityWarning, CodePermissivePolicy, "policy", p.Name, name, c.s.fixPolicy(t, p, p.using != nil && !p.using.cls.protects(), p.check != nil && !p.check.cls.protects()),
			"%s admits rows of every tenant (%s), though a restrictive policy still limits every row to the tenant; it widens access as soon as that one changes",
			polDesc(p), whyOf(v))
	}
	for _, p := range sortedPols(j.shared) {
		if _, open := j.open[p]; open || pgtenancyOwn(p) {
			continue
		}
		c.add(SeverityWarning, CodePolicySharedRows, "policy", p.Name, name, "",
			"%s lets every tenant read the rows whose tenant column %s is NULL: make sure they hold nothing of any one tenant", polDesc(p), t.column)
	}
	for _, p := range sortedPols(j.unsure) {
		v := p.using
		if v == nil || v.cls != clsUnsure {
			v = p.check
		}
		c.add(SeverityWarning, CodePolicyUnrecognized, "policy", p.Name, name, "",
			"%s is what keeps other tenants' rows out, and %s; check it by hand", polDesc(p), whyOf(v))
	}
	for _, p := range t.pols {
		if p.Permissive || pgtenancyOwn(p) {
			continue
		}
		vac := p.using != nil && p.using.cls == clsVacuous || p.check != nil && p.check.cls == clsVacuous
		if !vac {
			continue
		}
		v := p.using
		if v == nil || v.cls != clsVacuous {
			v = p.check
		}
		sev, tail := SeverityWarning, "it restricts nothing, though the permissive policies limit rows to the tenant by themselves"
		if j.guards[p] {
			sev, tail = SeverityError, "it restricts nothing, and the permissive policies admit other tenants' rows"
		}
		c.add(sev, CodeRestrictiveVacuous, "policy", p.Name, name, c.s.fixPolicy(t, p, p.using != nil && p.using.cls == clsVacuous, p.check != nil && p.check.cls == clsVacuous),
			"%s is always true (%s): %s", polDesc(p), v.why, tail)
	}
}

func whyOf(v *verdict) string {
	if v == nil {
		return "there is no expression"
	}
	return v.why
}

// exprText prints a policy expression as pg_get_expr did, in parentheses.
func exprText(e string) string {
	if strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") {
		return e
	}
	return "(" + e + ")"
}

func sortedPols[V any](m map[*polInfo]V) []*polInfo {
	out := make([]*polInfo, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *polInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
