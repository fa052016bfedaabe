package proxy

import (
	"bufio"
	"context"
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
	c := dialProxy(t, url, 10*time.Second)
	defer c.Close()
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

// TestReadTimeoutAnswered408: a request not read in time gets 408 and the
// connection closes, as nginx answers client_body_timeout (and HAProxy and
// Apache a header begun and not finished); the access log says the 408
// and the bytes of its body. A connection that sent nothing at all is
// closed without a word, and nothing is logged: there is no request.
func TestReadTimeoutAnswered408(t *testing.T) {
	be := startBackend(t, "a")
	for _, tc := range []struct {
		name string
		send string
		line string // what the access log line holds; "" for no line, and no answer
	}{
		{"header begun", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", `] "-" 408 20 `},
		{"header whole, body not begun", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", `] "-" 408 20 `},
		{"body read whole", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", `] "POST /echo HTTP/1.1" 408 20 `},
		{"body streamed", "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n\r\n" + strings.Repeat("z", 16<<10), `] "POST /upload HTTP/1.1" 408 20 `},
		{"chunked body", "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", `] "POST /upload HTTP/1.1" 408 20 `},
		{"nothing sent", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf logBuffer
			p, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientHeaderTimeout: 300 * time.Millisecond,
				ClientBodyTimeout: 300 * time.Millisecond, AccessLog: &buf, Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			io.WriteString(c, tc.send)
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("connection not closed: %v (read %q)", err, got)
			}
			if tc.line == "" {
				if len(got) != 0 {
					t.Errorf("answered %q, want a close without a word", got)
				}
			} else {
				resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(got))), nil)
				if err != nil {
					t.Errorf("no response in %q: %v", got, err)
				} else if body, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusRequestTimeout || !resp.Close || string(body) != "408 Request Timeout\n" {
					t.Errorf("got %d (close %v) %q, want 408 with Connection: close", resp.StatusCode, resp.Close, body)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Shutdown(ctx) //nolint:errcheck // writes the access log out
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			switch {
			case tc.line == "" && buf.String() != "":
				t.Errorf("logged %q for a connection that sent nothing", buf.String())
			case tc.line != "" && (len(lines) != 1 || !strings.Contains(lines[0], tc.line)):
				t.Errorf("access log %q, want one line with %q", buf.String(), tc.line)
			}
		})
	}
}

// TestReadStart: the start of a request whose read failed is its header's
// phase start, kept through the sweep ending the read at the header limit
// (the 408's write limit then runs from since), and unknown in any other
// phase, the body's included: its since is its last progress.
func TestReadStart(t *testing.T) {
	w := &watchdog{}
	for _, tc := range []struct {
		name  string
		phase uint32
		end   bool // the sweep ends the read at 500
		want  int64
	}{
		{"header being read", phaseHeader, false, 100},
		{"header read ended at its limit", phaseHeader, true, 100},
		{"body read ended at its limit", phaseBody, true, 0},
		{"nothing read yet", phaseNew, false, 0},
		{"handled", phaseHandling, false, 0},
		{"idle", phaseIdle, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			defer b.Close()
			cc := &clientConn{conn: a}
			cc.enter(tc.phase, 100)
			if tc.end && !w.endRead(cc, tc.phase, 500) {
				t.Fatal("endRead failed")
			}
			if got := cc.readStart(); got != tc.want {
				t.Errorf("readStart() = %d, want %d", got, tc.want)
			}
		})
	}
	if got := (*clientConn)(nil).readStart(); got != 0 {
		t.Errorf("nil record: readStart() = %d, want 0", got)
	}
}
