package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestHTTP2Front serves HTTP/2 over TLS (ALPN) and with prior knowledge on
// the plain port, while HTTP/1.1 on the same ports keeps the fasthttp path:
// the counters tell the two apart.
func TestHTTP2Front(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := h2Proxy(t, ca, Config{Backends: []string{be.URL()}})
	traffic := tp.Traffic()

	// HTTP/2 over TLS, Go's client.
	h2 := newH2Client(t, ca.Pool())
	resp, body := do(t, h2, newRequest(t, "GET", tp.tlsURL("localhost", "/echo?x=1"), nil))
	if resp.ProtoMajor != 2 {
		t.Fatalf("TLS: client got %s, want HTTP/2", resp.Proto)
	}
	var e backend.Echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("echo: %v: %q", err, body)
	}
	if e.URI != "/echo?x=1" || e.Proto != "HTTP/1.1" || header(e, "X-Forwarded-Proto")[0] != "https" {
		t.Errorf("backend saw %s %s, X-Forwarded-Proto %q", e.URI, e.Proto, header(e, "X-Forwarded-Proto"))
	}
	s := traffic.Snapshot()
	if s.HTTP2Requests != 1 || s.HTTP2ConnsTotal != 1 {
		t.Errorf("after one HTTP/2 request: %d HTTP/2 requests on %d connections, want 1 and 1", s.HTTP2Requests, s.HTTP2ConnsTotal)
	}

	// h2c with prior knowledge on the plain port.
	h2c := newH2Client(t, nil)
	resp, body = do(t, h2c, newRequest(t, "GET", tp.plainURL+"/echo", nil))
	if resp.ProtoMajor != 2 || !strings.Contains(body, `"X-Forwarded-Proto":["http"]`) {
		t.Fatalf("h2c: %s, body %q", resp.Proto, body)
	}
	// Several requests over that one h2c connection (curl 7.88 sends only
	// the first of several URLs so, to nginx as to this proxy).
	for _, path := range []string{"/a", "/b", "/c"} {
		if resp, _ := do(t, h2c, newRequest(t, "GET", tp.plainURL+path, nil)); resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
			t.Fatalf("h2c %s: %d over %s", path, resp.StatusCode, resp.Proto)
		}
	}
	if s := traffic.Snapshot(); s.HTTP2Requests != 5 || s.HTTP2ConnsTotal != 2 {
		t.Errorf("after one request over TLS and four over h2c: %d HTTP/2 requests on %d connections, want 5 on 2", s.HTTP2Requests, s.HTTP2ConnsTotal)
	}

	// HTTP/1.1 on both ports: the fasthttp path, not the net/http one.
	before := traffic.Snapshot()
	for _, url := range []string{tp.plainURL + "/", tp.tlsURL("localhost", "/")} {
		resp, body := do(t, newTLSClient(t, ca.Pool()), newRequest(t, "GET", url, nil))
		if resp.ProtoMajor != 1 || backendOf(body) != "a" {
			t.Fatalf("HTTP/1.1 %s: %s %q", url, resp.Proto, body)
		}
	}
	after := traffic.Snapshot()
	total := func(s [5]uint64) (n uint64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	if total(after.Requests)-total(before.Requests) != 2 || after.HTTP2Requests != before.HTTP2Requests ||
		after.HTTP1ViaNet != 0 || after.HTTP2ConnsTotal != before.HTTP2ConnsTotal {
		t.Errorf("HTTP/1.1 requests: counters before %+v after %+v: want 2 more requests, none on the net/http path", before, after)
	}

	// curl, when installed: --http2 over TLS and prior knowledge in plain.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: skipping the curl checks")
		return
	}
	caFile := ca.WriteFile(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http2", "--cacert", caFile, tp.tlsURL("localhost", "/")}, "2"},
		{[]string{"--http2-prior-knowledge", tp.plainURL + "/"}, "2"},
		{[]string{"--http1.1", "--cacert", caFile, tp.tlsURL("localhost", "/")}, "1.1"},
	} {
		args := append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{http_version}"}, tc.args...)
		out, err := exec.Command("curl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v: %s", tc.args, err, out)
		}
		if got := string(out); got != "200 "+tc.want {
			t.Errorf("curl %v: %q, want %q", tc.args, got, "200 "+tc.want)
		}
	}
}

// TestH2COff keeps the HTTP/1.1 server's answer to the HTTP/2 preface when
// h2c is off: 400, and nothing proxied.
func TestH2COff(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}})
	status, _ := rawRequest(t, url, string(h2Preface))
	if !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Errorf("preface with h2c off: %q, want 400", status)
	}
	if be.hits.Load() != 0 {
		t.Error("the preface reached a backend")
	}
	// A request starting like the preface ("P...") is still HTTP/1.1 with
	// h2c on: the sniffing hands it over untouched.
	_, url = startProxy(t, Config{Backends: []string{be.URL()}, HTTP2: HTTP2Config{H2C: true}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("P")) //nolint:errcheck // checked by the answer
	c.Write([]byte("UT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "a" {
		t.Errorf("PUT split after its first byte, h2c on: %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
}

// TestHTTP2Backends reaches backends that speak HTTP/2 only: proto=h2 over
// TLS (ALPN h2) and proto=h2c in plain, from HTTP/2 clients and from
// HTTP/1.1 clients alike (the latter through the net/http path, which the
// counters show), with streamed bodies and trailers relayed.
func TestHTTP2Backends(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	tlsBE := startH2Backend(t, "tls", ca.Issue(t, "127.0.0.1"))
	plainBE := startH2Backend(t, "plain", nil)
	tp := h2Proxy(t, ca, Config{
		Backends:   []string{tlsBE.URL(), plainBE.URL()},
		BackendTLS: &tls.Config{RootCAs: ca.Pool()},
	})
	h2 := newH2Client(t, ca.Pool())
	h1 := newTLSClient(t, ca.Pool())
	for _, c := range []struct {
		name   string
		client *http.Client
		url    string
		proto  int
	}{
		{"h2 client", h2, tp.tlsURL("localhost", ""), 2},
		{"h1 client", h1, tp.tlsURL("localhost", ""), 1},
		{"h1 plain", newClient(t), tp.plainURL, 1},
	} {
		seen := map[string]bool{}
		for range 2 {
			resp, body := do(t, c.client, newRequest(t, "GET", c.url+"/echo?q=%2F", nil))
			var e backend.Echo
			if err := json.Unmarshal([]byte(body), &e); err != nil || resp.ProtoMajor != c.proto {
				t.Fatalf("%s: %s %v %q", c.name, resp.Proto, err, body)
			}
			seen[e.Backend] = true
			if e.Proto != "HTTP/2.0" || e.URI != "/echo?q=%2F" || e.Host != "localhost:"+tp.tlsPort() && c.name != "h1 plain" {
				t.Errorf("%s: backend %s saw %s %s Host %s", c.name, e.Backend, e.Proto, e.URI, e.Host)
			}
		}
		if !seen["tls"] || !seen["plain"] {
			t.Errorf("%s: answered by %v, want both backends", c.name, seen)
		}
	}
	if s := tp.Traffic().Snapshot(); s.HTTP1ViaNet != 4 || s.HTTP2Requests != 2 {
		t.Errorf("counters: %d HTTP/1.1 requests on the net/http path, %d HTTP/2, want 4 and 2", s.HTTP1ViaNet, s.HTTP2Requests)
	}

	// A streamed answer with a trailer, to both kinds of client.
	for _, c := range []*http.Client{h2, h1} {
		resp, body := do(t, c, newRequest(t, "GET", tp.tlsURL("localhost", "/stream?n=3"), nil))
		if body != "chunk 0\nchunk 1\nchunk 2\n" || resp.Trailer.Get("X-Sum") != "3" {
			t.Errorf("%s stream: %q, trailer %q", resp.Proto, body, resp.Trailer.Get("X-Sum"))
		}
	}

	// The backend's statuses pass; a backend gone fails over.
	resp, _ := do(t, h2, newRequest(t, "GET", tp.tlsURL("localhost", "/status/418"), nil))
	if resp.StatusCode != 418 {
		t.Errorf("status %d, want 418", resp.StatusCode)
	}
	plainBE.kill()
	for range 4 {
		resp, body := do(t, h2, newRequest(t, "GET", tp.tlsURL("localhost", "/"), nil))
		if resp.StatusCode != 200 || backendOf(body) != "tls" {
			t.Fatalf("with the h2c backend dead: %d %q", resp.StatusCode, body)
		}
	}
}

// TestHTTP2GracefulShutdown: Shutdown sends GOAWAY and lets the streams in
// flight finish; past its deadline it closes what is left.
func TestHTTP2GracefulShutdown(t *testing.T) {
	be := startBackend(t, "a")
	p, url, served := startUnmanagedProxy(t, be)
	c := newH2Client(t, nil)

	type result struct {
		status int
		body   string
		err    error
	}
	get := func(path string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			resp, err := c.Get(url + path)
			if err != nil {
				ch <- result{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			ch <- result{resp.StatusCode, string(b), err}
		}()
		return ch
	}
	slow := get("/delay/400ms")
	waitFor(t, "the request at the backend", 5*time.Second, func() bool { return be.busy.Load() == 1 })

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitFor(t, "shutdown to begin", 5*time.Second, func() bool { return p.h2.closing.Load() })
	r := <-slow
	if r.err != nil || r.status != 200 || backendOf(r.body) != "a" {
		t.Fatalf("stream in flight at shutdown: %d %q %v", r.status, r.body, r.err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve ended by Shutdown returned %v, want http.ErrServerClosed", err)
	}
	if r := <-get("/"); r.err == nil {
		t.Errorf("a request after shutdown was answered: %d", r.status)
	}
}

// TestHTTP2ShutdownDeadline closes the HTTP/2 connections still busy when
// the shutdown's deadline passes.
func TestHTTP2ShutdownDeadline(t *testing.T) {
	be := startBackend(t, "a")
	p, url, _ := startUnmanagedProxy(t, be)
	c := newH2Client(t, nil)
	failed := make(chan error, 1)
	go func() {
		resp, err := c.Get(url + "/delay/10s")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		failed <- err
	}()
	waitFor(t, "the request at the backend", 5*time.Second, func() bool { return be.busy.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stream still running: %v, want the deadline", err)
	}
	select {
	case err := <-failed:
		if err == nil {
			t.Error("the cut stream ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not closed at the deadline")
	}
}

// TestHTTP2WithMaxConnsPerIP: with a per-address limit (kept by the
// proxy's listener, beneath TLS), HTTP/2 and HTTP/1.1 both still work over
// TLS.
func TestHTTP2WithMaxConnsPerIP(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := h2Proxy(t, ca, Config{Backends: []string{be.URL()}, MaxConnsPerIP: 4})
	for _, c := range []*http.Client{newH2Client(t, ca.Pool()), newTLSClient(t, ca.Pool())} {
		resp, body := do(t, c, newRequest(t, "GET", tp.tlsURL("localhost", "/echo"), nil))
		var e backend.Echo
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%s: %v %q", resp.Proto, err, body)
		}
		if got := header(e, "X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
			t.Errorf("%s: X-Forwarded-Proto %q, want https", resp.Proto, got)
		}
	}
	if s := tp.Traffic().Snapshot(); s.HTTP2Requests != 1 {
		t.Errorf("%d HTTP/2 requests, want 1", s.HTTP2Requests)
	}
}

// TestH2CShortReads: a reader that asks for fewer bytes than the preface
// (as fasthttp does with ReduceMemoryUsage) still gets an HTTP/1.1 request
// whole and in order, however it is split.
func TestH2CShortReads(t *testing.T) {
	const req = "GET /some/path HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, size := range []int{1, 3, 23, 24, 64} {
		client, server := net.Pipe()
		go func() {
			client.Write([]byte(req)) //nolint:errcheck // read below
			client.Close()
		}()
		c := &h2cConn{Conn: server}
		var got []byte
		buf := make([]byte, size)
		for {
			n, err := c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		server.Close()
		if string(got) != req {
			t.Errorf("reads of %d bytes: got %q, want %q", size, got, req)
		}
	}
}

// startUnmanagedProxy runs a proxy with h2c over be whose shutdown is the
// test's to do; served reports what Serve returned.
func startUnmanagedProxy(t *testing.T, be *testBackend) (p *Proxy, url string, served <-chan error) {
	t.Helper()
	p, err := New(Config{Backends: []string{be.URL()}, Logger: discardLogger(), Health: HealthConfig{Path: "/health"},
		HTTP2: HTTP2Config{H2C: true}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() { ch <- p.Serve(ln) }()
	t.Cleanup(func() { p.Close() })
	return p, "http://" + ln.Addr().String(), ch
}
