package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// A tunnel carries a connection that switched protocols (a WebSocket, or
// any Connection: Upgrade) once the backend has answered 101: the client's
// connection is hijacked from the HTTP server and spliced to the backend's,
// one copy loop per direction. A side that finishes sending (EOF) is
// half-closed on the other connection, so each direction ends on its own
// terms, and the other direction then has tunnelLinger to finish before
// both are closed; an error on either side closes both at once. Tunnels
// are tracked so that a graceful shutdown can wait for them, then close
// what is left, and so that the watchdog can close those idle or stalled
// past the tunnel limit (sweep).
type tunnel struct {
	up      *upstream
	cc      any // the backend connection's handle in its pool
	backend *backendConn
	br      *bufio.Reader // the backend's reader: may hold bytes after the 101

	client net.Conn

	// clock is the watchdog's coarse clock; on it, moved is when bytes last
	// moved either way, and writing when each direction's write in
	// progress began (zero: none).
	clock   *atomic.Int64
	moved   atomic.Int64
	writing [2]atomic.Int64
	// timedOut is set by the sweep that closes it for its idle timeout:
	// once, though it stays in the set until runTunnel takes it out.
	timedOut atomic.Bool
}

// Directions of a tunnel, indexing tunnel.writing.
const (
	toBackend = iota
	toClient
)

// tunnels is the set of running tunnels.
type tunnels struct {
	mu      sync.Mutex
	set     map[*tunnel]struct{}
	idle    chan struct{} // closed when the set empties, once someone waits for it
	closing bool          // drain is over or out of time: tunnels are closed as they open

	traffic *pool.Traffic // counts the tunnels the sweep times out; nil: none counted
}

func (ts *tunnels) add(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.set == nil {
		ts.set = make(map[*tunnel]struct{})
	}
	ts.set[t] = struct{}{}
	if ts.closing {
		// Its 101 was on its way while the proxy shut down: it ends at once.
		t.client.Close()
		t.backend.Conn.Close()
	}
}

func (ts *tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.set, t)
	if len(ts.set) == 0 && ts.idle != nil {
		close(ts.idle)
		ts.idle = nil
	}
}

// Len returns how many tunnels are open.
func (ts *tunnels) Len() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.set)
}

// empty returns a channel closed once no tunnel is open (already, or
// later), and whether it is so already.
func (ts *tunnels) empty() (<-chan struct{}, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.set) == 0 {
		return nil, true
	}
	if ts.idle == nil {
		ts.idle = make(chan struct{})
	}
	return ts.idle, false
}

// drain waits until every tunnel has ended or ctx is done, then closes the
// connections of those still open. It returns ctx's error if any were.
// A tunnel that opens while it waits (its 101 was on its way) is waited
// for too; one that opens after it has returned is closed as it opens.
func (ts *tunnels) drain(ctx context.Context) error {
	defer func() {
		ts.mu.Lock()
		ts.closing = true
		ts.mu.Unlock()
	}()
	for {
		idle, done := ts.empty()
		if done {
			return nil
		}
		select {
		case <-idle:
			continue
		case <-ctx.Done():
		}
		ts.mu.Lock()
		ts.closing = true
		for t := range ts.set {
			t.client.Close()
			t.backend.Conn.Close()
		}
		ts.mu.Unlock()
		for {
			idle, done := ts.empty()
			if done {
				return ctx.Err()
			}
			<-idle
		}
	}
}

// sweep closes the tunnels that have carried nothing either way for
// longer than limit, or whose write to one side has stalled that long (a
// peer that stopped reading while the other side still talks); zero is no
// limit. Their copy loops then fail and end the tunnel as any error does.
func (ts *tunnels) sweep(now int64, limit time.Duration) {
	if limit <= 0 {
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for t := range ts.set {
		if t.expired(now, int64(limit)) && t.timedOut.CompareAndSwap(false, true) {
			t.client.Close()
			t.backend.Conn.Close()
			if ts.traffic != nil {
				ts.traffic.TunnelTimedOut()
			}
		}
	}
}

// expired reports whether t has been idle, or one of its writes stalled,
// for longer than limit nanoseconds at now.
func (t *tunnel) expired(now, limit int64) bool {
	if now-t.moved.Load() > limit {
		return true
	}
	for i := range t.writing {
		if w := t.writing[i].Load(); w != 0 && now-w > limit {
			return true
		}
	}
	return false
}

// tunnelLinger is how long one direction of a tunnel may go on after the
// other has ended cleanly.
const tunnelLinger = 10 * time.Second

// release closes the tunnel's backend connection, which spoke another
// protocol and cannot go back to its pool: when the tunnel ends, or when
// it never ran because the server closed the client connection instead of
// handing it over (a 101 written during a graceful shutdown goes out with
// Connection: close; a write failed), which fasthttp reports as closed,
// not hijacked.
func (t *tunnel) release() {
	t.up.conns.releaseReader(t.br)
	t.up.conns.close(t.cc)
}

// halfCloser is a connection that can stop sending while still receiving.
type halfCloser interface{ CloseWrite() error }

// closeWrite half-closes c if it can, or says it cannot.
func closeWrite(c net.Conn) error {
	if hc, ok := c.(halfCloser); ok {
		return hc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// run splices client and backend until both directions have ended. It is
// the hijack handler: fasthttp closes client when it returns.
func (p *Proxy) runTunnel(t *tunnel, client net.Conn) {
	// fasthttp's hijacked connection reads what the server had buffered
	// first; writes and closes go to the connection underneath.
	raw := client
	if u, ok := client.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	t.client = raw
	t.clock = &p.wd.clock
	t.moved.Store(t.clock.Load())
	p.wd.tunnels.add(t)
	defer p.wd.tunnels.remove(t)
	// The server stopped counting the connection when it was hijacked.
	defer p.traffic.ConnClosed()
	defer t.release()
	defer raw.Close()

	// Reads and writes go through the connections' sockIO (t.backend,
	// and the guardConn beneath client), whose reads after a short one
	// wait for the poller instead of finding nothing: the watchdog, which
	// still holds both connections, ends a wait that has lasted past its
	// limit, as it does between requests (sockio.go). Half-closes and
	// closes go to the sockets.
	backendRaw := t.backend.Conn
	abort := func() {
		raw.Close()
		backendRaw.Close()
	}
	if g := clientOf(raw); g != nil && g.cc != nil {
		g.cc.enter(phaseTunnel, p.wd.now())
		g.io.waitWith(&p.wd.clock) // this goroutine reads the client
		defer p.wd.clients.remove(g.cc)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.backend.io.waitWith(&p.wd.clock) // this goroutine reads the backend
		// What the backend sent right after its 101, then the rest.
		var err error
		if n := t.br.Buffered(); n > 0 {
			b, _ := t.br.Peek(n)
			err = t.write(toClient, raw, b)
			t.br.Discard(n) //nolint:errcheck // peeked
		}
		if err == nil {
			err = t.pump(toClient, raw, t.backend)
		}
		if endDirection(raw, err, abort) {
			client.SetReadDeadline(time.Now().Add(tunnelLinger))
		}
	}()
	err := t.pump(toBackend, t.backend, client)
	if endDirection(backendRaw, err, abort) {
		t.backend.SetReadDeadline(time.Now().Add(tunnelLinger))
	}
	<-done
}

// pumpBufferSize is each tunnel direction's buffer.
const pumpBufferSize = 16 << 10

var pumpBuffers = sync.Pool{New: func() any { b := make([]byte, pumpBufferSize); return &b }}

// pump copies src to dst, direction dir of the tunnel, until src ends
// (nil) or either side fails. It is a plain read-write loop rather than
// io.Copy, whose splice(2) between two TCP connections costs more than it
// saves for the small messages WebSockets carry. Its reads wait for the
// poller after a short one (runTunnel), so it no longer yields before each
// read to find the next message there: 16.2 µs of CPU per echoed message
// without the yield, 16.6 with it, 20 before the waits (nginx 14).
func (t *tunnel) pump(dir int, dst io.Writer, src io.Reader) error {
	bp := pumpBuffers.Get().(*[]byte)
	defer pumpBuffers.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if werr := t.write(dir, dst, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// write writes b to dst, direction dir of the tunnel, telling the
// watchdog when bytes moved and how long the write has been waiting.
func (t *tunnel) write(dir int, dst io.Writer, b []byte) error {
	now := t.clock.Load()
	t.moved.Store(now)
	t.writing[dir].Store(now)
	_, err := dst.Write(b)
	t.writing[dir].Store(0)
	t.moved.Store(t.clock.Load())
	return err
}

// endDirection finishes one direction of a tunnel: at a clean end of input
// the destination is half-closed and it reports true; after an error both
// sides are closed.
func endDirection(dst net.Conn, err error, abort func()) (halfClosed bool) {
	if err == nil {
		if closeWrite(dst) == nil {
			return true
		}
	}
	abort()
	return false
}
