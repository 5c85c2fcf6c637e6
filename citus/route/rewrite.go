package route

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Outcome is what the rewriter did with one SQL text.
type Outcome int

const (
	// Rewritten: every tenant table the statement reads or writes got the
	// tenant predicate; the rewritten SQL takes one more parameter.
	Rewritten Outcome = iota + 1
	// NoTenantTable: the statement names no tenant table that needs the
	// predicate (it names none, or only as the target of an INSERT, which
	// Citus routes by the inserted values). It runs unchanged.
	NoTenantTable
	// LeftAlone: the statement names a tenant table, but the rewriter
	// cannot prove that adding the predicate keeps its meaning (see the
	// package doc). It runs unchanged: row level security still isolates
	// it, and Citus may send it to every shard.
	LeftAlone
	// Unparsed: the text is not one SQL statement that libpg_query parses
	// (the name of a prepared statement, several statements, a syntax
	// error). It runs unchanged, for the server to run or refuse.
	Unparsed
)

func (o Outcome) String() string {
	switch o {
	case Rewritten:
		return "rewritten"
	case NoTenantTable:
		return "no tenant table"
	case LeftAlone:
		return "left alone"
	case Unparsed:
		return "unparsed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is the rewrite of one SQL text.
type Result struct {
	// SQL is the SQL to send: the rewritten statement when Outcome is
	// [Rewritten], the input otherwise.
	SQL string
	// Param is the number N of the parameter $N that the rewrite added,
	// bound to the tenant: one more than the highest parameter of the
	// input. 0 unless Outcome is [Rewritten].
	Param int
	// Outcome says what happened.
	Outcome Outcome
	// Reason says why the statement was left alone or not parsed; empty
	// otherwise.
	Reason string
	// Tables are the tenant tables that got the predicate, as the
	// statement names them (alias or name), in the order of the rewrite.
	Tables []string
	// Params is the highest parameter number of the input statement.
	Params int
	// Named are the tables the statement names (schema-qualified when it
	// qualifies them), tenant or not, in the order of the text; nil when
	// it did not parse.
	Named []string
}

// analyze rewrites one SQL text. It never panics on input that
// libpg_query parses.
func (r *Rewriter) analyze(sql string) Result {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return Result{SQL: sql, Outcome: Unparsed, Reason: err.Error()}
	}
	if len(tree.Stmts) != 1 {
		return Result{SQL: sql, Outcome: Unparsed, Reason: fmt.Sprintf("%d statements in one text", len(tree.Stmts))}
	}
	w := &rewrite{r: r, handled: map[*pg_query.RangeVar]bool{}}
	named := namedTables(tree)
	reason := w.run(tree)
	params := int(w.maxParam)
	if reason != "" {
		if len(w.tenantRefs) == 0 && !w.sawTenant {
			return Result{SQL: sql, Outcome: NoTenantTable, Named: named, Params: params}
		}
		return Result{SQL: sql, Outcome: LeftAlone, Reason: reason, Named: named, Params: params}
	}
	if len(w.preds) == 0 {
		return Result{SQL: sql, Outcome: NoTenantTable, Named: named, Params: params}
	}
	out, reason := r.deparse(tree, sql, w)
	if reason != "" {
		return Result{SQL: sql, Outcome: LeftAlone, Reason: reason, Named: named, Params: params}
	}
	return Result{SQL: out, Param: int(w.param), Outcome: Rewritten, Tables: w.names, Named: named, Params: params}
}

// deparse checks that the deparser reproduces the input statement
// exactly (the original tree and the tree of its deparsed text are equal
// but for source locations), applies the predicates, deparses, and checks
// that the output parses back to the rewritten tree.
func (r *Rewriter) deparse(tree *pg_query.ParseResult, sql string, w *rewrite) (string, string) {
	orig, err := pg_query.Deparse(tree)
	if err != nil {
		return "", "deparse: " + err.Error()
	}
	back, err := pg_query.Parse(orig)
	if err != nil || !sameTree(tree, back) {
		return "", "the deparser does not reproduce this statement exactly"
	}
	w.apply()
	out, err := pg_query.Deparse(tree)
	if err != nil {
		return "", "deparse: " + err.Error()
	}
	back, err = pg_query.Parse(out)
	if err != nil || !sameTree(tree, back) {
		return "", "the rewritten statement does not parse back to itself"
	}
	return out, ""
}

// sameTree reports whether a and b are equal but for source locations
// and statement lengths.
func sameTree(a, b *pg_query.ParseResult) bool {
	a, b = proto.Clone(a).(*pg_query.ParseResult), proto.Clone(b).(*pg_query.ParseResult)
	for _, t := range []*pg_query.ParseResult{a, b} {
		for _, s := range t.Stmts {
			s.StmtLocation, s.StmtLen = 0, 0
		}
		clearLocations(t.ProtoReflect())
	}
	return proto.Equal(a, b)
}

// clearLocations zeroes every field named location.
func clearLocations(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Name() == "location" && fd.Kind() == protoreflect.Int32Kind:
			m.Clear(fd)
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				clearLocations(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.MessageKind && !fd.IsMap():
			clearLocations(v.Message())
		}
		return true
	})
}

// namedTables lists the distinct relation names of a tree.
func namedTables(tree *pg_query.ParseResult) []string {
	var out []string
	seen := map[string]bool{}
	walk(tree.ProtoReflect(), func(m proto.Message) {
		if rv, ok := m.(*pg_query.RangeVar); ok {
			n := rv.Relname
			if rv.Schemaname != "" {
				n = rv.Schemaname + "." + n
			}
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	})
	return out
}

// walk calls fn for every message under m (m included), parents first.
func walk(m protoreflect.Message, fn func(proto.Message)) {
	fn(m.Interface())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				walk(l.Get(i).Message(), fn)
			}
			return true
		}
		walk(v.Message(), fn)
		return true
	})
}

// rewrite is the state of one statement's rewrite.
type rewrite struct {
	r          *Rewriter
	param      int32
	maxParam   int32
	handled    map[*pg_query.RangeVar]bool
	tenantRefs []*pg_query.RangeVar // every reference to a tenant table
	sawTenant  bool
	preds      []pending
	names      []string
	unsafe     string // the first reason not to rewrite
}

// pending is one predicate to add: to *where (a WHERE clause or a join's
// ON condition).
type pending struct {
	where *(*pg_query.Node)
	ref   []string // the qualified name that refers to the table
	col   string
}

func (w *rewrite) fail(format string, args ...any) {
	if w.unsafe == "" {
		w.unsafe = fmt.Sprintf(format, args...)
	}
}

// run finds the predicates to add; it returns why the statement cannot be
// rewritten, or "".
func (w *rewrite) run(tree *pg_query.ParseResult) string {
	stmt := tree.Stmts[0].Stmt
	var maxParam int32
	ctes := map[string]bool{}
	walk(tree.ProtoReflect(), func(m proto.Message) {
		switch n := m.(type) {
		case *pg_query.ParamRef:
			maxParam = max(maxParam, n.Number)
		case *pg_query.CommonTableExpr:
			ctes[n.Ctename] = true
		case *pg_query.RangeVar:
			if _, ok := w.r.lookup(n); ok {
				w.tenantRefs = append(w.tenantRefs, n)
			}
		}
	})
	w.maxParam = maxParam
	if len(w.tenantRefs) == 0 {
		return "no tenant table"
	}
	w.sawTenant = true
	switch stmt.Node.(type) {
	case *pg_query.Node_SelectStmt, *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt,
		*pg_query.Node_DeleteStmt, *pg_query.Node_ExplainStmt, *pg_query.Node_DeclareCursorStmt:
	default:
		return fmt.Sprintf("a %s statement is not rewritten", strings.TrimPrefix(fmt.Sprintf("%T", stmt.Node), "*pg_query.Node_"))
	}
	for _, rv := range w.tenantRefs {
		if rv.Schemaname == "" && ctes[rv.Relname] {
			return fmt.Sprintf("a WITH query is named %q like a tenant table", rv.Relname)
		}
	}
	w.param = maxParam + 1
	walk(tree.ProtoReflect(), func(m proto.Message) {
		switch n := m.(type) {
		case *pg_query.SelectStmt:
			if n.Op == pg_query.SetOperation_SETOP_NONE {
				w.from(n.FromClause, &n.WhereClause)
			}
		case *pg_query.InsertStmt:
			w.handled[n.Relation] = true
		case *pg_query.UpdateStmt:
			w.target(n.Relation, &n.WhereClause)
			w.from(n.FromClause, &n.WhereClause)
		case *pg_query.DeleteStmt:
			w.target(n.Relation, &n.WhereClause)
			w.from(n.UsingClause, &n.WhereClause)
		case *pg_query.MergeStmt:
			w.fail("MERGE is not rewritten")
		case *pg_query.IntoClause:
			w.fail("SELECT INTO is not rewritten")
		}
	})
	if w.unsafe != "" {
		return w.unsafe
	}
	for _, rv := range w.tenantRefs {
		if !w.handled[rv] {
			return fmt.Sprintf("%s is referenced where no predicate can be added", rvName(rv))
		}
	}
	return ""
}

// target handles the target table of an UPDATE or DELETE.
func (w *rewrite) target(rv *pg_query.RangeVar, where **pg_query.Node) {
	w.handled[rv] = true
	t, ok := w.r.lookup(rv)
	if !ok {
		return
	}
	if *where != nil {
		if _, ok := (*where).Node.(*pg_query.Node_CurrentOfExpr); ok {
			w.fail("WHERE CURRENT OF is not rewritten")
			return
		}
	}
	w.add(rv, t, where)
}

// from handles the FROM items of one query level, whose WHERE clause is
// *where.
func (w *rewrite) from(items []*pg_query.Node, where **pg_query.Node) {
	for _, it := range items {
		w.item(it, where, nil, false)
	}
}

// item handles one FROM item. nullable is the innermost outer join whose
// nullable side holds it, or nil; hidden reports that a join alias
// between that join (or the query level) and the item hides its name.
func (w *rewrite) item(n *pg_query.Node, where **pg_query.Node, nullable *pg_query.JoinExpr, hidden bool) {
	switch it := n.Node.(type) {
	case *pg_query.Node_RangeVar:
		rv := it.RangeVar
		w.handled[rv] = true
		t, ok := w.r.lookup(rv)
		if !ok {
			return
		}
		if hidden {
			w.fail("%s is inside a join with an alias", rvName(rv))
			return
		}
		if nullable == nil {
			w.add(rv, t, where)
			return
		}
		if nullable.Quals == nil {
			w.fail("%s is on the nullable side of an outer join without ON", rvName(rv))
			return
		}
		w.add(rv, t, &nullable.Quals)
	case *pg_query.Node_JoinExpr:
		j := it.JoinExpr
		if j.Alias != nil {
			hidden = true
		}
		switch j.Jointype {
		case pg_query.JoinType_JOIN_INNER:
			w.item(j.Larg, where, nullable, hidden)
			w.item(j.Rarg, where, nullable, hidden)
		case pg_query.JoinType_JOIN_LEFT:
			w.item(j.Larg, where, nullable, hidden)
			w.item(j.Rarg, where, j, false)
		case pg_query.JoinType_JOIN_RIGHT:
			w.item(j.Larg, where, j, false)
			w.item(j.Rarg, where, nullable, hidden)
		default:
			w.fail("a %s join is not rewritten", strings.TrimPrefix(j.Jointype.String(), "JOIN_"))
		}
	}
	// Subqueries, functions, VALUES: their own query levels are handled
	// where the walk meets them.
}

// add queues the predicate of table t, referenced by rv, for *where.
func (w *rewrite) add(rv *pg_query.RangeVar, t Table, where **pg_query.Node) {
	var ref []string
	switch {
	case rv.Catalogname != "":
		w.fail("%s names a database", rvName(rv))
		return
	case rv.Alias != nil && len(rv.Alias.Colnames) > 0:
		w.fail("%s renames its columns", rvName(rv))
		return
	case rv.Alias != nil:
		ref = []string{rv.Alias.Aliasname}
	case rv.Schemaname != "":
		ref = []string{rv.Schemaname, rv.Relname}
	default:
		ref = []string{rv.Relname}
	}
	w.preds = append(w.preds, pending{where: where, ref: ref, col: t.Column})
	w.names = append(w.names, strings.Join(ref, "."))
}

// apply adds the queued predicates to the tree.
func (w *rewrite) apply() {
	for _, p := range w.preds {
		fields := make([]*pg_query.Node, 0, len(p.ref)+1)
		for _, s := range p.ref {
			fields = append(fields, pg_query.MakeStrNode(s))
		}
		fields = append(fields, pg_query.MakeStrNode(p.col))
		pred := pg_query.MakeAExprNode(pg_query.A_Expr_Kind_AEXPR_OP,
			[]*pg_query.Node{pg_query.MakeStrNode("pg_catalog"), pg_query.MakeStrNode("=")},
			pg_query.MakeColumnRefNode(fields, -1), pg_query.MakeParamRefNode(w.param, -1), -1)
		*p.where = and(*p.where, pred)
	}
}

// and returns a AND b, flattening a when it is an AND already.
func and(a, b *pg_query.Node) *pg_query.Node {
	if a == nil {
		return b
	}
	if be, ok := a.Node.(*pg_query.Node_BoolExpr); ok && be.BoolExpr.Boolop == pg_query.BoolExprType_AND_EXPR {
		be.BoolExpr.Args = append(be.BoolExpr.Args, b)
		return a
	}
	return pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, []*pg_query.Node{a, b}, -1)
}

// rvName is rv's name as written, for messages.
func rvName(rv *pg_query.RangeVar) string {
	s := rv.Relname
	if rv.Schemaname != "" {
		s = rv.Schemaname + "." + s
	}
	if rv.Alias != nil {
		s += " " + rv.Alias.Aliasname
	}
	return s
}
