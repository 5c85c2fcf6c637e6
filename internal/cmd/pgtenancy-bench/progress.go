package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// progress reports what the benchmark is doing: a bar redrawn in place on a
// terminal, plain lines otherwise (a log file, CI).
type progress struct {
	mu  sync.Mutex
	out *os.File
	tty bool
	bar *bar // the bar on screen, if any
}

func newProgress(out *os.File) *progress {
	fi, err := out.Stat()
	return &progress{out: out, tty: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

// linef prints a line of its own, above the bar on a terminal.
func (p *progress) linef(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.bar != nil {
		fmt.Fprint(p.out, "\r\033[K")
	}
	fmt.Fprintf(p.out, format+"\n", args...)
	if p.tty && p.bar != nil {
		p.bar.drawLocked()
	}
}

// bar is one step with a known amount of work.
type bar struct {
	p     *progress
	name  string
	total int
	n     int
	start time.Time
	last  time.Time
}

// step starts a step of total units of work.
func (p *progress) step(name string, total int) *bar {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := &bar{p: p, name: name, total: max(total, 1), start: time.Now()}
	p.bar = b
	if p.tty {
		b.drawLocked()
	} else {
		fmt.Fprintf(p.out, "%s ...\n", name)
	}
	return b
}

// set records that n units of work are done.
func (b *bar) set(n int) {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	b.n = min(n, b.total)
	if b.p.tty && time.Since(b.last) > 100*time.Millisecond {
		b.drawLocked()
	}
}

// done ends the step, with an optional note on its result.
func (b *bar) done(note string) time.Duration {
	b.p.mu.Lock()
	defer b.p.mu.Unlock()
	d := time.Since(b.start)
	if b.p.tty {
		fmt.Fprint(b.p.out, "\r\033[K")
	}
	line := fmt.Sprintf("%s: %v", b.name, d.Round(time.Millisecond))
	if note != "" {
		line += " (" + note + ")"
	}
	fmt.Fprintln(b.p.out, line)
	b.p.bar = nil
	return d
}

func (b *bar) drawLocked() {
	const width = 30
	filled := width * b.n / b.total
	fmt.Fprintf(b.p.out, "\r\033[K[%s%s] %3d%% %s %v", strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		100*b.n/b.total, b.name, time.Since(b.start).Round(time.Second))
	b.last = time.Now()
}
