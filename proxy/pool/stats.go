package pool

import (
	"sync/atomic"
	"time"
)

// Counters for monitoring. They sit beside the balancing state so that every
// front end (HTTP/1.1 today, HTTP/2 later) records into the same place, and
// they hold no HTTP library's types: a status is an int, a failure an
// ErrorKind. Recording is a handful of atomic adds: no lock, no allocation.
// Readers (a metrics scrape, a status page) take snapshots whenever they like.

// ErrorKind says how an attempt on a backend failed before a response.
type ErrorKind uint8

const (
	// ErrorDial: no connection could be made.
	ErrorDial ErrorKind = iota
	// ErrorTimeout: no complete response within the backend timeout.
	ErrorTimeout
	// ErrorReset: the connection closed or was reset before a response.
	ErrorReset
	// ErrorResponse: the response was malformed or too large.
	ErrorResponse
	// ErrorBusy: every connection to the backend was in use; the request
	// was never sent.
	ErrorBusy

	// NumErrorKinds is the number of error kinds, for arrays indexed by kind.
	NumErrorKinds = int(ErrorBusy) + 1
)

var errorKindNames = [NumErrorKinds]string{"dial", "timeout", "reset", "response", "busy"}

// String returns the kind's label: dial, timeout, reset, response or busy.
func (k ErrorKind) String() string {
	if int(k) < NumErrorKinds {
		return errorKindNames[k]
	}
	return "unknown"
}

// StatusClasses is the number of response status classes counted: 1xx to 5xx.
const StatusClasses = 5

// statusClass maps a status code to 0 (1xx) … 4 (5xx). A code outside
// 100-599 is a broken answer and counts as 5xx.
func statusClass(status int) int {
	c := uint(status)/100 - 1
	if c > StatusClasses-1 {
		c = StatusClasses - 1
	}
	return int(c)
}

// StatusClassName returns "1xx" … "5xx" for a class index from 0 to 4.
func StatusClassName(class int) string {
	return [StatusClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx"}[class]
}

// epoch anchors Monotonic. Time.Since on a time carrying a monotonic
// reading reads only the monotonic clock: one vDSO call, no wall clock.
var epoch = time.Now()

// Monotonic returns a reading of the monotonic clock, for timing attempts:
// the difference of two readings is the time between them. It is the only
// clock the request path reads, once at the start of an attempt and once at
// its end.
func Monotonic() time.Duration { return time.Since(epoch) }

// backendStats are a backend's monitoring counters beyond the requests,
// failures and in-flight counts the balancer itself uses.
type backendStats struct {
	responses     [StatusClasses]atomic.Uint64
	latency       Histogram
	errors        [NumErrorKinds]atomic.Uint64
	retries       atomic.Uint64
	checks        atomic.Uint64
	checkFailures atomic.Uint64
	stateChanges  atomic.Uint64
	lastCheck     atomic.Pointer[CheckResult]
}

// RecordResponse counts a response with status that an attempt got from
// the backend, latency after sending the request (the time to the whole
// response, or to its header when the body streams). It leaves the attempt
// itself to Done.
func (b *Backend) RecordResponse(status int, latency time.Duration) {
	b.stats.responses[statusClass(status)].Add(1)
	b.stats.latency.Observe(latency)
}

// RecordFailure counts an attempt that failed before a response, by kind.
// It leaves the attempt itself to Done.
func (b *Backend) RecordFailure(kind ErrorKind) {
	if int(kind) < NumErrorKinds {
		b.stats.errors[kind].Add(1)
	}
}

// Retried records that a request whose attempt on b failed went on to
// another backend (HAProxy's redispatch).
func (b *Backend) Retried() { b.stats.retries.Add(1) }

// CheckResult is the outcome of one active health check.
type CheckResult struct {
	At      time.Time     // when the check started
	Latency time.Duration // how long it took
	Err     string        // why it failed; empty when it passed
}

// OK reports whether the check passed.
func (r CheckResult) OK() bool { return r.Err == "" }

// RecordCheck stores r as the backend's last health check and counts it. A
// failed check also becomes the backend's last error.
func (b *Backend) RecordCheck(r CheckResult) {
	b.stats.checks.Add(1)
	if !r.OK() {
		b.stats.checkFailures.Add(1)
		b.RecordError(r.Err)
	}
	b.stats.lastCheck.Store(&r)
}

// LastCheck returns the last health check recorded; ok is false before the
// first.
func (b *Backend) LastCheck() (r CheckResult, ok bool) {
	if p := b.stats.lastCheck.Load(); p != nil {
		return *p, true
	}
	return CheckResult{}, false
}

// BackendStats is a snapshot of one backend's counters. Counters only grow;
// rates come from the difference of two snapshots.
type BackendStats struct {
	State         State
	Since         time.Time // when State began
	Disabled      bool      // configured down: never used, never checked
	Draining      bool      // an operator drains it: no new attempts
	Weight        int
	InFlight      int64
	Requests      uint64 // attempts sent
	Failures      uint64 // attempts that failed before a response
	Responses     [StatusClasses]uint64
	Errors        [NumErrorKinds]uint64
	Retries       uint64 // failed attempts retried on another backend
	Checks        uint64 // active health checks run
	CheckFailures uint64 // of which failed
	StateChanges  uint64
	Ejections     uint64            // times live traffic took it out of rotation
	TryTimeouts   uint64            // attempts abandoned for want of a response header
	HedgesCaused  uint64            // hedges its slowness caused
	HedgesWon     uint64            // hedges sent to it that answered first
	Latency       HistogramSnapshot // of attempts that got a response
	LastCheck     *CheckResult      // nil before the first check
	LastError     string
}

// Stats returns a snapshot of b's counters. The counters are read one by
// one while traffic goes on, so two of them may disagree by the requests in
// flight; each one is exact.
func (b *Backend) Stats() BackendStats {
	s := BackendStats{
		State:         b.State(),
		Since:         b.Since(),
		Disabled:      b.Disabled(),
		Draining:      b.Draining(),
		Weight:        b.Weight(),
		InFlight:      b.InFlight(),
		Requests:      b.Requests(),
		Failures:      b.Failures(),
		Retries:       b.stats.retries.Load(),
		Checks:        b.stats.checks.Load(),
		CheckFailures: b.stats.checkFailures.Load(),
		StateChanges:  b.stats.stateChanges.Load(),
		Ejections:     b.Ejections(),
		TryTimeouts:   b.TryTimeouts(),
		Latency:       b.stats.latency.Snapshot(),
		LastError:     b.LastError(),
	}
	s.HedgesCaused, s.HedgesWon = b.Hedges()
	for i := range s.Responses {
		s.Responses[i] = b.stats.responses[i].Load()
	}
	for i := range s.Errors {
		s.Errors[i] = b.stats.errors[i].Load()
	}
	if r, ok := b.LastCheck(); ok {
		s.LastCheck = &r
	}
	return s
}

// Traffic counts what the front end sees from clients, across backends and
// pools: requests by the status class sent back, connections and bytes. It is
// safe for concurrent use and its recording methods allocate nothing. Create
// it with NewTraffic.
type Traffic struct {
	// Every request writes here, from every core: the padding keeps these
	// lines away from fields that requests only read, such as the pool's
	// snapshot pointer, which would otherwise be invalidated with them.
	_           cacheLinePad
	requests    [StatusClasses]atomic.Uint64
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	noBackend   atomic.Uint64
	conns       atomic.Int64
	connsTotal  atomic.Uint64
	refused     atomic.Uint64
	startedUnix int64

	// The net/http path (HTTP/2 clients, and HTTP/1.1 clients of pools with
	// HTTP/2 backends) counts apart, so the two paths can be told apart.
	h2Requests      atomic.Uint64
	h1ViaNet        atomic.Uint64
	h2Conns         atomic.Int64
	h2ConnsTotal    atomic.Uint64
	parked          atomic.Int64
	tunnelsTimedOut atomic.Uint64
	_               cacheLinePad
}

// NewTraffic returns counters that start now.
func NewTraffic() *Traffic {
	return &Traffic{startedUnix: time.Now().Unix()}
}

// cacheLinePad fills a cache line (64 bytes on amd64 and arm64; 128 covers
// the adjacent-line prefetcher too).
type cacheLinePad [128]byte

// Request records a client request answered with status, having received
// in bytes from the client and sent out bytes back.
func (t *Traffic) Request(status, in, out int) {
	t.requests[statusClass(status)].Add(1)
	t.bytesIn.Add(uint64(in))
	t.bytesOut.Add(uint64(out))
}

// AddBytesIn counts n more bytes received from clients, for bodies that
// stream past the request's own count.
func (t *Traffic) AddBytesIn(n int) { t.bytesIn.Add(uint64(n)) }

// AddBytesOut counts n more bytes sent to clients, for bodies that stream.
func (t *Traffic) AddBytesOut(n int) { t.bytesOut.Add(uint64(n)) }

// NoBackend records a request that found no usable backend at all.
func (t *Traffic) NoBackend() { t.noBackend.Add(1) }

// ConnOpened records a client connection accepted.
func (t *Traffic) ConnOpened() {
	t.conns.Add(1)
	t.connsTotal.Add(1)
}

// ConnRefused records a client connection refused as it was accepted, for
// coming from an address with too many open already.
func (t *Traffic) ConnRefused() { t.refused.Add(1) }

// ConnClosed records a client connection closed (or handed over to another
// owner, as a hijacked one is).
func (t *Traffic) ConnClosed() { t.conns.Add(-1) }

// ConnParked records an idle client connection set aside without a
// goroutine (it is still counted open); ConnUnparked, one taken back to be
// served or closed.
func (t *Traffic) ConnParked() { t.parked.Add(1) }

// ConnUnparked: see ConnParked.
func (t *Traffic) ConnUnparked() { t.parked.Add(-1) }

// TunnelTimedOut records a tunnel (a WebSocket, or any connection that
// switched protocols) closed for carrying nothing, or for a stalled write,
// past the tunnel idle timeout.
func (t *Traffic) TunnelTimedOut() { t.tunnelsTimedOut.Add(1) }

// NetPathRequest records a request proxied by the net/http path, beside
// Request: one that came over HTTP/2 (h2 true), or over HTTP/1.1 to a pool
// with HTTP/2 backends.
func (t *Traffic) NetPathRequest(h2 bool) {
	if h2 {
		t.h2Requests.Add(1)
	} else {
		t.h1ViaNet.Add(1)
	}
}

// HTTP2ConnOpened records a client connection that started speaking HTTP/2
// (it was counted by ConnOpened already).
func (t *Traffic) HTTP2ConnOpened() {
	t.h2Conns.Add(1)
	t.h2ConnsTotal.Add(1)
}

// HTTP2ConnClosed records the end of an HTTP/2 client connection.
func (t *Traffic) HTTP2ConnClosed() { t.h2Conns.Add(-1) }

// TrafficStats is a snapshot of Traffic.
type TrafficStats struct {
	Requests        [StatusClasses]uint64 // by status class sent to the client
	NoBackend       uint64                // requests that found no usable backend
	Conns           int64                 // client connections open now
	ConnsTotal      uint64                // client connections accepted
	ConnsRefused    uint64                // client connections refused: too many from one address
	ConnsParked     int64                 // of Conns, idle ones held without a goroutine
	TunnelsTimedOut uint64                // tunnels closed by the tunnel idle timeout
	BytesIn         uint64                // received from clients
	BytesOut        uint64                // sent to clients
	StartedUnix     int64                 // when counting began, unix seconds

	HTTP2Requests   uint64 // of Requests, those that came over HTTP/2
	HTTP1ViaNet     uint64 // HTTP/1.1 requests proxied by the net/http path (pools with HTTP/2 backends)
	HTTP2Conns      int64  // of Conns, those speaking HTTP/2
	HTTP2ConnsTotal uint64 // of ConnsTotal, those that spoke HTTP/2
}

// Snapshot returns the counters' current values.
func (t *Traffic) Snapshot() TrafficStats {
	s := TrafficStats{
		NoBackend:       t.noBackend.Load(),
		Conns:           t.conns.Load(),
		ConnsTotal:      t.connsTotal.Load(),
		ConnsRefused:    t.refused.Load(),
		ConnsParked:     t.parked.Load(),
		TunnelsTimedOut: t.tunnelsTimedOut.Load(),
		BytesIn:         t.bytesIn.Load(),
		BytesOut:        t.bytesOut.Load(),
		StartedUnix:     t.startedUnix,

		HTTP2Requests:   t.h2Requests.Load(),
		HTTP1ViaNet:     t.h1ViaNet.Load(),
		HTTP2Conns:      t.h2Conns.Load(),
		HTTP2ConnsTotal: t.h2ConnsTotal.Load(),
	}
	for i := range s.Requests {
		s.Requests[i] = t.requests[i].Load()
	}
	return s
}
