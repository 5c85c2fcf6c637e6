package pgbinary

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// stallTimeout ends a download that receives nothing for this long.
	stallTimeout = 60 * time.Second
	// downloadTimeout bounds a whole download.
	downloadTimeout = 15 * time.Minute
	// maxTarball bounds the bytes read from the registry (a build is about
	// 25 MB).
	maxTarball = 512 << 20
)

// defaultClient fails fast when the registry cannot be reached.
var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ForceAttemptHTTP2:     true,
	},
}

// errStalled is the cause of a download that received nothing for too long.
var errStalled = errors.New("no data received for too long")

// download fetches url into w, hashing as it goes, and checks the hash
// against integrity. It returns the number of bytes written.
func download(ctx context.Context, opts Options, url, integrity string, w io.Writer) (int64, error) {
	want, err := parseIntegrity(integrity)
	if err != nil {
		return 0, err
	}
	client := opts.client
	if client == nil {
		client = defaultClient
	}
	stall := opts.stall
	if stall == 0 {
		stall = stallTimeout
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, downloadTimeout)
	defer cancelTimeout()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) (int64, error) {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		return 0, &DownloadError{URL: url, Err: err}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, &DownloadError{URL: url, Err: err}
	}
	// The connection and header wait have their own timeouts; from the
	// first byte on, the watchdog ends a transfer that stalls.
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return fail(fmt.Errorf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(snippet))))
	}
	wd := newWatchdog(stall, func() { cancel(errStalled) })
	defer wd.stop()

	h := sha512.New()
	n, err := io.Copy(io.MultiWriter(w, h), &watchedReader{r: io.LimitReader(resp.Body, maxTarball+1), wd: wd})
	if err != nil {
		return fail(err)
	}
	if n > maxTarball {
		return fail(fmt.Errorf("the tarball exceeds %d MB", maxTarball>>20))
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return 0, &IntegrityError{URL: url, Want: integrity, Got: "sha512-" + base64.StdEncoding.EncodeToString(got)}
	}
	return n, nil
}

// parseIntegrity decodes an npm integrity string of the form sha512-<base64>.
func parseIntegrity(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "sha512-")
	if !ok {
		return nil, fmt.Errorf("pgbinary: integrity %q is not sha512-<base64>", s)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != sha512.Size {
		return nil, fmt.Errorf("pgbinary: integrity %q is not sha512-<base64>", s)
	}
	return sum, nil
}

// watchdog calls fire when kick has not been called for d.
type watchdog struct {
	mu    sync.Mutex
	timer *time.Timer
	d     time.Duration
}

func newWatchdog(d time.Duration, fire func()) *watchdog {
	return &watchdog{timer: time.AfterFunc(d, fire), d: d}
}

func (w *watchdog) kick() {
	w.mu.Lock()
	w.timer.Reset(w.d)
	w.mu.Unlock()
}

func (w *watchdog) stop() {
	w.mu.Lock()
	w.timer.Stop()
	w.mu.Unlock()
}

// watchedReader kicks its watchdog whenever data arrives.
type watchedReader struct {
	r  io.Reader
	wd *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.wd.kick()
	}
	return n, err
}
