// Package sessionsql finds, in SQL text, the statements that leave state in
// the session after their transaction ends: temporary tables, cursors WITH
// HOLD, LISTEN, session-level settings and session-level advisory locks.
//
// It reads SQL with a lexer that follows PostgreSQL's rules for string
// literals (standard, E'...', U&'...', dollar-quoted), quoted identifiers and
// comments (nested /* */ included), so a keyword inside any of them is not
// seen, and a statement hidden after a comment is. It errs on the side of
// finding state: SQL it cannot read precisely is reported as creating
// more state, never less. It cannot see inside functions, procedures or
// triggers that the SQL calls: their state is invisible here.
package sessionsql

import "strings"

// Kind is a set of kinds of session state.
type Kind uint8

// The kinds of session state that SQL can leave behind.
const (
	// TempObjects: CREATE TEMP TABLE (without ON COMMIT DROP), VIEW,
	// SEQUENCE, an object created in pg_temp, SELECT ... INTO TEMP.
	TempObjects Kind = 1 << iota
	// HoldCursors: DECLARE ... WITH HOLD.
	HoldCursors
	// Listen: LISTEN.
	Listen
	// Settings: SET (not SET LOCAL) and set_config(..., false) of the
	// settings named in [State.Settings].
	Settings
	// AllSettings: a setting set at session level whose name the SQL does
	// not spell out (set_config with a computed name), or a SET that the
	// lexer cannot read.
	AllSettings
	// AdvisoryLocks: pg_advisory_lock, pg_advisory_lock_shared and their
	// pg_try_ forms (the session-level ones, not the _xact_ ones).
	AdvisoryLocks
	// Opaque: SQL whose effect cannot be read from its text (DO, EXECUTE
	// of a prepared statement): any of the above.
	Opaque
)

// All is every kind of state.
const All = TempObjects | HoldCursors | Listen | Settings | AllSettings | AdvisoryLocks | Opaque

// State is what SQL may leave in the session when it runs.
type State struct {
	Kinds Kind
	// Settings are the names of the settings set at session level, lower
	// case, without duplicates, when Kinds has Settings.
	Settings []string
}

// Empty reports whether the SQL leaves nothing.
func (s State) Empty() bool { return s.Kinds == 0 }

// Union returns the state of running both.
func (s State) Union(o State) State {
	out := State{Kinds: s.Kinds | o.Kinds}
	if len(o.Settings) == 0 {
		out.Settings = s.Settings
		return out
	}
	if len(s.Settings) == 0 {
		out.Settings = o.Settings
		return out
	}
	out.Settings = append([]string(nil), s.Settings...)
	for _, n := range o.Settings {
		out.addSetting(n)
	}
	return out
}

func (s *State) addSetting(name string) {
	for _, n := range s.Settings {
		if n == name {
			return
		}
	}
	s.Kinds |= Settings
	s.Settings = append(s.Settings, name)
}

// Scan returns the session state that sql, one or more statements, may
// leave behind.
func Scan(sql string) State {
	toks, ambiguous := lex(sql, false)
	st := scanTokens(toks)
	if ambiguous {
		// A plain string literal holds a backslash: it ends elsewhere when
		// standard_conforming_strings is off. Read it both ways.
		alt, _ := lex(sql, true)
		st = st.Union(scanTokens(alt))
	}
	return st
}

func scanTokens(toks []token) State {
	var st State
	calls(toks, &st)
	start := 0
	for i := 0; i <= len(toks); i++ {
		if i == len(toks) || toks[i].is(tPunct, ";") {
			statement(toks[start:i], &st)
			start = i + 1
		}
	}
	return st
}

// calls finds the function calls that create session state, anywhere.
func calls(toks []token, st *State) {
	for i := 0; i+1 < len(toks); i++ {
		if !toks[i+1].is(tPunct, "(") {
			continue
		}
		switch toks[i].name() {
		case "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock", "pg_try_advisory_lock_shared":
			st.Kinds |= AdvisoryLocks
		case "set_config":
			setConfig(args(toks, i+1), st)
		}
	}
}

// args returns the arguments of the call whose "(" is toks[open], split at
// the commas of its own level.
func args(toks []token, open int) [][]token {
	var out [][]token
	depth, start := 0, open+1
	for i := open; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.is(tPunct, "(") || t.is(tPunct, "["):
			depth++
		case t.is(tPunct, ")") || t.is(tPunct, "]"):
			depth--
			if depth == 0 {
				return append(out, toks[start:i])
			}
		case depth == 1 && t.is(tPunct, ","):
			out = append(out, toks[start:i])
			start = i + 1
		case t.is(tPunct, ";"):
			return append(out, toks[start:i])
		}
	}
	return append(out, toks[start:])
}

// setConfig reads set_config(name, value, is_local).
func setConfig(a [][]token, st *State) {
	if len(a) == 3 && isTrue(a[2]) {
		return // transaction-local
	}
	if len(a) >= 1 && len(a[0]) > 0 && a[0][0].kind == tString && a[0][0].exact &&
		(len(a[0]) == 1 || a[0][1].is(tPunct, "::")) && a[0][0].text != "" && !strings.ContainsRune(a[0][0].text, 0) {
		st.addSetting(strings.ToLower(a[0][0].text))
		return
	}
	st.Kinds |= AllSettings
}

// isTrue reports whether an argument is a constant true.
func isTrue(arg []token) bool {
	if len(arg) == 0 || (len(arg) > 1 && !arg[1].is(tPunct, "::")) {
		return false
	}
	switch t := arg[0]; t.kind {
	case tIdent:
		return t.text == "true"
	case tString:
		switch strings.ToLower(strings.TrimSpace(t.text)) {
		case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
			return t.exact
		}
	}
	return false
}

// statement reads one statement.
func statement(toks []token, st *State) {
	toks = skipExplain(toks)
	if len(toks) == 0 {
		return
	}
	if toks[0].is(tPunct, "(") {
		selectInto(toks, st)
		return
	}
	switch toks[0].keyword() {
	case "create":
		create(toks, st)
	case "select", "with":
		selectInto(toks, st)
	case "declare":
		declare(toks, st)
	case "listen":
		st.Kinds |= Listen
	case "set":
		set(toks[1:], st)
	case "do", "execute":
		st.Kinds |= Opaque
	case "prepare":
		// The statement runs later, by EXECUTE (opaque); read it anyway.
		for i, t := range toks {
			if t.keyword() == "as" {
				statement(toks[i+1:], st)
				break
			}
		}
	}
}

// declare reads DECLARE name ... CURSOR [WITH | WITHOUT HOLD] FOR query.
func declare(toks []token, st *State) {
	hold := false
	for i := 1; i < len(toks); i++ {
		k := toks[i].keyword()
		if k == "for" {
			break
		}
		if k == "hold" && i > 0 && toks[i-1].keyword() == "with" {
			hold = true
		}
	}
	if hold {
		st.Kinds |= HoldCursors
	}
}

// skipExplain skips EXPLAIN and its options: EXPLAIN ANALYZE runs the
// statement.
func skipExplain(toks []token) []token {
	if len(toks) == 0 || toks[0].keyword() != "explain" {
		return toks
	}
	i := 1
	if i < len(toks) && toks[i].is(tPunct, "(") {
		for depth := 0; i < len(toks); i++ {
			if toks[i].is(tPunct, "(") {
				depth++
			} else if toks[i].is(tPunct, ")") {
				depth--
				if depth == 0 {
					i++
					break
				}
			}
		}
	}
	for i < len(toks) {
		switch toks[i].keyword() {
		case "analyze", "analyse", "verbose":
			i++
			continue
		}
		break
	}
	return toks[i:]
}

// create reads CREATE [OR REPLACE] [GLOBAL | LOCAL] [TEMP | TEMPORARY] ...
func create(toks []token, st *State) {
	i := 1
	temp := false
	for ; i < len(toks); i++ {
		k := toks[i].keyword()
		if k == "or" || k == "replace" || k == "global" || k == "local" || k == "unlogged" {
			continue
		}
		if k == "temp" || k == "temporary" {
			temp = true
			continue
		}
		break
	}
	table := i < len(toks) && toks[i].keyword() == "table"
	if !temp && !mentionsTempSchema(toks) {
		return
	}
	if table && onCommitDrop(toks[i+1:]) {
		return // dropped when its transaction ends
	}
	st.Kinds |= TempObjects
}

// mentionsTempSchema reports whether a name qualified by pg_temp (or
// pg_temp_N) occurs.
func mentionsTempSchema(toks []token) bool {
	for i := 0; i+1 < len(toks); i++ {
		n := toks[i].name()
		if (n == "pg_temp" || strings.HasPrefix(n, "pg_temp_")) && toks[i+1].is(tPunct, ".") {
			return true
		}
	}
	return false
}

// onCommitDrop reports whether a CREATE TABLE has ON COMMIT DROP (at its own
// level, before the AS of CREATE TABLE AS).
func onCommitDrop(toks []token) bool {
	depth := 0
	for i, t := range toks {
		switch {
		case t.is(tPunct, "("):
			depth++
		case t.is(tPunct, ")"):
			depth--
		case depth == 0 && t.keyword() == "as":
			return false
		case depth == 0 && t.keyword() == "on" && i+2 < len(toks) &&
			toks[i+1].keyword() == "commit" && toks[i+2].keyword() == "drop":
			return true
		}
	}
	return false
}

// selectInto reads SELECT ... INTO [GLOBAL | LOCAL] TEMP name.
func selectInto(toks []token, st *State) {
	depth := 0
	for i, t := range toks {
		switch {
		case t.is(tPunct, "("):
			depth++
		case t.is(tPunct, ")"):
			depth--
		case depth == 0 && t.keyword() == "into":
			j := i + 1
			for j < len(toks) && (toks[j].keyword() == "global" || toks[j].keyword() == "local") {
				j++
			}
			if j < len(toks) && (toks[j].keyword() == "temp" || toks[j].keyword() == "temporary") {
				st.Kinds |= TempObjects
				return
			}
			if mentionsTempSchema(toks[j:min(j+2, len(toks))]) {
				st.Kinds |= TempObjects
				return
			}
		}
	}
}

// set reads what follows SET.
func set(toks []token, st *State) {
	if len(toks) == 0 {
		return
	}
	switch toks[0].keyword() {
	case "local", "transaction", "constraints":
		return
	case "session":
		toks = toks[1:]
		if len(toks) == 0 {
			st.Kinds |= AllSettings
			return
		}
		switch toks[0].keyword() {
		case "characteristics":
			st.addSetting("default_transaction_isolation")
			st.addSetting("default_transaction_read_only")
			st.addSetting("default_transaction_deferrable")
			return
		case "authorization":
			st.addSetting("session_authorization")
			return
		}
	}
	if name, ok := settingName(toks); ok {
		st.addSetting(name)
		return
	}
	st.Kinds |= AllSettings
}

// settingName reads the name of SET name {TO | =} ... and of the special
// forms (TIME ZONE, NAMES, SCHEMA, XML OPTION, ROLE).
func settingName(toks []token) (string, bool) {
	switch k := toks[0].keyword(); {
	case k == "time" && len(toks) > 1 && toks[1].keyword() == "zone":
		return "timezone", true
	case k == "names":
		return "client_encoding", true
	case k == "schema":
		return "search_path", true
	case k == "xml" && len(toks) > 1 && toks[1].keyword() == "option":
		return "xmloption", true
	case k == "role":
		return "role", true
	}
	var parts []string
	i := 0
	for ; i < len(toks); i += 2 {
		t := toks[i]
		if t.kind != tIdent && t.kind != tQIdent || (t.kind == tQIdent && !t.exact) || t.text == "" {
			return "", false
		}
		parts = append(parts, strings.ToLower(t.text))
		if i+1 >= len(toks) || !toks[i+1].is(tPunct, ".") {
			i++
			break
		}
	}
	if i >= len(toks) || !(toks[i].keyword() == "to" || toks[i].is(tOp, "=")) {
		return "", false
	}
	name := strings.Join(parts, ".")
	if strings.ContainsRune(name, 0) {
		return "", false
	}
	return name, true
}
