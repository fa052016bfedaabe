package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// prober checks a pool's backends with GET on the health path, on a
// connection of its own each time: like HAProxy's checks it proves the
// backend still accepts connections, and it never competes with traffic for
// pooled ones. Each backend's client is in its upstream, so backends that
// join the pool are checked as they come.
type prober struct {
	path string
}

// newProbeClient returns the client that checks b.
func (p *Proxy) newProbeClient(b *pool.Backend, dial fasthttp.DialFuncWithTimeout) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: b.Addr(),
		// The traffic's own dialer: checks take the same route (upstream
		// proxy, TLS) as requests, so they fail when requests would; and
		// read a head of bare LFs as requests do (headlf.go).
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			c, err := dial(addr, timeout)
			if err != nil {
				return nil, err
			}
			return &lfConn{Conn: c}, nil
		},
		MaxIdemponentCallAttempts: 1,
		NoDefaultUserAgentHeader:  true,
		ReadBufferSize:            p.cfg.MaxHeaderSize,
		MaxResponseBodySize:       64 << 10,
	}
}

// Probe implements health.Prober: 2xx and 3xx are healthy.
func (pr *prober) Probe(ctx context.Context, b *pool.Backend) error {
	timeout := time.Until(deadlineOf(ctx))
	if timeout <= 0 {
		return errors.New("check timed out")
	}
	up := upstreamOf(b)
	if t := up.probeNet; t != nil {
		if kind, service := b.HealthCheck(); kind == pool.HealthGRPC {
			return probeGRPC(ctx, t, b, service)
		}
		return pr.probeNet(ctx, t, b)
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(pr.path)
	req.Header.SetHost(b.Addr())
	req.Header.SetUserAgent("load-balancer-health-check")
	req.SetConnectionClose()
	err := up.probe.DoTimeout(req, resp, timeout)
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

// probeNet checks an HTTP/2 backend with GET on the health path.
func (pr *prober) probeNet(ctx context.Context, t http.RoundTripper, b *pool.Backend) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.Addr()+pr.path, nil)
	if err != nil {
		return fmt.Errorf("check failed: %w", err)
	}
	req.Header.Set("User-Agent", "load-balancer-health-check")
	resp, err := t.RoundTrip(req)
	if err != nil {
		return probeError(ctx, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // the status decides
	resp.Body.Close()
	if code := resp.StatusCode; code < 200 || code >= 400 {
		return fmt.Errorf("check returned status %d", code)
	}
	return nil
}
