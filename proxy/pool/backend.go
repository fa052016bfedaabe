package pool

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
)

// State is a backend's health as the balancer sees it.
type State uint32

const (
	// StateUp means the backend takes traffic.
	StateUp State = iota
	// StateDown means checks or live traffic found it failing; it takes no
	// traffic until active checks bring it back.
	StateDown
)

// String returns "up" or "down".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Backend is one upstream server: where it is, whether it is usable, and its
// counters. Every field that changes after construction is atomic, so a
// Backend is safe for concurrent use and the request path never locks it.
type Backend struct {
	url    string // canonical scheme://host:port: lower case, an IP unmapped and in its shortest form, a name without a trailing dot, the port a number
	id     uint64 // digest of url: ID
	scheme string
	addr   string // host:port, what a dialer takes: a name as written, its trailing dot kept
	host   string // host without port (nor a trailing dot), for TLS server names

	transport any

	// Balancing options from the entry ("weight=3 max_conns=200 backup").
	// A reload or the admin API may change them while requests read them;
	// the pool rebuilds its snapshot after every change (see Pool.Update).
	weight   atomic.Int32
	maxConns atomic.Int64 // 0: no limit
	backup   atomic.Bool
	disabled atomic.Bool // the "down" option: configured, never used

	// Membership: the Pool the backend belongs to and its position in that
	// pool's members. Both change only under the pool's lock; the request
	// path reads index and checks it against the pool's snapshot.
	owner atomic.Pointer[Pool]
	index atomic.Int32

	// draining is set by an operator (Pool.Drain): the backend takes no new
	// requests; those in flight finish.
	draining atomic.Bool

	// What the backend speaks and how it is checked: part of its identity
	// (Pool.Update replaces a member whose protocol or check changes), set
	// only while the backend is in no pool.
	proto         Protocol
	health        HealthKind
	healthService string

	state    atomic.Uint32
	since    atomic.Int64 // unix nanoseconds of the last state change
	inflight atomic.Int64

	streak atomic.Int32 // consecutive failures that count toward ejection

	requests atomic.Uint64 // attempts sent to this backend
	failures atomic.Uint64 // attempts that failed before a response
	hedged   atomic.Uint64 // times its slow answer made the proxy hedge
	hedgeWon atomic.Uint64 // hedges sent to it that answered first
	tryTOs   atomic.Uint64 // attempts abandoned for want of a response header
	ejected  atomic.Uint64 // times live traffic took it out of rotation
	reported atomic.Int64  // when a failure was last reported, in caller's clock
	lastErr  atomic.Pointer[string]

	stats backendStats // monitoring counters: stats.go
}

// ParseError is returned for a backend address that cannot be used. Its
// message names the entry and the reason:
//
//	invalid backend "htp://x": unsupported scheme "htp"
type ParseError struct {
	Entry string // the text as given
	Err   error  // why it was refused
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("invalid backend %q: %v", e.Entry, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// NewBackend parses entry into a Backend that starts up. An entry is a URL
// ("http://host:port" or "https://host:port"; the port defaults to 80 for
// http and 443 for https) optionally followed, after spaces, by balancing
// options in nginx style:
//
//	http://10.0.0.1:8081 weight=3 max_conns=200
//	http://10.0.0.9:8081 backup
//
// See Options for what each means. Only a scheme, a host and an optional port
// are accepted in the URL: a path, query, fragment or user info would be
// silently ignored by the proxy, so they are refused instead.
func NewBackend(entry string) (*Backend, error) {
	fail := func(format string, args ...any) (*Backend, error) {
		return nil, &ParseError{Entry: entry, Err: fmt.Errorf(format, args...)}
	}
	fields := strings.Fields(entry)
	if len(fields) == 0 {
		return fail("empty address")
	}
	s := fields[0]
	opts, err := parseOptions(fields[1:])
	if err != nil {
		return nil, &ParseError{Entry: entry, Err: err}
	}
	if !strings.Contains(s, "://") {
		return fail("missing scheme (want http://host:port or https://host:port)")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("%v", err)
	}
	scheme := strings.ToLower(u.Scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return fail("unsupported scheme %q", u.Scheme)
	}
	switch {
	case u.Host == "":
		return fail("missing host")
	case u.User != nil:
		return fail("user info is not supported")
	case u.Path != "" && u.Path != "/":
		return fail("path %q is not supported", u.Path)
	case u.RawQuery != "" || u.ForceQuery:
		return fail("query is not supported")
	case u.Fragment != "":
		return fail("fragment is not supported")
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return fail("missing host")
	}
	port := u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return fail("empty port")
		}
		port = defaultPort
	}
	n, ok := hostname.Port(port)
	if !ok {
		return fail("invalid port %q", port)
	}
	// One endpoint has one URL however it is spelt (024081 is port 24081,
	// [::ffff:10.0.0.1] is 10.0.0.1, api.example. is api.example), or it
	// could be listed twice: two members on one port, with twice its
	// weight and connection limit.
	port = strconv.Itoa(n)
	dial, err := hostname.Canonical(host)
	if err != nil {
		return fail("host %q: %v", host, err)
	}
	host = strings.TrimSuffix(dial, ".")
	switch {
	case opts.Protocol == H2 && scheme != "https":
		return fail("proto=h2 is HTTP/2 over TLS and needs an https:// URL (proto=h2c speaks HTTP/2 without TLS)")
	case opts.Protocol == H2C && scheme != "http":
		return fail("proto=h2c is HTTP/2 without TLS and needs an http:// URL (proto=h2 speaks HTTP/2 over TLS)")
	}
	b := &Backend{
		url:    scheme + "://" + net.JoinHostPort(host, port),
		scheme: scheme,
		addr:   net.JoinHostPort(dial, port),
		host:   host,
	}
	sum := sha256.Sum256([]byte(b.url))
	b.id = binary.BigEndian.Uint64(sum[:8])
	b.setOptions(opts)
	b.since.Store(time.Now().UnixNano())
	return b, nil
}

// URL returns the backend's canonical address, such as "http://10.0.0.1:8081":
// the same for every spelling of one endpoint (HTTP://10.0.0.1:08081,
// http://[::ffff:10.0.0.1]:8081; http://api.example.:8081 is
// http://api.example:8081, though Addr keeps its dot).
func (b *Backend) URL() string { return b.url }

// ID returns an opaque 64-bit identifier of the backend: the first 8 bytes of
// the SHA-256 of its URL, big-endian. It does not reveal the address, and
// every process computes the same one for the same URL, so it can name a
// backend to clients (a sticky cookie) across balancer instances.
func (b *Backend) ID() uint64 { return b.id }

// Scheme returns "http" or "https".
func (b *Backend) Scheme() string { return b.scheme }

// TLS reports whether the backend is reached over TLS (scheme https).
func (b *Backend) TLS() bool { return b.scheme == "https" }

// Addr returns host:port, the address a dialer takes. A name keeps the
// trailing dot it was written with (absolute, looked up without the search
// list), which URL drops.
func (b *Backend) Addr() string { return b.addr }

// Host returns the host name or IP without the port, nor a name's trailing
// dot.
func (b *Backend) Host() string { return b.host }

// String returns the URL.
func (b *Backend) String() string { return b.url }

// SetTransport attaches the front end's client for this backend (an HTTP/1.1
// client, for example). The pool never looks at it. Call it before the
// backend serves traffic.
func (b *Backend) SetTransport(t any) { b.transport = t }

// Transport returns what SetTransport attached.
func (b *Backend) Transport() any { return b.transport }

// State reports whether the backend is up or down.
func (b *Backend) State() State { return State(b.state.Load()) }

// Up reports whether the backend is up.
func (b *Backend) Up() bool { return b.state.Load() == uint32(StateUp) }

// Since returns when the backend last changed state (or was created).
func (b *Backend) Since() time.Time { return time.Unix(0, b.since.Load()) }

// LastError returns the reason of the last failure recorded, or "".
func (b *Backend) LastError() string {
	if p := b.lastErr.Load(); p != nil {
		return *p
	}
	return ""
}

// setState moves the backend to s and reports whether that was a change, so
// that a transition is acted on (and logged) exactly once.
func (b *Backend) setState(s State) bool {
	for {
		old := b.state.Load()
		if old == uint32(s) {
			return false
		}
		if b.state.CompareAndSwap(old, uint32(s)) {
			b.since.Store(time.Now().UnixNano())
			b.stats.stateChanges.Add(1)
			return true
		}
	}
}

// Begin records that an attempt is being sent to the backend. Every Begin
// must be paired with one Done. Begin does not look at MaxConns; TryBegin
// does.
func (b *Backend) Begin() {
	b.inflight.Add(1)
	b.begun()
}

// begun counts an attempt that Begin or TryBegin started: the one place for
// per-attempt counters.
func (b *Backend) begun() {
	b.requests.Add(1)
}

// TryBegin is Begin for a backend that may have a connection limit: it
// starts the attempt and returns true only while fewer than MaxConns
// attempts are in flight, so concurrent callers never push the backend past
// its limit. Without a limit it is Begin.
func (b *Backend) TryBegin() bool {
	limit := b.maxConns.Load()
	if limit == 0 {
		b.Begin()
		return true
	}
	for {
		n := b.inflight.Load()
		if n >= limit {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			b.begun()
			return true
		}
	}
}

// Full reports whether the backend has MaxConns attempts in flight, so that
// policies pass it by. A backend without a limit is never full.
func (b *Backend) Full() bool {
	limit := b.maxConns.Load()
	return limit != 0 && b.inflight.Load() >= limit
}

// Done records the end of an attempt started with Begin; failed says whether
// the attempt failed before a response arrived.
func (b *Backend) Done(failed bool) {
	b.inflight.Add(-1)
	if failed {
		b.failures.Add(1)
	}
}

// InFlight returns the number of attempts now running on the backend.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// Requests returns the number of attempts sent to the backend so far.
func (b *Backend) Requests() uint64 { return b.requests.Load() }

// Failures returns the number of attempts that failed before a response.
func (b *Backend) Failures() uint64 { return b.failures.Load() }

// AddFailureStreak records one more failure in a row (a connect failure or
// an unanswered attempt) and returns how many there have been.
func (b *Backend) AddFailureStreak() int32 { return b.streak.Add(1) }

// ResetFailureStreak ends a run of failures; it costs one load when there
// was none, so every successful attempt can call it.
func (b *Backend) ResetFailureStreak() {
	if b.streak.Load() != 0 {
		b.streak.Store(0)
	}
}

// Hedged records that the backend was slow enough for a hedge to be sent
// elsewhere.
func (b *Backend) Hedged() { b.hedged.Add(1) }

// HedgeWon records that a hedge sent to this backend answered first.
func (b *Backend) HedgeWon() { b.hedgeWon.Add(1) }

// Hedges returns how many hedges the backend's slowness caused, and how
// many hedges sent to it won.
func (b *Backend) Hedges() (caused, won uint64) { return b.hedged.Load(), b.hedgeWon.Load() }

// ShouldReport reports whether a failure at time now deserves a log record:
// at most one per interval per backend, whichever goroutine gets there.
func (b *Backend) ShouldReport(now, interval int64) bool {
	last := b.reported.Load()
	return now-last >= interval && b.reported.CompareAndSwap(last, now)
}

// TryTimedOut records an attempt abandoned for want of a response header.
func (b *Backend) TryTimedOut() { b.tryTOs.Add(1) }

// TryTimeouts returns how many attempts were abandoned for want of a
// response header.
func (b *Backend) TryTimeouts() uint64 { return b.tryTOs.Load() }

// Ejections returns how many times live traffic took the backend out of
// rotation.
func (b *Backend) Ejections() uint64 { return b.ejected.Load() }

// RecordError remembers reason as the backend's last failure.
func (b *Backend) RecordError(reason string) { b.lastErr.Store(&reason) }
