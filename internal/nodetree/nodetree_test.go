package nodetree_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/internal/nodetree"
)

func TestParseConst(t *testing.T) {
	v, err := nodetree.Parse(`{OPEXPR :opno 410 :args ({VAR :varno 1 :varattno 1 :location 29} {FUNCEXPR :funcid 2077 :args ({CONST :consttype 25 :constisnull false :constvalue 14 [ 56 0 0 0 97 112 112 46 116 101 110 97 110 116 ]}) :location 41}) :location 39}`)
	require.NoError(t, err)
	require.True(t, v.Is("OPEXPR"))
	assert.Equal(t, "410", v.Node.Str("opno"))
	args := v.Node.Get("args").Items()
	require.Len(t, args, 2)
	assert.True(t, args[0].Is("VAR"))
	assert.Equal(t, "1", args[0].Node.Str("varattno"))
	c := args[1].Node.Get("args").Items()[0]
	require.True(t, c.Is("CONST"))
	s, ok := nodetree.Text(c.Node.Get("constvalue"))
	assert.True(t, ok)
	assert.Equal(t, "app.tenant", s)
}

func TestParseValues(t *testing.T) {
	v, err := nodetree.Parse(`{X :a <> :b (i 1 2) :c ("id" "a\ b" "") :d \-1 :e -1 :f 1 [ 1 0 0 0 0 0 0 0 ] :g <> :h 8 [ -61 -87 0 0 0 0 0 0 ] :i true}`)
	require.NoError(t, err)
	n := v.Node
	assert.Equal(t, nodetree.Null, n.Get("a").Kind)
	assert.Equal(t, []nodetree.Value{{Kind: nodetree.Token, Tok: "i"}, {Kind: nodetree.Token, Tok: "1"}, {Kind: nodetree.Token, Tok: "2"}}, n.Get("b").Items())
	var names []string
	for _, it := range n.Get("c").Items() {
		names = append(names, it.Tok)
	}
	assert.Equal(t, []string{"id", "a b", ""}, names)
	assert.Equal(t, "-1", n.Str("d"))
	assert.Equal(t, "-1", n.Str("e"))
	assert.True(t, nodetree.True(n.Get("f")))
	assert.Equal(t, []byte{0xc3, 0xa9, 0, 0, 0, 0, 0, 0}, n.Get("h").Bytes)
	assert.Equal(t, "true", n.Str("i"))
	assert.Equal(t, nodetree.Null, n.Get("missing").Kind)
	var nilTree *nodetree.Tree
	assert.Equal(t, nodetree.Null, nilTree.Get("x").Kind)
}

func TestText(t *testing.T) {
	for _, c := range []struct {
		bytes []byte
		want  string
		ok    bool
	}{
		{[]byte{16, 0, 0, 0}, "", true},      // '' little-endian
		{[]byte{0, 0, 0, 5, 'x'}, "x", true}, // big-endian 4-byte header
		{[]byte{7, 'a', 'b'}, "ab", true},    // short header, little-endian
		{[]byte{0x83, 'a', 'b'}, "ab", true}, // short header, big-endian
		{[]byte{200, 0, 0, 0}, "", false},    // longer than its bytes
		{nil, "", false},
	} {
		got, ok := nodetree.Text(nodetree.Value{Kind: nodetree.Datum, Bytes: c.bytes})
		assert.Equal(t, c.ok, ok, "%v", c.bytes)
		assert.Equal(t, c.want, got, "%v", c.bytes)
	}
	_, ok := nodetree.Text(nodetree.Value{Kind: nodetree.Token, Tok: "x"})
	assert.False(t, ok)
}

// TestParseServerTrees parses trees that PostgreSQL 15 wrote: policies
// with a scalar subquery (pgtenancy's form), EXISTS, SQL function calls,
// and a BEGIN ATOMIC body.
func TestParseServerTrees(t *testing.T) {
	data, err := os.ReadFile("testdata/policies.txt")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 4)
	var texts []string
	for _, l := range lines {
		v, err := nodetree.Parse(l)
		require.NoError(t, err, l)
		nodetree.Walk(v, func(x nodetree.Value) bool {
			if x.Is("CONST") && x.Node.Str("consttype") == "25" {
				if s, ok := nodetree.Text(x.Node.Get("constvalue")); ok {
					texts = append(texts, s)
				}
			}
			return true
		})
	}
	assert.Equal(t, []string{"app.current_tenant_xact", "epoch", "app.current_tenant", "", "app.tenant", ""}, texts)
	v, _ := nodetree.Parse(lines[3]) // BEGIN ATOMIC: a list of lists of queries
	require.Equal(t, nodetree.List, v.Kind)
	assert.True(t, v.List[0].List[0].Is("QUERY"))
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "{", "{X", "{X :a", "(", ")", "{X :a 1 [ 1", "{X :a 1 [ 300 ]}", "{X :a 1 [ x ]}", "{}", "<> <>", "{X y}", "{X :a 1 [ - ]}"} {
		_, err := nodetree.Parse(s)
		assert.True(t, errors.Is(err, nodetree.ErrSyntax), "%q: %v", s, err)
	}
	_, err := nodetree.Parse(strings.Repeat("(", 5000) + strings.Repeat(")", 5000))
	assert.ErrorIs(t, err, nodetree.ErrSyntax)
}

// FuzzParse checks that Parse never panics and that what it accepts it
// accepts again after walking.
func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("testdata/policies.txt")
	for _, l := range strings.Split(string(data), "\n") {
		f.Add(l)
	}
	f.Add(`{X :a ("b" \"c) :d 2 [ 1 -2 ]}`)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := nodetree.Parse(s)
		if err != nil {
			return
		}
		n := 0
		nodetree.Walk(v, func(x nodetree.Value) bool {
			n++
			_, _ = nodetree.Text(x)
			return true
		})
		if n == 0 {
			t.Fatal("walk visited nothing")
		}
	})
}
