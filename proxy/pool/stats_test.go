package pool

import (
	"math"
	"sync"
	"testing"
	"time"
)

// linearBucket is the obvious search bucketOf must agree with.
func linearBucket(ns int64) int {
	for i, b := range upperBounds {
		if ns <= b {
			return i
		}
	}
	return -1
}

func TestBucketOf(t *testing.T) {
	probes := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64, math.MaxInt64 - 1}
	for _, b := range upperBounds[:HistogramBuckets-1] {
		probes = append(probes, b-1, b, b+1)
	}
	for ns := int64(0); ns < int64(40*time.Second); ns += int64(7919 * time.Microsecond / 10) {
		probes = append(probes, ns)
	}
	for _, ns := range probes {
		if got, want := bucketOf(ns), linearBucket(ns); got != want {
			t.Fatalf("bucketOf(%d) = %d, want %d", ns, got, want)
		}
	}
	if got := bucketOf(int64(time.Millisecond)); LatencyBuckets[got] != time.Millisecond {
		t.Errorf("1ms went to the bucket of %v; bounds are inclusive", LatencyBuckets[got])
	}
}

func TestStatusClass(t *testing.T) {
	for _, tc := range []struct {
		status int
		class  string
	}{
		{100, "1xx"}, {101, "1xx"}, {200, "2xx"}, {204, "2xx"}, {301, "3xx"}, {399, "3xx"},
		{404, "4xx"}, {499, "4xx"}, {500, "5xx"}, {503, "5xx"}, {599, "5xx"},
		{0, "5xx"}, {99, "5xx"}, {600, "5xx"}, {999, "5xx"}, {-1, "5xx"},
	} {
		if got := StatusClassName(statusClass(tc.status)); got != tc.class {
			t.Errorf("status %d: class %s, want %s", tc.status, got, tc.class)
		}
	}
}

func TestBackendCounters(t *testing.T) {
	p, bs := newPool(t, 2)
	b := bs[0]
	for _, s := range []int{200, 200, 201, 302, 404, 503} {
		b.Begin()
		b.RecordResponse(s, 3*time.Millisecond)
		b.Done(false)
	}
	for _, k := range []ErrorKind{ErrorDial, ErrorTimeout, ErrorTimeout} {
		b.Begin()
		b.RecordFailure(k)
		b.Done(true)
	}
	b.Retried()
	b.Begin() // still running

	s := b.Stats()
	if s.Requests != 10 || s.Failures != 3 || s.InFlight != 1 {
		t.Errorf("requests %d failures %d in flight %d, want 10 3 1", s.Requests, s.Failures, s.InFlight)
	}
	if want := [StatusClasses]uint64{0, 3, 1, 1, 1}; s.Responses != want {
		t.Errorf("responses %v, want %v", s.Responses, want)
	}
	if s.Errors[ErrorDial] != 1 || s.Errors[ErrorTimeout] != 2 || s.Errors[ErrorReset] != 0 {
		t.Errorf("errors %v", s.Errors)
	}
	if s.Retries != 1 {
		t.Errorf("retries %d, want 1", s.Retries)
	}
	if n := s.Latency.Count(); n != 6 {
		t.Errorf("latency count %d, want 6 (responses only)", n)
	}
	if s.Latency.Counts[bucketOf(int64(3*time.Millisecond))] != 6 || s.Latency.Sum != 18*time.Millisecond {
		t.Errorf("latency %+v", s.Latency)
	}
	if s.LastCheck != nil || s.Checks != 0 {
		t.Errorf("check recorded before any: %+v", s.LastCheck)
	}

	b.RecordCheck(CheckResult{At: time.Now(), Latency: time.Millisecond})
	b.RecordCheck(CheckResult{At: time.Now(), Latency: 2 * time.Millisecond, Err: "check returned status 503"})
	s = b.Stats()
	if s.Checks != 2 || s.CheckFailures != 1 {
		t.Errorf("checks %d failures %d, want 2 1", s.Checks, s.CheckFailures)
	}
	if s.LastCheck == nil || s.LastCheck.OK() || s.LastCheck.Latency != 2*time.Millisecond {
		t.Errorf("last check %+v", s.LastCheck)
	}
	if s.LastError != "check returned status 503" {
		t.Errorf("last error %q", s.LastError)
	}

	p.MarkDown(b, "x")
	p.MarkDown(b, "x")
	p.MarkUp(b)
	if n := b.Stats().StateChanges; n != 2 {
		t.Errorf("state changes %d, want 2", n)
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if _, ok := h.Snapshot().Quantile(0.5); ok {
		t.Error("quantile of nothing reported")
	}
	// 100 observations spread evenly in the (1ms, 2.5ms] bucket.
	for range 100 {
		h.Observe(2 * time.Millisecond)
	}
	s := h.Snapshot()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 1750 * time.Microsecond},
		{0.99, 2485 * time.Microsecond},
	} {
		got, ok := s.Quantile(tc.q)
		if !ok || (got-tc.want).Abs() > time.Microsecond {
			t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
		}
	}
	h.Observe(time.Minute)
	later := h.Snapshot()
	if got, _ := later.Sub(s).Quantile(0.5); got != 30*time.Second {
		t.Errorf("a minute in the unbounded bucket: %v, want the top bound", got)
	}
	if later.Sub(s).Count() != 1 || later.Sub(s).Sum != time.Minute {
		t.Errorf("sub %+v", later.Sub(s))
	}
}

func TestTraffic(t *testing.T) {
	tr := NewTraffic()
	tr.ConnOpened()
	tr.ConnOpened()
	tr.ConnClosed()
	tr.Request(200, 100, 1000)
	tr.Request(502, 50, 60)
	tr.NoBackend()
	s := tr.Snapshot()
	if s.Conns != 1 || s.ConnsTotal != 2 {
		t.Errorf("conns %d total %d, want 1 2", s.Conns, s.ConnsTotal)
	}
	if s.Requests[1] != 1 || s.Requests[4] != 1 || s.NoBackend != 1 {
		t.Errorf("requests %v no backend %d", s.Requests, s.NoBackend)
	}
	if s.BytesIn != 150 || s.BytesOut != 1060 {
		t.Errorf("bytes in %d out %d", s.BytesIn, s.BytesOut)
	}
	if s.StartedUnix == 0 {
		t.Error("no start time")
	}
}

func TestWatchSeesEveryChangeOnce(t *testing.T) {
	p, bs := newPool(t, 2)
	var mu sync.Mutex
	var got []StateChange
	p.Watch(func(c StateChange) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, c)
	})
	p.MarkDown(bs[0], "connect: connection refused")
	p.MarkDown(bs[0], "again") // no change, no event
	p.MarkDown(bs[1], "check returned status 503")
	p.MarkUp(bs[1])
	p.MarkUp(bs[1])

	want := []struct {
		b        *Backend
		from, to State
		reason   string
		up       int
	}{
		{bs[0], StateUp, StateDown, "connect: connection refused", 1},
		{bs[1], StateUp, StateDown, "check returned status 503", 0},
		{bs[1], StateDown, StateUp, "", 1},
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Backend != w.b || g.From != w.from || g.To != w.to || g.Reason != w.reason || g.Up != w.up || g.Total != 2 ||
			(i > 0 && g.UpBefore != got[i-1].Up) || (i == 0 && g.UpBefore != 2) {
			t.Errorf("event %d: %+v, want %+v", i, g, w)
		}
		if g.At.IsZero() {
			t.Errorf("event %d: at %v", i, g.At)
		}
	}
}

// TestRecordingAllocatesNothing keeps the counters fit for the request path.
func TestRecordingAllocatesNothing(t *testing.T) {
	_, bs := newPool(t, 1)
	b, tr := bs[0], NewTraffic()
	n := testing.AllocsPerRun(1000, func() {
		b.Begin()
		start := Monotonic()
		b.RecordResponse(200, Monotonic()-start)
		b.Done(false)
		b.Begin()
		b.RecordFailure(ErrorReset)
		b.Done(true)
		b.Retried()
		tr.Request(200, 10, 20)
	})
	if n != 0 {
		t.Errorf("%.1f allocations per recording, want 0", n)
	}
}

// Live traffic ejects through Eject, not MarkDown: watchers hear of it too.
func TestWatchSeesEjections(t *testing.T) {
	p, bs := newPool(t, 2)
	var got []StateChange
	p.Watch(func(c StateChange) { got = append(got, c) })
	if !p.Eject(bs[0], "connect: connection refused", 50) || p.Eject(bs[1], "x", 50) {
		t.Fatal("the panic threshold should allow one ejection of two")
	}
	if len(got) != 1 || got[0].Backend != bs[0] || got[0].To != StateDown || got[0].Reason != "connect: connection refused" || got[0].Up != 1 {
		t.Errorf("events %+v, want one down for the ejected backend", got)
	}
	if s := bs[0].Stats(); s.Ejections != 1 || s.StateChanges != 1 {
		t.Errorf("ejections %d state changes %d, want 1 1", s.Ejections, s.StateChanges)
	}
}
