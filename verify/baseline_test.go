package verify_test

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/verify"
)

func TestBaseline(t *testing.T) {
	t.Parallel()
	known := verify.Finding{Severity: verify.SeverityError, Code: verify.CodeRLSDisabled, Kind: "table", Object: "public.a", Table: "public.a", Message: "old words"}
	warn := verify.Finding{Severity: verify.SeverityWarning, Code: verify.CodeNoAppRole, Kind: "role", Message: "m"}
	b := verify.NewBaseline(&verify.Report{Findings: []verify.Finding{known, warn, known}})
	var buf bytes.Buffer
	_, err := b.WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, `{
  "version": 1,
  "findings": [
    {"code":"no_app_role","kind":"role","object":"","severity":"warning"},
    {"code":"rls_disabled","kind":"table","object":"public.a","table":"public.a","severity":"error"}
  ]
}
`, buf.String(), "sorted, duplicates once, no message")
	back, err := verify.ReadBaseline(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	assert.Equal(t, b, back)

	// Messages and severities may change: the finding is still known.
	reworded := known
	reworded.Message, reworded.Severity = "new words", verify.SeverityWarning
	other := known
	other.Object, other.Table = "public.b", "public.b"
	fresh, accepted, stale := back.Split(&verify.Report{Findings: []verify.Finding{reworded, other}})
	assert.Equal(t, []verify.Finding{other}, fresh)
	assert.Equal(t, []verify.Finding{reworded}, accepted)
	assert.Equal(t, []verify.BaselineEntry{{Code: verify.CodeNoAppRole, Kind: "role", Severity: verify.SeverityWarning}}, stale)

	empty := verify.NewBaseline(&verify.Report{})
	buf.Reset()
	_, err = empty.WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, "{\n  \"version\": 1,\n  \"findings\": []\n}\n", buf.String())

	for _, bad := range []string{``, `[]`, `{"version": 1, "findings": [{"code": "x"}]}`, `{"version": 1, "extra": true}`, `{"version": 0}`} {
		_, err := verify.ReadBaseline(strings.NewReader(bad))
		assert.True(t, errors.Is(err, verify.ErrBadBaseline), "%q: %v", bad, err)
	}
}

func TestCodesSummarized(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("report.go")
	require.NoError(t, err)
	consts := regexp.MustCompile(`Code = "([a-z_]+)"`).FindAllStringSubmatch(string(src), -1)
	var want []string
	for _, c := range consts {
		want = append(want, c[1])
		assert.NotEmpty(t, verify.Code(c[1]).Summary(), c[1])
	}
	var got []string
	for _, c := range verify.Codes() {
		got = append(got, string(c))
	}
	assert.ElementsMatch(t, want, got)
	assert.Empty(t, verify.Code("no_such_code").Summary())
}
