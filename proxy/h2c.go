package proxy

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
)

// Handing a connection to the HTTP/2 server from inside fasthttp's first
// read. fasthttp reads a new connection's first bytes through the
// connection's Read; a dispatchConn decides there, once, whether the client
// speaks HTTP/2. If it does, the connection is served as HTTP/2 right there,
// in the same worker (so fasthttp's connection limit and Shutdown count it),
// and fasthttp then reads end-of-file and lets go of it. If not, the bytes
// go to fasthttp as if read directly, and every later Read is passed
// through. Only plain listeners with H2C on get such a wrapper: on TLS
// listeners, fasthttp's NextProto dispatch hands over the connections that
// negotiated h2.

// h2Preface opens every HTTP/2 connection (RFC 9113 §3.4).
var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// Dispatch states.
const (
	dispatchPending uint32 = iota // nothing read yet
	dispatchHTTP1                 // HTTP/1.1: reads pass through
	dispatchH2                    // being served as HTTP/2
	dispatchDone                  // the HTTP/2 connection has ended
)

// dispatch is the state a dispatching connection shares with its Close.
type dispatch struct {
	state atomic.Uint32
}

// closing reports whether a Close from fasthttp or the watchdog must be
// ignored: while the HTTP/2 server owns the connection, it closes it
// itself, after a graceful GOAWAY on shutdown.
func (d *dispatch) closing() bool { return d.state.Load() != dispatchH2 }

// h2cListener wraps a plain listener's connections for the preface check.
type h2cListener struct {
	net.Listener
	s *h2Server
}

func (l *h2cListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &h2cConn{Conn: c, s: l.s}, nil
}

// h2cConn is a plain connection that may turn out to be HTTP/2 with prior
// knowledge.
type h2cConn struct {
	net.Conn
	s *h2Server
	d dispatch
	// pending holds sniffed bytes not yet handed to fasthttp, when its
	// first read was smaller than the preface (fasthttp's ReduceMemoryUsage,
	// which the proxy does not set, reads one byte first).
	pending []byte
	buf     [24]byte
}

// Read implements net.Conn. The first call reads until the bytes either
// differ from the preface (HTTP/1.1: handed on, no copy) or hold all of it
// (HTTP/2: served, then end-of-file).
func (c *h2cConn) Read(b []byte) (int, error) {
	if c.d.state.Load() != dispatchPending {
		if len(c.pending) > 0 {
			n := copy(b, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		return c.Conn.Read(b)
	}
	if len(b) < len(h2Preface) {
		// Sniff into a buffer of our own, then hand its bytes over.
		n, err := c.sniff(c.buf[:])
		if c.d.state.Load() == dispatchDone {
			return 0, io.EOF
		}
		c.pending = c.buf[:n]
		m := copy(b, c.pending)
		c.pending = c.pending[m:]
		if len(c.pending) > 0 {
			err = nil // the rest first; the error comes again on reading on
		}
		return m, err
	}
	return c.sniff(b)
}

// sniff reads into b, at least as long as the preface, until its bytes
// differ from the preface or hold all of it; for HTTP/2 it serves the
// connection and returns end-of-file.
func (c *h2cConn) sniff(b []byte) (int, error) {
	n := 0
	for {
		m, err := c.Conn.Read(b[n:])
		n += m
		if !bytes.HasPrefix(h2Preface, b[:min(n, len(h2Preface))]) {
			c.d.state.Store(dispatchHTTP1)
			return n, err
		}
		if n >= len(h2Preface) {
			break
		}
		if err != nil {
			c.d.state.Store(dispatchHTTP1) // a partial preface: fasthttp answers 400
			return n, err
		}
	}
	c.d.state.Store(dispatchH2)
	rc := &replayConn{Conn: c.Conn, pending: append([]byte(nil), b[:n]...)}
	c.s.serve(rc, c)
	c.d.state.Store(dispatchDone)
	return 0, io.EOF
}

// Close implements net.Conn; see dispatch.closing.
func (c *h2cConn) Close() error {
	if !c.d.closing() {
		return nil
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection underneath: a tunnel passes a
// backend's end of stream on this way.
func (c *h2cConn) CloseWrite() error {
	return closeWrite(c.Conn)
}

// ReadFrom passes what the server's write buffer hands on (the rest of a
// response body) to the connection underneath, whose ReadFrom splices a
// spliced body's rest (splice.go): without it, such a body would be read
// through the write buffer instead, neither spliced nor read whole.
func (c *h2cConn) ReadFrom(r io.Reader) (int64, error) {
	if g, ok := c.Conn.(*guardConn); ok {
		return g.ReadFrom(r)
	}
	return copyStream(c.Conn, r)
}

// NetConn returns the connection underneath, for the tunnel's splice.
func (c *h2cConn) NetConn() net.Conn { return c.Conn }

// replayConn returns the bytes read while sniffing before reading on.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(b, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
