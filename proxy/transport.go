package proxy

import (
	"context"
	"errors"
	"fmt"
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
}

func newDialer(c Config) *dialer {
	d := &dialer{dialFunc: c.Dial, timeout: c.DialTimeout}
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
	return conn, nil
}

// newHostClient returns the HTTP/1.1 client for one backend. Retries are the
// proxy's (across backends), never the client's own.
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
			Addr:                      b.Addr(),
			DialTimeout:               p.dialer.dial,
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
