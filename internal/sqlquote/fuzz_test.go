package sqlquote_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// seeds are the hostile strings both fuzz targets and the database test
// start from.
var seeds = []string{
	"", "a", "o'brien", `a\b`, `\`, `'`, `''`, `"`, `""`, `\'`, `'\`, `x'; DROP TABLE t; --`,
	`E'\x41'`, "a\nb", "tab\there", `$$`, `$q$`, "/* c */", "--", "é", "日本", `\\'`, `\0`,
	`"; DROP TABLE t; --`, "a.b", `U&"\0041"`, "\xff\xfe", "end\\",
}

// FuzzIdent checks that Ident's output is one double-quoted identifier
// that a reference parser of PostgreSQL's rules decodes back to the input.
func FuzzIdent(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := sqlquote.Ident(s)
		got, rest, err := unquoteIdent(q)
		if s == "" {
			// "" is no identifier: PostgreSQL refuses it rather than
			// reading something else. Callers never quote an empty name.
			if err == nil {
				t.Fatalf(`Ident("") = %s decodes to %q`, q, got)
			}
		} else if err != nil || rest != "" || got != s {
			t.Fatalf("Ident(%q) = %s: decodes to %q, rest %q, err %v", s, q, got, rest, err)
		}
		parts := strings.Split(s, ".")
		q = sqlquote.Qualified(parts...)
		var want []string
		for _, p := range parts {
			if p != "" {
				want = append(want, p)
			}
		}
		var decoded []string
		for rest := q; rest != ""; {
			var part string
			part, rest, err = unquoteIdent(rest)
			if err != nil {
				t.Fatalf("Qualified(%q) = %s: %v", parts, q, err)
			}
			decoded = append(decoded, part)
			if rest != "" {
				if rest[0] != '.' {
					t.Fatalf("Qualified(%q) = %s: %q after a part", parts, q, rest)
				}
				rest = rest[1:]
			}
		}
		if strings.Join(decoded, "\x00") != strings.Join(want, "\x00") || len(decoded) != len(want) {
			t.Fatalf("Qualified(%q) = %s decodes to %q", parts, q, decoded)
		}
	})
}

// FuzzLiteral checks that Literal's output is one string literal that a
// reference parser decodes back to the input, whether
// standard_conforming_strings is on or off, and that it panics on a NUL.
func FuzzLiteral(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			defer func() {
				if recover() == nil {
					t.Fatalf("Literal(%q) did not panic on a NUL byte", s)
				}
			}()
			sqlquote.Literal(s)
			return
		}
		q := sqlquote.Literal(s)
		for _, scs := range []bool{true, false} {
			got, err := unquoteLiteral(q, scs)
			if err != nil || got != s {
				t.Fatalf("Literal(%q) = %s: standard_conforming_strings=%v decodes %q, err %v", s, q, scs, got, err)
			}
		}
	})
}

// unquoteIdent decodes the double-quoted identifier at the start of q and
// returns it and what follows, by PostgreSQL's rules: "" inside stands for
// one ", and a zero-length identifier is an error.
func unquoteIdent(q string) (ident, rest string, err error) {
	if q == "" || q[0] != '"' {
		return "", q, errors.New("does not start with a double quote")
	}
	var b strings.Builder
	for i := 1; i < len(q); i++ {
		if q[i] != '"' {
			b.WriteByte(q[i])
			continue
		}
		if i+1 < len(q) && q[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", q, errors.New("zero-length delimited identifier")
		}
		return b.String(), q[i+1:], nil
	}
	return "", q, errors.New("unterminated quoted identifier")
}

// unquoteLiteral decodes q, which must be exactly one string literal
// (optionally preceded by spaces), by PostgreSQL's lexer rules: E'...' has
// backslash escapes; '...' has them only when standard_conforming_strings
// is off; a doubled quote stands for one quote in both.
func unquoteLiteral(q string, scs bool) (string, error) {
	q = strings.TrimLeft(q, " ")
	escapes := !scs
	if len(q) > 0 && (q[0] == 'E' || q[0] == 'e') {
		escapes = true
		q = q[1:]
	}
	if q == "" || q[0] != '\'' {
		return "", errors.New("does not start with a quote")
	}
	var b strings.Builder
	for i := 1; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' && i+1 < len(q) && q[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			if i != len(q)-1 {
				return "", fmt.Errorf("text after the closing quote: %q", q[i+1:])
			}
			return b.String(), nil
		case c == '\\' && escapes:
			if i+1 >= len(q) {
				return "", errors.New("backslash at the end")
			}
			i++
			switch e := q[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '0', '1', '2', '3', '4', '5', '6', '7', 'x', 'u', 'U':
				// Octal, hex and Unicode escapes: Literal never writes
				// them, so meeting one means a backslash was not doubled.
				return "", fmt.Errorf("escape \\%c: an undoubled backslash", e)
			default:
				b.WriteByte(e) // \\ and \' and any other character stand for themselves
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string literal")
}

// TestQuotingAgainstPostgres checks the reference parsers of the fuzz
// targets against PostgreSQL itself: the seeds and a few thousand random
// strings of quoting-relevant characters, quoted, are read back by the
// server as the same identifier (a column alias) and the same text, with
// standard_conforming_strings on and off.
func TestQuotingAgainstPostgres(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	conn := db.AppConn(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"'", `"`, `\`, "E", "e", "$", ";", "-", "/", "*", "\n", " ", "a", "0", "é", "U&", "x", "."}
	values := append([]string{}, seeds...)
	for range 2000 {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		values = append(values, b.String())
	}
	checked := 0
	for _, scs := range []string{"on", "off"} {
		_, err := conn.Exec(ctx, "SET standard_conforming_strings = "+scs)
		require.NoError(t, err)
		for _, v := range values {
			if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
				continue // PostgreSQL text holds neither
			}
			var got string
			sql := "SELECT " + sqlquote.Literal(v)
			if v != "" && len(v) <= 63 {
				sql += " AS " + sqlquote.Ident(v)
			}
			// The simple query protocol, straight: pgx's own simple
			// protocol refuses standard_conforming_strings = off.
			res, err := conn.PgConn().Exec(ctx, sql).ReadAll()
			require.NoError(t, err, "%s", sql)
			require.Len(t, res, 1)
			require.Len(t, res[0].Rows, 1)
			got = string(res[0].Rows[0][0])
			if v != "" && len(v) <= 63 {
				require.Equal(t, v, res[0].FieldDescriptions[0].Name, "identifier of %s", sql)
			}
			require.Equal(t, v, got, "standard_conforming_strings=%s: %s", scs, sql)
			ref, err := unquoteLiteral(sqlquote.Literal(v), scs == "on")
			require.NoError(t, err)
			require.Equal(t, got, ref, "the reference parser agrees with the server on %s", strconv.Quote(v))
			checked++
		}
	}
	t.Logf("%d values checked", checked)
}
