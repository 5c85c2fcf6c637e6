package verify

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// BaselineVersion is the version of the baseline file format that
// [Baseline.WriteTo] writes and [ReadBaseline] reads.
const BaselineVersion = 1

// Baseline is a set of findings accepted as known, so that a CI job fails
// only on new ones (`pgtenancy verify --baseline FILE`). A finding is
// identified by its code, kind, object and table: not by its message or
// fix, which a newer version may word differently. Its file form is JSON,
// sorted, with no timestamp, so that writing the same findings twice gives
// the same bytes (docs/verify.md):
//
//	{
//	  "version": 1,
//	  "findings": [
//	    {"code": "key_without_tenant", "kind": "index", "object": "notes_pkey", "table": "public.notes", "severity": "warning"}
//	  ]
//	}
type Baseline struct {
	Version  int             `json:"version"`
	Findings []BaselineEntry `json:"findings"`
}

// BaselineEntry is one accepted finding. Severity is informative: a
// finding is accepted whatever its severity now.
type BaselineEntry struct {
	Code     Code     `json:"code"`
	Kind     string   `json:"kind"`
	Object   string   `json:"object"`
	Table    string   `json:"table,omitempty"`
	Severity Severity `json:"severity"`
}

func (e BaselineEntry) key() BaselineEntry { e.Severity = ""; return e }

func entryOf(f Finding) BaselineEntry {
	return BaselineEntry{Code: f.Code, Kind: f.Kind, Object: f.Object, Table: f.Table, Severity: f.Severity}
}

func compareEntries(a, b BaselineEntry) int {
	return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Object, b.Object), strings.Compare(string(a.Code), string(b.Code)),
		strings.Compare(string(a.Severity), string(b.Severity)))
}

// NewBaseline returns a baseline that accepts every finding of r.
func NewBaseline(r *Report) *Baseline {
	b := &Baseline{Version: BaselineVersion, Findings: []BaselineEntry{}}
	for _, f := range r.Findings {
		b.Findings = append(b.Findings, entryOf(f))
	}
	b.normalize()
	return b
}

func (b *Baseline) normalize() {
	slices.SortFunc(b.Findings, compareEntries)
	b.Findings = slices.CompactFunc(b.Findings, func(x, y BaselineEntry) bool { return x.key() == y.key() })
}

// ErrBadBaseline matches the errors of [ReadBaseline] about the file's
// content (not about reading it) with errors.Is.
var ErrBadBaseline = errors.New("verify: bad baseline file")

// ReadBaseline reads a baseline written by [Baseline.WriteTo].
func ReadBaseline(r io.Reader) (*Baseline, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("verify: reading the baseline: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Baseline
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBaseline, err)
	}
	if b.Version != BaselineVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadBaseline, b.Version, BaselineVersion)
	}
	for i, e := range b.Findings {
		if e.Code == "" || e.Kind == "" {
			return nil, fmt.Errorf("%w: finding %d has no code or kind", ErrBadBaseline, i)
		}
	}
	if b.Findings == nil {
		b.Findings = []BaselineEntry{}
	}
	b.normalize()
	return &b, nil
}

// WriteTo writes the baseline as indented JSON, one finding per line.
func (b *Baseline) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n  \"version\": %d,\n  \"findings\": [", b.Version)
	for i, e := range b.Findings {
		line, err := json.Marshal(e)
		if err != nil {
			return 0, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString("\n    ")
		buf.Write(line)
	}
	if len(b.Findings) > 0 {
		buf.WriteString("\n  ")
	}
	buf.WriteString("]\n}\n")
	n, err := w.Write(buf.Bytes())
	return int64(n), err
}

// Split divides the findings of r into those the baseline does not
// accept (new) and those it does (accepted), each in the report's order;
// stale are the baseline's entries that matched no finding (fixed since).
func (b *Baseline) Split(r *Report) (fresh, accepted []Finding, stale []BaselineEntry) {
	known := map[BaselineEntry]bool{}
	for _, e := range b.Findings {
		known[e.key()] = true
	}
	used := map[BaselineEntry]bool{}
	for _, f := range r.Findings {
		k := entryOf(f).key()
		if known[k] {
			accepted = append(accepted, f)
			used[k] = true
		} else {
			fresh = append(fresh, f)
		}
	}
	for _, e := range b.Findings {
		if !used[e.key()] {
			stale = append(stale, e)
		}
	}
	return fresh, accepted, stale
}
