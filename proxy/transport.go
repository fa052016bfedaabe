package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"

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
	direct  tcpDial // Config.Dial, or sharedTCP
	timeout time.Duration
	wd      *watchdog

	// The HTTP CONNECT dialers of viaProxy, one per forward proxy, made
	// as backends attach and flushed by close.
	mu      sync.Mutex
	connect map[string]*fasthttpproxy.Dialer
}

// sharedTCP is the TCP dialer of every proxy in the process that has no
// Config.Dial, made whole at its first dial. A fasthttp TCPDialer caches
// DNS answers, and while its cache holds any, a goroutine of its own
// prunes it: until two cache durations (two minutes) after the last
// lookup, with no way to stop it. A dialer per New left one such goroutine
// per closed proxy for that long; one for the process leaves one at most.
// Sharing it changes nothing else: the dial timeout is given per call,
// every proxy cached answers for a minute (the cache is keyed by
// host:port), and no other field is set. Its cap of 1000 dials in flight
// at once now counts the process's, as fasthttp's default dialer's does.
var sharedTCP = &fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute}

func newDialer(c Config, wd *watchdog) *dialer {
	d := &dialer{direct: c.Dial, timeout: c.DialTimeout, wd: wd}
	if d.direct == nil {
		d.direct = sharedTCP.DialDualStackTimeout
	}
	return d
}

// close empties the DNS caches of the HTTP CONNECT dialers (the shared
// one stays in use), so that their cleaners end within a second instead
// of two minutes. The proxy calls it once it makes no more connections.
func (d *dialer) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, fd := range d.connect {
		fd.FlushDNSCache()
	}
}

// backendDialer connects to one backend in three steps: the TCP stream
// (direct, or tunnelled through the upstream proxy), a TLS handshake for an
// https backend, and the watchdog's tracking. Doing TLS here rather than
// with HostClient.IsTLS keeps every pooled connection a *backendConn, which
// the exchange relies on, and puts the handshake under the dial timeout.
type backendDialer struct {
	*dialer
	tcp   tcpDial
	tcpOp string      // the TCP step's name in errors
	tls   *tls.Config // nil for an http backend
	h2    bool        // TLS must negotiate h2 (proto=h2)
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
		bd.h2 = b.Protocol() == pool.H2
	}
	return bd
}

// backendTLSConfig is the client configuration for one https backend: the
// caller's (or verification against the system's roots), with the backend's
// host as the server name (SNI), ALPN http/1.1 (h2 for proto=h2), and a session cache so
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
		if b.Protocol() == pool.H2 {
			c.NextProtos = alpnH2Only
		}
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
		if p := tc.ConnectionState().NegotiatedProtocol; d.h2 && p != "h2" {
			conn.Close()
			return nil, &dialError{op: "tls handshake", err: fmt.Errorf("backend does not speak HTTP/2 (ALPN %q, want h2)", p)}
		}
		// Exchanges are timed by the watchdog, not by deadlines.
		conn.SetDeadline(time.Time{}) //nolint:errcheck // the conn is fine or fails on use
		conn = tc
	}
	return d.wd.trackBackend(conn), nil
}
