package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
)

func TestEvenSpread(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	_, url := startProxy(t, Config{Backends: []string{a.URL(), b.URL(), c.URL()}})
	client := newClient(t)

	// Sequential requests go round the backends in configured order.
	var order []string
	for range 6 {
		status, body := get(t, client, url+"/")
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		order = append(order, backendOf(body))
	}
	if got, want := strings.Join(order, ","), "a,b,c,a,b,c"; got != want {
		t.Errorf("order %s, want %s", got, want)
	}

	// Concurrent requests spread exactly evenly: every pick takes the next
	// slot of one atomic counter.
	const workers, each = 8, 60
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if status, body := get(t, client, url+"/"); status != http.StatusOK {
					t.Errorf("status %d: %s", status, body)
				}
			}
		}()
	}
	wg.Wait()
	for _, be := range []*testBackend{a, b, c} {
		if got, want := be.hits.Load(), int64(2+workers*each/3); got != want {
			t.Errorf("backend %s served %d requests, want %d", be.name, got, want)
		}
	}
}

func TestBackendKilledUnderLoad(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{
		Backends: []string{a.URL(), b.URL()},
		Health:   HealthConfig{Path: "/health", Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 2, Fall: 2},
	})
	client := newClient(t)
	backendA := p.Pool().Backends()[0]
	waitFor(t, "first health round", 2*time.Second, func() bool { return a.hits.Load() == 0 })

	// Eight clients keep GETs flowing while a is killed mid-stream.
	var (
		stop     atomic.Bool
		total    atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 5000 && !stop.Load(); n++ {
				resp, err := client.Get(url + "/")
				if err != nil {
					failures.Add(1)
					t.Errorf("GET: %v", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				total.Add(1)
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
					t.Errorf("GET: status %d", resp.StatusCode)
				}
			}
		}()
	}
	waitFor(t, "traffic on both backends", 5*time.Second, func() bool { return a.hits.Load() > 50 && b.hits.Load() > 50 })
	a.kill()
	waitFor(t, "a marked down", 5*time.Second, func() bool { return !backendA.Up() })
	// Keep the load on a while longer with a down.
	seen := total.Load()
	waitFor(t, "more traffic after the kill", 5*time.Second, func() bool { return total.Load() > seen+200 })

	// Restarted, a gets nothing until it passes health-rise checks, then
	// takes traffic again.
	hitsWhileDown := a.hits.Load()
	a.restart()
	waitFor(t, "a back up", 5*time.Second, func() bool {
		// Hits read before a check that still finds a down were served
		// while it was down.
		hits := a.hits.Load()
		if backendA.Up() {
			return true
		}
		if hits != hitsWhileDown {
			t.Fatalf("a served %d requests before its checks passed", hits-hitsWhileDown)
		}
		return false
	})
	waitFor(t, "traffic on a again", 5*time.Second, func() bool { return a.hits.Load() > hitsWhileDown+20 })
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d GETs failed while a backend was killed", n, total.Load())
	}
}

func TestPassiveMarkDown(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{Backends: []string{a.URL(), b.URL()}, Health: HealthConfig{Interval: -1}})
	a.kill()
	client := newClient(t)
	for i := range 4 {
		status, body := get(t, client, url+"/")
		if status != http.StatusOK || backendOf(body) != "b" {
			t.Fatalf("request %d: %d %q, want 200 from b", i, status, body)
		}
	}
	if ba := p.Pool().Backends()[0]; ba.Up() {
		t.Error("a failed to connect yet is still up")
	} else if !strings.Contains(ba.LastError(), "connection refused") {
		t.Errorf("a's last error %q, want it to say connection refused", ba.LastError())
	}
}

// swallower reads each request, counts it, and closes the connection
// without answering: the backend saw the request, the proxy cannot know
// whether it acted on it.
func swallower(c net.Conn, r *bufio.Reader, rb *rawBackend) {
	rb.readRequest(r)
}

func TestRetryRules(t *testing.T) {
	for _, tc := range []struct {
		method     string
		wantStatus int
		wantGood   int64 // requests reaching the good backend
	}{
		{http.MethodGet, http.StatusOK, 1},
		{http.MethodHead, http.StatusOK, 1},
		{http.MethodPut, http.StatusOK, 1},
		{http.MethodDelete, http.StatusOK, 1},
		{http.MethodPost, http.StatusBadGateway, 0},
		{http.MethodPatch, http.StatusBadGateway, 0},
	} {
		t.Run(tc.method, func(t *testing.T) {
			bad := startRawBackend(t, swallower)
			good := startBackend(t, "good")
			_, url := startProxy(t, Config{Backends: []string{bad.URL(), good.URL()}, Health: HealthConfig{Interval: -1}})
			req, _ := http.NewRequest(tc.method, url+"/", strings.NewReader("payload"))
			resp, err := newClient(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if n := bad.requests.Load(); n != 1 {
				t.Errorf("the backend that closed saw %d requests, want exactly 1", n)
			}
			if n := good.hits.Load(); n != tc.wantGood {
				t.Errorf("the good backend saw %d requests, want %d", n, tc.wantGood)
			}
		})
	}
}

func TestPostRetriedWhenNeverConnected(t *testing.T) {
	dead := startBackend(t, "dead")
	dead.kill()
	good := startBackend(t, "good")
	_, url := startProxy(t, Config{Backends: []string{dead.URL(), good.URL()}, Health: HealthConfig{Interval: -1}})
	resp, err := newClient(t).Post(url+"/", "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || backendOf(string(body)) != "good" {
		t.Errorf("got %d %q, want 200 from good: a refused connection never saw the POST", resp.StatusCode, body)
	}
}

func TestRetriesNeverRepeatABackend(t *testing.T) {
	var bads []*rawBackend
	var urls []string
	for range 3 {
		rb := startRawBackend(t, swallower)
		bads = append(bads, rb)
		urls = append(urls, rb.URL())
	}
	_, url := startProxy(t, Config{Backends: urls, Retries: 5, Health: HealthConfig{Interval: -1}})
	status, body := get(t, newClient(t), url+"/")
	if status != http.StatusBadGateway {
		t.Errorf("status %d (%s), want 502", status, body)
	}
	for i, rb := range bads {
		if n := rb.requests.Load(); n != 1 {
			t.Errorf("backend %d saw %d attempts, want exactly 1", i, n)
		}
	}
}

func TestAllBackendsDown(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	a.kill()
	b.kill()
	_, url := startProxy(t, Config{
		Backends:          []string{a.URL(), b.URL()},
		MaxEjectedPercent: 100,
		EjectAfter:        1,
		Health:            HealthConfig{Interval: -1},
	})
	client := newClient(t)
	status, body := get(t, client, url+"/")
	if status != http.StatusBadGateway || !strings.Contains(body, "backend unavailable") {
		t.Errorf("first request: %d %q, want 502 backend unavailable", status, body)
	}
	status, body = get(t, client, url+"/")
	if status != http.StatusBadGateway || !strings.Contains(body, "no healthy backend") {
		t.Errorf("with both marked down: %d %q, want 502 no healthy backend", status, body)
	}
	if strings.Contains(body, "dial") || strings.Contains(body, "refused") {
		t.Errorf("error text leaked to the client: %q", body)
	}
}

// TestBackendDownLogged: "backend down" names the backend's pool whichever
// took it down, live traffic or a health check, so that the same URL in two
// pools is told apart.
func TestBackendDownLogged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health HealthConfig
		eject  int
	}{
		{"by live traffic", HealthConfig{Interval: -1}, 1},
		{"by health checks", HealthConfig{Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond, Fall: 1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead, good := startBackend(t, "dead"), startBackend(t, "good")
			dead.kill()
			var logs logBuffer
			_, url := startProxy(t, Config{
				Pools:             []PoolConfig{{Name: "api", Backends: []string{dead.URL(), good.URL()}}},
				EjectAfter:        tc.eject,
				MaxEjectedPercent: 100,
				Health:            tc.health,
				Logger:            slog.New(slog.NewTextHandler(&logs, nil)),
			})
			client := newClient(t)
			var line string
			waitFor(t, "the down line", 5*time.Second, func() bool {
				get(t, client, url+"/")
				for _, l := range strings.Split(logs.String(), "\n") {
					if strings.Contains(l, "backend down: "+dead.URL()) {
						line = l
						return true
					}
				}
				return false
			})
			if !strings.Contains(line, " pool=api") {
				t.Errorf("%q: want pool=api", line)
			}
		})
	}
}

func TestSlowBackendTimesOut(t *testing.T) {
	slow := startBackend(t, "slow")
	_, url := startProxy(t, Config{Backends: []string{slow.URL()}, BackendTimeout: 100 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	status, body := get(t, newClient(t), url+"/delay/3s")
	if status != http.StatusGatewayTimeout {
		t.Errorf("status %d (%s), want 504", status, body)
	}
}

func TestForwardedRequestHeaders(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	req, _ := http.NewRequest(http.MethodGet, url+"/echo?b=2&a=1", nil)
	req.Host = "Shop.Example.COM:8443"
	for k, v := range map[string]string{
		"Connection":          "keep-alive, X-Custom-Hop",
		"X-Custom-Hop":        "1",
		"Keep-Alive":          "timeout=5",
		"Proxy-Authorization": "Basic Zm9vOmJhcg==",
		"Proxy-Connection":    "keep-alive",
		"Te":                  "trailers",
		"Upgrade":             "websocket",
		"x-forwarded-for":     "203.0.113.66",
		"X-Real-Ip":           "203.0.113.66",
		"X-FORWARDED-HOST":    "evil.example",
		"X-Forwarded-Proto":   "https",
		"X-End-To-End":        "kept",
	} {
		req.Header[k] = []string{v} // as written, not canonicalised
	}
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var echo backend.Echo
	if err := json.NewDecoder(resp.Body).Decode(&echo); err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) []string {
		var vs []string
		for k, v := range echo.Headers {
			if strings.EqualFold(k, name) {
				vs = append(vs, v...)
			}
		}
		return vs
	}
	for _, gone := range []string{"Connection", "X-Custom-Hop", "Keep-Alive", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Upgrade", "Transfer-Encoding"} {
		if v := lookup(gone); v != nil {
			t.Errorf("hop-by-hop header %s reached the backend: %q", gone, v)
		}
	}
	for name, want := range map[string]string{
		"X-Forwarded-For":   "127.0.0.1",
		"X-Real-IP":         "127.0.0.1",
		"X-Forwarded-Host":  "Shop.Example.COM:8443",
		"X-Forwarded-Proto": "http",
		"X-End-To-End":      "kept",
	} {
		if got := lookup(name); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly [%q]", name, got, want)
		}
	}
	if echo.Host != "Shop.Example.COM:8443" {
		t.Errorf("Host %q, want the client's exactly", echo.Host)
	}
	if echo.URI != "/echo?b=2&a=1" {
		t.Errorf("URI %q, want /echo?b=2&a=1", echo.URI)
	}
	if echo.Proto != "HTTP/1.1" {
		t.Errorf("protocol to backend %q, want HTTP/1.1", echo.Proto)
	}
}

// TestExactPathAndQuery sends paths a normalising proxy would rewrite.
func TestExactPathAndQuery(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, ok := rb.readRequest(r)
			if !ok {
				return
			}
			mu.Lock()
			seen = append(seen, req.RequestURI)
			mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
	uris := []string{"/a//b/../c/./d", "/%2F%2e%2E/x?q=%20&q=+&empty=", "/caf%C3%A9?x=1#frag-not-sent"}
	for _, uri := range uris {
		status, _ := rawRequest(t, url, "GET "+uri+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.Contains(status, " 200 ") {
			t.Fatalf("%s: %s", uri, status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"/a//b/../c/./d", "/%2F%2e%2E/x?q=%20&q=+&empty=", "/caf%C3%A9?x=1"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Errorf("backend saw %q, want %q", seen, want)
	}
}

// TestRequestContentTypeAsSent checks that a request body without a
// Content-Type reaches the backend without one: fasthttp would add
// application/octet-stream, which tells a backend that sniffs the body
// what the client never said. A Content-Type the client sent is kept.
func TestRequestContentTypeAsSent(t *testing.T) {
	seen := make(chan []string, 1)
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, ok := rb.readRequest(r)
			if !ok {
				return
			}
			select {
			case seen <- req.Header.Values("Content-Type"):
			default:
				t.Errorf("a second request reached the backend: %s %s", req.Method, req.RequestURI)
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
	for _, tc := range []struct {
		name, head, body string
		want             []string
	}{
		{"Content-Length", "Content-Length: 3\r\n", "abc", nil},
		{"chunked", "Transfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n", nil},
		{"Expect", "Content-Length: 3\r\nExpect: 100-continue\r\n", "abc", nil},
		{"empty body", "Content-Length: 0\r\n", "", nil},
		{"sent", "Content-Type: text/csv\r\nContent-Length: 3\r\n", "abc", []string{"text/csv"}},
		{"sent, chunked", "Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n", "3\r\nabc\r\n0\r\n\r\n", []string{"text/csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rest := rawRequest(t, url, "POST /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+tc.head+"\r\n"+tc.body)
			var got []string
			select {
			case got = <-seen:
			case <-time.After(5 * time.Second):
				t.Fatalf("the request never reached the backend; answer %q", status+"\n"+rest)
			}
			if !strings.Contains(status, " 200 ") && !strings.Contains(rest, "HTTP/1.1 200 ") {
				t.Errorf("answer %q", status+"\n"+rest)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("backend saw Content-Type %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResponseHopByHopHeaders(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			if _, ok := rb.readRequest(r); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
				"Connection: keep-alive, X-Resp-Hop\r\n"+
				"Keep-Alive: timeout=5\r\n"+
				"X-Resp-Hop: 1\r\n"+
				"Proxy-Authenticate: Basic\r\n"+
				"Upgrade: h2c\r\n"+
				"Set-Cookie: a=1\r\n"+
				"Set-Cookie: b=2\r\n"+
				"X-End-To-End: kept\r\n"+
				"Transfer-Encoding: chunked\r\n\r\n"+
				"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")
		}
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	for range 2 { // the second goes over the kept-alive client connection
		resp, err := client.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello, world" {
			t.Errorf("body %q, want the de-chunked backend body", body)
		}
		for _, gone := range []string{"Keep-Alive", "X-Resp-Hop", "Proxy-Authenticate", "Upgrade"} {
			if v := resp.Header.Values(gone); v != nil {
				t.Errorf("hop-by-hop %s relayed: %q", gone, v)
			}
		}
		if resp.Close {
			t.Error("client connection closed although the client did not ask")
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
			t.Errorf("Set-Cookie %q, want both", got)
		}
		if got := resp.Header.Get("X-End-To-End"); got != "kept" {
			t.Errorf("X-End-To-End %q, want kept", got)
		}
	}
	if n := rb.requests.Load(); n != 2 {
		t.Errorf("backend saw %d requests, want 2", n)
	}
}

// TestClientConnectionClose: a client's Connection: close, however it is
// spelt, closes the client connection after the answer and reaches the
// backend neither as itself nor as the headers it names.
func TestClientConnectionClose(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	for _, tc := range []struct {
		name, headers string
		gone          []string // header names the backend must not see, beside Connection
	}{
		{"close", "Connection: close\r\n", nil},
		{"any case and white space", "connection:\t  CLOSE \t\r\n", nil},
		{"with a hop-by-hop name", "Connection: close, X-Hop\r\nX-Hop: 1\r\n", []string{"X-Hop"}},
		{"named first", "X-Hop: 1\r\nConnection: X-Hop, close\r\n", []string{"X-Hop"}},
		{"a second Connection header", "Connection: close\r\nConnection: X-Hop\r\nX-Hop: 1\r\n", []string{"X-Hop"}},
		{"and another hop-by-hop header", "Keep-Alive: timeout=5\r\nConnection: close\r\n", []string{"Keep-Alive"}},
		{"and a forwarding header", "Connection: close\r\nX-Real-IP: 203.0.113.9\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rest := rawRequest(t, url, "GET /echo HTTP/1.1\r\nHost: x\r\n"+tc.headers+"\r\n")
			if !strings.Contains(status, " 200 ") {
				t.Fatalf("status %s", status)
			}
			head, body, _ := strings.Cut(rest, "\r\n\r\n")
			if !strings.Contains(strings.ToLower(head), "connection: close") {
				t.Errorf("response lacks Connection: close:\n%s", head)
			}
			var echo backend.Echo
			if err := json.Unmarshal([]byte(body), &echo); err != nil {
				t.Fatalf("backend's echo %q: %v", body, err)
			}
			for k, v := range echo.Headers {
				for _, gone := range append([]string{"Connection"}, tc.gone...) {
					if strings.EqualFold(k, gone) {
						t.Errorf("the client's %s reached the backend: %q", k, v)
					}
				}
				if strings.EqualFold(k, "X-Real-IP") && (len(v) != 1 || v[0] != "127.0.0.1") {
					t.Errorf("X-Real-IP %q reached the backend, want the proxy's own [127.0.0.1]", v)
				}
			}
		})
	}
}

// TestSameNameLinesInOrder: through the proxy, a request's Forwarded lines
// reach the backend, and a response's Link lines the client, in the order
// they were sent (RFC 9110 §5.3), though each message has a hop-by-hop
// header to strip before them.
func TestSameNameLinesInOrder(t *testing.T) {
	forwarded := make(chan []string, 1)
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, ok := rb.readRequest(r)
			if !ok {
				return
			}
			select {
			case forwarded <- req.Header["Forwarded"]:
			default:
			}
			// As nginx sends it, its add_header lines last.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 2\r\nConnection: keep-alive\r\n"+
				"Keep-Alive: timeout=5\r\nETag: \"1\"\r\nLink: </a.css>; rel=preload\r\nLink: </b.js>; rel=preload\r\n\r\nok")
		}
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})

	c := dialProxy(t, url, 5*time.Second)

	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nAccept: */*\r\n"+
		"Forwarded: for=192.0.2.1\r\nVia: 1.1 edge\r\nForwarded: for=192.0.2.2;by=edge\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.Header["Link"], []string{"</a.css>; rel=preload", "</b.js>; rel=preload"}; !slices.Equal(got, want) {
		t.Errorf("client got Link %q, want %q", got, want)
	}
	if got, want := <-forwarded, []string{"for=192.0.2.1", "for=192.0.2.2;by=edge"}; !slices.Equal(got, want) {
		t.Errorf("backend got Forwarded %q, want %q", got, want)
	}
}

// TestConnectionCannotDropFraming: a client's Connection header naming
// Content-Length or Host makes neither hop-by-hop: the backend still gets
// the whole body and the client's Host (nginx ignores such tokens).
func TestConnectionCannotDropFraming(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	const body = "a body the backend must get whole"
	status, rest := rawRequest(t, url, "POST /echo HTTP/1.1\r\nHost: shop.example\r\nConnection: close, content-length, host, X-A\r\n"+
		"X-A: 1\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("status %s", status)
	}
	_, answer, _ := strings.Cut(rest, "\r\n\r\n")
	var echo backend.Echo
	if err := json.Unmarshal([]byte(answer), &echo); err != nil {
		t.Fatalf("backend's echo %q: %v", answer, err)
	}
	if echo.BodyLength != len(body) || echo.Host != "shop.example" {
		t.Errorf("backend got a %d-byte body and Host %q, want %d bytes and shop.example", echo.BodyLength, echo.Host, len(body))
	}
	for k := range echo.Headers {
		if strings.EqualFold(k, "X-A") || strings.EqualFold(k, "Connection") {
			t.Errorf("%s reached the backend", k)
		}
	}
}

func TestHTTP10ClientWithoutHost(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	status, rest := rawRequest(t, url, "GET /echo HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(status, "HTTP/1.") || !strings.Contains(status, " 200 ") {
		t.Fatalf("status %s\n%s", status, rest)
	}
	if !strings.Contains(rest, `"host":"`+strings.TrimPrefix(be.URL(), "http://")+`"`) {
		t.Errorf("backend did not get its own address as Host:\n%s", rest)
	}
}

func TestBadRequests(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{
		Backends:      []string{be.URL()},
		MaxHeaderSize: 4 << 10,
		MaxBodySize:   1 << 10,
		Health:        HealthConfig{Interval: -1},
	})
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"garbage", "GARBAGE\r\n\r\n", "400"},
		{"asterisk form, not OPTIONS", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"asterisk and more", "OPTIONS *x HTTP/1.1\r\nHost: x\r\n\r\n", "400"},
		{"bad header line", "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", "400"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
		{"bad content length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400"},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 5<<10) + "\r\n\r\n", "431"},
		{"request line too long", "GET /" + strings.Repeat("a", 5<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "414"},
		{"request line long, the header too large", "GET /" + strings.Repeat("a", 3<<10) + " HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<10) + "\r\n\r\n", "431"},
		{"body too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("b", 2048), "413"},
		{"chunked body too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("b", 2048) + "\r\n0\r\n\r\n", "413"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, rest := rawRequest(t, url, tc.raw)
			if !strings.Contains(status, " "+tc.want+" ") {
				t.Errorf("status line %q, want %s\n%s", status, tc.want, rest)
			}
		})
	}
	// The proxy is still serving after all that.
	if status, _ := get(t, newClient(t), url+"/"); status != http.StatusOK {
		t.Errorf("after bad requests: status %d", status)
	}
	if n := be.hits.Load(); n != 1 {
		t.Errorf("backend saw %d requests, want only the good one", n)
	}
}

// TestShutdownBeforeServe: a Shutdown that comes before Serve has started
// (a SIGTERM at start-up) still stops it: Serve returns ErrServerClosed at
// once, or as soon as it starts, instead of serving for good. fasthttp
// alone misses a listener it has not been given yet.
func TestShutdownBeforeServe(t *testing.T) {
	be := startBackend(t, "a")
	for _, order := range []string{"shutdown first", "racing"} {
		p, err := New(Config{Backends: []string{be.URL()}, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		if order == "shutdown first" {
			p.Shutdown(context.Background()) //nolint:errcheck // nothing in flight
			go func() { served <- p.Serve(ln) }()
		} else {
			go func() { served <- p.Serve(ln) }()
			p.Shutdown(context.Background()) //nolint:errcheck // nothing in flight
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("%s: Serve returned %v, want http.ErrServerClosed", order, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Serve still running 5 s after Shutdown", order)
		}
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Errorf("%s: the listener still accepts connections", order)
		}
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	be := startBackend(t, "a")
	p, addr, served := serveProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	url := "http://" + addr

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/delay/300ms")
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		res <- result{resp.StatusCode, string(b), err}
	}()
	backendA := p.Pool().Backends()[0]
	waitFor(t, "the slow request to reach the backend", 5*time.Second, func() bool { return backendA.InFlight() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	r := <-res
	if r.err != nil || r.status != http.StatusOK || backendOf(r.body) != "a" {
		t.Errorf("in-flight request: %d %q %v, want 200 from a", r.status, r.body, r.err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve ended by Shutdown returned %v, want http.ErrServerClosed", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after Shutdown")
	}
}
