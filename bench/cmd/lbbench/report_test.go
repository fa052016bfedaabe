package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report as a small run makes it.
func sampleReport() *report {
	sum := func(peer string, rps, cpu float64) peerSummary {
		return peerSummary{Peer: peer, Rounds: 3, CPUVsNginx: num(cpu / 12), figures: figures{
			RPS: rps, CPUUs: num(cpu), UserUs: num(cpu / 4), SysUs: num(cpu * 3 / 4),
			P50Ms: 1.2, P99Ms: 3.4, MaxMs: 12, RSSKiB: 20480,
		}}
	}
	return &report{
		Generated: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		Machine:   machineInfo{CPUModel: "AMD EPYC", Cores: 2, Kernel: "6.18", OS: "Debian", GoVersion: "go1.26"},
		Settings:  settings{Duration: "2s", Warmup: "1s", Rounds: 3, LoadGenerator: "wrk 4.1.0", Backend: "backend-server x2", Pinning: "proxy on CPU 1"},
		Peers:     []peerInfo{{Name: peerBalancer, Status: "measured"}, {Name: peerHAProxy, Status: "skipped", Reason: "haproxy is not installed"}},
		Scenarios: []scenarioReport{
			{Name: "small", Description: "GET 20 B", Summary: []peerSummary{
				sum(peerBalancer, 50000, 11), sum(peerNetHTTP, 20000, 33), sum(peerNginx, 45000, 12),
				{Peer: peerDirect, figures: figures{RPS: 90000, P50Ms: 0.5, P99Ms: 1, MaxMs: 3}},
			}},
			{Name: "64k", Description: "GET 64 KiB", Summary: []peerSummary{sum(peerBalancer, 20000, 30), sum(peerNginx, 21000, 28)}},
		},
		Idle: &idleReport{Conns: []int{64, 5000}, Results: []idleResult{
			{Peer: peerBalancer, StartKiB: 8000, RSSKiB: []int64{9000, 40000}, PerConn: num(6.3)},
			{Peer: peerNginx, Error: "refused"},
		}},
		Elapsed: "4m10s",
	}
}

func TestChartSVG(t *testing.T) {
	svg := chartSVG(sampleReport())
	// Well-formed XML.
	dec := xml.NewDecoder(bytes.NewReader(svg))
	rects, texts := 0, []string{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
		if cd, ok := tok.(xml.CharData); ok {
			texts = append(texts, string(cd))
		}
	}
	// Background, four legend swatches, and one bar per proxy with a CPU
	// figure: 3 in small (direct has none), 2 in 64k.
	if want := 1 + 4 + 3 + 2; rects != want {
		t.Errorf("%d rects, want %d", rects, want)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"small", "64k", "11.0", "33.0", "28.0", "balancer", "nginx", "CPU µs per request"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart text lacks %q", want)
		}
	}
	if bytes.Contains(svg, []byte("<script")) || bytes.Contains(svg, []byte("href=")) {
		t.Error("chart has scripts or links; it must stand alone")
	}
	if empty := chartSVG(&report{}); !bytes.Contains(empty, []byte("no proxy was measured")) {
		t.Error("an empty chart does not say so")
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ in, want float64 }{
		{0.7, 1}, {1, 1}, {1.3, 2}, {3, 5}, {7, 10}, {13, 20}, {45, 50}, {0, 1}, {math.NaN(), 1},
	} {
		if got := niceStep(tc.in); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestTextAndMarkdownReports(t *testing.T) {
	rep := sampleReport()
	var text, md bytes.Buffer
	printTable(&text, rep)
	writeMarkdown(&md, rep)
	for name, out := range map[string]string{"text": text.String(), "markdown": md.String()} {
		for _, want := range []string{
			"50,000", "11.0", "0.92×", // balancer small: 11 µs, 11/12 of nginx
			"haproxy", "haproxy is not installed",
			"5000 idle", "6.3", "failed: refused",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s report lacks %q:\n%s", name, want, out)
			}
		}
	}
	if !strings.Contains(md.String(), "![CPU time per proxied request](cpu-per-request.svg)") {
		t.Error("markdown does not embed the chart")
	}
	if !strings.Contains(md.String(), "| small | 11.0 | 12.0 | - | 33.0 | 0.92× |") {
		t.Errorf("markdown headline row for small is off:\n%s", md.String())
	}
}

func TestWriteResults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	if err := writeResults(dir, sampleReport()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("latest.json does not read back: %v", err)
	}
	s := back.Scenarios[0].Summary
	if s[0].Peer != peerBalancer || val(s[0].CPUUs) != 11 || s[3].CPUUs != nil {
		t.Errorf("latest.json round trip lost figures: %+v", s)
	}
	for _, name := range []string{"latest.md", chartFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{formatCount(1234567.4), "1,234,567"},
		{formatCount(999), "999"},
		{formatCount(1000), "1,000"},
		{formatCount(math.NaN()), "-"},
		{formatMs(0.25), "250µs"},
		{formatMs(3.456), "3.46ms"},
		{formatMs(45.67), "45.7ms"},
		{formatMs(1500), "1.50s"},
		{formatKiB(0), "-"},
		{formatKiB(8000), "8000 KiB"},
		{formatKiB(20480), "20.0 MiB"},
		{formatRatio(nil), "-"},
		{formatRatio(num(0.956)), "0.96×"},
		{formatFloat(num(12.345), 1), "12.3"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestMachineParsing(t *testing.T) {
	if got := cpuModel("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n"); got != "AMD EPYC 9R14" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel(""); got != "unknown" {
		t.Errorf("cpuModel of nothing = %q", got)
	}
	if got := osName("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("osName = %q", got)
	}
}
