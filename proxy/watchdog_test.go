package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// closedWithin reads from c until it is closed by the other side, and fails
// the test if that takes longer than limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
}

func TestIdleClientConnectionClosed(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: 300 * time.Millisecond, ClientHeaderTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	closedWithin(t, c, 5*time.Second)
}

func TestSlowHeaderClosed(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: 300 * time.Millisecond, ClientHeaderTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	closedWithin(t, c, 5*time.Second)
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests from a client that never finished its header", n)
	}
}

// A request that takes longer than the client timeouts at the backend is
// not cut: those limits are for reading, writing and idling, not waiting.
func TestSlowBackendNotCutByClientTimeouts(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: 200 * time.Millisecond, ClientHeaderTimeout: 200 * time.Millisecond, ClientBodyTimeout: 200 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	status, body := get(t, newClient(t), url+"/delay/700ms")
	if status != http.StatusOK || backendOf(body) != "a" {
		t.Errorf("got %d %q, want 200 from a", status, body)
	}
}

// TestSlowSmallBody: a body small enough to fit one read buffer, sent
// slowly, is timed by the body timeout, not the header timeout (fasthttp
// would read it whole before the handler, with the header still timed).
func TestSlowSmallBody(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientHeaderTimeout: 300 * time.Millisecond,
		ClientBodyTimeout: 5 * time.Second, Health: HealthConfig{Interval: -1}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
	// 500 bytes every 100 ms: a second in all, three header timeouts.
	for range 10 {
		if _, err := c.Write(make([]byte, 500)); err != nil {
			t.Fatalf("the proxy closed while the body was arriving: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"body_length":5000`) {
		t.Errorf("status %d, %s: want 200 and the whole body", resp.StatusCode, body)
	}
}

// A client that stops sending the body it announced is dropped after the
// body timeout, whether the body is read whole or streamed.
func TestStalledBodyClosed(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientBodyTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	for _, size := range []int{64 << 10, 8 << 20} { // read whole; streamed
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
		c.Write(make([]byte, 16<<10)) // then nothing more
		closedWithin(t, c, 5*time.Second)
		c.Close()
	}
}
