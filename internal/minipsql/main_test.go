package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

func TestParse(t *testing.T) {
	t.Parallel()
	o, err := parse([]string{"postgres://x/db", "-At", "-c", "BEGIN", "-cSELECT 1", "-Atc", "COMMIT"})
	if err != nil {
		t.Fatal(err)
	}
	if o.conninfo != "postgres://x/db" || !o.tuplesOnly || strings.Join(o.commands, ";") != "BEGIN;SELECT 1;COMMIT" {
		t.Errorf("parse = %+v", o)
	}
	for _, args := range [][]string{
		{"postgres://x/db", "-f", "file.sql"},          // unsupported
		{"postgres://x/db", "-Atv", "ON_ERROR_STOP=1"}, // unsupported in a group
		{"postgres://x/db"},                            // no command
		{"-c", "SELECT 1"},                             // no URL
		{"postgres://x/db", "-c"},                      // -c without a value
		{"postgres://x/db", "postgres://y/db", "-c", "SELECT 1"},
	} {
		if _, err := parse(args); err == nil {
			t.Errorf("parse(%q) accepted", args)
		}
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	db := pgtenancytest.NewDB(t, nil)
	var out, errOut bytes.Buffer
	code := run([]string{db.OwnerURL, "-At", "-c", "CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, NULL), (2, 'x')",
		"-c", "BEGIN", "-c", "SELECT a, b FROM t ORDER BY a", "-c", "COMMIT"}, &out, &errOut)
	if code != 0 || out.String() != "1|\n2|x\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}

	out.Reset()
	if code := run([]string{db.OwnerURL, "-c", "SELECT a FROM t WHERE a = 2"}, &out, &errOut); code != 0 || out.String() != "a\n2\n(1 row)\n" {
		t.Errorf("with headers: exit %d, stdout %q", code, out.String())
	}

	out.Reset()
	errOut.Reset()
	code = run([]string{db.AppURL, "-Atc", "SELECT count(*) FROM t", "-c", "SELECT 1"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "ERROR:  permission denied for table t") || out.Len() != 0 {
		t.Errorf("error: exit %d, stdout %q, stderr %q; want exit 1, psql's ERROR line and no more commands", code, out.String(), errOut.String())
	}
}
