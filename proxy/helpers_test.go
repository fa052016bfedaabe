package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// backendServer returns the project's backend-server, quiet.
func backendServer(name string) *fasthttp.Server {
	srv := backend.NewServer(backend.New(name))
	srv.Logger = quietLogger{}
	return srv
}

// quietLogger silences a test backend's fasthttp server, which reports the
// connections a test kills.
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// testBackend is the project's backend-server handler on a loopback port,
// which a test can kill (listener and every connection closed at once, as
// when the process dies) and restart on the same address.
type testBackend struct {
	t       testing.TB
	name    string
	addr    string
	handler *backend.Handler
	hits    atomic.Int64 // requests other than health checks
	tls     *tls.Config  // serve HTTPS with it; nil for HTTP
	busy    atomic.Int64 // requests other than health checks being served now
	peak    atomic.Int64 // the most of them served at once
	opened  atomic.Int64 // connections accepted

	mu     sync.Mutex
	ln     net.Listener
	srv    *fasthttp.Server
	conns  map[net.Conn]struct{}
	frozen chan struct{} // non-nil while frozen; closed to thaw
	unhold func()        // lets the killed backend's port go (backendtest.HoldPort)
}

func startBackend(t testing.TB, name string) *testBackend {
	t.Helper()
	b := &testBackend{t: t, name: name, handler: backend.New(name)}
	b.listen("127.0.0.1:0")
	t.Cleanup(func() {
		b.thaw()
		b.kill()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.release()
	})
	return b
}

func (b *testBackend) URL() string {
	if b.tls != nil {
		return "https://" + b.addr
	}
	return "http://" + b.addr
}

func (b *testBackend) listen(addr string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("backend %s: %v", b.name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr = ln.Addr().String()
	if b.tls != nil {
		ln = tls.NewListener(ln, b.tls)
	}
	b.ln = ln
	b.conns = map[net.Conn]struct{}{}
	b.srv = backend.NewServer(b.handler)
	b.srv.Logger = quietLogger{}
	b.srv.Handler = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/health" {
			b.handler.HandleFastHTTP(ctx)
			return
		}
		b.hits.Add(1)
		n := b.busy.Add(1)
		for old := b.peak.Load(); n > old && !b.peak.CompareAndSwap(old, n); old = b.peak.Load() {
		}
		b.mu.Lock()
		gate := b.frozen
		b.mu.Unlock()
		if gate != nil {
			<-gate
		}
		b.handler.HandleFastHTTP(ctx)
		b.busy.Add(-1)
	}
	b.srv.ConnState = func(c net.Conn, s fasthttp.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		if s == fasthttp.StateNew {
			b.opened.Add(1)
			b.conns[c] = struct{}{}
		} else if s == fasthttp.StateClosed {
			delete(b.conns, c)
		}
	}
	go b.srv.Serve(ln) //nolint:errcheck // ends when killed
}

// kill closes the listener and every open connection without a word to
// the clients, as a crashed process would. Its port stays refused, and
// kept from other listeners, until restart or the test's end.
func (b *testBackend) kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return
	}
	b.ln.Close()
	for c := range b.conns {
		c.Close()
	}
	b.ln = nil
	b.unhold = backendtest.HoldPort(b.addr)
}

// release lets go of the port a kill held; b.mu is held.
func (b *testBackend) release() {
	if b.unhold != nil {
		b.unhold()
		b.unhold = nil
	}
}

// freeze makes the backend accept connections and read requests but answer
// nothing, health checks included, as a process stopped with SIGSTOP seems
// to its peers, until thaw.
func (b *testBackend) freeze() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.frozen == nil {
		b.frozen = make(chan struct{})
	}
}

// thaw lets a frozen backend answer again, the held requests first.
func (b *testBackend) thaw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.frozen != nil {
		close(b.frozen)
		b.frozen = nil
	}
}

// openConns returns how many connections the backend has open now.
func (b *testBackend) openConns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// restart listens again on the address the backend had.
func (b *testBackend) restart() {
	b.t.Helper()
	b.mu.Lock()
	b.release()
	b.mu.Unlock()
	b.listen(b.addr)
}

// rawBackend is a TCP server that runs handle on every accepted connection,
// for backends that misbehave in ways a real server cannot be made to.
type rawBackend struct {
	ln       net.Listener
	requests atomic.Int64
	accepted atomic.Int64 // connections accepted
	closed   atomic.Int64 // connections the handler has finished with
}

func startRawBackend(t *testing.T, handle func(c net.Conn, r *bufio.Reader, rb *rawBackend)) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveRawBackend(t, ln, handle)
}

// serveRawBackend serves ln's connections with handle.
func serveRawBackend(t *testing.T, ln net.Listener, handle func(c net.Conn, r *bufio.Reader, rb *rawBackend)) *rawBackend {
	t.Helper()
	rb := &rawBackend{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			rb.accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer rb.closed.Add(1)
				defer c.Close()
				handle(c, bufio.NewReader(c), rb)
			}()
		}
	}()
	return rb
}

func (rb *rawBackend) URL() string { return "http://" + rb.ln.Addr().String() }

// readRequest reads one request's header block and body from r.
func (rb *rawBackend) readRequest(r *bufio.Reader) (*http.Request, bool) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return nil, false
	}
	io.Copy(io.Discard, req.Body)
	rb.requests.Add(1)
	return req, true
}

// startProxy runs a proxy over backends on a loopback port.
func startProxy(t testing.TB, cfg Config) (*Proxy, string) {
	t.Helper()
	return startProxyWith(t, cfg, nil)
}

// startProxyWith is startProxy with the fasthttp server adjusted before
// it serves (nil: as it is).
func startProxyWith(t testing.TB, cfg Config, adjust func(s *fasthttp.Server)) (*Proxy, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.Health.Path == "" {
		cfg.Health.Path = "/health" // so checks do not count as traffic
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(p.Server())
	}
	ln, err := Listen("127.0.0.1:0") // as the binary listens
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Serve(ln) //nolint:errcheck // ends at shutdown
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at test end
		<-done
	})
	return p, "http://" + ln.Addr().String()
}

// serveProxy runs a proxy over cfg on a loopback port, for a test that
// shuts it down itself: Serve's result arrives on served.
func serveProxy(t *testing.T, cfg Config) (p *Proxy, addr string, served <-chan error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen("127.0.0.1:0") // as the binary listens
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	return p, ln.Addr().String(), done
}

// newClient returns a keep-alive net/http client for talking to a proxy.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get does a GET and returns the status and body.
func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	status, body, _ := getWith(t, c, url)
	return status, body
}

// getWith does a GET with extra headers, given as name, value pairs, and
// returns the status, body and response headers.
func getWith(t *testing.T, c *http.Client, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backendOf returns the name a backend-server response names.
func backendOf(body string) string {
	const prefix = "Backend server is running on port "
	if !strings.HasPrefix(body, prefix) {
		return ""
	}
	return strings.TrimPrefix(body, prefix)
}

// dialProxy connects to the proxy at url (http://host:port), for a test
// that speaks HTTP on the connection itself, with timeout as the
// connection's deadline. The caller closes it.
func dialProxy(t testing.TB, url string, timeout time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(timeout))
	return c
}

// rawRequest writes raw to the address of a proxy URL and returns the
// response's status line and the rest of what was read until the proxy
// closed the connection or a second passed.
func rawRequest(t *testing.T, proxyURL, raw string) (status string, rest string) {
	t.Helper()
	c := dialProxy(t, proxyURL, 5*time.Second)
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading status line: %v", err)
	}
	c.SetDeadline(time.Now().Add(time.Second))
	b, _ := io.ReadAll(r)
	return strings.TrimSpace(status), string(b)
}

// requestGoroutines counts the goroutines running the proxy's request
// path: those with a frame in this package's non-test code that were not
// started by a test (the serve loops) and are not its long-lived workers.
// fasthttp's idle workers hold no proxy frame and are not counted.
func requestGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "Load-Balancee/proxy.") || strings.Contains(g, "_test.go") ||
			strings.Contains(g, "proxy.(*watchdog).run") || strings.Contains(g, "proxy.(*parker).run") {
			continue
		}
		count++
	}
	return count
}

// noRequestGoroutinesLeft waits until no goroutine is left on the request
// path, and fails naming what is left after a few seconds.
func noRequestGoroutinesLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for requestGoroutines() > 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d request-path goroutines left:\n%s", requestGoroutines(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
