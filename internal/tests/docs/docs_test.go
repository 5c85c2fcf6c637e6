// Package docs tests pgtenancy's guides (docs/*.md and the README): it runs
// every shell command they show, so the docs cannot drift from the code.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/pgtenancy/pgtenancy/internal/ci"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }

// ranElsewhere are commands the docs show that this test does not run,
// with where they are run instead.
var ranElsewhere = map[string]string{
	"make test": ".ci/run runs it",
	"make demo": ".ci/run runs it",
	`make test-matrix PG_MATRIX="15 16 17 18"`:                       ".ci/run runs make test on 15 and make test-matrix on 16, 17 and 18",
	"PGTENANCY_PG_VERSION=17 go test ./...":                          "make test-matrix runs the suite so on each version; this test is part of it",
	"make run-example":                                               "the storefront test serves the same program",
	"go get github.com/pgtenancy/pgtenancy":                          "adds the module to a user's project; nothing to run here",
	"go install github.com/pgtenancy/pgtenancy/cmd/pgtenancy@latest": "this test builds the same command from the checkout",
	"go install github.com/jackc/tern/v2@latest":                     "this test installs tern v2.3.4 (the version go.mod uses)",
	"apt-get install postgresql":                                     ".ci/run runs it on machines without the server",
	"apt-get install pgbouncer":                                      ".ci/run runs it on machines without pgbouncer",
}

// storeApp is the store application before pgtenancy: what a reader starts from.
var storeApp = &pgtenancytest.Template{
	Name: "docs_store",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.DDL(rls.BigInt)+testschema.Seed(rls.BigInt))
		return err
	},
}

// storeSchema is the store application's schema without any store: the
// target of the guides that move a tenant ($TARGET_DATABASE_URL).
var storeSchema = &pgtenancytest.Template{
	Name: "docs_store_schema",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.DDL(rls.BigInt))
		return err
	},
}

type block struct {
	file string
	line int
	text string
}

var fence = regexp.MustCompile("^```(\\w*)")

// shellBlocks returns the ```sh blocks of a markdown file.
func shellBlocks(t *testing.T, path string) []block {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var blocks []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := fence.FindStringSubmatch(line); m != nil {
			switch {
			case cur != nil:
				blocks = append(blocks, *cur)
				cur = nil
			case m[1] == "sh":
				cur = &block{file: path, line: n + 1}
			default:
				// another fenced block: skip to its end
				for sc.Scan() {
					n++
					if strings.HasPrefix(sc.Text(), "```") {
						break
					}
				}
			}
			continue
		}
		if cur != nil {
			cur.text += line + "\n"
		}
	}
	require.NoError(t, sc.Err())
	return blocks
}

// TestShellBlocks runs the sh blocks of each guide in order, in one bash
// session per block, all of a file sharing a working directory and a fresh
// database holding the store application (stores, products, purchases,
// currencies; no pgtenancy yet). $DATABASE_URL is the owner of the tables,
// $APP_ROLE the application role, $APP_DATABASE_URL its URL, and pgtenancy and
// tern are on PATH. A guide that mentions $TARGET_DATABASE_URL gets a second
// database, with the store's schema and no store, as its owner.
func TestShellBlocks(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "pgtenancy"), "../../../cmd/pgtenancy")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	tern := exec.Command("go", "install", "github.com/jackc/tern/v2@v2.3.4")
	tern.Env = append(os.Environ(), "GOBIN="+bin)
	out, err = tern.CombinedOutput()
	require.NoError(t, err, "install tern: %s", out)
	// The guides use psql. A machine without a working one (with only Go,
	// the tests run a pinned server build, which has no client programs)
	// runs their psql lines with a stand-in that knows just those options.
	if out, err := exec.Command("psql", "--version").CombinedOutput(); err != nil {
		if ci.On() {
			t.Fatalf("psql --version: %v: %s\nOn CI, install the PostgreSQL client (apt-get install postgresql-client).", err, out)
		}
		t.Logf("no working psql (%v: %s): the guides' psql lines run with docs/internal/minipsql", err, bytes.TrimSpace(out))
		out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "psql"), "../../minipsql").CombinedOutput()
		require.NoError(t, err, "build minipsql: %s", out)
	}

	files, err := filepath.Glob("../../../docs/*.md")
	require.NoError(t, err)
	files = append([]string{"../../../README.md"}, files...)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			blocks := shellBlocks(t, file)
			if len(blocks) == 0 {
				return
			}
			db := pgtenancytest.NewDB(t, storeApp)
			var target string
			if b, err := os.ReadFile(file); err == nil && strings.Contains(string(b), "$TARGET_DATABASE_URL") {
				target = pgtenancytest.NewDB(t, storeSchema).OwnerURL
			}
			dir := t.TempDir()
			for _, b := range blocks {
				script := b.text
				var run []string
				for _, l := range strings.Split(strings.ReplaceAll(script, "\\\n", " "), "\n") {
					cmd := strings.TrimSpace(strings.SplitN(l, "#", 2)[0])
					if cmd == "" {
						continue
					}
					if _, ok := ranElsewhere[cmd]; ok {
						continue
					}
					run = append(run, expectExit(l))
				}
				if len(run) == 0 {
					continue
				}
				c := exec.Command("bash", "-euo", "pipefail", "-c", strings.Join(run, "\n"))
				c.Dir = dir
				c.Env = append(os.Environ(),
					"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
					"DATABASE_URL="+db.OwnerURL,
					"APP_DATABASE_URL="+db.AppURL,
					"APP_ROLE="+pgtenancytest.AppRole,
					"TARGET_DATABASE_URL="+target,
					"NO_COLOR=1",
				)
				out, err := c.CombinedOutput()
				require.NoError(t, err, "%s:%d: the block failed:\n%s\noutput:\n%s", b.file, b.line, script, out)
				t.Logf("%s:%d ran:\n%s", b.file, b.line, out)
			}
		})
	}
}

var exitsNote = regexp.MustCompile(`^(.*?)\s*#\s*exits (\d+)\s*$`)

// expectExit turns a line annotated "# exits N" into one that fails unless
// the command exits with N.
func expectExit(line string) string {
	m := exitsNote.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	return fmt.Sprintf("set +e; %s; rc=$?; set -e; [ \"$rc\" -eq %s ] || { echo \"expected exit %s, got $rc\" >&2; exit 1; }", m[1], m[2], m[2])
}

// TestRanElsewhere keeps the list of commands run elsewhere honest: each
// make target exists.
func TestRanElsewhere(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	require.NoError(t, err)
	for cmd := range ranElsewhere {
		if args, ok := strings.CutPrefix(cmd, "make "); ok {
			target := strings.Fields(args)[0]
			require.Contains(t, string(mk), "\n"+target+":", fmt.Sprintf("Makefile target %q", target))
		}
	}
}
