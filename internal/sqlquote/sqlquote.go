// Package sqlquote quotes identifiers and literals for SQL text that pgtenancy
// generates. Callers validate values first; quoting is the second line.
package sqlquote

import "strings"

// Ident quotes one identifier: "a""b".
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Qualified quotes a possibly schema-qualified name given as its parts.
func Qualified(parts ...string) string {
	q := make([]string, 0, len(parts))
	for _, p := range parts {
		if p != "" {
			q = append(q, Ident(p))
		}
	}
	return strings.Join(q, ".")
}

// Literal quotes s as a string literal that means the same whatever
// standard_conforming_strings is. s must not contain a NUL byte (PostgreSQL
// text cannot hold one); Literal panics if it does.
func Literal(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		panic("sqlquote: NUL byte in literal")
	}
	if strings.Contains(s, `\`) {
		return ` E'` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `''`) + `'`
	}
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}
