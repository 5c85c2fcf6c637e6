package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	machine       machine
	opts          options
	scaleSettings []string
	scale         []*scaleResult
	arch          []*archResult
	emptyPgClass  int64
	elapsed       time.Duration
}

var opNames = []struct{ key, label, ratio string }{
	{"point", "point query", "point-query"},
	{"join", "join (10 rows)", "join-query"},
	{"insert", "single-row insert", "insert"},
}

// markdown renders the results as markdown tables.
func (r *results) markdown() string {
	var b strings.Builder
	m := r.machine
	mode := "full"
	if r.opts.quick {
		mode = "quick (-quick)"
	}
	fmt.Fprintf(&b, "Run of %s, %s, %v in total. Machine: %d CPUs (%s), %.0f GB RAM, PostgreSQL %s, %s; "+
		"load average (1, 5, 15 min) %s at the start, %s at the end.\n\n",
		m.date, mode, r.elapsed.Round(time.Second), m.cpus, m.cpu, m.ramGB, m.pgVersion, m.goVersion, m.loadStart, m.loadEnd)

	if len(r.scale) > 0 {
		fmt.Fprintf(&b, "Server: %s. %d goroutines, pool of %d connections, slices of %v x %d per variant, alternating.\n\n",
			strings.Join(r.scaleSettings, ", "), goroutines, poolConns, r.opts.duration, r.opts.rounds)
		b.WriteString("| tenants | rows | size | build | point raw | point pgtenancy | pgtenancy/raw | p50 raw / pgtenancy | p99 raw / pgtenancy |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.scale {
			raw, rls := s.ops["point/raw"], s.ops["point/pgtenancy"]
			fmt.Fprintf(&b, "| %s | %s | %.0f MB | %v | %.0f q/s | %.0f q/s | **%.3f** | %v / %v | %v / %v |\n",
				short(s.tenants), fmtCount(float64(s.tenants*(rowsPerTenant+categoriesPerTenant))), s.sizeMB, s.build.Round(time.Second),
				raw.qps, rls.qps, rls.qps/raw.qps, roundLat(raw.p50), roundLat(rls.p50), roundLat(raw.p99), roundLat(rls.p99))
		}
		b.WriteString("\n| tenants | join raw | join pgtenancy | pgtenancy/raw | insert raw | insert pgtenancy | pgtenancy/raw | CopyFrom raw | CopyFrom pgtenancy | pgtenancy/raw |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.scale {
			j, jr := s.ops["join/raw"], s.ops["join/pgtenancy"]
			in, ir := s.ops["insert/raw"], s.ops["insert/pgtenancy"]
			fmt.Fprintf(&b, "| %s | %.0f q/s | %.0f q/s | %.3f | %.0f/s | %.0f/s | %.3f | %.0f rows/s | %.0f rows/s | %.3f |\n",
				short(s.tenants), j.qps, jr.qps, jr.qps/j.qps, in.qps, ir.qps, ir.qps/in.qps, s.copyRaw, s.copyPgtenancy, s.copyPgtenancy/s.copyRaw)
		}
		base := r.scale[0]
		fmt.Fprintf(&b, "\nGrowth: throughput at each size relative to %s tenants (1.000 = no loss), and the shared-table "+
			"migration (add a column, then an index on (tenant_id, column), once):\n\n", short(base.tenants))
		b.WriteString("| tenants | point raw | point pgtenancy | join raw | join pgtenancy | insert raw | insert pgtenancy | migration (shared) |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
		for _, s := range r.scale {
			fmt.Fprintf(&b, "| %s ", short(s.tenants))
			for _, op := range opNames {
				for _, v := range []string{"raw", "pgtenancy"} {
					k := op.key + "/" + v
					fmt.Fprintf(&b, "| %.3f ", s.ops[k].qps/base.ops[k].qps)
				}
			}
			fmt.Fprintf(&b, "| %v |\n", s.migrate.Round(time.Millisecond))
		}
		b.WriteString("\n")
	}

	if len(r.arch) > 0 {
		fmt.Fprintf(&b, "Architectures (an empty database has %d pg_class rows; `*` = extrapolated linearly, not measured):\n\n", r.emptyPgClass)
		b.WriteString("| tenants | architecture | setup | migration | pg_class rows | catalog size | database size |\n")
		b.WriteString("|---|---|---|---|---|---|---|\n")
		for _, n := range archTenants(r.arch) {
			for _, a := range archNames {
				for _, x := range archFor(r.arch, a) {
					if x.tenants != n {
						continue
					}
					star := ""
					if x.extrapolated {
						star = "*"
					}
					fmt.Fprintf(&b, "| %d | %s | %s%s | %s%s | %d%s | %.1f MB%s | %.1f MB%s |\n", n, archLabel(a),
						fmtDur(x.setup), star, fmtDur(x.migrate), star, x.pgClass, star,
						float64(x.catalogBytes)/(1<<20), star, float64(x.dbBytes)/(1<<20), star)
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// ratios returns the RATIO lines: throughput ratios (higher is better for
// the first named) and migration cost ratios (time of the first named over
// the second).
func (r *results) ratios() []string {
	var out []string
	add := func(name string, v float64, note string) {
		line := fmt.Sprintf("RATIO %s %.3f", name, v)
		if note != "" {
			line += " (" + note + ")"
		}
		out = append(out, line)
	}
	for _, s := range r.scale {
		for _, op := range opNames {
			raw, rls := s.ops[op.key+"/raw"], s.ops[op.key+"/pgtenancy"]
			add(fmt.Sprintf("%s-pgtenancy-vs-raw-%s", op.ratio, short(s.tenants)), rls.qps/raw.qps,
				fmt.Sprintf("%.0f vs %.0f per second", rls.qps, raw.qps))
		}
		add("copyfrom-pgtenancy-vs-raw-"+short(s.tenants), s.copyPgtenancy/s.copyRaw, fmt.Sprintf("%.0f vs %.0f rows/s", s.copyPgtenancy, s.copyRaw))
	}
	if len(r.scale) > 1 {
		base := r.scale[0]
		for _, s := range r.scale[1:] {
			for _, op := range opNames {
				k := op.key + "/pgtenancy"
				add(fmt.Sprintf("%s-%s-vs-%s", op.ratio, short(s.tenants), short(base.tenants)), s.ops[k].qps/base.ops[k].qps,
					"pgtenancy throughput")
				k = op.key + "/raw"
				add(fmt.Sprintf("%s-raw-%s-vs-%s", op.ratio, short(s.tenants), short(base.tenants)), s.ops[k].qps/base.ops[k].qps,
					"raw throughput")
			}
		}
	}
	for _, n := range archTenants(r.arch) {
		var shared *archResult
		for _, x := range archFor(r.arch, archShared) {
			if x.tenants == n {
				shared = x
			}
		}
		if shared == nil {
			continue
		}
		for _, a := range []string{archSchema, archDB} {
			for _, x := range archFor(r.arch, a) {
				if x.tenants != n {
					continue
				}
				note := "time ratio, higher = slower than shared"
				if x.extrapolated {
					note = "EXTRAPOLATED, " + note
				}
				add(fmt.Sprintf("migration-%s-vs-shared-%d", a, n), x.migrate.Seconds()/shared.migrate.Seconds(), note)
				note = "pg_class rows ratio"
				if x.extrapolated {
					note = "EXTRAPOLATED, " + note
				}
				add(fmt.Sprintf("catalog-%s-vs-shared-%d", a, n), float64(x.pgClass)/float64(shared.pgClass), note)
			}
		}
	}
	return out
}

// writeSVGs writes the plots into dir and returns their paths.
func (r *results) writeSVGs(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var charts []struct {
		file string
		c    chart
	}
	addChart := func(file string, c chart) {
		charts = append(charts, struct {
			file string
			c    chart
		}{file, c})
	}
	if len(r.scale) > 0 {
		var groups []string
		for _, s := range r.scale {
			groups = append(groups, short(s.tenants)+" tenants")
		}
		point := chart{title: "Point query throughput by tenant count", yLabel: "queries/s", groups: groups,
			series: []string{"raw pgxpool, manual filter", "pgtenancy pool.Pool, RLS"}, format: fmtCount}
		lat := chart{title: "Point query latency (16 goroutines, 8 connections)", yLabel: "ms", groups: groups,
			series: []string{"raw p50", "pgtenancy p50", "raw p99", "pgtenancy p99"}, format: fmtMs}
		point.values = make([][]float64, 2)
		lat.values = make([][]float64, 4)
		for _, s := range r.scale {
			raw, rls := s.ops["point/raw"], s.ops["point/pgtenancy"]
			point.values[0] = append(point.values[0], raw.qps)
			point.values[1] = append(point.values[1], rls.qps)
			for i, d := range []time.Duration{raw.p50, rls.p50, raw.p99, rls.p99} {
				lat.values[i] = append(lat.values[i], float64(d.Microseconds())/1000)
			}
		}
		rel := chart{title: "pgtenancy throughput relative to raw pgx (1.0 = same)", yLabel: "pgtenancy / raw",
			groups: []string{"point query", "join", "insert", "CopyFrom"}, format: fmtRatio}
		for _, s := range r.scale {
			rel.series = append(rel.series, short(s.tenants)+" tenants")
			var v []float64
			for _, op := range opNames {
				v = append(v, s.ops[op.key+"/pgtenancy"].qps/s.ops[op.key+"/raw"].qps)
			}
			rel.values = append(rel.values, append(v, s.copyPgtenancy/s.copyRaw))
		}
		addChart("bench-scale-point.svg", point)
		addChart("bench-scale-latency.svg", lat)
		addChart("bench-scale-relative.svg", rel)
	}
	if ns := archTenants(r.arch); len(ns) > 0 {
		var groups []string
		for _, n := range ns {
			groups = append(groups, fmt.Sprintf("%d tenants", n))
		}
		mig := chart{title: "Migration: add a column and an index to products", yLabel: "seconds (log)", groups: groups, log: true, format: fmtSec}
		cat := chart{title: "Catalog: pg_class rows over all databases", yLabel: "rows (log)", groups: groups, log: true, format: fmtCount}
		for _, a := range archNames {
			mig.series = append(mig.series, archLabel(a))
			cat.series = append(cat.series, archLabel(a))
			var mv, cv []float64
			var ex []bool
			for _, n := range ns {
				var x *archResult
				for _, y := range archFor(r.arch, a) {
					if y.tenants == n {
						x = y
					}
				}
				if x == nil {
					mv, cv, ex = append(mv, 0), append(cv, 0), append(ex, false)
					continue
				}
				mv, cv, ex = append(mv, x.migrate.Seconds()), append(cv, float64(x.pgClass)), append(ex, x.extrapolated)
			}
			mig.values, cat.values = append(mig.values, mv), append(cat.values, cv)
			mig.extrapolated, cat.extrapolated = append(mig.extrapolated, ex), append(cat.extrapolated, ex)
		}
		addChart("bench-arch-migration.svg", mig)
		addChart("bench-arch-catalog.svg", cat)
	}
	var files []string
	for _, c := range charts {
		c.c.note = fmt.Sprintf("pgtenancy-bench, %s, %d CPUs, PostgreSQL %s", r.machine.date, r.machine.cpus, r.machine.pgVersion)
		path := filepath.Join(dir, c.file)
		if err := os.WriteFile(path, []byte(c.c.svg()), 0o644); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

// archTenants returns the tenant counts of the architecture results.
func archTenants(all []*archResult) []int {
	var ns []int
	seen := map[int]bool{}
	for _, x := range archFor(all, archShared) {
		if !seen[x.tenants] {
			seen[x.tenants] = true
			ns = append(ns, x.tenants)
		}
	}
	for _, a := range []string{archDB, archSchema} {
		for _, x := range archFor(all, a) {
			if !seen[x.tenants] {
				seen[x.tenants] = true
				ns = append(ns, x.tenants)
			}
		}
	}
	slices.Sort(ns)
	return ns
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
}
