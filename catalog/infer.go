package catalog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
	"github.com/pgtenancy/pgtenancy/policy"
)

// infer fills prep.Proposed with the references that the <name>_id
// convention suggests and nothing declares, and prep.ProposedPolymorphic
// with the polymorphic references (<name>_type and <name>_id) of tables
// without the tenant column, each type that its rows hold mapped to the
// table Rails would name for it.
func (pl *planner) infer(ctx context.Context, tx pgx.Tx, prep *Preparation, hasTenant func(*snapshot.Table) bool) error {
	// Tenant tables (and those that get the column) by name, in the
	// default schema and, qualified, in the others.
	byName := map[string]*snapshot.Table{}
	for _, t := range pl.s.Tables {
		if pl.scope[t] && hasTenant(t) && t != pl.root {
			byName[pl.display(t)] = t
		}
	}
	confirmed := func(t *snapshot.Table, col string) bool {
		for _, e := range pl.edges(t) {
			if slices.Contains(e.cols, col) {
				return true
			}
		}
		if p := pl.poly[t]; p != nil && (p.IDColumn == col || p.TypeColumn == col) {
			return true
		}
		return false
	}
	target := func(t *snapshot.Table, stem string) *snapshot.Table {
		var found []*snapshot.Table
		for _, n := range []string{stem, plural(stem)} {
			if n == "" {
				continue
			}
			q := snapshot.QName{Schema: t.Name.Schema, Name: n}
			if ref := byName[pl.display(&snapshot.Table{Name: q})]; ref != nil && !slices.Contains(found, ref) {
				found = append(found, ref)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		return nil
	}
	for _, t := range pl.s.Tables {
		if !pl.scope[t] || pl.global[t] || t == pl.root || t.Partitioned {
			continue
		}
		for _, c := range t.Columns {
			stem, ok := strings.CutSuffix(c.Name, "_id")
			if !ok || stem == "" || c.Name == pl.columnOf(t) || confirmed(t, c.Name) {
				continue
			}
			if typeCol := t.Column(stem + "_type"); typeCol != nil {
				if hasTenant(t) {
					continue // polymorphic, with the tenant already: no key can cover it
				}
				p, unmapped, err := pl.polymorphic(ctx, tx, t, typeCol.Name, c.Name, byName)
				if err != nil {
					return err
				}
				switch {
				case len(unmapped) > 0:
					// Rows of those types would keep a NULL tenant: the
					// table is not (only) tenant data, or the map needs
					// a person.
					prep.Notes = append(prep.Notes, fmt.Sprintf("%s.%s: not proposed: the types %s name no tenant table (a global table, or a name the convention misses); if every row belongs to a tenant, map each type with --polymorphic; if some rows belong to no tenant (tokens of users, say), list the table with --global or leave it out", pl.display(t), typeCol.Name, strings.Join(unmapped, ", ")))
				case len(p.Types) > 0:
					prep.ProposedPolymorphic = append(prep.ProposedPolymorphic, p)
				}
				continue
			}
			ref := target(t, stem)
			if ref == nil {
				continue
			}
			id := ref.Column("id")
			if id == nil || (id.Type != c.Type && !(policy.IntegerKey(snapshot.KeyTypeOf(id.Type)) && policy.IntegerKey(snapshot.KeyTypeOf(c.Type)))) {
				continue
			}
			prep.Proposed = append(prep.Proposed, Reference{Table: pl.display(t), Columns: []string{c.Name},
				RefTable: pl.display(ref), RefColumns: []string{"id"}})
		}
	}
	return nil
}

// polymorphic reads the types in t's typeCol and maps each to a tenant
// table by Rails' convention.
func (pl *planner) polymorphic(ctx context.Context, tx pgx.Tx, t *snapshot.Table, typeCol, idCol string, byName map[string]*snapshot.Table) (Polymorphic, []string, error) {
	p := Polymorphic{Table: pl.display(t), TypeColumn: typeCol, IDColumn: idCol, Types: map[string]string{}}
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s::text FROM %s WHERE %s IS NOT NULL ORDER BY 1",
		quoteIdent(typeCol), t.Name.SQL(), quoteIdent(typeCol)))
	if err != nil {
		return p, nil, fmt.Errorf("catalog: reading the types of %s.%s: %w", pl.display(t), typeCol, err)
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return p, nil, fmt.Errorf("catalog: reading the types of %s.%s: %w", pl.display(t), typeCol, err)
	}
	var unmapped []string
	for _, typ := range types {
		name := plural(underscore(typ))
		ref := byName[pl.display(&snapshot.Table{Name: snapshot.QName{Schema: t.Name.Schema, Name: name}})]
		if ref == nil || ref.Column("id") == nil {
			unmapped = append(unmapped, typ)
			continue
		}
		p.Types[typ] = pl.display(ref)
	}
	return p, unmapped, nil
}

// underscore turns a Rails class name into its table stem:
// "ContactInbox" -> "contact_inbox", "Integrations::Hook" ->
// "integrations_hook", "HTTPRequest" -> "http_request".
func underscore(class string) string {
	class = strings.ReplaceAll(class, "::", "_")
	rs := []rune(class)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			prevLower := i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]))
			nextLower := i > 0 && i+1 < len(rs) && unicode.IsUpper(rs[i-1]) && unicode.IsLower(rs[i+1])
			if prevLower || nextLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// plural is the English plural of a table stem by the common rules
// (Rails' table names): company -> companies, inbox -> inboxes, address ->
// addresses, message -> messages. Irregular words (person -> people) are
// not known.
func plural(s string) string {
	if s == "" {
		return ""
	}
	last := s[strings.LastIndexByte(s, '_')+1:]
	switch {
	case strings.HasSuffix(last, "y") && len(last) > 1 && !strings.ContainsRune("aeiou", rune(last[len(last)-2])):
		return s[:len(s)-1] + "ies"
	case strings.HasSuffix(last, "s"), strings.HasSuffix(last, "x"), strings.HasSuffix(last, "z"),
		strings.HasSuffix(last, "ch"), strings.HasSuffix(last, "sh"):
		return s + "es"
	}
	return s + "s"
}
