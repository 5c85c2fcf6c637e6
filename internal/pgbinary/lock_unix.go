//go:build unix

package pgbinary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockPoll is how often a waiting lockFile retries.
const lockPoll = 100 * time.Millisecond

// lockFile takes an exclusive flock on path, creating the file, and
// returns the function that releases it. It calls waiting once if another
// process (or another goroutine's open file) holds the lock, and gives up
// when ctx ends. On a file system without flock it returns locked false
// and a no-op unlock: callers then rely on atomic renames alone.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), locked bool, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("pgbinary: lock: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, true, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case !errors.Is(err, syscall.EWOULDBLOCK):
			// ENOLCK, EOPNOTSUPP...: no locking here.
			_ = f.Close()
			return func() {}, false, nil
		}
		if !told {
			told = true
			waiting()
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, false, fmt.Errorf("pgbinary: waiting for the lock %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
