package admin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

// testBackend is the project's backend on a loopback port that a test can
// kill (listener and connections closed at once, as when the process dies)
// and restart on the same address.
type testBackend struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func startBackend(t *testing.T) *testBackend {
	t.Helper()
	b := &testBackend{t: t}
	b.listen("127.0.0.1:0")
	t.Cleanup(b.kill)
	return b
}

func (b *testBackend) URL() string { return "http://" + b.addr }

func (b *testBackend) listen(addr string) {
	b.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.t.Fatalf("backend: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addr, b.ln, b.conns = ln.Addr().String(), ln, map[net.Conn]struct{}{}
	srv := backend.NewServer(backend.New(b.addr))
	srv.Logger = quietLogger{}
	srv.ConnState = func(c net.Conn, s fasthttp.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch s {
		case fasthttp.StateNew:
			b.conns[c] = struct{}{}
		case fasthttp.StateClosed:
			delete(b.conns, c)
		}
	}
	go srv.Serve(ln) //nolint:errcheck // ends when killed
}

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
}

func (b *testBackend) restart() {
	b.t.Helper()
	b.listen(b.addr)
}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// rig is backends behind a proxy on loopback, with the admin interface on a
// loopback port of its own.
type rig struct {
	backends []*testBackend
	proxy    *proxy.Proxy
	proxyURL string
	admin    *Server
	adminURL string
}

// newRig starts n backends, a proxy over them configured by cfg (its
// Backends filled in; health checks on /health unless cfg says otherwise)
// and the admin interface configured by acfg.
func newRig(t *testing.T, n int, cfg proxy.Config, acfg Config) *rig {
	t.Helper()
	r := &rig{}
	for range n {
		b := startBackend(t)
		r.backends = append(r.backends, b)
		cfg.Backends = append(cfg.Backends, b.URL())
	}
	if cfg.Health.Path == "" {
		cfg.Health.Path = "/health"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.proxy = p
	r.proxyURL = serve(t, p.Serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at test end
	})
	if acfg.Logger == nil {
		acfg.Logger = slog.New(slog.DiscardHandler)
	}
	r.admin = New(p.Pool(), acfg)
	r.adminURL = serve(t, r.admin.Serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.admin.Shutdown(ctx) //nolint:errcheck // best effort at test end
	})
	return r
}

// serve runs serveFn on a fresh loopback listener and returns its URL.
func serve(t *testing.T, serveFn func(net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serveFn(ln) //nolint:errcheck // ends at shutdown
	return "http://" + ln.Addr().String()
}

// fetch does a GET with an optional Authorization header and returns the
// status and body.
func fetch(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// traffic sends n GETs of path through the proxy and fails the test on any
// answer but want.
func (r *rig) traffic(t *testing.T, n int, path string, want int) {
	t.Helper()
	for i := range n {
		if code, body := fetch(t, r.proxyURL+path, ""); code != want {
			t.Fatalf("request %d for %s: %d %q, want %d", i, path, code, strings.TrimSpace(body), want)
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
