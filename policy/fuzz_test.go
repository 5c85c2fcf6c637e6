package policy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// fuzzNames are the names FuzzGenerate's fields take in the seed corpus:
// ordinary, and each trying a different way out of its quotes.
var fuzzNames = []string{
	"stores", "id", "products", "store_id", "app", "billing.invoices", "currencies",
	`x"; DROP TABLE t; --`, `x'; DROP TABLE t; --`, `a\b`, "$pgtenancy$", "$$", "pgtenancy_tenant_guard",
	"a\nDROP TABLE t;", "/*", "*/ DROP TABLE t; /*", "-- c", "é", strings.Repeat("n", 63), strings.Repeat("n", 64),
	"public", "pg_x", "none", "", "a.b.c", "E'x'", "%I", "%s", ")", "\xff",
}

// FuzzGenerate builds a model from fuzzed names (schema, tables, columns,
// foreign-key columns, role, global table, setting), with facts of an
// Existing (a unique key, a composite foreign key) for some shapes, and
// checks that Plan (Generate when there are no facts) either refuses it
// with a *ModelError that matches ErrInvalidModel and no SQL, or returns
// SQL in which no name can change
// the statements: tokenized by a small PostgreSQL lexer, Up and Down have
// exactly the tokens (keywords, punctuation, statement count) of the same
// model with every name replaced by a plain placeholder, and each quoted
// identifier or string literal decodes to the name the placeholder stands
// for. The placeholder model's statement count is also checked against a
// count derived from the model.
func FuzzGenerate(f *testing.F) {
	for i, n := range fuzzNames {
		m := fuzzNames[(i+3)%len(fuzzNames)]
		f.Add(uint16(i*37), n, "stores", "id", "products", "store_id", "purchases", "product_id", "id", "app", "currencies", "")
		f.Add(uint16(0xffff-i), "", n, "id", "products", n, "purchases", n, m, n, m, "")
		f.Add(uint16(i*911), "s", "stores", n, m, "tenant", n, "ref", n, m, "g", "app.tenant")
	}
	f.Fuzz(func(t *testing.T, shape uint16, schema, root, rootCol, tbl, col, child, fkCol, refCol, role, global, setting string) {
		m, e := fuzzModel(shape, schema, root, rootCol, tbl, col, child, fkCol, refCol, role, global, setting)
		got, err := plan(m, e)
		if err != nil {
			var me *policy.ModelError
			if got != nil || !errors.Is(err, policy.ErrInvalidModel) || !errors.As(err, &me) {
				t.Fatalf("Plan returned %v and error %v, want no SQL and a *ModelError", got, err)
			}
			return
		}
		sigma, pm, pe := placeholders(m, e)
		want, err := plan(pm, pe)
		if err != nil {
			t.Fatalf("the model is valid but its placeholder version is not: %v\nmodel %#v\nplaceholders %#v", err, m, pm)
		}
		for _, part := range []struct{ name, got, want string }{{"Up", got.Up, want.Up}, {"Down", got.Down, want.Down}} {
			gt, err := lex(part.got)
			if err != nil {
				t.Fatalf("%s does not lex: %v\n%s", part.name, err, part.got)
			}
			wt, err := lex(part.want)
			if err != nil {
				t.Fatalf("placeholder %s does not lex: %v\n%s", part.name, err, part.want)
			}
			if err := sameShape(gt, wt, sigma, 0); err != nil {
				t.Fatalf("%s: %v\n--- with the names:\n%s\n--- with placeholders:\n%s", part.name, err, part.got, part.want)
			}
			up := part.name == "Up"
			if n, want := statements(wt), expectedStatements(pm, pe, up); n != want {
				t.Fatalf("placeholder %s has %d statements, want %d:\n%s", part.name, n, want, part.want)
			}
		}
	})
}

// plan is Generate without facts, Plan with them.
func plan(m *policy.Model, e *policy.Existing) (*policy.Migration, error) {
	if e == nil {
		return policy.Generate(m)
	}
	return policy.Plan(m, e)
}

var onDeletes = []string{"", "NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT", "DROP TABLE t"}

// The names of the existing constraints of fuzzModel's facts. They never
// reach the SQL: an existing unique key or composite foreign key is left
// alone.
const (
	fuzzKeyName = "fuzz_key"
	fuzzFKName  = "fuzz_fkey"
)

// fuzzModel builds a model of a root table, a tenant table and, with
// shape bit 0, a child table with a foreign key to it; the other bits pick
// the key type, the ON DELETE action, default RefColumns, an existing key
// and a key that exists already. The last two are facts of the returned
// Existing (nil when there are none): a unique constraint (col, refCol) on
// the tenant table, and the composite foreign key, the tenant column first
// on both sides.
func fuzzModel(shape uint16, schema, root, rootCol, tbl, col, child, fkCol, refCol, role, global, setting string) (*policy.Model, *policy.Existing) {
	m := &policy.Model{
		KeyType: rls.KeyType(shape>>1%5) + rls.BigInt,
		Schema:  schema,
		Setting: setting,
		AppRole: role,
		Tables: []policy.Table{
			{Name: root, TenantColumn: rootCol, Root: true},
			{Name: tbl, TenantColumn: col},
		},
	}
	var e *policy.Existing
	if shape&(1<<3) != 0 {
		e = &policy.Existing{Constraints: []policy.Constraint{
			{Table: tbl, Name: fuzzKeyName, Type: policy.ConstraintUnique, Columns: []string{col, refCol}},
		}}
	}
	if shape&1 != 0 {
		fk := policy.ForeignKey{
			Columns:    []string{fkCol},
			RefTable:   tbl,
			RefColumns: []string{refCol},
			OnDelete:   onDeletes[int(shape>>4)%len(onDeletes)],
		}
		if shape&(1<<8) != 0 {
			fk.RefColumns = nil // "id"
		}
		if shape&(1<<7) != 0 {
			if e == nil {
				e = &policy.Existing{}
			}
			refCols := fk.RefColumns
			if refCols == nil {
				refCols = []string{"id"}
			}
			e.Constraints = append(e.Constraints, policy.Constraint{
				Table: child, Name: fuzzFKName, Type: policy.ConstraintForeignKey,
				Columns: []string{col, fkCol}, RefTable: tbl, RefColumns: append([]string{col}, refCols...),
				OnDelete: fk.OnDelete,
			})
		}
		m.Tables = append(m.Tables, policy.Table{Name: child, TenantColumn: col, ForeignKeys: []policy.ForeignKey{fk}})
	}
	if global != "" {
		m.Global = []string{global}
	}
	return m, e
}

// placeholders returns a copy of m and e with every name (schema and table
// parts split at the first dot, columns, role) replaced by n000, n001, ...
// in the names' byte order, so that sorting and equality are unchanged,
// and the map from names to placeholders. The default schema "public" is a
// name too. Constraint names of e, which never reach the SQL, are kept.
func placeholders(m *policy.Model, e *policy.Existing) (map[string]string, *policy.Model, *policy.Existing) {
	var names []string
	schema := m.Schema
	if schema == "" {
		schema = "public"
	}
	add := func(ss ...string) { names = append(names, ss...) }
	table := func(s string) {
		if sc, n, ok := strings.Cut(s, "."); ok {
			add(sc, n)
		} else {
			add(s)
		}
	}
	add(schema)
	if m.AppRole != "" {
		add(m.AppRole)
	}
	for _, t := range m.Tables {
		table(t.Name)
		add(t.TenantColumn)
		for _, fk := range t.ForeignKeys {
			table(fk.RefTable)
			add(fk.Columns...)
			add(fk.RefColumns...)
			if fk.RefColumns == nil {
				add("id")
			}
		}
	}
	for _, g := range m.Global {
		table(g)
	}
	if e != nil {
		for _, c := range e.Constraints {
			table(c.Table)
			add(c.Columns...)
			if c.RefTable != "" {
				table(c.RefTable)
			}
			add(c.RefColumns...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	sigma := make(map[string]string, len(names))
	for i, n := range names {
		sigma[n] = fmt.Sprintf("n%03d", i)
	}
	mapTable := func(s string) string {
		if sc, n, ok := strings.Cut(s, "."); ok {
			return sigma[sc] + "." + sigma[n]
		}
		return sigma[s]
	}
	mapAll := func(ss []string) []string {
		if ss == nil {
			return nil
		}
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = sigma[s]
		}
		return out
	}
	pm := &policy.Model{KeyType: m.KeyType, Schema: sigma[schema], Setting: m.Setting}
	if m.AppRole != "" {
		pm.AppRole = sigma[m.AppRole]
	}
	for _, t := range m.Tables {
		pt := policy.Table{Name: mapTable(t.Name), TenantColumn: sigma[t.TenantColumn], Root: t.Root}
		for _, fk := range t.ForeignKeys {
			refCols := fk.RefColumns
			if refCols == nil {
				refCols = []string{"id"} // the default is a name too
			}
			pt.ForeignKeys = append(pt.ForeignKeys, policy.ForeignKey{
				Columns: mapAll(fk.Columns), RefTable: mapTable(fk.RefTable), RefColumns: mapAll(refCols),
				OnDelete: fk.OnDelete,
			})
		}
		pm.Tables = append(pm.Tables, pt)
	}
	for _, g := range m.Global {
		pm.Global = append(pm.Global, mapTable(g))
	}
	var pe *policy.Existing
	if e != nil {
		pe = &policy.Existing{}
		for _, c := range e.Constraints {
			pc := c
			pc.Table, pc.Columns, pc.RefColumns = mapTable(c.Table), mapAll(c.Columns), mapAll(c.RefColumns)
			if c.RefTable != "" {
				pc.RefTable = mapTable(c.RefTable)
			}
			pe.Constraints = append(pe.Constraints, pc)
		}
	}
	return sigma, pm, pe
}

// expectedStatements counts the statements Plan writes for a valid model
// (with placeholder names, so that no two distinct names collide) and the
// facts of e (unique keys and composite foreign keys, nothing else), from
// them alone: per tenant table ENABLE, FORCE and two policies; per new
// foreign key one constraint, and one unique key per distinct referenced
// column list that the table does not have; with an app role, per tenant
// table a GRANT and a REVOKE (Down: the GRANT's undo only), per global
// table a GRANT, and one DO block for the sequences.
func expectedStatements(m *policy.Model, e *policy.Existing, up bool) int {
	var cons []policy.Constraint
	if e != nil {
		cons = e.Constraints
	}
	// ENABLE, FORCE, two policies; the tenant default of every table but
	// the root.
	n := 4*len(m.Tables) + len(m.Tables) - 1
	keys := map[string]bool{}
	for _, t := range m.Tables {
		for _, fk := range t.ForeignKeys {
			var ref *policy.Table
			for i := range m.Tables {
				if m.Tables[i].Name == fk.RefTable {
					ref = &m.Tables[i]
				}
			}
			refCols := fk.RefColumns
			if refCols == nil {
				refCols = []string{"id"}
			}
			key := append([]string{ref.TenantColumn}, refCols...)
			if slices.ContainsFunc(cons, func(c policy.Constraint) bool {
				return c.Type == policy.ConstraintForeignKey && c.Table == t.Name && c.RefTable == fk.RefTable &&
					slices.Equal(c.Columns, append([]string{t.TenantColumn}, fk.Columns...)) && slices.Equal(c.RefColumns, key)
			}) {
				continue // the composite key exists
			}
			n++
			if slices.ContainsFunc(cons, func(c policy.Constraint) bool {
				return c.Type != policy.ConstraintForeignKey && c.Table == ref.Name && slices.Equal(c.Columns, key)
			}) {
				continue // the unique key exists
			}
			keys[ref.Name+"\x00"+strings.Join(key, "\x00")] = true
		}
	}
	n += len(keys)
	if m.AppRole != "" {
		n += len(m.Tables) + len(m.Global)
		if e == nil {
			n++ // the sequences' DO block; Plan grants only what e lacks, here nothing
		}
		if up {
			n += len(m.Tables)
		}
	}
	return n
}

// Token kinds of the lexer.
const (
	tokWord   = iota // keyword or unquoted identifier
	tokIdent         // "quoted identifier", val decoded
	tokString        // 'string' or E'string', val decoded
	tokDollar        // $tag$body$tag$, val the body
	tokNumber
	tokPunct
)

type token struct {
	kind int
	text string // as written
	val  string // decoded
}

// lex splits sql into tokens by PostgreSQL's lexical rules (with
// standard_conforming_strings on), skipping whitespace and comments. It
// refuses what Generate never writes (Unicode escapes, parameters) rather
// than guess.
func lex(sql string) ([]token, error) {
	var toks []token
	isIdentStart := func(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }
	isIdentCont := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case strings.IndexByte(" \t\n\r\f\v", c) >= 0:
			i++
		case strings.HasPrefix(sql[i:], "--"):
			j := strings.IndexAny(sql[i:], "\n\r")
			if j < 0 {
				return toks, nil
			}
			i += j
		case strings.HasPrefix(sql[i:], "/*"):
			depth, j := 0, i
			for ; j < len(sql); j++ {
				if strings.HasPrefix(sql[j:], "/*") {
					depth++
					j++
				} else if strings.HasPrefix(sql[j:], "*/") {
					depth--
					j++
					if depth == 0 {
						break
					}
				}
			}
			if depth != 0 {
				return nil, errors.New("unterminated comment")
			}
			i = j + 1
		case c == '"':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(sql) {
					return nil, errors.New("unterminated quoted identifier")
				}
				if sql[j] == '"' {
					if j+1 < len(sql) && sql[j+1] == '"' {
						b.WriteByte('"')
						j++
						continue
					}
					break
				}
				b.WriteByte(sql[j])
			}
			if b.Len() == 0 {
				return nil, errors.New("zero-length quoted identifier")
			}
			toks = append(toks, token{tokIdent, sql[i : j+1], b.String()})
			i = j + 1
		case c == '\'' || (c == 'E' || c == 'e') && i+1 < len(sql) && sql[i+1] == '\'':
			start, esc := i, c != '\''
			if esc {
				i++
			}
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(sql) {
					return nil, errors.New("unterminated string")
				}
				switch {
				case sql[j] == '\'' && j+1 < len(sql) && sql[j+1] == '\'':
					b.WriteByte('\'')
					j++
					continue
				case sql[j] == '\'':
				case sql[j] == '\\' && esc:
					if j+1 >= len(sql) {
						return nil, errors.New("unterminated string")
					}
					j++
					switch sql[j] {
					case '\\', '\'':
						b.WriteByte(sql[j])
					default:
						return nil, fmt.Errorf("escape \\%c in an E string", sql[j])
					}
					continue
				default:
					b.WriteByte(sql[j])
					continue
				}
				break
			}
			toks = append(toks, token{tokString, sql[start : j+1], b.String()})
			i = j + 1
		case (c == 'U' || c == 'u') && i+1 < len(sql) && sql[i+1] == '&':
			return nil, errors.New("Unicode escape")
		case isIdentStart(c):
			j := i + 1
			for j < len(sql) && isIdentCont(sql[j]) {
				j++
			}
			toks = append(toks, token{tokWord, sql[i:j], strings.ToLower(sql[i:j])})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
				j++
			}
			toks = append(toks, token{tokNumber, sql[i:j], sql[i:j]})
			i = j
		case c == '$':
			j := i + 1
			for j < len(sql) && (isIdentCont(sql[j]) && sql[j] != '$') {
				j++
			}
			if j >= len(sql) || sql[j] != '$' || j > i+1 && !isIdentStart(sql[i+1]) {
				return nil, fmt.Errorf("a parameter or stray $ at %d", i)
			}
			tag := sql[i : j+1]
			end := strings.Index(sql[j+1:], tag)
			if end < 0 {
				return nil, errors.New("unterminated dollar quote")
			}
			body := sql[j+1 : j+1+end]
			toks = append(toks, token{tokDollar, sql[i : j+1+end+len(tag)], body})
			i = j + 1 + end + len(tag)
		default:
			toks = append(toks, token{tokPunct, string(c), string(c)})
			i++
		}
	}
	return toks, nil
}

// statements counts the top-level semicolons.
func statements(toks []token) int {
	n := 0
	for _, t := range toks {
		if t.kind == tokPunct && t.val == ";" {
			n++
		}
	}
	return n
}

// sameShape compares the tokens of Generate's SQL for the fuzzed model
// (got) with those for its placeholder model (want): same kinds, same
// keywords and punctuation, and each quoted name or string decoding to the
// name its placeholder stands for. Constraint names, which Generate
// derives from the names (and shortens with a hash), need only end with
// the same pgtenancy suffix and fit in 63 bytes. Dollar-quoted bodies and
// string literals holding SQL are compared the same way, recursively.
func sameShape(got, want []token, sigma map[string]string, depth int) error {
	if depth > 3 {
		return errors.New("nested too deep")
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d tokens, want %d (depth %d)", len(got), len(want), depth)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.kind != w.kind {
			return fmt.Errorf("token %d: %s, want %s", i, g.text, w.text)
		}
		switch g.kind {
		case tokWord, tokNumber, tokPunct:
			if g.val != w.val {
				return fmt.Errorf("token %d: %s, want %s", i, g.text, w.text)
			}
		case tokIdent:
			if g.val == w.val || sigma[g.val] == w.val && w.val != "" {
				continue
			}
			if sameConstraint(g.val, w.val) {
				continue
			}
			return fmt.Errorf("token %d: identifier %s decodes to %q, want the name of %s", i, g.text, g.val, w.text)
		case tokString, tokDollar:
			if g.val == w.val || sigma[g.val] == w.val && w.val != "" {
				continue
			}
			gt, err1 := lex(g.val)
			wt, err2 := lex(w.val)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("token %d: %s, want %s (%v, %v)", i, g.text, w.text, err1, err2)
			}
			if err := sameShape(gt, wt, sigma, depth+1); err != nil {
				return fmt.Errorf("token %d, inside %s: %w", i, w.text, err)
			}
		}
	}
	return nil
}

func sameConstraint(got, want string) bool {
	for _, suffix := range []string{"_pgtenancy_key", "_pgtenancy_fkey"} {
		if strings.HasSuffix(want, suffix) {
			return strings.HasSuffix(got, suffix) && len(got) <= 63
		}
	}
	return false
}
