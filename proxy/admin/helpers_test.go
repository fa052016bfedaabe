package admin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

// rig is backends behind a proxy on loopback, with the admin interface on a
// loopback port of its own.
type rig struct {
	backends []*backendtest.Server
	proxy    *proxy.Proxy
	proxyURL string
	admin    *Server
	adminURL string
}

// newRig starts n backends, a proxy over them configured by cfg (health
// checks on /health unless cfg says otherwise) and the admin interface
// configured by acfg. cfg.Backends, if given, holds options for the
// backends in order ("weight=3", "backup"...); their URLs are filled in.
func newRig(t *testing.T, n int, cfg proxy.Config, acfg Config) *rig {
	t.Helper()
	r := &rig{}
	opts := cfg.Backends
	cfg.Backends = nil
	for i := range n {
		b := backendtest.Start(t, "")
		r.backends = append(r.backends, b)
		entry := b.URL()
		if i < len(opts) && opts[i] != "" {
			entry += " " + opts[i]
		}
		cfg.Backends = append(cfg.Backends, entry)
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
	if r.admin, err = New(p, acfg); err != nil {
		t.Fatal(err)
	}
	r.adminURL = serve(t, r.admin.Serve)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.admin.Shutdown(ctx) //nolint:errcheck // best effort at test end
	})
	return r
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// poolsRig runs a proxy over pools (no listener of its own) and an admin
// interface that controls it, and returns the proxy and the admin URL.
func poolsRig(t *testing.T, health proxy.HealthConfig, pools ...proxy.PoolConfig) (*proxy.Proxy, string) {
	t.Helper()
	health.Path = "/health"
	p, err := proxy.New(proxy.Config{Health: health, Pools: pools, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	a, err := New(p, Config{Control: p, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, a.Serve)
	t.Cleanup(func() { a.Shutdown(t.Context()) }) //nolint:errcheck // test end
	return p, url
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
