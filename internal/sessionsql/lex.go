package sessionsql

import "strings"

// tokKind is the kind of a token.
type tokKind uint8

const (
	tIdent  tokKind = iota + 1 // an unquoted identifier or keyword, lower case
	tQIdent                    // a quoted identifier
	tString                    // a string literal
	tNumber
	tParam // $1
	tOp    // an operator
	tPunct // ( ) [ ] , ; . : :: $
)

// token is one token of SQL.
type token struct {
	kind tokKind
	text string
	// exact reports, for a string or a quoted identifier, that text is
	// its value (no escapes left undecoded).
	exact bool
}

func (t token) is(k tokKind, s string) bool { return t.kind == k && t.text == s }

// keyword returns the text of an unquoted identifier, or "".
func (t token) keyword() string {
	if t.kind == tIdent {
		return t.text
	}
	return ""
}

// name returns the text of an identifier, quoted or not, or "".
func (t token) name() string {
	if t.kind == tIdent || t.kind == tQIdent {
		return t.text
	}
	return ""
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isOpChar(c byte) bool { return strings.IndexByte("+-*/<>=~!@#%^&|`?", c) >= 0 }

// lex splits sql into tokens, skipping white space and comments. With
// backslash, a backslash escapes the next character in a plain string
// literal, as when standard_conforming_strings is off. ambiguous reports
// a plain string literal that holds a backslash (read differently in the
// other mode).
func lex(sql string, backslash bool) (toks []token, ambiguous bool) {
	n := len(sql)
	toks = make([]token, 0, n/4+1)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case isSpace(c):
			i++
		case c == '-' && i+1 < n && sql[i+1] == '-':
			for i < n && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < n && sql[i+1] == '*':
			i = skipComment(sql, i)
		case c == '\'':
			text, end, bs := quoted(sql, i, '\'', backslash)
			ambiguous = ambiguous || (bs && !backslash)
			toks = append(toks, token{kind: tString, text: text, exact: !bs})
			i = end
		case c == '"':
			text, end, _ := quoted(sql, i, '"', false)
			toks = append(toks, token{kind: tQIdent, text: text, exact: true})
			i = end
		case isIdentStart(c):
			j := i + 1
			for j < n && isIdentCont(sql[j]) {
				j++
			}
			word := sql[i:j]
			if j < n && sql[j] == '\'' && len(word) == 1 {
				switch word {
				case "e", "E": // escape string: backslashes always escape
					text, end, bs := quoted(sql, j, '\'', true)
					toks = append(toks, token{kind: tString, text: text, exact: !bs})
					i = end
					continue
				case "b", "B", "x", "X", "n", "N": // bit, hex and national strings
					text, end, bs := quoted(sql, j, '\'', backslash)
					ambiguous = ambiguous || (bs && !backslash)
					toks = append(toks, token{kind: tString, text: text, exact: !bs && (word == "n" || word == "N")})
					i = end
					continue
				}
			}
			if (word == "u" || word == "U") && j+1 < n && sql[j] == '&' && (sql[j+1] == '\'' || sql[j+1] == '"') {
				// Unicode escapes: decoded only when there is none.
				q := sql[j+1]
				text, end, _ := quoted(sql, j+1, q, false)
				kind := tString
				if q == '"' {
					kind = tQIdent
				}
				toks = append(toks, token{kind: kind, text: text, exact: !strings.ContainsRune(text, '\\')})
				i = end
				continue
			}
			toks = append(toks, token{kind: tIdent, text: lower(word)})
			i = j
		case c == '$':
			if i+1 < n && isDigit(sql[i+1]) {
				j := i + 1
				for j < n && isDigit(sql[j]) {
					j++
				}
				toks = append(toks, token{kind: tParam, text: sql[i:j]})
				i = j
				continue
			}
			if tag, ok := dollarTag(sql, i); ok {
				body := sql[i+len(tag):]
				k := strings.Index(body, tag)
				if k < 0 {
					// Unterminated: the server refuses it; nothing after it
					// is SQL.
					toks = append(toks, token{kind: tString, text: body, exact: true})
					i = n
					continue
				}
				toks = append(toks, token{kind: tString, text: body[:k], exact: true})
				i += len(tag) + k + len(tag)
				continue
			}
			toks = append(toks, token{kind: tPunct, text: "$"})
			i++
		case isDigit(c) || c == '.' && i+1 < n && isDigit(sql[i+1]):
			j := i + 1
			for j < n && (isDigit(sql[j]) || sql[j] == '.' || sql[j] == '_') {
				j++
			}
			if j < n && (sql[j] == 'e' || sql[j] == 'E') {
				k := j + 1
				if k < n && (sql[k] == '+' || sql[k] == '-') {
					k++
				}
				if k < n && isDigit(sql[k]) {
					for j = k; j < n && isDigit(sql[j]); j++ {
					}
				}
			}
			toks = append(toks, token{kind: tNumber, text: sql[i:j]})
			i = j
		case c == ':':
			if i+1 < n && sql[i+1] == ':' {
				toks = append(toks, token{kind: tPunct, text: "::"})
				i += 2
			} else {
				toks = append(toks, token{kind: tPunct, text: ":"})
				i++
			}
		case isOpChar(c):
			j := i
			for j < n && isOpChar(sql[j]) {
				if j > i && (sql[j] == '-' && j+1 < n && sql[j+1] == '-' || sql[j] == '/' && j+1 < n && sql[j+1] == '*') {
					break // a comment starts
				}
				j++
			}
			// As PostgreSQL: a multi-character operator does not end in +
			// or - unless it holds one of ~!@#%^&|`? (so "=-1" is "=" "-1").
			if op := sql[i:j]; len(op) > 1 && !strings.ContainsAny(op, "~!@#%^&|`?") {
				for j > i+1 && (sql[j-1] == '+' || sql[j-1] == '-') {
					j--
				}
			}
			toks = append(toks, token{kind: tOp, text: sql[i:j]})
			i = j
		default:
			toks = append(toks, token{kind: tPunct, text: sql[i : i+1]})
			i++
		}
	}
	return toks, ambiguous
}

// skipComment returns the end of the (nested) block comment at sql[i:].
func skipComment(sql string, i int) int {
	depth := 0
	for i < len(sql) {
		switch {
		case strings.HasPrefix(sql[i:], "/*"):
			depth++
			i += 2
		case strings.HasPrefix(sql[i:], "*/"):
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return i
}

// quoted reads the literal or identifier quoted by q at sql[i], a doubled
// q standing for one. With backslash, a backslash escapes the next
// character. It returns the text (backslash escapes left as written), the
// end, and whether the text holds a backslash.
func quoted(sql string, i int, q byte, backslash bool) (text string, end int, bs bool) {
	// Most literals hold neither a doubled quote nor a backslash: their
	// text is a substring.
	if k := strings.IndexByte(sql[i+1:], q); k >= 0 {
		body := sql[i+1 : i+1+k]
		next := i + 1 + k + 1
		if strings.IndexByte(body, '\\') < 0 && (next >= len(sql) || sql[next] != q) {
			return body, next, false
		}
	}
	var sb strings.Builder
	j := i + 1
	for j < len(sql) {
		c := sql[j]
		switch {
		case c == '\\':
			bs = true
			if backslash && j+1 < len(sql) {
				sb.WriteString(sql[j : j+2])
				j += 2
				continue
			}
		case c == q:
			if j+1 < len(sql) && sql[j+1] == q {
				sb.WriteByte(q)
				j += 2
				continue
			}
			return sb.String(), j + 1, bs
		}
		sb.WriteByte(c)
		j++
	}
	return sb.String(), j, bs
}

// dollarTag returns the opening delimiter of a dollar-quoted string at
// sql[i] ($$ or $tag$).
func dollarTag(sql string, i int) (string, bool) {
	j := i + 1
	if j < len(sql) && sql[j] == '$' {
		return "$$", true
	}
	if j >= len(sql) || !isIdentStart(sql[j]) {
		return "", false
	}
	for j < len(sql) && isIdentCont(sql[j]) && sql[j] != '$' {
		j++
	}
	if j < len(sql) && sql[j] == '$' {
		return sql[i : j+1], true
	}
	return "", false
}

// lower lower-cases ASCII letters only, as PostgreSQL folds identifiers in
// a multibyte encoding.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
