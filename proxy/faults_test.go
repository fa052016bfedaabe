package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
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
	client.CloseIdleConnections()
	noRequestGoroutinesLeft(t)
}

// lingerCloser answers requests until idle for the given time, then closes
// the way Apache does: its side first (FIN), then it reads and discards
// whatever comes until the proxy closes, so a request sent meanwhile gets
// no reset.
func lingerCloser(idle time.Duration, fins *atomic.Int64) func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
	return func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			c.SetReadDeadline(time.Now().Add(idle))
			if _, ok := rb.readRequest(r); !ok {
				break
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		c.(*net.TCPConn).CloseWrite()
		fins.Add(1)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		io.Copy(io.Discard, c)
	}
}

// TestLingeringCloseRetried: a kept-alive connection the backend closed
// while lingering answers a request with nothing at all, not even a reset.
// The proxy waits for the answer without reading first, and an end of
// stream that came behind the last answer's data does not wake that wait
// (sockio.go): the watchdog ends it within tens of milliseconds, and the
// request goes again on a fresh connection, long before the try timeout.
func TestLingeringCloseRetried(t *testing.T) {
	var fins atomic.Int64
	rb := startRawBackend(t, lingerCloser(30*time.Millisecond, &fins))
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, TryTimeout: time.Minute, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	client.Timeout = 5 * time.Second
	for i := range 5 {
		if status, body := get(t, client, url+"/"); status != http.StatusOK || body != "ok" {
			t.Fatalf("request %d: %d %q", i, status, body)
		}
		waitFor(t, "the backend to close its side of the idle connection", 5*time.Second, func() bool {
			return fins.Load() == int64(i+1)
		})
	}
	if n := rb.requests.Load(); n < 5 {
		t.Errorf("backend answered %d requests, want 5", n)
	}
}

// TestFaultyBackends: each misbehaving backend gives the client a clear
// answer, never a partial one passed off as whole, and leaves no connection
// or goroutine behind.
func TestFaultyBackends(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	for _, tc := range []struct {
		name   string
		answer func(c net.Conn)
		// status is what the client must get; 0 means the connection must
		// close before a complete response.
		status int
	}{
		{"reset before answering", func(c net.Conn) {
			c.(*net.TCPConn).SetLinger(0)
		}, http.StatusBadGateway},
		{"garbage", func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n\r\n")
		}, http.StatusBadGateway},
		{"a status below 100, the connection kept open", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 099 Nope\r\nContent-Length: 2\r\n\r\nok")
			io.Copy(io.Discard, c) // until the proxy lets go: not an interim answer to wait past
		}, http.StatusBadGateway},
		{"oversize header", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("b", 64<<10)+"\r\nContent-Length: 2\r\n\r\nok")
		}, http.StatusBadGateway},
		{"body shorter than announced", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly fifty bytes of the hundred announced.........")
		}, http.StatusBadGateway},
		{"reset mid-body", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome of it")
			c.(*net.TCPConn).SetLinger(0)
		}, http.StatusBadGateway},
		{"broken chunked body, whole in the buffer", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n0\r\n\r\n")
		}, http.StatusBadGateway},
		{"broken chunked body, streamed", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		}, 0},
		{"streamed body cut short", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(2*len(big))+"\r\n\r\n"+big)
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				if _, ok := rb.readRequest(r); ok {
					tc.answer(c)
				}
			})
			p, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if tc.status == 0 {
				// Streamed: the header went out before the body broke, so
				// the connection must close rather than look complete.
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
				}
				if err == nil {
					t.Error("a body cut short was relayed as complete")
				}
			} else {
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != tc.status {
					t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
				}
			}
			b := p.Pool().Backends()[0]
			waitFor(t, "the backend connection to be let go", 5*time.Second, func() bool {
				return upstreamOf(b).hc.ConnsCount() == 0 && b.InFlight() == 0
			})
			c.Close()
			noRequestGoroutinesLeft(t)
		})
	}
}

func TestUnresolvableBackend(t *testing.T) {
	good := startBackend(t, "good")
	p, url := startProxy(t, Config{Backends: []string{"http://backend.invalid:80", good.URL()}, Health: HealthConfig{Interval: -1}})
	for range 3 {
		if status, body := get(t, newClient(t), url+"/"); status != http.StatusOK || backendOf(body) != "good" {
			t.Fatalf("got %d %q, want 200 from good", status, body)
		}
	}
	if bad := p.Pool().Backends()[0]; bad.Up() {
		t.Errorf("a backend whose name does not resolve is still up (last error %q)", bad.LastError())
	}
}
