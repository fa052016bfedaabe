package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// BenchmarkHTTP2Request is a proxied round trip from an HTTP/2 client (h2c,
// on loopback) through the net/http path to HTTP/1.1 backends, for the
// sizes of BenchmarkProxiedRequest. It measures the client and the backend
// too: compare it with itself across changes, and see `make bench
// SCENARIOS=h2` for the proxy's own CPU per request.
func BenchmarkHTTP2Request(b *testing.B) {
	for _, tc := range timingCases {
		b.Run(tc.name, func(b *testing.B) {
			be1, be2 := startBenchBackend(b, "a"), startBenchBackend(b, "b")
			p, err := New(Config{Backends: []string{be1, be2}, Logger: discardLogger(), Health: HealthConfig{Interval: -1},
				HTTP2: HTTP2Config{H2C: true}})
			if err != nil {
				b.Fatal(err)
			}
			url := serveBench(b, p) + "/bytes/" + strconv.Itoa(tc.respSize)
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &protos, DisableCompression: true}
			b.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr}
			body := make([]byte, tc.bodySize)
			b.SetBytes(int64(tc.respSize))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var r io.Reader
					if tc.bodySize > 0 {
						r = bytes.NewReader(body)
					}
					req, _ := http.NewRequest(tc.method, url, r)
					resp, err := c.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body) //nolint:errcheck // the status tells
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// startBenchBackend runs backend-server's handler on a loopback port and
// returns its URL.
func startBenchBackend(tb testing.TB, name string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := backend.NewServer(backend.New(name))
	srv.Logger = quietLogger{}
	go srv.Serve(ln) //nolint:errcheck // ends when ln closes
	tb.Cleanup(func() { ln.Close() })
	return "http://" + ln.Addr().String()
}

// serveBench serves p on a loopback port until the benchmark ends and
// returns its URL.
func serveBench(tb testing.TB, p *Proxy) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck // ends at shutdown
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at the end
	})
	return "http://" + ln.Addr().String()
}
