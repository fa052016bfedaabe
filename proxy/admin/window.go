package admin

import (
	"math"
	"sync"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Rates need two readings of the counters some time apart. The window takes
// a reading of every counter each sampleInterval and keeps the last
// historyLen, so the status API can say what happened in the last seconds
// (requests per second, error ratio, latency quantiles) and give the
// dashboard a minute of history, the same for every viewer, without any
// work on the request path.
var sampleInterval = time.Second

const (
	// historyLen is how many samples are kept: a minute at one a second.
	historyLen = 61
	// rateSamples is how many intervals rates and quantiles span.
	rateSamples = 10
)

// sample is every counter at one moment. Backends are keyed by identity, not
// position: a reload, discovery or the admin API may add and remove them
// between two samples, and one that stays keeps its history.
type sample struct {
	at       time.Time
	traffic  pool.TrafficStats
	backends map[*pool.Backend]backendSample
}

// backendSample is what the window keeps of one backend's counters.
type backendSample struct {
	requests  uint64 // attempts finished: responses and failures
	errors    uint64 // failures and 5xx responses
	histogram pool.HistogramSnapshot
}

// window is a ring of samples. It is safe for concurrent use.
type window struct {
	src Source

	mu      sync.Mutex
	samples []sample // oldest first, at most historyLen
}

func newWindow(src Source) *window {
	w := &window{src: src}
	w.take(time.Now())
	return w
}

// run samples every sampleInterval until stop closes.
func (w *window) run(stop <-chan struct{}) {
	t := time.NewTicker(sampleInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.take(now)
		}
	}
}

func (w *window) take(now time.Time) {
	s := sample{at: now, traffic: w.src.Traffic().Snapshot(), backends: map[*pool.Backend]backendSample{}}
	for _, pl := range w.src.Pools() {
		for _, b := range pl.Backends() {
			w.sampleBackend(&s, b)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.samples) == historyLen {
		copy(w.samples, w.samples[1:])
		w.samples = w.samples[:historyLen-1]
	}
	w.samples = append(w.samples, s)
}

func (w *window) sampleBackend(s *sample, b *pool.Backend) {
	st := b.Stats()
	var responses uint64
	for _, c := range st.Responses {
		responses += c
	}
	s.backends[b] = backendSample{
		requests:  responses + st.Failures,
		errors:    st.Failures + st.Responses[pool.StatusClasses-1],
		histogram: st.Latency,
	}
}

// rates is what happened over a span of time, per second.
type rates struct {
	Seconds           float64  `json:"seconds"` // the span measured
	RequestsPerSecond float64  `json:"requests_per_second"`
	ErrorsPerSecond   float64  `json:"errors_per_second"`
	ErrorRatio        float64  `json:"error_ratio"`      // errors / requests, 0 without requests
	P50Milliseconds   *float64 `json:"p50_ms,omitempty"` // nil without responses
	P99Milliseconds   *float64 `json:"p99_ms,omitempty"`
}

// history is a backend's per-second rates over the kept samples, oldest
// first, for the dashboard's charts.
type history struct {
	RequestsPerSecond []float64 `json:"requests_per_second"`
	ErrorsPerSecond   []float64 `json:"errors_per_second"`
}

// view is what the status API reports from the window.
type view struct {
	traffic  *trafficRates              // nil until two samples exist
	backends map[*pool.Backend]*rates   // absent until two samples have the backend
	history  map[*pool.Backend]*history // per backend in the last sample
}

// trafficRates are the front end's rates over the rate span.
type trafficRates struct {
	Seconds           float64 `json:"seconds"`
	RequestsPerSecond float64 `json:"requests_per_second"`
	ErrorRatio        float64 `json:"error_ratio"` // 5xx sent / requests answered
	BytesInPerSecond  float64 `json:"received_bytes_per_second"`
	BytesOutPerSecond float64 `json:"sent_bytes_per_second"`
}

// view computes rates over the last rateSamples intervals (or as many as
// exist) and the per-second history. A backend that joined since counts
// from the first sample that has it.
func (w *window) view() view {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.samples)
	var v view
	if n == 0 {
		return v
	}
	last := w.samples[n-1]
	v.backends = make(map[*pool.Backend]*rates, len(last.backends))
	v.history = make(map[*pool.Backend]*history, len(last.backends))
	for b := range last.backends {
		v.history[b] = &history{RequestsPerSecond: make([]float64, 0, n-1), ErrorsPerSecond: make([]float64, 0, n-1)}
	}
	for k := 1; k < n; k++ {
		prev, cur := &w.samples[k-1], &w.samples[k]
		dt := cur.at.Sub(prev.at).Seconds()
		for b, h := range v.history {
			c, ok1 := cur.backends[b]
			p, ok2 := prev.backends[b]
			if !ok1 || !ok2 {
				continue
			}
			h.RequestsPerSecond = append(h.RequestsPerSecond, perSecond(c.requests-p.requests, dt))
			h.ErrorsPerSecond = append(h.ErrorsPerSecond, perSecond(c.errors-p.errors, dt))
		}
	}
	if n < 2 {
		return v
	}
	first := w.samples[max(0, n-1-rateSamples)]
	for b, cur := range last.backends {
		// The oldest sample within the span that has b.
		from := first
		for k := max(0, n-1-rateSamples); k < n-1; k++ {
			if _, ok := w.samples[k].backends[b]; ok {
				from = w.samples[k]
				break
			}
		}
		old, ok := from.backends[b]
		if !ok {
			continue // b appeared in the last sample only
		}
		dt := last.at.Sub(from.at).Seconds()
		r := &rates{
			Seconds:           round(dt, 3),
			RequestsPerSecond: perSecond(cur.requests-old.requests, dt),
			ErrorsPerSecond:   perSecond(cur.errors-old.errors, dt),
		}
		if d := cur.requests - old.requests; d > 0 {
			r.ErrorRatio = round(float64(cur.errors-old.errors)/float64(d), 4)
		}
		h := cur.histogram.Sub(old.histogram)
		if q, ok := h.Quantile(0.5); ok {
			ms := round(float64(q)/1e6, 3)
			r.P50Milliseconds = &ms
		}
		if q, ok := h.Quantile(0.99); ok {
			ms := round(float64(q)/1e6, 3)
			r.P99Milliseconds = &ms
		}
		v.backends[b] = r
	}
	dt := last.at.Sub(first.at).Seconds()
	t, o := &last.traffic, &first.traffic
	var reqs uint64
	for c := range t.Requests {
		reqs += t.Requests[c] - o.Requests[c]
	}
	tr := &trafficRates{
		Seconds:           round(dt, 3),
		RequestsPerSecond: perSecond(reqs, dt),
		BytesInPerSecond:  perSecond(t.BytesIn-o.BytesIn, dt),
		BytesOutPerSecond: perSecond(t.BytesOut-o.BytesOut, dt),
	}
	if reqs > 0 {
		fivexx := t.Requests[pool.StatusClasses-1] - o.Requests[pool.StatusClasses-1]
		tr.ErrorRatio = round(float64(fivexx)/float64(reqs), 4)
	}
	v.traffic = tr
	return v
}

func perSecond(n uint64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round(float64(n)/seconds, 2)
}

// round keeps digits decimals, so the JSON stays short.
func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return math.Round(v*p) / p
}
