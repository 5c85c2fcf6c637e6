package pgbinary

import (
	"errors"
	"fmt"
)

// Sentinel errors of [Ensure], for errors.Is.
var (
	// ErrUnsupported means no build is pinned for the platform or the
	// major version asked for.
	ErrUnsupported = errors.New("pgbinary: no pinned PostgreSQL build")

	// ErrDownload means the tarball could not be fetched: the registry is
	// unreachable (offline, DNS, proxy), answered with an error status, or
	// the transfer failed or stalled. See [DownloadError].
	ErrDownload = errors.New("pgbinary: download failed")

	// ErrIntegrity means the tarball fetched is not the pinned one: its
	// SHA-512 differs from the pin's. See [IntegrityError].
	ErrIntegrity = errors.New("pgbinary: integrity check failed")

	// ErrUnsafeArchive means the tarball holds an entry that extraction
	// refuses. See [ArchiveError].
	ErrUnsafeArchive = errors.New("pgbinary: unsafe archive")
)

// DownloadError is a failure to fetch URL. It matches [ErrDownload] and
// unwraps to the cause (a *url.Error, a context error, ...).
type DownloadError struct {
	URL string
	Err error
}

func (e *DownloadError) Error() string {
	return fmt.Sprintf("pgbinary: download %s: %v", e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *DownloadError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrDownload].
func (e *DownloadError) Is(target error) bool { return target == ErrDownload }

// IntegrityError is a tarball whose hash is not the pinned one. Want and
// Got are in npm's integrity form, "sha512-" and base64. It matches
// [ErrIntegrity].
type IntegrityError struct {
	URL  string
	Want string
	Got  string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("pgbinary: integrity check failed for %s: expected %s, got %s", e.URL, e.Want, e.Got)
}

// Is reports whether target is [ErrIntegrity].
func (e *IntegrityError) Is(target error) bool { return target == ErrIntegrity }

// ArchiveError is an entry of the tarball (or of its symbolic link list)
// that extraction refuses. It matches [ErrUnsafeArchive].
type ArchiveError struct {
	// Name is the entry's path as the archive gives it.
	Name string
	// Reason says why it is refused.
	Reason string
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("pgbinary: unsafe archive entry %q: %s", e.Name, e.Reason)
}

// Is reports whether target is [ErrUnsafeArchive].
func (e *ArchiveError) Is(target error) bool { return target == ErrUnsafeArchive }
