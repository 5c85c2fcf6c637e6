package verify

import (
	"os"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/internal/nodetree"
	"github.com/pgtenancy/pgtenancy/internal/snapshot"
)

// FuzzClassify checks that no parse tree, however odd, makes the
// classifier panic: the trees come from databases verify audits.
func FuzzClassify(f *testing.F) {
	data, _ := os.ReadFile("../internal/nodetree/testdata/policies.txt")
	for _, l := range strings.Split(string(data), "\n") {
		f.Add(l)
	}
	f.Add(`{BOOLEXPR :boolop not :args ({CONST :consttype 16 :constisnull false :constvalue 1 [ 1 0 0 0 0 0 0 0 ]})}`)
	f.Add(`{NULLTEST :arg {VAR :varno 1 :varattno 1 :varlevelsup 0} :nulltesttype 0}`)
	f.Add(`{COALESCEEXPR :args ({VAR :varno 1 :varattno 1 :varlevelsup 0} {CONST :consttype 16 :constisnull false :constvalue 1 [ 1 ]})}`)
	a := &snapshot.Audit{
		Operators: map[uint32]string{410: "=", 96: "=", 3963: "->>", 525: ">="},
		Funcs: map[uint32]*snapshot.ExprFunc{
			2077:  {OID: 2077, Schema: "pg_catalog", Name: "current_setting"},
			3294:  {OID: 3294, Schema: "pg_catalog", Name: "current_setting"},
			16426: {OID: 16426, Schema: "public", Name: "tid", Volatile: "s", Language: "sql", Body: `{QUERY :rtable <> :targetList ({TARGETENTRY :expr {FUNCEXPR :funcid 16426 :args <>}})}`},
			16427: {OID: 16427, Schema: "public", Name: "tid2", Volatile: "i", Language: "plpgsql", Source: "BEGIN RETURN current_setting('x')::int; END"},
		},
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := nodetree.Parse(s); err != nil {
			return
		}
		for _, rel := range []func(uint32) bool{nil, func(o uint32) bool { return o%2 == 0 }} {
			c := &classifier{r: newResolver(a), cols: map[int16]string{1: "tenant_id", 2: "id"}, tenantRel: rel, tenantCol: "tenant_id"}
			if v := c.classifyTree(s); v == nil {
				t.Fatal("no verdict")
			}
		}
		recognizeGetter(s)
	})
}
