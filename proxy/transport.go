package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// dialError marks an error from establishing a connection: the backend never
// saw the request, so any method may be retried elsewhere.
type dialError struct {
	op  string // the step that failed; "" is "connect"
	err error
}

// Error gives the step and the root cause only ("connect: connection
// refused", "tls handshake: failed to verify certificate: ..."): the
// backend's address is logged beside it.
func (e *dialError) Error() string {
	err := e.err
	// Through a SOCKS proxy the cause is an OpError inside an OpError.
	var op *net.OpError
	for errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) {
		err = sc.Err
	}
	step := e.op
	if step == "" {
		step = "connect"
	}
	return step + ": " + strings.TrimPrefix(err.Error(), "tls: ")
}
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to backends, bounding each attempt by the configured dial
// timeout or the request's remaining time, whichever is shorter.
type dialer struct {
	direct  tcpDial // Config.Dial, or TCP with cached DNS answers
	timeout time.Duration
	wd      *watchdog
}

func newDialer(c Config, wd *watchdog) *dialer {
	d := &dialer{direct: c.Dial, timeout: c.DialTimeout, wd: wd}
	if d.direct == nil {
		tcp := &fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute}
		d.direct = tcp.DialDualStackTimeout
	}
	return d
}

// backendDialer connects to one backend in three steps: the TCP stream
// (direct, or tunnelled through the upstream proxy), a TLS handshake for an
// https backend, and the watchdog's tracking. Doing TLS here rather than
// with HostClient.IsTLS keeps every pooled connection a *backendConn, which
// roundTrip relies on, and puts the handshake under the dial timeout.
type backendDialer struct {
	*dialer
	tcp   tcpDial
	tcpOp string      // the TCP step's name in errors
	tls   *tls.Config // nil for an http backend
}

// forBackend returns the dialer for backend b, reached through the forward
// proxy via (nil: directly), over TLS configured from base if b is https.
func (d *dialer) forBackend(b *pool.Backend, via *url.URL, base *tls.Config) *backendDialer {
	bd := &backendDialer{dialer: d, tcp: d.direct}
	if via != nil {
		bd.tcp = d.viaProxy(via)
		bd.tcpOp = "connect via proxy " + via.Redacted()
	}
	if b.TLS() {
		bd.tls = backendTLSConfig(base, b)
	}
	return bd
}

// backendTLSConfig is the client configuration for one https backend: the
// caller's (or verification against the system's roots), with the backend's
// host as the server name (SNI), ALPN http/1.1, and a session cache so
// reconnecting resumes instead of doing a full handshake.
func backendTLSConfig(base *tls.Config, b *pool.Backend) *tls.Config {
	c := &tls.Config{}
	if base != nil {
		c = base.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = b.Host()
	}
	if len(c.NextProtos) == 0 {
		c.NextProtos = alpnHTTP11
	}
	if c.ClientSessionCache == nil {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	return c
}

func (d *backendDialer) dial(addr string, remaining time.Duration) (net.Conn, error) {
	timeout := d.timeout
	if remaining > 0 && remaining < timeout {
		timeout = remaining
	}
	var deadline time.Time
	if d.tls != nil {
		deadline = time.Now().Add(timeout)
	}
	conn, err := d.tcp(addr, timeout)
	if err != nil {
		return nil, &dialError{op: d.tcpOp, err: err}
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls)
		conn.SetDeadline(deadline) //nolint:errcheck // a failure shows in Handshake
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, &dialError{op: "tls handshake", err: err}
		}
		// Exchanges are timed by the watchdog, not by deadlines.
		conn.SetDeadline(time.Time{}) //nolint:errcheck // the conn is fine or fails on use
		conn = tc
	}
	return d.wd.trackBackend(conn), nil
}

// newHostClient returns the connection pool for one backend. The proxy uses
// it for its connections (dialing, keep-alive reuse, idle cleanup and the
// connection limit) and does the exchange itself in roundTrip.
func (p *Proxy) newHostClient(b *pool.Backend, d *backendDialer) *fasthttp.HostClient {
	c := p.cfg
	return &fasthttp.HostClient{
		Addr: b.Addr(),
		// Never IsTLS: the dialer does TLS (see backendDialer).
		DialTimeout:                   d.dial,
		MaxConns:                      c.MaxConnsPerBackend,
		MaxConnWaitTimeout:            c.DialTimeout,
		MaxIdleConnDuration:           c.BackendIdleTimeout,
		MaxIdemponentCallAttempts:     1,
		ConnPoolStrategy:              fasthttp.LIFO,
		ReadBufferSize:                c.MaxHeaderSize,
		WriteBufferSize:               writeBufferSize,
		MaxResponseBodySize:           c.MaxResponseBodySize,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
}

// writeBufferSize holds a request's header and a small body in one write.
const writeBufferSize = 8 << 10

// roundTrip sends req over one of hc's pooled connections and reads the
// response into resp. It does what HostClient.Do would, minus the work the
// proxy does not need per request (a retry loop of its own, runtime timers
// for deadlines: the watchdog times the exchange), and with one addition:
// between sending and reading it yields to the other connections' goroutines.
// By the time it is scheduled again the backend has usually answered, so the
// read finds data at once instead of failing with EAGAIN, parking, and
// reading again after the wake-up: one syscall and one park fewer for every
// request under load, at the cost of a scheduler pass when idle.
func (p *Proxy) roundTrip(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) (failure, error) {
	resp.Reset()
	cc, err := hc.AcquireConn(p.cfg.BackendTimeout, false)
	if err != nil {
		return classifyError(err), err
	}
	conn := cc.Conn()
	bc := conn.(*backendConn)
	bc.arm(p.cfg.BackendTimeout)
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return p.exchangeFailed(bc, err)
	}

	runtime.Gosched()

	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	resp.Header.DisableNormalizing()
	br := hc.AcquireReader(conn)
	err = resp.ReadLimitBody(br, p.cfg.MaxResponseBodySize)
	hc.ReleaseReader(br)
	if err != nil {
		hc.CloseConn(cc)
		return p.exchangeFailed(bc, err)
	}
	bc.disarm()
	if resp.ConnectionClose() {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return 0, nil
}

// exchangeFailed says why an exchange failed; one whose connection the
// watchdog closed failed by timing out.
func (p *Proxy) exchangeFailed(bc *backendConn, err error) (failure, error) {
	if bc.expired.Load() {
		return failTimeout, fmt.Errorf("no response within %v", p.cfg.BackendTimeout)
	}
	return classifyError(err), err
}

// prober checks backends with GET on the health path, on a connection of its
// own each time: like HAProxy's checks it proves the backend still accepts
// connections, and it never competes with traffic for pooled ones.
type prober struct {
	path    string
	clients map[*pool.Backend]*fasthttp.HostClient
}

func (p *Proxy) newProber() *prober {
	pr := &prober{path: p.cfg.Health.Path, clients: make(map[*pool.Backend]*fasthttp.HostClient)}
	for _, b := range p.pool.Backends() {
		pr.clients[b] = &fasthttp.HostClient{
			Addr: b.Addr(),
			// The traffic's own dialer: checks take the same route (upstream
			// proxy, TLS) as requests, so they fail when requests would.
			DialTimeout:               b.Transport().(*fasthttp.HostClient).DialTimeout,
			MaxIdemponentCallAttempts: 1,
			NoDefaultUserAgentHeader:  true,
			ReadBufferSize:            p.cfg.MaxHeaderSize,
			MaxResponseBodySize:       64 << 10,
		}
	}
	return pr
}

// Probe implements health.Prober: 2xx and 3xx are healthy.
func (pr *prober) Probe(ctx context.Context, b *pool.Backend) error {
	timeout := time.Until(deadlineOf(ctx))
	if timeout <= 0 {
		return errors.New("check timed out")
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(pr.path)
	req.Header.SetHost(b.Addr())
	req.Header.SetUserAgent("load-balancer-health-check")
	req.SetConnectionClose()
	err := pr.clients[b].DoTimeout(req, resp, timeout)
	switch {
	case err == nil:
	case errors.Is(err, fasthttp.ErrTimeout):
		return fmt.Errorf("check timed out after %v", timeout.Round(time.Millisecond))
	default:
		var de *dialError
		if errors.As(err, &de) {
			return de
		}
		return fmt.Errorf("check failed: %w", err)
	}
	if code := resp.StatusCode(); code < 200 || code >= 400 {
		return fmt.Errorf("check returned status %d", code)
	}
	return nil
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Hour)
}
