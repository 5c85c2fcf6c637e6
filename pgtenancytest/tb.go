package pgtenancytest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
)

// TB is the part of [testing.TB] that the harness uses. *testing.T and
// *testing.B satisfy it, and so does [ExampleTB], for runnable examples,
// which have no *testing.T.
type TB interface {
	Helper()
	Context() context.Context
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
}

// ExampleTB is a [TB] for runnable examples (func ExampleXxx, whose output
// `go test` checks): Fatalf and Skipf panic, which fails the example with
// the message, and Done runs the cleanups, dropping the databases the
// example made. Examples run inside the package's test binary, so
// TestMain's [Main] starts the server and stops it afterwards.
//
//	func ExamplePool() {
//		tb := pgtenancytest.NewExampleTB()
//		defer tb.Done()
//		db := pgtenancytest.NewDB(tb, storeTemplate)
//		...
//	}
type ExampleTB struct {
	mu       sync.Mutex
	cleanups []func()
}

// NewExampleTB returns an ExampleTB.
func NewExampleTB() *ExampleTB { return &ExampleTB{} }

// Helper does nothing.
func (*ExampleTB) Helper() {}

// Context returns context.Background().
func (*ExampleTB) Context() context.Context { return context.Background() }

// Cleanup registers f for Done.
func (tb *ExampleTB) Cleanup(f func()) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.cleanups = append(tb.cleanups, f)
}

// Errorf prints to standard error, which examples do not compare.
func (*ExampleTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Fatalf panics with the message.
func (*ExampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Skipf panics: an example cannot skip, and examples need PostgreSQL.
func (*ExampleTB) Skipf(format string, args ...any) {
	panic("the example needs PostgreSQL: " + fmt.Sprintf(format, args...))
}

// Done runs the cleanups, last registered first.
func (tb *ExampleTB) Done() {
	tb.mu.Lock()
	cleanups := slices.Clone(tb.cleanups)
	tb.cleanups = nil
	tb.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}
