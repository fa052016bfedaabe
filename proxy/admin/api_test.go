package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/alert"
)

func apiBackends(t *testing.T, r *rig) []backendJSON {
	t.Helper()
	code, body := fetch(t, r.adminURL+"/api/backends", "")
	if code != http.StatusOK {
		t.Fatalf("GET /api/backends: %d %s", code, body)
	}
	var bs []backendJSON
	if err := json.Unmarshal([]byte(body), &bs); err != nil {
		t.Fatalf("GET /api/backends: %v in %s", err, body)
	}
	return bs
}

func TestAPIBackends(t *testing.T) {
	r := newRig(t, 2, proxy.Config{Health: proxy.HealthConfig{Interval: time.Hour}}, Config{})
	r.traffic(t, 3, "/", http.StatusOK)
	r.traffic(t, 1, "/status/503", http.StatusServiceUnavailable)
	waitFor(t, "the first health round", 5*time.Second, func() bool {
		bs := apiBackends(t, r)
		return bs[0].LastCheck != nil && bs[1].LastCheck != nil
	})
	bs := apiBackends(t, r)
	if len(bs) != 2 {
		t.Fatalf("%d backends, want 2", len(bs))
	}
	var total uint64
	for i, b := range bs {
		if b.URL != r.backends[i].URL() || b.State != "up" {
			t.Errorf("backend %d: %s %s, want %s up", i, b.URL, b.State, r.backends[i].URL())
		}
		if time.Since(b.Since) > time.Minute || b.Since.After(time.Now()) {
			t.Errorf("%s: since %v", b.URL, b.Since)
		}
		if c := b.LastCheck; !c.OK || c.LatencyMS <= 0 || c.Error != "" || time.Since(c.At) > time.Minute {
			t.Errorf("%s: last check %+v", b.URL, c)
		}
		if b.InFlight != 0 || b.Failures != 0 || b.Weight != 1 || b.MaxConns != 0 || !b.InRotation {
			t.Errorf("%s: %+v", b.URL, b)
		}
		if len(b.Responses) != 5 || len(b.Errors) != 5 {
			t.Errorf("%s: responses %v errors %v, want every class and kind", b.URL, b.Responses, b.Errors)
		}
		total += b.Requests
	}
	if total != 4 || bs[0].Responses["2xx"]+bs[1].Responses["2xx"] != 3 || bs[0].Responses["5xx"]+bs[1].Responses["5xx"] != 1 {
		t.Errorf("requests %d, 2xx %d+%d, 5xx %d+%d; want 4, 3, 1", total,
			bs[0].Responses["2xx"], bs[1].Responses["2xx"], bs[0].Responses["5xx"], bs[1].Responses["5xx"])
	}
	// The field names a script would key on.
	_, body := fetch(t, r.adminURL+"/api/backends", "")
	var raw []map[string]any
	json.Unmarshal([]byte(body), &raw)
	for _, k := range []string{"url", "state", "since", "last_check", "in_flight", "requests", "responses", "errors", "rates"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("/api/backends lacks %q: %s", k, body)
		}
	}
}

// Backend options show: weight and max_conns, a backup on standby, a
// backend configured down.
func TestAPIBackendOptions(t *testing.T) {
	r := newRig(t, 4, proxy.Config{
		Backends: []string{"weight=3 max_conns=50", "", "backup", "down"},
		Health:   proxy.HealthConfig{Interval: -1},
	}, Config{})
	bs := apiBackends(t, r)
	for i, want := range []struct {
		state      string
		inRotation bool
		weight     int
		maxConns   int
	}{
		{"up", true, 3, 50},
		{"up", true, 1, 0},
		{"backup", false, 1, 0},
		{"disabled", false, 1, 0},
	} {
		b := bs[i]
		if b.State != want.state || b.InRotation != want.inRotation || b.Weight != want.weight || b.MaxConns != want.maxConns {
			t.Errorf("backend %d: state %q in rotation %v weight %d max_conns %d; want %+v",
				i, b.State, b.InRotation, b.Weight, b.MaxConns, want)
		}
	}
	m, _ := scrape(t, r)
	for i, want := range []struct{ up, weight float64 }{{1, 3}, {1, 1}, {1, 1}, {0, 1}} {
		u := r.backends[i].URL()
		if got := m.get(t, "lb_backend_up", "backend", u); got != want.up {
			t.Errorf("backend %d: lb_backend_up %v, want %v", i, got, want.up)
		}
		if got := m.get(t, "lb_backend_weight", "backend", u); got != want.weight {
			t.Errorf("backend %d: lb_backend_weight %v, want %v", i, got, want.weight)
		}
	}
	if m.get(t, "lb_backends_up") != 2 || m.get(t, "lb_backends") != 4 {
		t.Errorf("backends up %v of %v, want 2 of 4 (the backup waits, one is disabled)", m.get(t, "lb_backends_up"), m.get(t, "lb_backends"))
	}

	// The primaries gone, the backup takes over: still available.
	for _, b := range r.proxy.Pool().Backends()[:2] {
		r.proxy.Pool().MarkDown(b, "test")
	}
	if bs := apiBackends(t, r); bs[2].State != "backup" || !bs[2].InRotation {
		t.Errorf("the backup with no primary up: %q in rotation %v", bs[2].State, bs[2].InRotation)
	}
	if code, _ := fetch(t, r.adminURL+"/api/health", ""); code != http.StatusOK {
		t.Errorf("/api/health %d with the backup serving", code)
	}
}

func TestAPIHealth(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	check := func(want int, status string) {
		t.Helper()
		code, body := fetch(t, r.adminURL+"/api/health", "")
		var h healthJSON
		json.Unmarshal([]byte(body), &h)
		if code != want || h.Status != status || h.BackendsTotal != 1 {
			t.Errorf("/api/health: %d %s, want %d %q", code, body, want, status)
		}
	}
	check(http.StatusOK, "ok")
	b := r.proxy.Pool().Backends()[0]
	r.proxy.Pool().MarkDown(b, "test")
	check(http.StatusServiceUnavailable, "unavailable")
	r.proxy.Pool().MarkUp(b)
	check(http.StatusOK, "ok")
}

// TestAPIHealthDuringShutdown: from the moment the proxy begins shutting
// down, /api/health answers 503 "shutting_down", though its backends are
// up and a request is still finishing, so that whatever sits in front
// stops sending (Envoy's /ready, HAProxy's monitor fail).
func TestAPIHealthDuringShutdown(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	slow := make(chan int, 1)
	go func() { code, _ := fetch(t, r.proxyURL+"/delay/800ms", ""); slow <- code }()
	waitFor(t, "the slow request in flight", 5*time.Second, func() bool { return r.proxy.Pool().Backends()[0].InFlight() == 1 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- r.proxy.Shutdown(ctx)
	}()
	var code int
	var body string
	waitFor(t, "/api/health to say shutting down", 5*time.Second, func() bool {
		code, body = fetch(t, r.adminURL+"/api/health", "")
		return code != http.StatusOK
	})
	var h healthJSON
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusServiceUnavailable || h.Status != "shutting_down" || h.BackendsUp != 1 {
		t.Errorf("/api/health during shutdown: %d %s, want 503 shutting_down with the backend up", code, body)
	}
	if r.proxy.Pool().Backends()[0].InFlight() != 1 {
		t.Error("the slow request ended before /api/health said so: the check proves nothing")
	}
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the request in flight got %d", code)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestAPIHealthAfterClose: a proxy closed without Shutdown (its health
// checks stopped, its backend connections closed, no Serve accepted any
// more) is not ready: /api/health answers 503 "shutting_down", though its
// backends are still marked up, so that a probe (Kubernetes readiness,
// Envoy's /ready) stops sending to it.
func TestAPIHealthAfterClose(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	if code, body := fetch(t, r.adminURL+"/api/health", ""); code != http.StatusOK {
		t.Fatalf("/api/health before Close: %d %s, want 200", code, body)
	}
	r.proxy.Close()
	code, body := fetch(t, r.adminURL+"/api/health", "")
	var h healthJSON
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusServiceUnavailable || h.Status != "shutting_down" || h.BackendsUp != 1 {
		t.Errorf("/api/health after Close: %d %s, want 503 shutting_down with the backend up", code, body)
	}
}

// webhook is an alert receiver on loopback.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	events []alert.Event
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var ev alert.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// of returns the events received about backend, as "event state" strings.
func (w *webhook) of(backend string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, ev := range w.events {
		if ev.Backend == backend {
			out = append(out, ev.Event+" "+ev.State)
		}
	}
	return out
}

// TestKilledBackendReportedOnce kills a backend under traffic: the status
// API says down within two health intervals, the webhook gets exactly one
// "down" however many requests and checks fail, then exactly one "up" once
// the backend is back.
func TestKilledBackendReportedOnce(t *testing.T) {
	const interval = 300 * time.Millisecond
	hook := startWebhook(t)
	n, err := alert.New(alert.Config{URLs: []string{hook.URL + "/alerts"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) }) //nolint:errcheck // test end
	r := newRig(t, 2, proxy.Config{
		Health:        proxy.HealthConfig{Interval: interval, Timeout: 200 * time.Millisecond, Rise: 2, Fall: 2},
		OnStateChange: n.StateChanged,
	}, Config{})
	a := r.backends[0]
	checks := func() uint64 { return r.proxy.Pool().Backends()[0].Stats().Checks }
	waitFor(t, "the first health round", 5*time.Second, func() bool { return checks() >= 1 })

	// Health checks alone: no traffic reaches a to fail passively.
	killed := time.Now()
	a.Kill()
	waitFor(t, "/api/backends to say a is down", 10*time.Second, func() bool { return apiBackends(t, r)[0].State == "down" })
	if took := time.Since(killed); took > 2*interval+interval/2 {
		t.Errorf("a reported down %v after the kill; want within 2 health intervals (%v)", took, 2*interval)
	}
	if b := apiBackends(t, r)[0]; b.LastCheck == nil || b.LastCheck.OK || b.LastCheck.Error == "" || b.CheckFailures < 2 {
		t.Errorf("a's last check %+v after %d failures", b.LastCheck, b.CheckFailures)
	}

	// Traffic while a is down fails nothing and raises no second alert,
	// nor do two more failed rounds of checks.
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if code, body := fetch(t, r.proxyURL+"/", ""); code != http.StatusOK {
				t.Errorf("request while a is down: %d %s", code, body)
				return
			}
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()
	waitFor(t, "the down alert", 5*time.Second, func() bool { return len(hook.of(a.URL())) == 1 })
	seen := checks()
	waitFor(t, "two more rounds", 5*time.Second, func() bool { return checks() >= seen+2 })
	if got := hook.of(a.URL()); len(got) != 1 || got[0] != "backend down" {
		t.Fatalf("alerts for a after the kill: %q, want exactly one backend down", got)
	}

	a.Restart()
	waitFor(t, "/api/backends to say a is up", 10*time.Second, func() bool { return apiBackends(t, r)[0].State == "up" })
	waitFor(t, "the up alert", 5*time.Second, func() bool { return len(hook.of(a.URL())) == 2 })
	seen = checks()
	waitFor(t, "two more rounds", 5*time.Second, func() bool { return checks() >= seen+2 })
	if got := hook.of(a.URL()); len(got) != 2 || got[0] != "backend down" || got[1] != "backend up" {
		t.Errorf("alerts for a: %q, want exactly [backend down, backend up]", got)
	}
	if got := hook.of(r.backends[1].URL()); len(got) != 0 {
		t.Errorf("alerts for b, which never failed: %q", got)
	}
	if b := apiBackends(t, r)[0]; b.StateChanges != 2 {
		t.Errorf("a's state changes %d, want 2", b.StateChanges)
	}
}
