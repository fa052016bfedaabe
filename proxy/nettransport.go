package proxy

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Each backend has a net/http.Transport beside its fasthttp.HostClient. The
// net/http path sends through it: requests from HTTP/2 clients, and every
// request to an HTTP/2 backend (proto=h2 or h2c). It dials with the
// backend's own dialer (transport.go), so the TCP route (direct or through
// the upstream proxy), TLS with the backend's settings and the watchdog's
// tracking are the same as on the HTTP/1.1 path.
//
// The dialer returns a connection already encrypted for an https backend,
// so the Transport is always told the scheme is http: for HTTP/1.1 it then
// writes plain HTTP/1.1 into the TLS stream, and for HTTP/2 (whose ALPN the
// dialer checked) it speaks HTTP/2 with prior knowledge on it, which on the
// wire is exactly HTTP/2 over TLS.

// Keep-alive pings to HTTP/2 backends: a connection silent this long is
// pinged, and closed when the ping is not answered in time, so streams on a
// backend that vanished (powered off, partitioned) fail instead of hanging.
const (
	backendPingAfter   = 30 * time.Second
	backendPingTimeout = 15 * time.Second
)

// newNetTransport returns the net/http client for backend b over dialer d.
// probe makes one for health checks: no connection is kept between two, so
// each check proves a new connection can be made.
func (p *Proxy) newNetTransport(b *pool.Backend, d *backendDialer, probe bool) *http.Transport {
	c := p.cfg
	addr := b.Addr()
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var remaining time.Duration
			if dl, ok := ctx.Deadline(); ok {
				if remaining = time.Until(dl); remaining <= 0 {
					return nil, &dialError{err: context.DeadlineExceeded}
				}
			}
			return d.dial(addr, remaining)
		},
		MaxConnsPerHost:     c.MaxConnsPerBackend,
		MaxIdleConnsPerHost: c.MaxConnsPerBackend,
		IdleConnTimeout:     c.BackendIdleTimeout,
		DisableKeepAlives:   probe,
		// The client's Accept-Encoding goes through as sent, and the
		// answer comes back as the backend encoded it.
		DisableCompression:     true,
		MaxResponseHeaderBytes: int64(c.MaxHeaderSize),
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:  backendPingAfter,
			PingTimeout:      backendPingTimeout,
			WriteByteTimeout: c.BackendTimeout,
		},
	}
	var protos http.Protocols
	if b.Protocol().HTTP2() {
		protos.SetUnencryptedHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	t.Protocols = &protos
	return t
}
