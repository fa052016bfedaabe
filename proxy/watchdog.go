package proxy

import (
	"bufio"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// The watchdog enforces connection timeouts in coarse steps, the way nginx
// runs its timers off a clock cached per event loop: each connection keeps
// the phase it is in and when that phase began, in atomics, and a goroutine
// sweeps them a few times a second and closes those past their limit (a
// request not read in time is answered 408 first: endRead). The request
// path then pays a few atomic stores instead of arming and disarming
// runtime timers (and reading the clock) four times per request.
type watchdog struct {
	clock atomic.Int64 // unix nanoseconds, advanced every backendTick

	clients clientSet

	backends connSet[*backendConn]

	streams streamDeadlines // attempts of the net/http path: streamdeadline.go

	tunnels tunnels // running tunnels: tunnel.go

	limits clientLimits

	// How long a wait without a read first goes on before the sweep ends
	// it (sockio.go), in nanoseconds: backendWaitLimit and clientWaitLimit
	// (atomics only so that tests may change them).
	wakeBackend, wakeClient atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// clientLimits bounds each phase of a client connection; zero is no limit.
type clientLimits struct {
	header time.Duration // from connect or first byte until the handler runs
	body   time.Duration // between two reads of a request body
	write  time.Duration // from the handler's return until the response is sent, or between two writes of a streamed one
	idle   time.Duration // between requests on a keep-alive connection
	tunnel time.Duration // a tunnel carrying nothing either way, or a write into it stalled
}

// Sweep periods. Backend deadlines are checked often, since a backend timeout
// is what a client is waiting on; client limits are tens of seconds.
const (
	backendTick = 10 * time.Millisecond
	clientTick  = 250 * time.Millisecond
)

func newWatchdog(limits clientLimits) *watchdog {
	w := &watchdog{
		limits: limits,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	w.clock.Store(time.Now().UnixNano())
	w.wakeBackend.Store(int64(backendWaitLimit))
	w.wakeClient.Store(int64(clientWaitLimit))
	go w.run()
	return w
}

// now returns the coarse clock: never more than backendTick behind.
func (w *watchdog) now() int64 { return w.clock.Load() }

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTicker(backendTick)
	defer t.Stop()
	clientsDue := int64(0)
	for {
		select {
		case <-w.stop:
			return
		case now := <-t.C:
			n := now.UnixNano()
			w.clock.Store(n)
			w.sweepBackends(n)
			w.streams.sweep(n)
			if n >= clientsDue {
				w.sweepClients(n)
				w.tunnels.sweep(n, w.limits.tunnel)
				clientsDue = n + int64(clientTick)
			}
		}
	}
}

func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// Client connections.

// Phases of a client connection.
const (
	phaseHeader    uint32 = iota // reading a request header: a byte of it has come
	phaseBody                    // reading a request body (progress restarts the clock)
	phaseHandling                // the handler is proxying it
	phaseWriting                 // the response is being written
	phaseIdle                    // kept alive between requests
	phaseTunnel                  // carried by a tunnel (tunnel.go), which times itself
	phaseNew                     // accepted, and nothing read yet: the header limit runs
	phaseAnswering               // its read was ended at a read limit (endRead): its 408 is being written
)

type clientConn struct {
	conn  net.Conn
	io    *sockIO // the socket's I/O, whose waits the sweep ends; nil: none
	phase atomic.Uint32
	since atomic.Int64 // coarse unix nanoseconds the phase began
	inSet int          // its place in the watchdog's clientSet (see connSet)
	guard *guardConn   // the connection, when it may be parked while idle (park.go); else nil

	// ended says the sweep ended its request's read at the header or body
	// limit (endRead): the read's failure is a 408, whatever error it
	// comes as (fasthttp wraps some without a way to unwrap them).
	ended atomic.Bool
	// began is when the request whose header read the sweep ended began
	// (its phaseHeader's since, which the 408's write limit took over),
	// for the access log (readStart); zero otherwise.
	began atomic.Int64
}

// readEnded reports whether the sweep ended the request read of the
// connection cc (nil: one the watchdog does not time).
func (cc *clientConn) readEnded() bool { return cc != nil && cc.ended.Load() }

// readStart returns when the request whose read failed on the connection
// cc (nil: one the watchdog does not time) began to arrive, in coarse unix
// nanoseconds: its first byte's StateActive, or 0 when the record knows
// nothing of it. Only a request not yet handled has it: the handler reads
// the clock itself (for the access log), and its phases move on.
func (cc *clientConn) readStart() int64 {
	if cc == nil {
		return 0
	}
	// since before phase: endRead moves the phase on before since.
	since := cc.since.Load()
	switch cc.phase.Load() {
	case phaseHeader:
		return since
	case phaseAnswering:
		return cc.began.Load()
	}
	return 0
}

func (c *clientConn) slot() *int { return &c.inSet }

func (c *clientConn) enter(phase uint32, now int64) {
	c.since.Store(now)
	c.phase.Store(phase)
}

// connState is the fasthttp server's ConnState hook: it tracks each client
// connection's phase.
func (w *watchdog) connState(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		if g := clientOf(c); g != nil {
			// The connection carries its record: no allocation, and the
			// handler finds it without a lookup.
			g.rec = clientConn{conn: c}
			cc := &g.rec
			if g.parker != nil && c == net.Conn(g) {
				cc.guard = g
			}
			cc.enter(phaseNew, w.now())
			if g.io.on() {
				cc.io = &g.io
			}
			g.cc = cc
			w.clients.add(cc)
			switch c.(type) {
			case *guardConn, *h2cConn:
				g.plain = true
				g.head.start()
			}
			return
		}
		cc := &clientConn{conn: c}
		cc.enter(phaseNew, w.now())
		w.clients.addConn(cc)
	case fasthttp.StateActive:
		// The first byte of a request is in.
		if cc := w.client(c); cc != nil {
			cc.enter(phaseHeader, w.now())
		}
	case fasthttp.StateIdle:
		// The response is written: its body's buffer goes back.
		if g := clientOf(c); g != nil {
			g.releaseBody()
			g.head.next()
			if g.cc != nil {
				g.cc.enter(phaseIdle, w.now())
				if g.answered++; g.answered == 2 {
					// A client that came back for a second request
					// keeps its connection alive: from here on its reads
					// wait without reading first (sockio.go). One that
					// sends a request and half-closes at once sees the
					// end of its connection at once.
					g.io.waitWith(&w.clock)
				}
			}
		} else if cc := w.client(c); cc != nil {
			cc.enter(phaseIdle, w.now())
		}
	case fasthttp.StateHijacked, fasthttp.StateClosed:
		if g := clientOf(c); g != nil {
			g.releaseBody()
			// A tunnel's connection stays in the set, in a phase no
			// limit times, so that the sweep still ends its reads'
			// waits; runTunnel takes it out.
			if g.cc != nil && (state == fasthttp.StateClosed || g.tunnel == nil) {
				w.clients.remove(g.cc)
			}
			if state == fasthttp.StateClosed && g.tunnel != nil {
				g.tunnel.release() // its 101 went out, but no tunnel will run
			}
			return
		}
		w.clients.removeConn(c)
	}
}

// forget stops tracking a client connection whose protocol now times it
// itself (one handed to the HTTP/2 server). Its reads no longer wait
// without reading first: no sweep would end a wait.
func (w *watchdog) forget(c net.Conn) {
	if g := clientOf(c); g != nil {
		if g.cc != nil {
			w.clients.remove(g.cc)
		}
		g.cc = nil
		g.io.waitWith(nil)
		return
	}
	w.clients.removeConn(c)
}

// client returns the record of a tracked connection, or nil for one the
// watchdog does not know (a handler mounted in someone else's server).
// The connection holds it when it is one the proxy accepted; others are
// looked up.
func (w *watchdog) client(c net.Conn) *clientConn {
	if g := clientOf(c); g != nil {
		return g.cc
	}
	return w.clients.lookup(c)
}

func (w *watchdog) sweepClients(now int64) {
	waitedSince := now - w.wakeClient.Load()
	for _, cc := range w.clients.snapshot() {
		w.sweepClient(cc, now, waitedSince)
	}
}

// sweepClient is the sweep of one client connection at now: a wait of
// its that began before waitedSince is ended, an idle one is asked to
// park, and one past its phase's limit is dropped.
func (w *watchdog) sweepClient(cc *clientConn, now, waitedSince int64) {
	var limit time.Duration
	phase := cc.phase.Load()
	switch phase {
	case phaseNew, phaseHeader:
		limit = w.limits.header
	case phaseBody:
		limit = w.limits.body
	case phaseWriting, phaseAnswering:
		limit = w.limits.write
	case phaseIdle:
		limit = w.limits.idle
		if g := cc.guard; g != nil && now-cc.since.Load() > int64(parkAfter) {
			g.askPark()
		}
	}
	if cc.io != nil {
		cc.io.wake(waitedSince)
	}
	if limit > 0 && now-cc.since.Load() > int64(limit) {
		if (phase == phaseHeader || phase == phaseBody) && w.endRead(cc, phase, now) {
			return
		}
		// A slow writer, an idle keep-alive connection, one that sent
		// nothing, or a 408 nobody reads: drop it, as nginx does on
		// send_timeout, keepalive_timeout and client_header_timeout
		// before a request has begun.
		abortConn(cc.conn)
		// Once is enough: the connection's reads and writes fail
		// now. (A connection an HTTP/2 server took over through a
		// per-IP wrapper is not closed by it: the server ends it.)
		w.clients.remove(cc)
		w.clients.removeConn(cc.conn)
	}
}

// endRead ends the read of a request begun and not read within its limit,
// header or body: the read fails, as one past its deadline, and the server
// answers 408 and closes the connection (handleReadError for a header,
// readFailure for a body), as nginx answers client_body_timeout and HAProxy
// and Apache a header not finished in time. The 408 then has the write
// limit to go out. It reports false when the read cannot be ended so (the
// connection is closed already): the caller drops the connection.
func (w *watchdog) endRead(cc *clientConn, phase uint32, now int64) bool {
	if phase == phaseHeader {
		// The request's start, for its access log line (readStart):
		// since becomes the 408's. Stored first, as readStart reads it
		// once the phase has moved.
		cc.began.Store(cc.since.Load())
	}
	if !cc.phase.CompareAndSwap(phase, phaseAnswering) {
		return true // it moved on meanwhile: its new phase is timed next
	}
	cc.since.Store(now)
	cc.ended.Store(true)
	return cc.conn.SetReadDeadline(aLongTimeAgo) == nil
}

// clientSet holds the client connections the sweep visits. Connections the
// proxy did not accept itself have no guardConn to carry their record, so
// others finds those by connection.
type clientSet struct {
	connSet[*clientConn]
	others map[net.Conn]*clientConn // under connSet.mu
}

// addConn puts cc in the set, found by lookup.
func (s *clientSet) addConn(cc *clientConn) {
	s.mu.Lock()
	s.addLocked(cc)
	if s.others == nil {
		s.others = make(map[net.Conn]*clientConn)
	}
	s.others[cc.conn] = cc
	s.mu.Unlock()
}

// removeConn takes the record addConn put in for c out of the set.
func (s *clientSet) removeConn(c net.Conn) {
	s.mu.Lock()
	if cc, ok := s.others[c]; ok {
		delete(s.others, c)
		s.removeLocked(cc)
	}
	s.mu.Unlock()
}

// lookup returns the record addConn put in for c, or nil.
func (s *clientSet) lookup(c net.Conn) *clientConn {
	s.mu.Lock()
	cc := s.others[c]
	s.mu.Unlock()
	return cc
}

// Backend connections.

// backendConn is a connection to a backend that the watchdog can time out.
// An exchange sets a deadline on the coarse clock; when it passes, the
// watchdog marks the connection expired and closes it, which ends any read
// or write in progress.
type backendConn struct {
	sockConn // reads and writes through sockIO when it is a TCP socket
	w        *watchdog
	deadline atomic.Int64 // coarse unix nanoseconds; zero when idle
	armed    int64        // coarse time the last exchange began (see idleClosed)
	expired  atomic.Bool
	closed   atomic.Bool

	// uses counts the exchanges started on the connection; br and bw are
	// its buffers (see connPool). Only the goroutine holding the
	// connection touches them.
	uses int
	br   *bufio.Reader
	bw   *bufio.Writer
	// head is set while a response head is read from br (headlf.go).
	head bool

	inSet int // its place in the watchdog's backends (see connSet)

	pipe pipeFDs // for bodies spliced from it (splice.go), closed with it
}

func (c *backendConn) slot() *int { return &c.inSet }

func (w *watchdog) trackBackend(c net.Conn) *backendConn {
	bc := &backendConn{w: w}
	bc.sockConn.init(c)
	w.backends.add(bc)
	return bc
}

// arm starts an exchange whose next step must end within d, and returns
// the coarse time it started.
func (c *backendConn) arm(d time.Duration) int64 {
	now := c.w.now()
	c.deadline.Store(now + int64(d))
	c.armed = now
	return now
}

// armAt moves the exchange's deadline to the coarse time t.
func (c *backendConn) armAt(t int64) { c.deadline.Store(t) }

// disarm ends the exchange.
func (c *backendConn) disarm() { c.deadline.Store(0) }

// Close closes the connection and stops tracking it.
func (c *backendConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.w.backends.remove(c)
		// Whoever closes it holds it, or it is idle: the pipe is not in
		// use.
		c.pipe.close()
	}
	return c.Conn.Close()
}

func (w *watchdog) sweepBackends(now int64) {
	waitedSince := now - w.wakeBackend.Load()
	for _, bc := range w.backends.snapshot() {
		if d := bc.deadline.Load(); d != 0 && now > d {
			bc.expired.Store(true)
			abortConn(bc.Conn)
			continue
		}
		bc.io.wake(waitedSince)
	}
}
