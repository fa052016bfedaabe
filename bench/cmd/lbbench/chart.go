package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// chartPeers are the bars of each group, in order, with their colours.
var chartPeers = []struct{ name, color string }{
	{peerBalancer, "#1f6fb2"},
	{peerNginx, "#2e9e44"},
	{peerHAProxy, "#d9822b"},
	{peerNetHTTP, "#8c8c8c"},
}

// chartSVG draws the proxies' CPU time per request as grouped bars, one
// group per scenario, with the value over each bar. It is plain SVG 1.1
// with no scripts or external resources, so it renders on GitHub and in
// any browser.
func chartSVG(rep *report) []byte {
	type bar struct {
		peer, color string
		v           float64
	}
	type group struct {
		name string
		bars []bar
	}
	var groups []group
	top := 0.0
	for _, sc := range rep.Scenarios {
		g := group{name: sc.Name}
		for _, cp := range chartPeers {
			for _, s := range sc.Summary {
				if s.Peer == cp.name && s.CPUUs != nil {
					g.bars = append(g.bars, bar{cp.name, cp.color, *s.CPUUs})
					top = math.Max(top, *s.CPUUs)
				}
			}
		}
		if len(g.bars) > 0 {
			groups = append(groups, g)
		}
	}

	const (
		left, right, topM, bottom = 64.0, 24.0, 78.0, 56.0
		barW, barGap, groupGap    = 26.0, 4.0, 36.0
		plotH                     = 300.0
	)
	nBars := 0
	for _, g := range groups {
		nBars += len(g.bars)
	}
	used := float64(nBars)*(barW+barGap) + float64(len(groups))*groupGap
	plotW := math.Max(600, used)
	width, height := left+plotW+right, topM+plotH+bottom
	step := niceStep(top / 5)
	yMax := math.Max(step, math.Ceil(top/step)*step)
	y := func(v float64) float64 { return topM + plotH - v/yMax*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="16" font-weight="bold">Proxy CPU time per request (µs, lower is better)</text>`+"\n", left)
	sub := fmt.Sprintf("median of %d rounds of %s; proxy alone on one core; %s; %s", rep.Settings.Rounds, rep.Settings.Duration,
		rep.Machine.CPUModel, rep.Generated.Format("2006-01-02"))
	fmt.Fprintf(&b, `<text x="%.0f" y="40" fill="#555555">%s</text>`+"\n", left, html.EscapeString(sub))

	// Legend.
	lx := left
	for _, cp := range chartPeers {
		fmt.Fprintf(&b, `<rect x="%.0f" y="52" width="12" height="12" fill="%s"/><text x="%.0f" y="62">%s</text>`+"\n", lx, cp.color, lx+16, html.EscapeString(cp.name))
		lx += 28 + 7*float64(len(cp.name))
	}

	// Grid and y axis.
	for i := 0; float64(i)*step <= yMax+step/2; i++ {
		v := float64(i) * step
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e3e3e3"/>`+"\n", left, left+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555555">%s</text>`+"\n", left-6, y(v)+4, trimFloat(v))
	}
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle" fill="#555555">CPU µs per request</text>`+"\n", topM+plotH/2)

	// Bars.
	x := left + groupGap/2 + (plotW-used)/2
	for _, g := range groups {
		gw := float64(len(g.bars)) * (barW + barGap)
		for i, br := range g.bars {
			bx := x + float64(i)*(barW+barGap)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.0f" height="%.1f" fill="%s"><title>%s %s: %.1f µs/request</title></rect>`+"\n",
				bx, y(br.v), barW, topM+plotH-y(br.v), br.color, html.EscapeString(g.name), html.EscapeString(br.peer), br.v)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%s</text>`+"\n", bx+barW/2, y(br.v)-4, strconv.FormatFloat(br.v, 'f', 1, 64))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x+gw/2-barGap/2, topM+plotH+20, html.EscapeString(g.name))
		x += gw + groupGap
	}
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#333333"/>`+"\n", left, left+plotW, topM+plotH, topM+plotH)
	if len(groups) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="#555555">no proxy was measured</text>`+"\n", left+plotW/2, topM+plotH/2)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceStep rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
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

// trimFloat prints an axis value without float noise (0.30000000000000004).
func trimFloat(v float64) string { return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64) }
