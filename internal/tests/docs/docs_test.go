// Package docs tests pgtenancy's guides (docs/*.md and the README): it runs
// every shell command they show, so the docs cannot drift from the code.
package docs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
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
	"go get github.com/pgtenancy/pgtenancy/integrations":             "adds the integrations module to a user's project; TestGoExamples runs the guides' examples",
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

// railsApp is the Rails-shaped application that docs/adopting.md adopts.
var railsApp = &pgtenancytest.Template{
	Name: "docs_rails",
	Setup: func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, testschema.RailsDDL+testschema.RailsSeed)
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

// guides maps a guide to the application it starts from (storeApp when
// absent), and to what the test checks once its blocks ran.
var guides = map[string]struct {
	app   *pgtenancytest.Template
	after func(t *testing.T, env guideEnv)
}{
	"adopting.md": {railsApp, checkAdopted},
}

// guideEnv is what a guide's blocks ran against.
type guideEnv struct {
	db       *pgtenancytest.DB
	adminURL string // the admin role of docs/adopting.md, created by the guide
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
// currencies; no pgtenancy yet), or for docs/adopting.md the Rails-shaped
// one (testschema.RailsDDL). $DATABASE_URL is the owner of the tables,
// $APP_ROLE the application role, $APP_DATABASE_URL its URL,
// $SUPERUSER_DATABASE_URL a superuser's, $ADMIN_ROLE and $ADMIN_PASSWORD
// name a role for the guide to create (dropped afterwards) and
// $ADMIN_DATABASE_URL connects as it; pgtenancy and tern are on PATH. Then
// it runs the guide's checks, if any (guides). $REPO is the checkout (to
// run the runnable examples that a guide shows). A guide that mentions
// $TARGET_DATABASE_URL gets a second database, with the store's schema and
// no store, as its owner.
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

	repo, err := filepath.Abs("../../..")
	require.NoError(t, err)
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
			app, after := storeApp, func(*testing.T, guideEnv) {}
			if g, ok := guides[filepath.Base(file)]; ok {
				app, after = g.app, g.after
			}
			adminRole, adminPassword := adminRoleFor(t)
			db := pgtenancytest.NewDB(t, app)
			adminURL := roleURL(t, db.OwnerURL, adminRole, adminPassword)
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
					"SUPERUSER_DATABASE_URL="+db.AdminURL,
					"ADMIN_ROLE="+adminRole,
					"ADMIN_PASSWORD="+adminPassword,
					"ADMIN_DATABASE_URL="+adminURL,
					"REPO="+repo,
					"TARGET_DATABASE_URL="+target,
					"NO_COLOR=1",
				)
				out, err := c.CombinedOutput()
				require.NoError(t, err, "%s:%d: the block failed:\n%s\noutput:\n%s", b.file, b.line, script, out)
				t.Logf("%s:%d ran:\n%s", b.file, b.line, out)
			}
			after(t, guideEnv{db: db, adminURL: adminURL})
		})
	}
}

// adminRoleFor returns the name and password of a role that a guide may
// create, unique to this test, and drops it once the test's database is
// gone (roles belong to the server, not to a database).
func adminRoleFor(t *testing.T) (name, password string) {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name = "pgtenancy_docs_admin_" + hex.EncodeToString(b)
	server := pgtenancytest.ServerURL(t)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+name); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	return name, "docs-" + hex.EncodeToString(b)
}

// roleURL is base with another role and password.
func roleURL(t *testing.T, base, role, password string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.User = url.UserPassword(role, password)
	return u.String()
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

var fromNote = regexp.MustCompile(`^<!-- from: (\S+) -->$`)

// TestGoExamples checks the Go examples of the guides: a ```go block right
// after a line "<!-- from: PATH -->" must be a run of lines of the file
// PATH (up to indentation), an example test, and the examples of PATH's
// package run, so the guide's code is code that runs and prints what the
// guide says.
func TestGoExamples(t *testing.T) {
	files, err := filepath.Glob("../../../docs/*.md")
	require.NoError(t, err)
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		lines := strings.Split(string(data), "\n")
		for i := 0; i+1 < len(lines); i++ {
			m := fromNote.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			require.Equal(t, "```go", lines[i+1], "%s:%d: a ```go block must follow the from note", file, i+1)
			var block []string
			for j := i + 2; j < len(lines) && lines[j] != "```"; j++ {
				block = append(block, strings.TrimLeft(lines[j], "\t"))
			}
			src, err := os.ReadFile(filepath.Join("../../..", m[1]))
			require.NoError(t, err, "%s:%d", file, i+1)
			var srcLines []string
			for _, l := range strings.Split(string(src), "\n") {
				srcLines = append(srcLines, strings.TrimLeft(l, "\t"))
			}
			require.True(t, containsRun(srcLines, block), "%s:%d: the block is not in %s: copy it again", file, i+1, m[1])
			n++
			dir := filepath.Dir(filepath.Join("../../..", m[1]))
			t.Run(filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				cmd := exec.Command("go", "test", "-count=1", "-run", "^Example", ".")
				cmd.Dir = dir
				out, err := cmd.CombinedOutput()
				require.NoError(t, err, "the examples of %s:\n%s", m[1], out)
			})
		}
	}
	require.Positive(t, n, "no Go example in the guides")
}

// containsRun reports whether run is a run of consecutive lines of lines.
func containsRun(lines, run []string) bool {
	for i := 0; i+len(run) <= len(lines); i++ {
		ok := true
		for j := range run {
			if lines[i+j] != run[j] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
