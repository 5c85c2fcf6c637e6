package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart is a grouped bar chart, rendered as SVG by hand.
type chart struct {
	title, yLabel string
	groups        []string    // x axis
	series        []string    // one bar per series in each group
	values        [][]float64 // [series][group]; 0 = no bar
	extrapolated  [][]bool    // [series][group]: drawn hatched, value marked *
	log           bool        // logarithmic y axis
	format        func(float64) string
	note          string // small print at the bottom
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"}

const (
	svgW, svgH                     = 720, 400
	padL, padR, padT, padB         = 80, 20, 70, 60
	plotW, plotH                   = svgW - padL - padR, svgH - padT - padB
	barGap, groupGap       float64 = 2, 24
)

func (c chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">`+
		`<rect width="6" height="6" fill="white"/><line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="3"/></pattern></defs>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))

	// Legend.
	x := float64(padL)
	for i, s := range c.series {
		fmt.Fprintf(&b, `<rect x="%.1f" y="34" width="12" height="12" fill="%s"/>`, x, palette[i%len(palette)])
		fmt.Fprintf(&b, `<text x="%.1f" y="45">%s</text>`+"\n", x+16, esc(s))
		x += 16 + 7.2*float64(len(s)) + 18
	}

	// Y scale.
	lo, hi := math.Inf(1), 0.0
	for _, vs := range c.values {
		for _, v := range vs {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		hi, lo = 1, 1
	}
	var ticks []float64
	var y func(v float64) float64
	if c.log {
		l0, l1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if l1 == l0 {
			l1++
		}
		for e := l0; e <= l1; e++ {
			ticks = append(ticks, math.Pow(10, e))
		}
		y = func(v float64) float64 {
			return padT + plotH - (math.Log10(v)-l0)/(l1-l0)*plotH
		}
	} else {
		step := niceStep(hi * 1.1 / 5)
		top := math.Ceil(hi*1.1/step) * step
		for t := 0.0; t <= top+step/2; t += step {
			ticks = append(ticks, t)
		}
		y = func(v float64) float64 { return padT + plotH - v/top*plotH }
	}
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y(t), padL+plotW, y(t))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(t)+4, esc(c.format(t)))
	}
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(c.yLabel))
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", padL, padT+plotH, padL+plotW, padT+plotH)

	// Bars.
	groupW := float64(plotW) / float64(max(len(c.groups), 1))
	barW := (groupW - groupGap) / float64(max(len(c.series), 1))
	for g, name := range c.groups {
		gx := float64(padL) + float64(g)*groupW + groupGap/2
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+(groupW-groupGap)/2, padT+plotH+18, esc(name))
		for s := range c.series {
			if g >= len(c.values[s]) || c.values[s][g] <= 0 {
				continue
			}
			v := c.values[s][g]
			ex := s < len(c.extrapolated) && g < len(c.extrapolated[s]) && c.extrapolated[s][g]
			bx, by := gx+float64(s)*barW, y(v)
			base := float64(padT + plotH)
			fill := palette[s%len(palette)]
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, bx, by, barW-barGap, base-by, fill)
			label := c.format(v)
			if ex {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="url(#hatch)" opacity="0.5"/>`, bx, by, barW-barGap, base-by)
				label += "*"
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", bx+(barW-barGap)/2, by-3, esc(label))
		}
	}
	note := c.note
	for _, es := range c.extrapolated {
		for _, e := range es {
			if e && !strings.Contains(note, "extrapolated") {
				note += "; * hatched: extrapolated, not measured"
			}
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#666">%s</text>`+"\n", padL, svgH-12, esc(note))
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds a raw tick step to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func esc(s string) string { return html.EscapeString(s) }

func fmtCount(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1f", v/1e6)) + "M"
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1f", v/1e3)) + "k"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtMs(v float64) string { return trimZero(fmt.Sprintf("%.2f", v)) }

func fmtRatio(v float64) string { return fmt.Sprintf("%.2f", v) }

func fmtSec(v float64) string {
	switch {
	case v >= 10:
		return fmt.Sprintf("%.0fs", v)
	case v >= 1:
		return trimZero(fmt.Sprintf("%.1f", v)) + "s"
	case v >= 0.001:
		return trimZero(fmt.Sprintf("%.1f", v*1000)) + "ms"
	}
	return trimZero(fmt.Sprintf("%.2f", v*1000)) + "ms"
}

func trimZero(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
