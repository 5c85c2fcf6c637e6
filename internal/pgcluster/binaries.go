package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgtenancy/pgtenancy/internal/pgbinary"
)

// The environment variables that choose the server binaries; see the
// package doc.
const (
	// EnvBin names a directory holding initdb and postgres to use as they
	// are, like [Options.BinDir].
	EnvBin = "PGTENANCY_PG_BIN"
	// EnvVersion asks for a major version, such as 17, like
	// [Options.Version].
	EnvVersion = "PGTENANCY_PG_VERSION"
	// EnvSource is "auto" (the default: local binaries, else the pinned
	// build), "local" (never download) or "pinned" (always the pinned
	// build, even when local binaries exist).
	EnvSource = "PGTENANCY_PG_SOURCE"
)

// The values of EnvSource.
const (
	sourceAuto   = "auto"
	sourceLocal  = "local"
	sourcePinned = "pinned"
)

// searchDirs are the places where packages install the server binaries of
// each major version; "*" stands for the major version.
var searchDirs = []string{
	"/usr/lib/postgresql/*/bin",          // Debian, Ubuntu
	"/usr/pgsql-*/bin",                   // PGDG RPMs (RHEL, Fedora)
	"/opt/homebrew/opt/postgresql@*/bin", // Homebrew on Apple silicon
	"/usr/local/opt/postgresql@*/bin",    // Homebrew on Intel
}

// finder chooses the server binaries. Its fields are what the choice
// depends on besides [Options], so tests can set them.
type finder struct {
	getenv     func(string) string
	searchDirs []string
	// fetch returns the bin directory of the pinned build of major.
	fetch func(ctx context.Context, major int) (string, error)
}

// newFinder is the finder of the real environment.
func newFinder(logf func(string, ...any)) *finder {
	return &finder{
		getenv:     os.Getenv,
		searchDirs: searchDirs,
		fetch: func(ctx context.Context, major int) (string, error) {
			b, err := pgbinary.Ensure(ctx, major, pgbinary.Options{Logf: logf})
			if err != nil {
				return "", err
			}
			return b.BinDir(), nil
		},
	}
}

// find returns the directory of the server binaries to use (see the
// package doc for the order).
func (f *finder) find(ctx context.Context, opts Options) (string, error) {
	major := opts.Version
	if major == 0 {
		if v := f.getenv(EnvVersion); v != "" {
			m, err := strconv.Atoi(v)
			if err != nil || m < 10 {
				return "", fmt.Errorf("pgcluster: %s=%q: want a major version of PostgreSQL, such as %d", EnvVersion, v, pgbinary.DefaultMajor)
			}
			major = m
		}
	}
	if major < 0 {
		return "", fmt.Errorf("pgcluster: Options.Version %d: want a major version of PostgreSQL, such as %d", major, pgbinary.DefaultMajor)
	}

	dir, what := opts.BinDir, "Options.BinDir"
	if dir == "" {
		dir, what = f.getenv(EnvBin), EnvBin
	}
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("pgcluster: %s: %w", what, err)
		}
		if !hasServer(abs) {
			return "", fmt.Errorf("%w: no initdb and postgres in %s (%s)", ErrNoServer, abs, what)
		}
		if major != 0 {
			got, err := binMajor(ctx, abs)
			if err != nil {
				return "", err
			}
			if got != major {
				return "", fmt.Errorf("pgcluster: %s is %s, which holds PostgreSQL %d, but version %d is asked for", what, abs, got, major)
			}
		}
		return abs, nil
	}

	source := f.getenv(EnvSource)
	switch source {
	case "":
		source = sourceAuto
	case sourceAuto, sourceLocal, sourcePinned:
	default:
		return "", fmt.Errorf("pgcluster: %s=%q: want %s, %s or %s", EnvSource, source, sourceAuto, sourceLocal, sourcePinned)
	}
	var searched []string
	if source != sourcePinned {
		var dir string
		var err error
		dir, searched, err = f.local(ctx, major)
		if err != nil || dir != "" {
			return dir, err
		}
	}
	want := "any version"
	if major != 0 {
		want = "PostgreSQL " + strconv.Itoa(major)
	}
	if source == sourceLocal {
		return "", fmt.Errorf("%w of %s (searched %s; %s=%s forbids downloading a pinned build)",
			ErrNoServer, want, strings.Join(searched, ", "), EnvSource, sourceLocal)
	}
	if major == 0 {
		major = pgbinary.DefaultMajor
	}
	bin, err := f.fetch(ctx, major)
	if errors.Is(err, pgbinary.ErrDownload) || errors.Is(err, pgbinary.ErrUnsupported) {
		// Nothing to run: as without binaries (tests skip off CI).
		local := "no local binaries of " + want + " (searched " + strings.Join(searched, ", ") + ")"
		if source == sourcePinned {
			local = EnvSource + "=" + sourcePinned
		}
		return "", fmt.Errorf("%w: %s, and the pinned build is not available: %w\n"+
			"  install PostgreSQL (e.g. `apt-get install postgresql`) or set %s to the directory of initdb and postgres",
			ErrNoServer, local, err, EnvBin)
	}
	return bin, err
}

// local searches the machine for server binaries of major (0: any) and
// returns their directory ("" when there are none) and the places searched.
func (f *finder) local(ctx context.Context, major int) (string, []string, error) {
	var candidates, searched []string
	searched = append(searched, "PATH")
	if p, err := lookPath("initdb", f.getenv("PATH")); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	searched = append(searched, "pg_config --bindir")
	if p, err := lookPath("pg_config", f.getenv("PATH")); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(ctx, p, "--bindir").Output()
		cancel()
		if err == nil {
			candidates = append(candidates, strings.TrimSpace(string(out)))
		}
	}
	for _, pattern := range f.searchDirs {
		if major != 0 {
			d := strings.Replace(pattern, "*", strconv.Itoa(major), 1)
			searched = append(searched, d)
			candidates = append(candidates, d)
			continue
		}
		searched = append(searched, pattern)
		candidates = append(candidates, byVersion(pattern)...)
	}
	for _, d := range candidates {
		if !hasServer(d) {
			continue
		}
		if major == 0 {
			return d, searched, nil
		}
		// PATH and pg_config may lead to any version.
		if got, err := binMajor(ctx, d); err == nil && got == major {
			return d, searched, nil
		}
	}
	return "", searched, nil
}

// byVersion returns the directories that match pattern, whose "*" stands
// for a version number, highest version first.
func byVersion(pattern string) []string {
	dirs, _ := filepath.Glob(pattern)
	prefix, suffix, _ := strings.Cut(pattern, "*")
	version := func(d string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(d, prefix), suffix), 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	return dirs
}

// lookPath finds an executable named name in the directories of pathList.
func lookPath(name, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

var versionOutput = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// binMajor returns the major version of the postgres binary in dir.
func binMajor(ctx context.Context, dir string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "--version")
	cmd.Env = cleanEnv()
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("pgcluster: %s --version: %w", filepath.Join(dir, "postgres"), err)
	}
	m := versionOutput.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgcluster: %s --version printed %q", filepath.Join(dir, "postgres"), strings.TrimSpace(string(out)))
	}
	return strconv.Atoi(string(m[1]))
}

// hasServer reports whether dir holds executable initdb and postgres.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// reachable checks that the OS user of cred can search every directory on
// the way to dir, so that it can run the binaries there.
func reachable(dir, osUser string, cred *syscall.Credential) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		perm := fi.Mode().Perm()
		ok := perm&0o001 != 0
		if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix {
			switch {
			case st.Uid == cred.Uid:
				ok = perm&0o100 != 0
			case st.Gid == cred.Gid:
				ok = perm&0o010 != 0
			}
		}
		if !ok {
			return fmt.Errorf("pgcluster: PostgreSQL refuses to run as root, so it runs as the OS user %q, "+
				"who cannot reach %s (%s is %v): make the directory readable (chmod a+rX), "+
				"or point %s or %s at one that is", osUser, dir, d, fi.Mode().Perm(), EnvBin, pgbinary.EnvCache)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}
