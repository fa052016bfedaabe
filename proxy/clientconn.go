package proxy

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// guardListener wraps the connections of the proxy's own listeners in
// guardConn, beneath TLS where there is TLS, and refuses those over the
// connection limits (connlimit.go).
type guardListener struct {
	net.Listener
	acc    *acceptor    // accepts fdConns from a TCP listener (fdconn.go); nil: net does
	parker *parker      // holds its idle connections (park.go); nil: they keep their goroutines
	limit  *connLimit   // nil: no connection limit
	tls    bool         // TLS is spoken above: a refusal cannot be answered
	log    *slog.Logger // for accepts that wait (acceptWaiting)
	closed *closeOnce   // closed with the listener: ends an accept's wait
	linger *lingerers   // its connections' lingering closes (linger.go)
}

// closeOnce is a channel closed once, however many times Close is called.
type closeOnce struct {
	once sync.Once
	ch   chan struct{}
}

func (c *closeOnce) close() {
	if c != nil {
		c.once.Do(func() { close(c.ch) })
	}
}

// done is the channel, or nil (never closed) without a closeOnce.
func (c *closeOnce) done() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.ch
}

// guardListener returns ln's guarded form; tls says that ln's connections
// will speak TLS.
func (p *Proxy) guardListener(ln net.Listener, tls bool) guardListener {
	return guardListener{
		Listener: ln, acc: acceptorFor(ln), limit: p.connLimit, tls: tls,
		log: p.log, closed: &closeOnce{ch: make(chan struct{})}, linger: &p.lingerers,
	}
}

func (l guardListener) Accept() (net.Conn, error) {
	var src net.Listener = l.Listener
	if l.acc != nil {
		src = rawListener{l.acc}
	}
	for {
		c, err := acceptWaiting(src, l.closed.done(), l.log)
		if err != nil {
			return nil, err
		}
		var peer netip.Addr
		if fc, ok := c.(*fdConn); ok {
			peer = fc.peer.Addr().Unmap().WithZone("") // as addrOf gives it
		} else {
			peer = addrOf(c.RemoteAddr())
		}
		g := &guardConn{peer: peer, lingerers: l.linger}
		if l.limit != nil {
			if why := l.limit.take(peer); why != admitted {
				l.limit.refuse(c, peer, l.tls, why)
				continue
			}
			g.limit.Store(l.limit)
		}
		g.sockConn.init(c)
		g.io.waitFirst()
		if _, ok := c.(*fdConn); ok {
			g.parker = l.parker
		}
		return g, nil
	}
}

// Close implements net.Listener; an accept waiting for file descriptors
// (acceptWaiting) returns at once.
func (l guardListener) Close() error {
	l.closed.close()
	return l.Listener.Close()
}

// guardConn is a client connection as the proxy accepted it, beneath TLS
// where there is TLS. It reads and writes a TCP socket through sockIO; it
// bounds what one read of a chunked request body takes from the socket
// (chunkguard.go); and it holds the watchdog's record of the connection,
// found without a map lookup. Only the goroutine serving the connection
// touches its fields (a tunnel's goroutines touch only io, and cc, whose
// record has atomics of its own), so they need no atomics.
type guardConn struct {
	sockConn // reads and writes through sockIO when it is a TCP socket

	peer     netip.Addr  // the peer's address (see peerAddr)
	cc       *clientConn // the watchdog's record (rec) while it tracks the connection, else nil
	rec      clientConn  // the record, carried by the connection: no allocation, no lookup
	answered int         // responses written (see watchdog.connState)

	armed bool
	left  int         // bytes the current body read may still take, while armed
	body  guardedBody // the current request's chunked body, read through the guard

	// limit counts the connection, in all and by peer, until its first
	// Close (which may come from the watchdog and the server both), or is
	// nil.
	limit atomic.Pointer[connLimit]

	heldBody *bodyBuf // the body of the response being written (respbody.go)

	tunnel *tunnel // the tunnel a 101 hands the connection to: its record stays with the watchdog until it ends

	// A lingering close (linger.go): whether one was asked for, by the
	// serving goroutine (atomic: the watchdog's abort clears it), and
	// who runs it.
	linger    atomic.Bool
	lingerers *lingerers

	plain bool     // fasthttp reads the connection in plain text (not through TLS)
	head  headScan // the request head being read, while plain (headscan.go)

	// Parking while idle (park.go): the parker, nil when the connection
	// is not parked; its park state; under the parker's mutex, the Closes
	// that came while it was leaving fasthttp and whether one came while
	// it was served; its descriptor while held.
	parker      *parker
	park        atomic.Int32
	leaveCloses int
	closed      bool
	parkFD      int32
}

// Read implements net.Conn.
func (c *guardConn) Read(b []byte) (int, error) {
	n, err := c.sockConn.Read(b)
	for c.park.Load() == parkAsked {
		var again bool
		if n, again, err = c.parkRead(n, err); !again {
			break
		}
		n, err = c.sockConn.Read(b)
	}
	if c.plain && c.head.read(b[:n]) && err == nil {
		err = errBareLF
	}
	if c.armed {
		c.left -= n
		if c.left < 0 && err == nil {
			err = errChunkLineTooLong
		}
	}
	return n, err
}

// Close implements net.Conn. The Close of a connection being parked, or
// held, is the parker's (closeParked).
func (c *guardConn) Close() error {
	if c.parker != nil && c.parker.closeParked(c) {
		return nil
	}
	if c.lingerIfAsked() {
		return nil
	}
	return c.closeConn()
}

// closeConn closes the connection and frees its place under the
// connection limits.
func (c *guardConn) closeConn() error {
	if l := c.limit.Swap(nil); l != nil {
		l.put(c.peer)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one beneath can (a tunnel
// passes a client's end of stream on).
func (c *guardConn) CloseWrite() error {
	return closeWrite(c.Conn)
}

// NetConn returns the connection beneath.
func (c *guardConn) NetConn() net.Conn { return c.Conn }

// clientOf returns the guardConn beneath a connection fasthttp serves, or
// nil for one accepted by someone else's server.
func clientOf(c net.Conn) *guardConn {
	switch v := c.(type) {
	case *guardConn:
		return v
	case *h2cConn:
		g, _ := v.Conn.(*guardConn)
		return g
	case *tls.Conn:
		g, _ := v.NetConn().(*guardConn)
		return g
	}
	return nil
}
