package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// table is a header and rows of cells, printed as aligned text or Markdown.
type table struct {
	header []string
	rows   [][]string
}

// scenarioTable is one scenario's summary, a row per peer.
func scenarioTable(sc scenarioReport) table {
	t := table{header: []string{
		"peer", "req/s", "CPU µs/req", "user", "sys", "×nginx", "×haproxy", "×net/http",
		"p50", "p99", "max", "errors", "non-2xx", "RSS", "softirq", "others",
	}}
	for _, s := range sc.Summary {
		t.rows = append(t.rows, []string{
			s.Peer, formatCount(s.RPS), formatFloat(s.CPUUs, 1), formatFloat(s.UserUs, 1), formatFloat(s.SysUs, 1),
			formatRatio(s.CPUVsNginx), formatRatio(s.CPUVsHAProx), formatRatio(s.CPUVsHTTP),
			formatMs(s.P50Ms), formatMs(s.P99Ms), formatMs(s.MaxMs),
			strconv.FormatInt(s.Errors, 10), strconv.FormatInt(s.Non2xx, 10), formatKiB(s.RSSKiB),
			formatFloat(s.SoftirqUs, 1), formatPct(s.OthersPct),
		})
	}
	return t
}

// headlineTable is the balancer against its peers, a row per scenario:
// CPU per request of each, and the balancer's ratios.
func headlineTable(rep *report) table {
	t := table{header: []string{"scenario", "balancer µs/req", "nginx", "haproxy", "net/http",
		"balancer ×nginx", "×haproxy", "×net/http", "p99 balancer", "p99 nginx"}}
	for _, sc := range rep.Scenarios {
		by := map[string]peerSummary{}
		for _, s := range sc.Summary {
			by[s.Peer] = s
		}
		b, ok := by[peerBalancer]
		if !ok {
			continue
		}
		cpu := func(name string) string {
			if s, ok := by[name]; ok {
				return formatFloat(s.CPUUs, 1)
			}
			return "-"
		}
		p99 := func(name string) string {
			if s, ok := by[name]; ok {
				return formatMs(s.P99Ms)
			}
			return "-"
		}
		t.rows = append(t.rows, []string{sc.Name, cpu(peerBalancer), cpu(peerNginx), cpu(peerHAProxy), cpu(peerNetHTTP),
			formatRatio(b.CPUVsNginx), formatRatio(b.CPUVsHAProx), formatRatio(b.CPUVsHTTP), p99(peerBalancer), p99(peerNginx)})
	}
	return t
}

// idleTable is memory with idle connections, a row per proxy.
func idleTable(idle *idleReport) table {
	t := table{header: []string{"peer", "RSS, no connections"}}
	for _, n := range idle.Conns {
		t.header = append(t.header, fmt.Sprintf("%d idle", n))
	}
	t.header = append(t.header, "KiB per idle connection")
	for _, r := range idle.Results {
		row := []string{r.Peer, formatKiB(r.StartKiB)}
		for i := range idle.Conns {
			if i < len(r.RSSKiB) {
				row = append(row, formatKiB(r.RSSKiB[i]))
			} else {
				row = append(row, "-")
			}
		}
		row = append(row, formatFloat(r.PerConn, 1))
		if r.Error != "" {
			row[len(row)-1] = "failed: " + r.Error
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// formatRun is one run's figures on one line, for progress output.
func formatRun(r runRecord) string {
	s := formatCount(r.RPS) + " req/s"
	if r.CPUUs != nil {
		s += fmt.Sprintf(", %.1f µs/req (%.1f user + %.1f sys)", *r.CPUUs, *r.UserUs, *r.SysUs)
	}
	s += ", p99 " + formatMs(r.P99Ms)
	if r.OthersPct != nil && *r.OthersPct >= 5 {
		s += fmt.Sprintf(", others used %.0f%% of its CPU", *r.OthersPct)
	}
	if r.Errors > 0 || r.Non2xx > 0 {
		s += fmt.Sprintf(", %d errors, %d non-2xx", r.Errors, r.Non2xx)
	}
	return s
}

// formatCount prints a count with thousands separators: 52,130.
func formatCount(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(x)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatFloat(x *float64, prec int) string {
	if x == nil {
		return "-"
	}
	return strconv.FormatFloat(*x, 'f', prec, 64)
}

func formatPct(x *float64) string {
	if x == nil {
		return "-"
	}
	return strconv.FormatFloat(*x, 'f', 0, 64) + "%"
}

func formatRatio(x *float64) string {
	if x == nil {
		return "-"
	}
	return strconv.FormatFloat(*x, 'f', 2, 64) + "×"
}

// formatMs prints a latency in ms, or µs below 1 ms.
func formatMs(ms float64) string {
	switch {
	case math.IsNaN(ms):
		return "-"
	case ms < 1:
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + "µs"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 1000:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
}

// formatKiB prints a size given in KiB as KiB or MiB.
func formatKiB(kib int64) string {
	if kib == 0 {
		return "-"
	}
	if kib < 10*1024 {
		return strconv.FormatInt(kib, 10) + " KiB"
	}
	return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) + " MiB"
}
