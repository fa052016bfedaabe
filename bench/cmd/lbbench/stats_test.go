package main

import (
	"math"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, nan, 30}, 20},
		{[]float64{5, 100, 6, 7, 8}, 7}, // an outlier round does not move it
		{nil, nan},
		{[]float64{nan}, nan},
	} {
		got := median(tc.in)
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRatio(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct{ a, b, want float64 }{
		{10, 20, 0.5},
		{30, 10, 3},
		{1, 0, nan},
		{1, -1, nan},
		{nan, 1, nan},
		{1, nan, nan},
	} {
		got := ratio(tc.a, tc.b)
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if num(math.NaN()) != nil || num(math.Inf(1)) != nil || *num(2) != 2 {
		t.Error("num must map NaN and Inf to nil and keep numbers")
	}
}

func TestNewRunRecord(t *testing.T) {
	lr := loadResult{Requests: 50000, Seconds: 2, RPS: 25000, P50: 1500 * time.Microsecond, P99: 3 * time.Millisecond, Max: 20 * time.Millisecond}
	// 70 ticks of 10 ms = 0.7 s of CPU for 50,000 requests = 14 µs each.
	r := newRunRecord(2, "balancer", lr, &cpuTicks{User: 20, Sys: 50}, 100, 12345)
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"cpu", val(r.CPUUs), 14},
		{"user", val(r.UserUs), 4},
		{"sys", val(r.SysUs), 10},
		{"p50", r.P50Ms, 1.5},
		{"p99", r.P99Ms, 3},
		{"max", r.MaxMs, 20},
	} {
		if math.Abs(tc.got-tc.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if r.Round != 2 || r.Peer != "balancer" || r.RSSKiB != 12345 || !r.succeeded {
		t.Errorf("record %+v lost its round, peer, RSS or success", r)
	}
	if direct := newRunRecord(1, "direct", lr, nil, 100, 0); direct.CPUUs != nil {
		t.Errorf("direct has CPU %v, want none (no proxy)", *direct.CPUUs)
	}
}

func TestSummarize(t *testing.T) {
	rec := func(round int, peer string, rps, cpu, p99, maxMs float64, errs int64, rss int64) runRecord {
		return runRecord{Round: round, Peer: peer, succeeded: true, figures: figures{
			RPS: rps, CPUUs: num(cpu), UserUs: num(cpu / 4), SysUs: num(cpu * 3 / 4),
			P99Ms: p99, MaxMs: maxMs, Errors: errs, RSSKiB: rss,
		}}
	}
	runs := []runRecord{
		// Round 1 is slow for everyone: the per-round ratio stays 0.9.
		rec(1, peerBalancer, 30000, 18, 3, 9, 0, 100), rec(1, peerNginx, 29000, 20, 3, 8, 1, 50),
		rec(1, peerNetHTTP, 15000, 54, 6, 20, 0, 90),
		rec(2, peerBalancer, 40000, 9, 2, 5, 0, 120), rec(2, peerNginx, 41000, 10, 2, 30, 0, 50),
		rec(2, peerNetHTTP, 20000, 30, 5, 12, 0, 80),
		rec(3, peerBalancer, 42000, 10.8, 2, 4, 2, 110), rec(3, peerNginx, 43000, 12, 2, 6, 0, 55),
		rec(3, peerNetHTTP, 21000, 36, 5, 9, 0, 85),
		{Round: 3, Peer: peerHAProxy, Error: "refused"}, // failed runs are left out
		rec(1, peerDirect, 80000, math.NaN(), 1, 2, 0, 0),
	}
	got := summarize(peerOrder, runs)
	var names []string
	for _, s := range got {
		names = append(names, s.Peer)
	}
	if want := []string{peerBalancer, peerNetHTTP, peerNginx, peerDirect}; !equalStrings(names, want) {
		t.Fatalf("summaries for %v, want %v in report order", names, want)
	}
	b, h, n, d := got[0], got[1], got[2], got[3]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"balancer rounds", float64(b.Rounds), 3},
		{"balancer rps median", b.RPS, 40000},
		{"balancer cpu median", val(b.CPUUs), 10.8},
		{"balancer user median", val(b.UserUs), 2.7},
		{"balancer max is the largest", b.MaxMs, 9},
		{"balancer errors summed", float64(b.Errors), 2},
		{"balancer RSS is the largest", float64(b.RSSKiB), 120},
		// Per-round ratios 0.9, 0.9, 0.9: not 10.8/12 of the medians.
		{"balancer cpu vs nginx", val(b.CPUVsNginx), 0.9},
		{"balancer cpu vs net/http", val(b.CPUVsHTTP), 0.3},
		{"balancer rps vs nginx", val(b.RPSVsNginx), 42000.0 / 43000}, // median of 1.03, 0.976, 0.977
		{"net/http cpu vs nginx", val(h.CPUVsNginx), 3},
		{"nginx cpu vs net/http", val(n.CPUVsHTTP), 1.0 / 3},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if b.CPUVsHAProx != nil {
		t.Errorf("ratio to haproxy %v with no haproxy run, want none", *b.CPUVsHAProx)
	}
	if n.CPUVsNginx != nil {
		t.Error("nginx has a ratio to itself")
	}
	if d.CPUUs != nil || d.CPUVsNginx != nil {
		t.Error("direct has CPU figures; it has no proxy")
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAddCoreTimes(t *testing.T) {
	// A 2 s run on one CPU at 100 ticks/s: 200 ticks. The proxy used 120,
	// softirq 30, another process 20, idle 30.
	r := newRunRecord(1, "balancer", loadResult{Requests: 10000, Seconds: 2}, &cpuTicks{User: 30, Sys: 90}, 100, 0)
	r.addCoreTimes(&coreTimes{Total: 200, Busy: 170, Softirq: 30}, &cpuTicks{User: 30, Sys: 90}, 100)
	if got := val(r.SoftirqUs); math.Abs(got-30) > 1e-9 { // 0.3 s / 10,000
		t.Errorf("softirq %v µs/req, want 30", got)
	}
	if got := val(r.OthersPct); math.Abs(got-10) > 1e-9 {
		t.Errorf("others %v%%, want 10", got)
	}
	// Unpinned (no core times) or no proxy (direct): nothing to say.
	d := newRunRecord(1, "direct", loadResult{Requests: 10, Seconds: 2}, nil, 100, 0)
	d.addCoreTimes(&coreTimes{Total: 200, Busy: 100}, nil, 100)
	r2 := newRunRecord(1, "balancer", loadResult{Requests: 10, Seconds: 2}, &cpuTicks{}, 100, 0)
	r2.addCoreTimes(nil, &cpuTicks{}, 100)
	if d.SoftirqUs != nil || d.OthersPct != nil || r2.SoftirqUs != nil || r2.OthersPct != nil {
		t.Error("core figures without a pinned proxy")
	}
}
