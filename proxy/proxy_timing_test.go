package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// timingCases is the ladder the request benchmarks climb: response sizes
// from a tiny answer to 64 KiB, and a POST with a 4 KiB body, as in
// `make bench`.
var timingCases = []struct {
	name     string
	method   string
	respSize int
	bodySize int
}{
	{"GET-20B", fasthttp.MethodGet, 20, 0},
	{"GET-1KiB", fasthttp.MethodGet, 1 << 10, 0},
	{"GET-16KiB", fasthttp.MethodGet, 16 << 10, 0},
	{"GET-64KiB", fasthttp.MethodGet, 64 << 10, 0},
	{"POST-4KiB", fasthttp.MethodPost, 20, 4 << 10},
}

// BenchmarkProxiedRequest is a whole proxied round trip over in-memory
// listeners: client -> proxy (server, handler, pool pick, backend
// exchange) -> backend and back. Compare with BenchmarkDirectRequest: the
// difference is the proxy's own cost.
func BenchmarkProxiedRequest(b *testing.B) {
	for _, tc := range timingCases {
		b.Run(tc.name, func(b *testing.B) {
			rig := newInmemoryRig(b, 2)
			benchmarkRequests(b, rig.client, tc.method, tc.respSize, tc.bodySize)
		})
	}
}

// routedConfig gives the in-memory rig three pools and six routes; the
// benchmark's requests (example.com/bytes/...) match an exact host and a
// prefix: the lookup's common case.
func routedConfig(c *Config) {
	c.Pools = []PoolConfig{{Name: "api", Backends: c.Backends}, {Name: "static", Backends: c.Backends[:1]}}
	c.Routes = []Route{
		{Host: "api.example.com", Pool: "api"},
		{Host: "*.cdn.example.com", Pool: "static"},
		{PathPrefix: "/api/", Pool: "api"},
		{Host: "example.com", PathPrefix: "/static/", Pool: "static"},
		{Host: "example.com", PathPrefix: "/bytes/", Pool: DefaultPool},
		{Pool: DefaultPool},
	}
}

// BenchmarkProxiedRequestRouted is BenchmarkProxiedRequest/GET-20B through a
// routing table of three pools: the difference is what routing costs. With
// one pool and no routes (BenchmarkProxiedRequest) there is no lookup.
func BenchmarkProxiedRequestRouted(b *testing.B) {
	rig := newInmemoryRigConfig(b, 2, routedConfig)
	benchmarkRequests(b, rig.client, fasthttp.MethodGet, 20, 0)
}

// BenchmarkProxiedRequestAccessLog is BenchmarkProxiedRequest/GET-20B with
// the access log off and on in each format, writing to io.Discard: the
// difference is what a line costs (formatting, and the copy under the
// buffer's lock); writing the buffer out happens off the request path.
func BenchmarkProxiedRequestAccessLog(b *testing.B) {
	for _, format := range []AccessLogFormat{"", AccessLogCombined, AccessLogJSON} {
		name := "off"
		if format != "" {
			name = string(format)
		}
		b.Run(name, func(b *testing.B) {
			rig := newInmemoryRigConfig(b, 2, func(c *Config) {
				if format != "" {
					c.AccessLog, c.AccessLogFormat = io.Discard, format
				}
			})
			benchmarkRequests(b, rig.client, fasthttp.MethodGet, 20, 0)
		})
	}
}

// BenchmarkDirectRequest is the same client and backend with no proxy in
// between: the floor BenchmarkProxiedRequest is measured against.
func BenchmarkDirectRequest(b *testing.B) {
	for _, tc := range timingCases {
		b.Run(tc.name, func(b *testing.B) {
			ln := fasthttputil.NewInmemoryListener()
			srv := backend.NewServer(backend.New("direct"))
			go srv.Serve(ln) //nolint:errcheck // ends when ln closes
			b.Cleanup(func() { ln.Close() })
			client := &fasthttp.HostClient{
				Addr:                      "backend",
				Dial:                      func(string) (net.Conn, error) { return ln.Dial() },
				MaxIdemponentCallAttempts: 1,
			}
			benchmarkRequests(b, client, tc.method, tc.respSize, tc.bodySize)
		})
	}
}

// benchmarkRequests sends requests for /bytes/respSize from every
// goroutine of b.RunParallel, checks each answer, and reports requests per
// second besides ns/op, B/op and allocs/op.
func benchmarkRequests(b *testing.B, client *fasthttp.HostClient, method string, respSize, bodySize int) {
	uri := fmt.Sprintf("http://example.com/bytes/%d", respSize)
	body := make([]byte, bodySize)
	warm := fasthttp.AcquireRequest()
	warm.SetRequestURI(uri)
	if err := client.Do(warm, nil); err != nil {
		b.Fatal(err)
	}
	fasthttp.ReleaseRequest(warm)

	b.ReportAllocs()
	b.SetBytes(int64(respSize + bodySize))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := fasthttp.AcquireRequest()
		resp := fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		// The client keeps its body buffer between requests, so what
		// allocs/op shows is the proxy's and the backend's, not the
		// benchmark client regrowing a pooled buffer.
		resp.KeepBodyBuffer = true
		req.SetRequestURI(uri)
		req.Header.SetMethod(method)
		if bodySize > 0 {
			req.SetBody(body)
		}
		for pb.Next() {
			if err := client.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != fasthttp.StatusOK || len(resp.Body()) != respSize {
				b.Errorf("status %d with %d body bytes, want 200 with %d", resp.StatusCode(), len(resp.Body()), respSize)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
