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

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The request path counts what happened to each request: by status class,
// by error kind, retries, latency, bytes and connections.

func TestRequestsCountedByClass(t *testing.T) {
	a := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	var bodies int
	for _, path := range []string{"/", "/", "/bytes/1000", "/status/404", "/status/503", "/status/302"} {
		req, _ := http.NewRequest(http.MethodGet, url+path, nil)
		c := &http.Client{Transport: client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := bufio.NewReader(resp.Body).Discard(1 << 20)
		bodies += n
		resp.Body.Close()
	}

	tr := p.Traffic().Snapshot()
	if want := [pool.StatusClasses]uint64{0, 3, 1, 1, 1}; tr.Requests != want {
		t.Errorf("client requests by class %v, want %v", tr.Requests, want)
	}
	s := p.Pool().Backends()[0].Stats()
	if want := [pool.StatusClasses]uint64{0, 3, 1, 1, 1}; s.Responses != want {
		t.Errorf("backend responses by class %v, want %v", s.Responses, want)
	}
	if s.Requests != 6 || s.Failures != 0 || s.InFlight != 0 {
		t.Errorf("requests %d failures %d in flight %d, want 6 0 0", s.Requests, s.Failures, s.InFlight)
	}
	if n := s.Latency.Count(); n != 6 {
		t.Errorf("latency histogram holds %d, want 6", n)
	}
	if s.Latency.Sum <= 0 || s.Latency.Sum > 10*time.Second {
		t.Errorf("latency sum %v", s.Latency.Sum)
	}
	// Each request is a GET line and a few headers; each response at
	// least its body, a status line and headers.
	if tr.BytesIn < uint64(6*len("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) || tr.BytesIn > 6*1000 {
		t.Errorf("bytes in %d", tr.BytesIn)
	}
	if min := uint64(bodies + 6*len("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n")); tr.BytesOut < min || tr.BytesOut > min+6*500 {
		t.Errorf("bytes out %d, want a little over %d", tr.BytesOut, min)
	}
}

func TestFailuresCountedByKind(t *testing.T) {
	dead, slow := startBackend(t, "dead"), startBackend(t, "slow")
	dead.kill()
	closer := startRawBackend(t, swallower)
	p, url := startProxy(t, Config{
		Backends:       []string{closer.URL(), dead.URL(), slow.URL()},
		BackendTimeout: 200 * time.Millisecond,
		EjectAfter:     1,
		Health:         HealthConfig{Interval: -1},
	})
	client := newClient(t)
	// Round-robin from the first: closer swallows the GET (retried, as it
	// is idempotent), dead refuses (retried), slow times out (not retried).
	if status, body := get(t, client, url+"/delay/2s"); status != http.StatusGatewayTimeout {
		t.Fatalf("status %d %q, want 504", status, body)
	}
	bs := p.Pool().Backends()
	for _, tc := range []struct {
		b       *pool.Backend
		kind    pool.ErrorKind
		retries uint64
	}{
		{bs[0], pool.ErrorReset, 1},
		{bs[1], pool.ErrorDial, 1},
		{bs[2], pool.ErrorTimeout, 0},
	} {
		s := tc.b.Stats()
		var want [pool.NumErrorKinds]uint64
		want[tc.kind] = 1
		if s.Errors != want || s.Failures != 1 || s.Retries != tc.retries {
			t.Errorf("%s: errors %v failures %d retries %d; want %s once, retries %d",
				tc.b, s.Errors, s.Failures, s.Retries, tc.kind, tc.retries)
		}
		if s.Latency.Count() != 0 {
			t.Errorf("%s: a failed attempt went into the latency histogram", tc.b)
		}
	}
	if s := bs[1].Stats(); s.State != pool.StateDown || s.StateChanges != 1 {
		t.Errorf("refusing backend: state %v after %d changes, want down after 1", s.State, s.StateChanges)
	}
	tr := p.Traffic().Snapshot()
	if tr.Requests[4] != 1 || tr.NoBackend != 0 {
		t.Errorf("client 5xx %d, no backend %d; want 1 0", tr.Requests[4], tr.NoBackend)
	}
}

func TestNoBackendCounted(t *testing.T) {
	a := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
	p.Pool().MarkDown(p.Pool().Backends()[0], "test")
	if status, _ := get(t, newClient(t), url+"/"); status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", status)
	}
	if tr := p.Traffic().Snapshot(); tr.NoBackend != 1 || tr.Requests[4] != 1 {
		t.Errorf("no backend %d, 5xx %d; want 1 1", tr.NoBackend, tr.Requests[4])
	}
}

// TestOwnAnswersCounted: every answer of the balancer's own to a request it
// could not take counts in the client requests by class, whether fasthttp
// failed to read it (431, 400, 408) or the handler refused it, one for each
// access log line; a connection that ends before a byte of a request (a
// reset, a failed TLS handshake) is no request, counted nowhere, and a
// request cut off by a reset is logged with the 0 bytes that could be sent.
func TestOwnAnswersCounted(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	var buf logBuffer
	tp := startTLSProxy(t, Config{Backends: []string{startBackend(t, "a").URL()}, MaxHeaderSize: 1024,
		ClientHeaderTimeout: 300 * time.Millisecond, AccessLog: &buf, Health: HealthConfig{Interval: -1},
		TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))}})
	plain := strings.TrimPrefix(tp.plainURL, "http://")
	request := func(raw string) func(t *testing.T) {
		return func(t *testing.T) { rawRequest(t, tp.plainURL, raw) }
	}
	// reset sends raw, waits until the proxy has read a byte of it when
	// there is one, and resets the connection.
	reset := func(addr, raw string) func(t *testing.T) {
		return func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte(raw))
			if raw != "" {
				waitFor(t, "the header to begin", 5*time.Second, func() bool {
					tp.wd.clients.mu.Lock()
					defer tp.wd.clients.mu.Unlock()
					for _, cc := range tp.wd.clients.list {
						if cc.phase.Load() == phaseHeader {
							return true
						}
					}
					return false
				})
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}
	lines := 0
	for _, tc := range []struct {
		name string
		do   func(t *testing.T)
		line string // what its access log line holds; "" for none
	}{
		{"header too large", request("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 4096) + "\r\n\r\n"), `"-" 431 36 `},
		{"malformed request line", request("GET\r\n\r\n"), `"-" 400 16 `},
		{"bare LF", request("GET / HTTP/1.1\nHost: x\n\n"), `"-" 400 16 `},
		{"no Host", request("GET / HTTP/1.1\r\n\r\n"), `"-" 400 16 `},
		{"header not finished in time", request("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "), `"-" 408 20 `},
		{"Content-Length with Transfer-Encoding", request("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), `"POST / HTTP/1.1" 400 16 `},
		{"reset mid-header", reset(plain, "GET / HTTP/1.1\r\nHo"), `"-" 400 0 `},
		{"reset before a byte", reset(plain, ""), ""},
		{"failed TLS handshake", func(t *testing.T) { rawRequestTo(t, tp.tlsAddr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tp.Traffic().Snapshot().Requests[3]
			tc.do(t)
			waitFor(t, "the connection to close", 5*time.Second, func() bool { return tp.Traffic().Snapshot().Conns == 0 })
			want := before
			if tc.line != "" {
				want++
				lines++
				if got := accessLines(t, &buf, lines); !strings.Contains(got[lines-1], tc.line) {
					t.Errorf("access log line %q, want %q", got[lines-1], tc.line)
				}
			}
			if got := tp.Traffic().Snapshot().Requests[3]; got != want {
				t.Errorf("4xx count went from %d to %d, want %d", before, got, want)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tp.Shutdown(ctx) //nolint:errcheck // writes the access log out
	if n := strings.Count(buf.String(), "\n"); n != lines || tp.Traffic().Snapshot().Requests[3] != uint64(n) {
		t.Errorf("%d access log lines, %d counted 4xx, for %d answers:\n%s", n, tp.Traffic().Snapshot().Requests[3], lines, buf.String())
	}
}

// rawRequestTo writes raw to addr and reads what comes back until the other
// side closes or a second passes.
func rawRequestTo(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	io.WriteString(c, raw)
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestClientConnectionsCounted(t *testing.T) {
	a := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
	tr := p.Traffic()
	var conns []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "3 open connections", 5*time.Second, func() bool { return tr.Snapshot().Conns == 3 })
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the connections to close", 5*time.Second, func() bool { return tr.Snapshot().Conns == 0 })
	if n := tr.Snapshot().ConnsTotal; n != 3 {
		t.Errorf("%d connections accepted, want 3", n)
	}
}

// Bodies too large to hold stream through; their bytes count as they flow.
func TestStreamedBytesCounted(t *testing.T) {
	a := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	const size = 3 << 20
	status, body := get(t, client, url+"/bytes/"+strconv.Itoa(size))
	if status != http.StatusOK || len(body) != size {
		t.Fatalf("download: %d, %d bytes", status, len(body))
	}
	waitFor(t, "the streamed download counted", 5*time.Second, func() bool {
		return p.Traffic().Snapshot().BytesOut >= size
	})
	if out := p.Traffic().Snapshot().BytesOut; out > size+1000 {
		t.Errorf("bytes out %d for a %d-byte body", out, size)
	}

	req, _ := http.NewRequest(http.MethodPost, url+"/upload", strings.NewReader(strings.Repeat("u", size)))
	req.ContentLength = -1 // chunked: streams, length unknown
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if in := p.Traffic().Snapshot().BytesIn; in < size || in > size+1000 {
		t.Errorf("bytes in %d for a %d-byte upload", in, size)
	}
	if s := p.Pool().Backends()[0].Stats(); s.Responses[1] != 2 || s.InFlight != 0 {
		t.Errorf("backend: 2xx %d, in flight %d; want 2, 0", s.Responses[1], s.InFlight)
	}
}

// A WebSocket's client connection is hijacked from the server but stays
// open: it counts until the tunnel ends.
func TestTunnelCountedAsConnection(t *testing.T) {
	a := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
	tr := p.Traffic()
	c := dialWS(t, url)
	echo(t, c, "hello")
	if n := tr.Snapshot().Conns; n != 1 {
		t.Errorf("%d client connections with a WebSocket open, want 1", n)
	}
	if s := p.Pool().Backends()[0].Stats(); s.Responses[0] != 1 || s.InFlight != 0 {
		t.Errorf("backend: 1xx %d, in flight %d; want the 101 counted, nothing in flight", s.Responses[0], s.InFlight)
	}
	c.Close()
	waitFor(t, "the tunnel's connection to be uncounted", 5*time.Second, func() bool { return tr.Snapshot().Conns == 0 })
}
