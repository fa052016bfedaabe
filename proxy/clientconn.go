package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"sync"
)

// guardListener wraps the connections of the proxy's own listeners in
// guardConn, beneath TLS where there is TLS. byAddr, when set, finds each
// by its remote address (see guards).
type guardListener struct {
	net.Listener
	wd     *watchdog
	byAddr *sync.Map
}

// guardListener returns ln's guarded form.
func (p *Proxy) guardListener(ln net.Listener) net.Listener {
	gl := guardListener{Listener: ln, wd: p.wd}
	if p.cfg.MaxConnsPerIP > 0 {
		gl.byAddr = &p.guards
	}
	return gl
}

func (l guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := &guardConn{Conn: c, wd: l.wd}
	g.tcp = g.io.init(c)
	if l.byAddr != nil {
		g.byAddr = l.byAddr
		l.byAddr.Store(c.RemoteAddr(), g)
	}
	return g, nil
}

// guardConn is a client connection as the proxy accepted it, beneath TLS
// where there is TLS. It reads and writes a TCP socket through sockIO; it
// bounds what one read of a chunked request body takes from the socket
// (chunkguard.go); it holds the watchdog's record of the connection, found
// without a map lookup; and, between requests on a kept-alive connection,
// it waits for the next request in the same step as it writes the answer
// to this one (see awaitNext). Only the goroutine serving the connection
// touches its fields (a tunnel's two goroutines touch none but io), so they
// need no atomics.
type guardConn struct {
	net.Conn
	io  sockIO
	tcp bool // io serves the connection (a TCP socket)

	wd *watchdog
	cc *clientConn // the watchdog's record, once fasthttp reported the connection

	// awaitNext says that the answer to the request just handled is
	// complete, was not streamed, and leaves the connection open: the
	// handler sets it on return (Proxy.awaitable), and the next request's
	// handler clears it.
	awaitNext bool

	armed  bool
	left   int         // bytes the current body read may still take, while armed
	body   guardedBody // the current request's chunked body, read through the guard
	byAddr *sync.Map   // where it is registered by remote address, or nil
}

// serverWriteBufferSize is the size of the fasthttp server's write buffer:
// it writes a full buffer, or more than a buffer at once, only within a
// response, so any write shorter than a buffer comes from an explicit
// flush.
const serverWriteBufferSize = 4096

// connectionCloseLine is how fasthttp announces that it closes a
// connection after a response.
var connectionCloseLine = []byte("\r\nConnection: close\r\n")

// Read implements net.Conn.
func (c *guardConn) Read(b []byte) (int, error) {
	var n int
	var err error
	if c.tcp {
		n, err = c.io.read(b)
	} else {
		n, err = c.Conn.Read(b)
	}
	if c.armed {
		c.left -= n
		if c.left < 0 && err == nil {
			err = errChunkLineTooLong
		}
	}
	return n, err
}

// Write implements net.Conn.
//
// Once a handler has answered a request on a kept-alive connection
// (awaitNext), fasthttp writes the answer, or its last part, from its write
// buffer in an explicit flush, and then reads the next request. A write
// shorter than the buffer after the handler returned is such a flush: the
// end of a response that is not streamed (awaitNext rules streams out), with
// no further request already buffered (fasthttp does not flush while one
// is). fasthttp's other explicit flushes are followed by a read as well
// (the rest of a pipelined request; a body after 100 Continue), except
// before it closes the connection, which the response announces or
// Shutdown does (watchdog.closing). That write then also waits for the
// client to send again: see sockIO.awaitWrite.
func (c *guardConn) Write(b []byte) (int, error) {
	if !c.tcp {
		return c.Conn.Write(b)
	}
	if !c.awaitNext || len(b) >= serverWriteBufferSize || bytes.Contains(b, connectionCloseLine) {
		return c.io.write(b)
	}
	c.awaitNext = false
	return c.awaitRequest(b)
}

// awaitRequest writes b, the end of a response, and waits for the client's
// next request. The watchdog meanwhile sees the connection as idle
// (phaseAwaiting), and afterwards as before. Only a flush after the
// handler's answer waits: one while fasthttp reads a request (the rest of
// a pipelined header, a body after 100 Continue) stays under the header or
// body timeout, with the read after it.
func (c *guardConn) awaitRequest(b []byte) (int, error) {
	cc := c.cc
	if cc == nil || cc.phase.Load() != phaseWriting {
		return c.io.write(b)
	}
	since := cc.since.Load()
	cc.enter(phaseAwaiting, c.wd.now())
	var n int
	var err error
	if c.wd.closing.Load() {
		// Shutting down: fasthttp closes the connection after this.
		n, err = c.io.write(b)
	} else {
		n, err = c.io.awaitWrite(b)
	}
	cc.phase.Store(phaseWriting)
	cc.since.Store(since)
	return n, err
}

// Close implements net.Conn.
func (c *guardConn) Close() error {
	if c.byAddr != nil {
		c.byAddr.CompareAndDelete(c.Conn.RemoteAddr(), c)
	}
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the one beneath can (a tunnel
// passes a client's end of stream on).
func (c *guardConn) CloseWrite() error {
	if hc, ok := c.Conn.(halfCloser); ok {
		return hc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// NetConn returns the connection beneath.
func (c *guardConn) NetConn() net.Conn { return c.Conn }

// clientOf returns the guardConn beneath a connection fasthttp serves, or
// nil (a connection behind fasthttp's per-IP wrapper, or one accepted by
// someone else's server), and whether fasthttp's bytes reach it as they
// are (no TLS between).
func clientOf(c net.Conn) (g *guardConn, plain bool) {
	switch v := c.(type) {
	case *guardConn:
		return v, true
	case *h2cConn:
		g, _ = v.Conn.(*guardConn)
		return g, true
	case *tls.Conn:
		g, _ = v.NetConn().(*guardConn)
		return g, false
	}
	return nil, false
}
