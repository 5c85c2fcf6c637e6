package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pgtenancy/pgtenancy/verify"
)

// The SARIF 2.1.0 output of pgtenancy verify (docs/verify.md): one run,
// one rule per code that the report holds, one result per finding, the
// object as a logical location (a database has no files).

const (
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	sarifVersion = "2.1.0"
	sarifHelpURI = "https://github.com/pgtenancy/pgtenancy/blob/main/docs/verify.md#findings"
	// sarifFingerprint names the partial fingerprint: a hash of what
	// identifies a finding in a baseline (code, kind, object, table).
	sarifFingerprint = "pgtenancyFinding/v1"
)

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string       `json:"id"`
	ShortDescription sarifMessage `json:"shortDescription"`
	HelpURI          string       `json:"helpUri"`
}

type sarifMessage struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	BaselineState       string             `json:"baselineState,omitempty"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          *sarifProperties   `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysicalLocation `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogicalLocation `json:"logicalLocations"`
}

// sarifPhysicalLocation points at a file of the repository: GitHub code
// scanning rejects results without one, and a database has no files, so
// it is the file --sarif-file names (the schema dump or a migration).
type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
}

type sarifArtifactLocation struct {
	URI string `json:"uri"`
}

type sarifLogicalLocation struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

type sarifProperties struct {
	Table string `json:"table,omitempty"`
	Fix   string `json:"fix,omitempty"`
}

// sarifLevel maps a severity to a SARIF level.
func sarifLevel(s verify.Severity) string {
	if s == verify.SeverityError {
		return "error"
	}
	return "warning"
}

// sarifKind maps the kind of a finding's object to a SARIF logical
// location kind: the predefined ones where one fits (function, variable
// for a setting), else the kind itself with spaces as dashes.
func sarifKind(kind string) string {
	switch kind {
	case "function":
		return "function"
	case "setting":
		return "variable"
	}
	return strings.ReplaceAll(kind, " ", "-")
}

// writeSARIF writes the findings as a SARIF 2.1.0 log. With a baseline,
// accepted findings are results too, with baselineState "unchanged" and an
// external suppression; the others are "new". With file, a path relative to
// the repository's root, every result has it as its physical location too.
func writeSARIF(w io.Writer, fresh, accepted []verify.Finding, baseline, file string) error {
	run := sarifRun{
		Tool:    sarifTool{Driver: sarifDriver{Name: "pgtenancy verify", InformationURI: "https://github.com/pgtenancy/pgtenancy", Rules: []sarifRule{}}},
		Results: []sarifResult{},
	}
	ruleIndex := map[verify.Code]int{}
	var codes []verify.Code
	for _, f := range slices.Concat(fresh, accepted) {
		if _, ok := ruleIndex[f.Code]; !ok {
			ruleIndex[f.Code] = -1
			codes = append(codes, f.Code)
		}
	}
	slices.Sort(codes)
	for i, c := range codes {
		ruleIndex[c] = i
		desc := c.Summary()
		if desc == "" {
			desc = string(c)
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{ID: string(c), ShortDescription: sarifMessage{desc}, HelpURI: sarifHelpURI})
	}
	add := func(f verify.Finding, state string) {
		name := f.Object
		if name == "" {
			name = f.Kind
		}
		res := sarifResult{
			RuleID: string(f.Code), RuleIndex: ruleIndex[f.Code], Level: sarifLevel(f.Severity),
			Message: sarifMessage{f.Message},
			Locations: []sarifLocation{{LogicalLocations: []sarifLogicalLocation{{
				Name: name, FullyQualifiedName: qualifiedName(f), Kind: sarifKind(f.Kind),
			}}}},
			PartialFingerprints: map[string]string{sarifFingerprint: fingerprint(f)},
			BaselineState:       state,
		}
		if file != "" {
			res.Locations[0].PhysicalLocation = &sarifPhysicalLocation{ArtifactLocation: sarifArtifactLocation{URI: file}}
		}
		if f.Table != "" || f.Fix != "" {
			res.Properties = &sarifProperties{Table: f.Table, Fix: f.Fix}
		}
		if state == "unchanged" {
			res.Suppressions = []sarifSuppression{{Kind: "external", Justification: "accepted by the baseline " + baseline}}
		}
		run.Results = append(run.Results, res)
	}
	state := ""
	if baseline != "" {
		state = "new"
	}
	for _, f := range fresh {
		add(f, state)
	}
	for _, f := range accepted {
		add(f, "unchanged")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: sarifSchema, Version: sarifVersion, Runs: []sarifRun{run}})
}

// sarifArtifact checks --sarif-file and returns it as the relative URI of
// a SARIF artifactLocation: a path relative to the repository's root,
// inside it, with forward slashes, percent-encoded. Only with --format
// sarif.
func sarifArtifact(file, format string) (string, error) {
	if file == "" {
		return "", nil
	}
	if format != "sarif" {
		return "", fmt.Errorf("--sarif-file needs --format sarif")
	}
	p := filepath.ToSlash(file)
	if filepath.IsAbs(file) || path.IsAbs(p) || strings.Contains(p, ":") {
		return "", fmt.Errorf("--sarif-file %q: want a path relative to the repository's root", file)
	}
	p = path.Clean(p)
	if p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("--sarif-file %q: want a file inside the repository", file)
	}
	return (&url.URL{Path: p}).EscapedPath(), nil
}

// fingerprint identifies a finding across runs, as a baseline does.
func fingerprint(f verify.Finding) string {
	h := sha256.Sum256([]byte(strings.Join([]string{string(f.Code), f.Kind, f.Object, f.Table}, "\x00")))
	return hex.EncodeToString(h[:16])
}

// qualifiedName names a finding's object uniquely: policies, constraints
// and indexes are named per table, so the table goes first.
func qualifiedName(f verify.Finding) string {
	if f.Table != "" && f.Object != f.Table && !strings.HasPrefix(f.Object, f.Table+".") {
		return f.Kind + ":" + f.Table + "/" + f.Object
	}
	return f.Kind + ":" + f.Object
}
