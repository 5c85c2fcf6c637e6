package verify_test

import (
	"os"
	"testing"
)

func TestDumpCorpus(t *testing.T) {
	if os.Getenv("DUMP") == "" {
		t.Skip()
	}
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			db, _, opts := setupCorpusCase(t, c)
			r := mustVerify(t, db.AdminConn(t), opts)
			t.Logf("== %s (tables %v)%s", c.name, r.Tables, findingLines(r))
		})
	}
}
