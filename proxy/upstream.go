package proxy

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// upstream is the proxy's side of one backend: its fasthttp.HostClient, used
// as a connection pool (dialing, keep-alive reuse, idle cleanup, the
// connection limit), and typed access to that pool for the exchanges the
// proxy runs itself.
type upstream struct {
	hc    *fasthttp.HostClient
	conns connPool

	// nt is the backend's net/http client, built beside hc on the same
	// dialer: the net/http path (HTTP/2 clients, HTTP/2 backends) sends its
	// requests through it. See nettransport.go.
	nt *http.Transport

	// The health checks' clients (prober.go): probe for HTTP/1.1 backends,
	// probeNet for HTTP/2 ones, which the fasthttp client cannot reach.
	probe    *fasthttp.HostClient
	probeNet *http.Transport
}

// close closes the backend's idle connections, its health checks' included.
// A connection in use is closed when it is given back, as an idle one past
// the idle timeout.
func (u *upstream) close() {
	u.hc.CloseIdleConnections()
	u.nt.CloseIdleConnections()
	if u.probe != nil {
		u.probe.CloseIdleConnections()
	}
	if u.probeNet != nil {
		u.probeNet.CloseIdleConnections()
	}
}

func upstreamOf(b *pool.Backend) *upstream { return b.Transport().(*upstream) }

// connPool hands out pooled connections. A connection is held through an
// opaque handle, so that an exchange can keep one across calls (a streamed
// body, a tunnel) and give it back later without a closure per request.
type connPool interface {
	// acquire returns a connection, waiting up to timeout for a free one.
	acquire(timeout time.Duration) (h any, c net.Conn, err error)
	// release gives a connection back for reuse.
	release(h any)
	// close closes a connection and frees its place in the pool.
	close(h any)
	// reader and writer return the connection's buffered reader and
	// writer; release them when done with the exchange.
	reader(c net.Conn) *bufio.Reader
	releaseReader(br *bufio.Reader)
	writer(c net.Conn) *bufio.Writer
	releaseWriter(bw *bufio.Writer)
}

// hostConns is a connPool over a HostClient. HostClient's connection type is
// unexported; the type parameter carries it, inferred from the methods.
type hostConns[C interface{ Conn() net.Conn }] struct {
	hc        *fasthttp.HostClient
	acquireFn func(time.Duration, bool) (C, error)
	releaseFn func(C)
	closeFn   func(C)
}

func newHostConns[C interface{ Conn() net.Conn }](hc *fasthttp.HostClient,
	acquire func(time.Duration, bool) (C, error), release, close func(C),
) *hostConns[C] {
	return &hostConns[C]{hc: hc, acquireFn: acquire, releaseFn: release, closeFn: close}
}

func (p *hostConns[C]) acquire(timeout time.Duration) (any, net.Conn, error) {
	cc, err := p.acquireFn(timeout, false)
	if err != nil {
		return nil, nil, err
	}
	return cc, cc.Conn(), nil
}

func (p *hostConns[C]) release(h any) { p.releaseFn(h.(C)) }
func (p *hostConns[C]) close(h any)   { p.closeFn(h.(C)) }

// A backend connection keeps its buffered reader and writer for its life,
// as the server does for a client connection: no pool round trip per
// exchange, and whatever the backend sends stays with its connection.
func (p *hostConns[C]) reader(c net.Conn) *bufio.Reader {
	bc := c.(*backendConn)
	if bc.br == nil {
		bc.br = bufio.NewReaderSize(bc, p.hc.ReadBufferSize)
	}
	return bc.br
}

func (p *hostConns[C]) writer(c net.Conn) *bufio.Writer {
	bc := c.(*backendConn)
	if bc.bw == nil {
		bc.bw = bufio.NewWriterSize(bc, p.hc.WriteBufferSize)
	}
	return bc.bw
}

func (p *hostConns[C]) releaseReader(*bufio.Reader) {}
func (p *hostConns[C]) releaseWriter(*bufio.Writer) {}

// newUpstream returns the connection pool for one backend, whose
// connections d makes.
func (p *Proxy) newUpstream(b *pool.Backend, d *backendDialer) *upstream {
	c := p.cfg
	hc := &fasthttp.HostClient{
		Addr: b.Addr(),
		// Never IsTLS: the dialer does TLS (see backendDialer).
		DialTimeout:                   d.dial,
		MaxConns:                      c.MaxConnsPerBackend,
		MaxConnWaitTimeout:            c.DialTimeout,
		MaxIdleConnDuration:           c.BackendIdleTimeout,
		MaxIdemponentCallAttempts:     1, // retries are the proxy's, across backends
		ConnPoolStrategy:              fasthttp.LIFO,
		ReadBufferSize:                c.MaxHeaderSize,
		WriteBufferSize:               writeBufferSize,
		MaxResponseBodySize:           c.MaxResponseBodySize,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	u := &upstream{
		hc:    hc,
		conns: newHostConns(hc, hc.AcquireConn, hc.ReleaseConn, hc.CloseConn),
		nt:    p.newNetTransport(b, d, false),
	}
	if b.Protocol().HTTP2() {
		u.probeNet = p.newNetTransport(b, d, true)
	} else {
		u.probe = p.newProbeClient(b, hc.DialTimeout)
	}
	return u
}

// attach readies b to take traffic: its connection pool, dialing directly or
// through the upstream proxy the configuration says for it. It is done once,
// before b joins a pool; b keeps it for as long as it stays.
func (p *Proxy) attach(b *pool.Backend) error {
	routes, err := upstreamRoutes(p.cfg.UpstreamProxy, []*pool.Backend{b})
	if err != nil {
		return err
	}
	via := routes[b]
	b.SetTransport(p.newUpstream(b, p.dialer.forBackend(b, via, p.cfg.BackendTLS)))
	if via != nil {
		p.log.Info("backend reached through upstream proxy", "backend", b.URL(), "proxy", via.Redacted())
	}
	return nil
}

// writeBufferSize holds a request's header and a small body in one write.
const writeBufferSize = 8 << 10
