package proxy

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// TestRoutesAcrossProtocols: with pools of HTTP/1.1 and of HTTP/2
// backends behind one listener, each request goes by its route, whatever
// the client speaks: HTTP/1.1 requests routed to the HTTP/2 pool take the
// net/http path, the others stay on the fasthttp path, and HTTP/2 clients
// are routed by the same rules (host without case or port, normalised
// path). A reload that moves the route takes effect on both front ends.
func TestRoutesAcrossProtocols(t *testing.T) {
	web := startBackend(t, "web")
	grpcish := startH2Backend(t, "h2c-backend", nil)
	cfg := Config{
		Health: HealthConfig{Path: "/health", Interval: time.Hour},
		Pools: []PoolConfig{
			{Name: "web", Backends: []string{web.URL()}},
			{Name: "h2", Backends: []string{grpcish.URL()}, StickyCookie: "h2_lb"},
		},
		Routes: []Route{
			{PathPrefix: "/h2/", Pool: "h2"},
			{Host: "api.example.com", Pool: "h2"},
			{Pool: "web"},
		},
		HTTP2: HTTP2Config{H2C: true},
	}
	p, url := startProxy(t, cfg)
	h1, h2c := newClient(t), newH2Client(t, nil)

	cases := []struct {
		host, path, want string
		viaNet           bool // an HTTP/1.1 request on the net/http path
	}{
		{"", "/", "web", false},
		{"", "/h2/echo", "h2c-backend", true},
		{"API.Example.com:80", "/", "h2c-backend", true},
		{"", "/x/../h2/echo", "h2c-backend", true},
		{"www.example.com", "/h2", "web", false}, // "/h2/" is the prefix
	}
	wantNet := uint64(0)
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"HTTP/1.1", h1}, {"h2c", h2c}} {
		for _, tc := range cases {
			req := newRequest(t, "GET", url+tc.path, nil)
			req.Host = tc.host
			resp, body := do(t, c.client, req)
			got := resp.Header.Get("X-Backend")
			if got == "" {
				got = backendOf(body)
			}
			if got == "" {
				var e backend.Echo
				json.Unmarshal([]byte(body), &e) //nolint:errcheck // checked below
				got = e.Backend
			}
			if resp.StatusCode != http.StatusOK || got != tc.want {
				t.Errorf("%s %s%s: %d from %q (%q), want %s", c.name, tc.host, tc.path, resp.StatusCode, got, body, tc.want)
			}
			if pinned := resp.Header.Get("Set-Cookie") != ""; pinned != (tc.want == "h2c-backend") {
				t.Errorf("%s %s%s: Set-Cookie %q: only the h2 pool pins clients", c.name, tc.host, tc.path, resp.Header.Get("Set-Cookie"))
			}
			if c.client == h1 && tc.viaNet {
				wantNet++
			}
		}
	}
	s := p.Traffic().Snapshot()
	if s.HTTP1ViaNet != wantNet || s.HTTP2Requests != uint64(len(cases)) {
		t.Errorf("%d HTTP/1.1 requests on the net/http path, %d HTTP/2: want %d and %d", s.HTTP1ViaNet, s.HTTP2Requests, wantNet, len(cases))
	}

	// The reload sends /h2/ to the web pool: both front ends follow.
	cfg.Routes = cfg.Routes[1:]
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*http.Client{h1, h2c} {
		resp, body := do(t, c, newRequest(t, "GET", url+"/h2/x", nil))
		if resp.StatusCode != http.StatusOK || backendOf(body) != "web" {
			t.Errorf("after the reload, %s /h2/x: %d %q, want web", resp.Proto, resp.StatusCode, body)
		}
	}
}
