package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// idleCloser answers requests on a kept-alive connection but closes it
// after a short idle time without saying so, as servers with a keep-alive
// timeout shorter than the proxy's do.
func idleCloser(idle time.Duration) func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
	return func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			c.SetReadDeadline(time.Now().Add(idle))
			if _, ok := rb.readRequest(r); !ok {
				return // idle too long: close
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
}

// TestStaleKeepAliveRetried is the classic race: the backend closes an idle
// kept-alive connection just as the proxy reuses it. An idempotent request
// goes again on a fresh connection to the same backend instead of failing.
func TestStaleKeepAliveRetried(t *testing.T) {
	rb := startRawBackend(t, idleCloser(30*time.Millisecond))
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	for i := range 5 {
		if status, body := get(t, client, url+"/"); status != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
		// Once the backend has closed the pooled connection at its end,
		// the next request finds it stale.
		waitFor(t, "the backend to close the idle connection", 5*time.Second, func() bool {
			return rb.closed.Load() == int64(i+1)
		})
	}
	if n := rb.requests.Load(); n != 5 {
		t.Errorf("backend answered %d requests, want 5", n)
	}
}
