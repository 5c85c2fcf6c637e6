// Package ci tells whether the tests run on CI, where a missing database,
// server binary or tool fails a test instead of skipping it.
package ci

import (
	"os"
	"strings"
)

// On reports whether the CI environment variable holds a true value
// (true, 1, yes, on; any case), as CI services set it.
func On() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv("CI"))) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}
