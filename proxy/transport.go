package proxy

import (
	"errors"
	"net"
	"os"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// dialError marks an error from establishing a connection: the backend never
// saw the request, so any method may be retried elsewhere.
type dialError struct{ err error }

// Error gives the root cause only ("connect: connection refused"): the
// backend's address is logged beside it.
func (e *dialError) Error() string {
	err := e.err
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
		var sc *os.SyscallError
		if errors.As(err, &sc) {
			err = sc.Err
		}
	}
	return "connect: " + err.Error()
}
func (e *dialError) Unwrap() error { return e.err }

// dialer connects to backends, bounding each attempt by the configured dial
// timeout or the request's remaining time, whichever is shorter.
type dialer struct {
	dialFunc func(addr string, timeout time.Duration) (net.Conn, error)
	timeout  time.Duration
	wd       *watchdog
}

func newDialer(c Config, wd *watchdog) *dialer {
	d := &dialer{dialFunc: c.Dial, timeout: c.DialTimeout, wd: wd}
	if d.dialFunc == nil {
		tcp := &fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute}
		d.dialFunc = tcp.DialDualStackTimeout
	}
	return d
}

func (d *dialer) dial(addr string, remaining time.Duration) (net.Conn, error) {
	timeout := d.timeout
	if remaining > 0 && remaining < timeout {
		timeout = remaining
	}
	conn, err := d.dialFunc(addr, timeout)
	if err != nil {
		return nil, &dialError{err: err}
	}
	return d.wd.trackBackend(conn), nil
}

// newHostClient returns the connection pool for one backend. The proxy uses
// it for its connections (dialing, keep-alive reuse, idle cleanup and the
// connection limit) and does the exchange itself in roundTrip.
func (p *Proxy) newHostClient(b *pool.Backend) *fasthttp.HostClient {
	c := p.cfg
	return &fasthttp.HostClient{
		Addr:                          b.Addr(),
		DialTimeout:                   p.dialer.dial,
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
