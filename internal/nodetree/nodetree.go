// Package nodetree parses PostgreSQL's text form of parse trees: what
// nodeToString writes into pg_node_tree columns such as pg_policy.polqual,
// pg_proc.prosqlbody and pg_index.indpred, and what a cast of such a column
// to text returns:
//
//	{OPEXPR :opno 410 :args ({VAR :varno 1 :varattno 1 ...} {CONST ... :constvalue 4 [ 1 0 0 0 0 0 0 0 ]})}
//
// The grammar is small: a node is {TYPE :field value ...}, a list is
// (value ...), possibly tagged (i 1 2) (o 1 2) (b 3), <> is a null pointer
// or an empty list, a datum is a length and its bytes in brackets, and
// everything else is a token, with backslash escapes. [Parse] builds a
// generic tree of [Value]s; it knows no node type, so the format of any
// server version parses.
package nodetree

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Kind is the kind of a [Value].
type Kind uint8

// The kinds of values.
const (
	Null  Kind = iota // <>: a null pointer or an empty list
	Node              // {TYPE :field value ...}
	List              // (value ...)
	Token             // anything else: a number, a name, a quoted string
	Datum             // a datum: a length and its bytes, "4 [ 1 0 0 0 ]"
)

// Value is one value of a tree.
type Value struct {
	Kind  Kind
	Node  *Tree   // Kind Node
	List  []Value // Kind List; a tagged list's tag (i, o, b, x) is its first Token
	Tok   string  // Kind Token, unescaped
	Bytes []byte  // Kind Datum
}

// Tree is one node: its type, such as OPEXPR, and its fields in order.
type Tree struct {
	Type   string
	Fields []Field
}

// Field is one :name value pair of a node.
type Field struct {
	Name  string
	Value Value
}

// Get returns the value of a field, or a Null value when the node is nil
// or has no such field.
func (t *Tree) Get(name string) Value {
	if t == nil {
		return Value{}
	}
	for i := range t.Fields {
		if t.Fields[i].Name == name {
			return t.Fields[i].Value
		}
	}
	return Value{}
}

// Is reports whether v is a node of type typ.
func (v Value) Is(typ string) bool { return v.Kind == Node && v.Node.Type == typ }

// Str returns the token of a field, or "".
func (t *Tree) Str(name string) string { return t.Get(name).Tok }

// Items returns the elements of a list, or nil for anything else (a Null
// value is an empty list).
func (v Value) Items() []Value {
	if v.Kind == List {
		return v.List
	}
	return nil
}

// ErrSyntax matches every error of [Parse].
var ErrSyntax = errors.New("nodetree: syntax error")

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 1000

// Parse parses the text form of one value: a node, a list or <>.
func Parse(s string) (Value, error) {
	p := &parser{s: s}
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	if tok := p.next(); tok != "" {
		return Value{}, p.errorf("unexpected %q after the value", tok)
	}
	return v, nil
}

type parser struct {
	s   string
	pos int
	// peeked is the token read ahead, when peekedOK.
	peeked   string
	peekedOK bool
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, args...))
}

// next returns the next raw token (escapes kept), or "" at the end.
func (p *parser) next() string {
	if p.peekedOK {
		p.peekedOK = false
		return p.peeked
	}
	s := p.s
	i := p.pos
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	if i == len(s) {
		p.pos = i
		return ""
	}
	start := i
	switch s[i] {
	case '(', ')', '{', '}':
		p.pos = i + 1
		return s[start : i+1]
	}
	for i < len(s) {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i += 2
			continue
		}
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '(' || c == ')' || c == '{' || c == '}' {
			break
		}
		i++
	}
	p.pos = i
	return s[start:i]
}

func (p *parser) peek() string {
	if !p.peekedOK {
		p.peeked = p.next()
		p.peekedOK = true
	}
	return p.peeked
}

func (p *parser) value(depth int) (Value, error) {
	if depth > maxDepth {
		return Value{}, p.errorf("nested too deeply")
	}
	tok := p.next()
	switch tok {
	case "":
		return Value{}, p.errorf("unexpected end")
	case "<>":
		return Value{}, nil
	case "{":
		return p.node(depth)
	case "(":
		return p.list(depth)
	case ")", "}":
		return Value{}, p.errorf("unexpected %q", tok)
	}
	if p.peek() == "[" {
		return p.datum(tok)
	}
	if len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"' {
		// A String node, such as a column name in a list: "name".
		return Value{Kind: Token, Tok: unescape(tok[1 : len(tok)-1])}, nil
	}
	return Value{Kind: Token, Tok: unescape(tok)}, nil
}

func (p *parser) node(depth int) (Value, error) {
	typ := p.next()
	if typ == "" || typ == "}" || typ[0] == ':' || strings.ContainsAny(typ, "(){}") {
		return Value{}, p.errorf("node without a type")
	}
	t := &Tree{Type: typ}
	for {
		tok := p.next()
		switch {
		case tok == "}":
			return Value{Kind: Node, Node: t}, nil
		case len(tok) > 1 && tok[0] == ':':
			v, err := p.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			t.Fields = append(t.Fields, Field{Name: tok[1:], Value: v})
		case tok == "":
			return Value{}, p.errorf("unterminated node %s", typ)
		default:
			return Value{}, p.errorf("unexpected %q in node %s", tok, typ)
		}
	}
}

func (p *parser) list(depth int) (Value, error) {
	v := Value{Kind: List, List: []Value{}}
	for {
		if p.peek() == ")" {
			p.next()
			return v, nil
		}
		if p.peek() == "" {
			return Value{}, p.errorf("unterminated list")
		}
		item, err := p.value(depth + 1)
		if err != nil {
			return Value{}, err
		}
		v.List = append(v.List, item)
	}
}

// datum reads "len [ b0 b1 ... ]" after its length token.
func (p *parser) datum(length string) (Value, error) {
	p.next() // [
	var b []byte
	for {
		tok := p.next()
		switch tok {
		case "]":
			return Value{Kind: Datum, Tok: length, Bytes: b}, nil
		case "":
			return Value{}, p.errorf("unterminated datum")
		}
		n := 0
		neg := false
		digits := tok
		if digits[0] == '-' {
			neg, digits = true, digits[1:]
		}
		if digits == "" {
			return Value{}, p.errorf("bad datum byte %q", tok)
		}
		for i := 0; i < len(digits); i++ {
			c := digits[i]
			if c < '0' || c > '9' || n > 255 {
				return Value{}, p.errorf("bad datum byte %q", tok)
			}
			n = n*10 + int(c-'0')
		}
		if neg {
			n = 256 - n // char is signed on some platforms
		}
		if n < 0 || n > 255 {
			return Value{}, p.errorf("bad datum byte %q", tok)
		}
		b = append(b, byte(n))
	}
}

// unescape removes the backslashes outToken adds before special
// characters.
func unescape(tok string) string {
	if strings.IndexByte(tok, '\\') < 0 {
		return tok
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		if tok[i] == '\\' && i+1 < len(tok) {
			i++
		}
		b.WriteByte(tok[i])
	}
	return b.String()
}

// Text decodes a datum of a varlena type, such as a text constant, to its
// bytes after the header: the 4-byte header of an uncompressed value (as
// constants are stored), or the 1-byte header of a short one, in the
// server's byte order, little-endian or big-endian.
func Text(v Value) (string, bool) {
	b := v.Bytes
	if v.Kind != Datum || len(b) == 0 {
		return "", false
	}
	// Little-endian: the low two bits of the first byte are the flags.
	if b[0]&0x03 == 0 && len(b) >= 4 {
		if n := int(binary.LittleEndian.Uint32(b) >> 2); n >= 4 && n <= len(b) {
			return string(b[4:n]), true
		}
	}
	if b[0]&0x01 == 1 && b[0] != 1 {
		if n := int(b[0] >> 1); n >= 1 && n <= len(b) {
			return string(b[1:n]), true
		}
	}
	// Big-endian: the high two bits.
	if b[0]&0xC0 == 0 && len(b) >= 4 {
		if n := int(binary.BigEndian.Uint32(b) & 0x3FFFFFFF); n >= 4 && n <= len(b) {
			return string(b[4:n]), true
		}
	}
	if b[0]&0x80 != 0 && b[0] != 0x80 {
		if n := int(b[0] & 0x7F); n >= 1 && n <= len(b) {
			return string(b[1:n]), true
		}
	}
	return "", false
}

// True reports whether a datum of a pass-by-value type is nonzero: for a
// boolean constant, whether it is true, in either byte order.
func True(v Value) bool {
	for _, c := range v.Bytes {
		if c != 0 {
			return true
		}
	}
	return false
}

// Walk calls fn for v and every value below it, depth first, until fn
// returns false for a value (its children are then skipped).
func Walk(v Value, fn func(Value) bool) {
	if !fn(v) {
		return
	}
	switch v.Kind {
	case Node:
		for _, f := range v.Node.Fields {
			Walk(f.Value, fn)
		}
	case List:
		for _, item := range v.List {
			Walk(item, fn)
		}
	}
}
