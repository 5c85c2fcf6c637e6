// Command pgtenancy-bench measures pgtenancy at scale and compares the three
// multi-tenant architectures. It is the program behind `make bench` and
// `make bench-quick`; docs/benchmarks.md describes what it measures.
//
// Scale: at each tenant count (100 rows per tenant, generated inside the
// database), pgtenancy transaction mode ([pool.Pool]) against raw pgxpool with a
// manual tenant filter: point queries (throughput, p50, p99), a join query,
// single-row inserts and CopyFrom.
//
// Architectures: database per tenant, schema per tenant and shared tables
// under pgtenancy, at several tenant counts: the time to add a column and an
// index to products, the setup time, and the size of the catalog.
//
// It runs on throwaway clusters from internal/pgcluster, or on the server
// of PGTENANCY_BENCH_DATABASE_URL (a superuser URL; the program creates and
// drops its own roles and databases there). Results are printed as
// markdown tables and `RATIO <name> <value>` lines, and written as SVG
// plots with -svg.
//
//	go run ./internal/cmd/pgtenancy-bench -quick
//	go run ./internal/cmd/pgtenancy-bench -svg docs/img -markdown bench-results.md
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// options are the command line flags.
type options struct {
	quick    bool
	scales   []int
	arch     []int
	dbMax    int // database per tenant beyond this is extrapolated
	duration time.Duration
	rounds   int
	warmup   time.Duration
	copyRows int
	copyReps int
	svgDir   string
	markdown string
	skip     string
}

func main() {
	var o options
	var scales, arch string
	flag.BoolVar(&o.quick, "quick", false, "quick run: 1k and 10k tenants, 10 and 100 for the architectures, short measurements")
	flag.StringVar(&scales, "scales", "", "tenant counts of the scale benchmark (default 1000,10000,100000; quick 1000,10000)")
	flag.StringVar(&arch, "arch", "", "tenant counts of the architecture comparison (default 10,100,1000; quick 10,100)")
	flag.IntVar(&o.dbMax, "db-per-tenant-max", 1000, "largest database-per-tenant count actually created; larger counts are extrapolated (and marked so)")
	flag.DurationVar(&o.duration, "duration", 0, "length of each measuring slice (default 1s; quick 250ms)")
	flag.IntVar(&o.rounds, "rounds", 0, "measuring slices per variant, alternating the variants (default 6; quick 4)")
	flag.StringVar(&o.svgDir, "svg", "", "directory to write the SVG plots to (none when empty)")
	flag.StringVar(&o.markdown, "markdown", "", "file to write the markdown results to (printed to stdout as well)")
	flag.StringVar(&o.skip, "skip", "", "comma-separated parts to skip: scale, arch")
	flag.Parse()

	o.scales, o.arch = []int{1000, 10000, 100000}, []int{10, 100, 1000}
	o.duration, o.rounds, o.warmup, o.copyRows, o.copyReps = orDur(o.duration, time.Second), orInt(o.rounds, 6), time.Second, 10000, 5
	if o.quick {
		o.scales, o.arch = []int{1000, 10000}, []int{10, 100}
		o.warmup, o.copyReps = 300*time.Millisecond, 3
		if !flagSet("duration") {
			o.duration = 250 * time.Millisecond
		}
		if !flagSet("rounds") {
			o.rounds = 4
		}
	}
	var err error
	if scales != "" {
		if o.scales, err = parseInts(scales); err != nil {
			fatalf("-scales: %v", err)
		}
	}
	if arch != "" {
		if o.arch, err = parseInts(arch); err != nil {
			fatalf("-arch: %v", err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	m := describeMachine()
	prog := newProgress(os.Stdout)
	prog.linef("pgtenancy-bench: %s", m.summary())

	res := &results{machine: m, opts: o}
	if !strings.Contains(","+o.skip+",", ",scale,") {
		if err := runScale(ctx, o, prog, res); err != nil {
			return err
		}
	}
	if !strings.Contains(","+o.skip+",", ",arch,") {
		if err := runArch(ctx, o, prog, res); err != nil {
			return err
		}
	}
	res.machine.loadEnd = loadavg()
	res.elapsed = time.Since(start)

	md := res.markdown()
	fmt.Println()
	fmt.Print(md)
	fmt.Println()
	for _, r := range res.ratios() {
		fmt.Println(r)
	}
	if o.markdown != "" {
		if err := os.WriteFile(o.markdown, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if o.svgDir != "" {
		files, err := res.writeSVGs(o.svgDir)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %s\n", strings.Join(files, ", "))
	}
	fmt.Printf("total: %v\n", res.elapsed.Round(time.Second))
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pgtenancy-bench: "+format+"\n", args...)
	os.Exit(1)
}

func orDur(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("not a positive number: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// machine describes where the benchmark ran.
type machine struct {
	cpus      int
	cpu       string
	ramGB     float64
	goVersion string
	pgVersion string // filled by the first part that connects
	date      string
	loadStart string
	loadEnd   string
}

func describeMachine() machine {
	m := machine{
		cpus:      runtime.NumCPU(),
		cpu:       procField("/proc/cpuinfo", "model name"),
		goVersion: runtime.Version(),
		date:      time.Now().Format("2006-01-02"),
		loadStart: loadavg(),
	}
	if kb, err := strconv.ParseFloat(strings.Fields(procField("/proc/meminfo", "MemTotal") + " 0")[0], 64); err == nil {
		m.ramGB = kb / 1024 / 1024
	}
	return m
}

func (m machine) summary() string {
	return fmt.Sprintf("%d CPUs (%s), %.0f GB RAM, %s, load average %s", m.cpus, m.cpu, m.ramGB, m.goVersion, m.loadStart)
}

// procField returns the value of the first "name: value" line of a /proc file.
func procField(path, name string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
