package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// processGoroutines are the goroutines of fasthttp's that one proxy starts
// for the whole process and that stay: its date updater, and the DNS cache
// cleaner of the dialer the proxies share, while the cache holds answers.
const processGoroutines = 2

// TestClosedProxiesLeaveNoGoroutines: proxies made, used (requests,
// health checks) and stopped one after another leave no goroutine behind
// once fasthttp's own timers have run out: the goroutine count comes back
// to what it was. Each proxy had a fasthttp TCPDialer of its own, and
// through an HTTP CONNECT proxy each backend did, whose DNS cache cleaner
// ran for two minutes after the last dial, with no way to stop it.
func TestClosedProxiesLeaveNoGoroutines(t *testing.T) {
	var backends []string
	for range 3 {
		rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
			for {
				if _, ok := rb.readRequest(r); !ok {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
		})
		backends = append(backends, rb.URL())
	}
	for _, tc := range []struct {
		name     string
		upstream bool
	}{
		{"direct", false},
		{"through an HTTP CONNECT proxy", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{
				Backends: backends,
				// fasthttp's cleaner of a backend's idle connections
				// sleeps this long before it sees they are gone.
				BackendIdleTimeout: 50 * time.Millisecond,
				Health:             HealthConfig{Path: "/health", Interval: time.Hour}, // a round at start
				Logger:             discardLogger(),
			}
			if tc.upstream {
				cfg.UpstreamProxy = startForwardProxy(t, "connect", &forwardProxy{}).URL("http")
			}
			cycle := func() {
				t.Helper()
				p, addr, served := serveProxy(t, cfg)
				tr := &http.Transport{DisableKeepAlives: true}
				c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
				for range len(backends) {
					if status, body := get(t, c, "http://"+addr+"/"); status != http.StatusOK {
						t.Fatalf("status %d %q", status, body)
					}
				}
				tr.CloseIdleConnections()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := p.Shutdown(ctx); err != nil {
					t.Fatalf("Shutdown: %v", err)
				}
				<-served
			}
			before := runtime.NumGoroutine()
			cycle()
			// The first proxy may start the process's goroutines; the
			// rest of what it started ends within seconds.
			settled(t, "the first proxy's goroutines to end", before+processGoroutines)
			base := runtime.NumGoroutine()
			for range 10 {
				cycle()
			}
			settled(t, "the goroutines of 10 proxies closed to end", base)
		})
	}
}

// settled waits until at most n goroutines run, and fails naming them if
// they are still more after 10 s: longer than any timer of fasthttp's that
// a closed proxy leaves running (a second for its worker pool's and its
// DNS cache cleaners, BackendIdleTimeout for its connection cleaners).
func settled(t *testing.T, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("timed out after 10s waiting for %s: %d goroutines, want at most %d:\n%s",
				what, runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
