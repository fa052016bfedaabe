package admin

import (
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// testSource shows pools and traffic counters made by a test.
type testSource struct {
	pools   []*pool.Pool
	traffic *pool.Traffic
}

func (s *testSource) Pools() []*pool.Pool    { return s.pools }
func (s *testSource) Traffic() *pool.Traffic { return s.traffic }

func sourceOf(pools ...*pool.Pool) *testSource {
	return &testSource{pools: pools, traffic: pool.NewTraffic()}
}

func newTestPool(t *testing.T, urls ...string) *pool.Pool {
	t.Helper()
	var bs []*pool.Backend
	for _, u := range urls {
		b, err := pool.NewBackend(u)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	p, err := pool.New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// attempts records n responses with status and latency d on b.
func attempts(b *pool.Backend, n, status int, d time.Duration) {
	for range n {
		b.Begin()
		b.RecordResponse(status, d)
		b.Done(false)
	}
}

func TestWindowRates(t *testing.T) {
	p := newTestPool(t, "http://a:1", "http://b:1")
	a, b := p.Backends()[0], p.Backends()[1]
	src := sourceOf(p)
	w := &window{src: src}
	t0 := time.Unix(1_700_000_000, 0)
	w.take(t0)
	if v := w.view(); v.traffic != nil || v.backends[a] != nil {
		t.Fatalf("rates from a single sample: %+v", v)
	}

	// 2 s: a answers 90 requests in 2ms and 10 with a 503; b fails 4
	// attempts to connect; clients get 100 answers, 10 of them 5xx.
	attempts(a, 90, 200, 2*time.Millisecond)
	attempts(a, 10, 503, 2*time.Millisecond)
	for range 4 {
		b.Begin()
		b.RecordFailure(pool.ErrorDial)
		b.Done(true)
	}
	for range 90 {
		src.traffic.Request(200, 100, 1000)
	}
	for range 10 {
		src.traffic.Request(503, 100, 50)
	}
	w.take(t0.Add(2 * time.Second))

	v := w.view()
	ra, rb := v.backends[a], v.backends[b]
	if ra.Seconds != 2 || ra.RequestsPerSecond != 50 || ra.ErrorsPerSecond != 5 || ra.ErrorRatio != 0.1 {
		t.Errorf("a: %+v, want 50 req/s, 5 errors/s, ratio 0.1 over 2s", ra)
	}
	if ra.P50Milliseconds == nil || *ra.P50Milliseconds <= 1 || *ra.P50Milliseconds > 2.5 {
		t.Errorf("a: p50 %v, want within the (1ms, 2.5ms] bucket", ra.P50Milliseconds)
	}
	if rb.RequestsPerSecond != 2 || rb.ErrorRatio != 1 || rb.P50Milliseconds != nil {
		t.Errorf("b: %+v, want 2 req/s, all errors, no latency", rb)
	}
	tr := v.traffic
	if tr.RequestsPerSecond != 50 || tr.ErrorRatio != 0.1 || tr.BytesInPerSecond != 5000 || tr.BytesOutPerSecond != 45250 {
		t.Errorf("traffic %+v", tr)
	}
	if h := v.history[a]; len(h.RequestsPerSecond) != 1 || h.RequestsPerSecond[0] != 50 || h.ErrorsPerSecond[0] != 5 {
		t.Errorf("history of a: %+v", h)
	}
}

func TestWindowKeepsAMinute(t *testing.T) {
	p := newTestPool(t, "http://a:1")
	a := p.Backends()[0]
	w := &window{src: sourceOf(p)}
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 100 {
		attempts(a, i, 200, time.Millisecond) // i requests in second i
		w.take(t0.Add(time.Duration(i) * time.Second))
	}
	v := w.view()
	h := v.history[a].RequestsPerSecond
	if len(h) != historyLen-1 || h[len(h)-1] != 99 || h[0] != 40 {
		t.Errorf("history has %d points from %v to %v; want %d from 40 to 99", len(h), h[0], h[len(h)-1], historyLen-1)
	}
	// Rates span the last rateSamples seconds: 90 to 99 requests a second.
	if r := v.backends[a]; r.Seconds != rateSamples || r.RequestsPerSecond != 94.5 {
		t.Errorf("rates %+v, want 94.5 req/s over %d s", r, rateSamples)
	}
}
