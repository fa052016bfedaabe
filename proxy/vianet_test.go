package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// TestViaNetBodyBrokenOff: an HTTP/1.1 request routed to a pool of HTTP/2
// backends (the net/http path) whose body breaks off, the client closing
// its side midway, gets 400 as on the fast path, and the backend never
// sees it: fasthttpadaptor alone would have sent the read error's text as
// a complete body. A whole body, of known length or chunked, arrives as
// sent.
func TestViaNetBodyBrokenOff(t *testing.T) {
	h2 := startH2Backend(t, "h2", nil)
	_, url := startProxy(t, Config{Backends: []string{h2.URL()}, Health: HealthConfig{Interval: time.Hour}})
	addr := strings.TrimPrefix(url, "http://")

	// send writes raw, closes the connection's write side, and returns
	// the response, or nil when the proxy closed without one.
	send := func(raw string) *http.Response {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, raw); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return resp
	}
	const n = 50000
	whole := strings.Repeat("x", n)
	for _, tc := range []struct{ name, raw string }{
		{"Content-Length", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, whole)},
		{"chunked", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", n, whole)},
	} {
		resp := send(tc.raw)
		if resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s, whole: %v", tc.name, resp)
		}
		var e backend.Echo
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.BodyLength != n {
			t.Errorf("%s, whole: the backend got %d bytes (%v), want %d", tc.name, e.BodyLength, err, n)
		}
	}
	hits := h2.hits.Load()
	for _, tc := range []struct{ name, raw string }{
		{"Content-Length", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, whole[:n/2])},
		{"chunked", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s", n, whole[:n/2])},
	} {
		if resp := send(tc.raw); resp != nil && resp.StatusCode != http.StatusBadRequest {
			body, _ := io.ReadAll(resp.Body)
			t.Errorf("%s, broken off: %d %q, want 400 (or no answer)", tc.name, resp.StatusCode, body)
		}
	}
	if got := h2.hits.Load(); got != hits {
		t.Errorf("the backend got %d requests whose body broke off", got-hits)
	}
}

// TestViaNetBytesIn: a request body counts once in the bytes received,
// whichever path proxies it: an HTTP/1.1 upload too long to be held
// (streamed to the backend by the net/http path) was counted twice, by
// HandleFastHTTP and as it streamed.
func TestViaNetBytesIn(t *testing.T) {
	h2 := startH2Backend(t, "h2", nil)
	h1 := startBackend(t, "h1")
	for _, b := range []string{h1.URL(), h2.URL()} {
		p, url := startProxy(t, Config{Backends: []string{b}, Health: HealthConfig{Interval: time.Hour}})
		c := newClient(t)
		for _, n := range []int{1000, 2 * maxBufferedRequest} {
			before := p.Traffic().Snapshot().BytesIn
			resp, _ := do(t, c, newRequest(t, "POST", url+"/echo", strings.NewReader(strings.Repeat("x", n))))
			counted := func() int { return int(p.Traffic().Snapshot().BytesIn - before) }
			waitFor(t, "the request to be counted", 5*time.Second, func() bool { return counted() >= n })
			if got := counted(); resp.StatusCode != http.StatusOK || got > n+1000 {
				t.Errorf("%s: a body of %d bytes: status %d, %d bytes received counted", b, n, resp.StatusCode, got)
			}
		}
	}
}

// TestViaNetRoutesAsFastPath: an HTTP/1.1 request on the net/http path
// is served by the pool its route names on the fast path. A target
// "//host/path" without a Host header is one that fasthttp and net/http
// read apart (authority and path, or all path): the net/http path looked
// the route up again and sent it to another pool.
func TestViaNetRoutesAsFastPath(t *testing.T) {
	a, b := startH2Backend(t, "a", nil), startH2Backend(t, "b", nil)
	_, url := startProxy(t, Config{
		Health: HealthConfig{Interval: time.Hour},
		Pools: []PoolConfig{
			{Name: "a", Backends: []string{a.URL()}},
			{Name: "b", Backends: []string{b.URL()}},
		},
		Routes: []Route{
			{Host: "api.example.com", PathPrefix: "/p/", Pool: "a"},
			{Pool: "b"},
		},
	})
	for _, tc := range []struct{ raw, want string }{
		{"GET /p/x HTTP/1.1\r\nHost: API.example.com.:80\r\nConnection: close\r\n\r\n", "a"},
		{"GET /x/../p/x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n", "a"},
		{"GET //api.example.com/p/x HTTP/1.0\r\n\r\n", "a"},
		{"GET /x HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n", "b"},
	} {
		status, rest := rawRequest(t, url, tc.raw)
		if !strings.Contains(status, " 200 ") || !strings.Contains(rest, "X-Backend: "+tc.want+"\r\n") {
			t.Errorf("%q: %s\n%s\nwant backend %s", tc.raw, status, rest, tc.want)
		}
	}
}

// TestViaNetExpectTooLarge: a request expecting 100-continue whose body
// is announced over MaxBodySize gets 413 before sending it, on a route to
// HTTP/2 backends as on any other; it used to get 100 Continue, then 413
// once the upload had begun.
func TestViaNetExpectTooLarge(t *testing.T) {
	for _, b := range []string{startBackend(t, "h1").URL(), startH2Backend(t, "h2", nil).URL()} {
		p, url := startProxy(t, Config{Backends: []string{b}, MaxBodySize: 1000, Health: HealthConfig{Interval: time.Hour}})
		status, _ := rawRequest(t, url, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
		if status != "HTTP/1.1 413 Request Entity Too Large" {
			t.Errorf("%s: %q, want 413 before the body", b, status)
		}
		if got := p.Traffic().Snapshot().Requests[3]; got != 1 { // 4xx
			t.Errorf("%s: %d requests counted 4xx, want 1", b, got)
		}
	}
}

// TestFastPathSkipsNewHTTP2Members: in the moment between an HTTP/2
// backend joining a pool and the routing table that sends the pool's
// HTTP/1.1 requests through the net/http path, a request routed by the old
// table may be balanced onto the newcomer. The fast path cannot speak
// HTTP/2, so it leaves that backend to the requests routed since: every
// request here is answered by the HTTP/1.1 backend, none fails, and the
// newcomer is never charged with a failure.
func TestFastPathSkipsNewHTTP2Members(t *testing.T) {
	h1 := startBackend(t, "h1")
	h2 := startH2Backend(t, "h2", nil)
	p, url := startProxy(t, Config{Backends: []string{h1.URL()}, Health: HealthConfig{Path: "/health", Interval: time.Hour}})

	// Join h2 as pool.Update does, without publishing a new table.
	nb, err := pool.NewBackend(h2.URL())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.attach(nb); err != nil {
		t.Fatal(err)
	}
	pl := p.Pool()
	if _, _, err := pl.Update(append(slices.Clone(pl.Backends()), nb), nil); err != nil {
		t.Fatal(err)
	}
	if p.table.Load().viaNet {
		t.Fatal("the table was republished: the test no longer reproduces the window")
	}
	c := newClient(t)
	for range 10 {
		status, body := get(t, c, url+"/")
		if status != http.StatusOK || backendOf(body) != "h1" {
			t.Fatalf("GET: %d %q, want h1's answer", status, body)
		}
	}
	if h2.hits.Load() != 0 || nb.Stats().Failures != 0 {
		t.Errorf("the HTTP/2 newcomer got %d HTTP/1.1 requests and %d failures, want none", h2.hits.Load(), nb.Stats().Failures)
	}
}

// TestViaNetMalformedTarget: a request target net/http cannot parse (a
// bad percent-escape) on a route to HTTP/2 backends gets 400, not the 500
// fasthttpadaptor answers, and reaches no backend.
func TestViaNetMalformedTarget(t *testing.T) {
	be := startH2Backend(t, "h2", nil)
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: time.Hour}})
	status, rest := rawRequest(t, url, "GET /p/%zz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, " 400 ") {
		t.Errorf("GET /p/%%zz: %s\n%s\nwant 400", status, rest)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("the backend got %d requests, want none", n)
	}
}
