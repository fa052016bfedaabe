package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/discovery"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// reloadConfig is the configuration the reload tests start from and change:
// health checks on /health, once an hour (the first round runs at start).
func reloadConfig(backends ...*testBackend) Config {
	c := Config{Health: HealthConfig{Path: "/health", Interval: time.Hour}, Logger: discardLogger()}
	for _, b := range backends {
		c.Backends = append(c.Backends, b.URL())
	}
	return c
}

// hitAll sends n GETs of path and returns how many each backend answered.
func hitAll(t *testing.T, c *http.Client, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		status, body := get(t, c, url)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %q", url, status, body)
		}
		got[backendOf(body)]++
	}
	return got
}

func member(t *testing.T, p *Proxy, poolName, url string) *pool.Backend {
	t.Helper()
	for _, pl := range p.Pools() {
		if pl.Name() == poolName {
			if b := pl.Lookup(url); b != nil {
				return b
			}
		}
	}
	t.Fatalf("no backend %s in pool %s", url, poolName)
	return nil
}

// TestReloadKeepsWhatStays: a backend that stays keeps its Backend (health,
// counters), its connection pool and its open connections; one that goes
// takes no more requests and its connections close; one that comes takes
// its share at once.
func TestReloadKeepsWhatStays(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	p, url := startProxy(t, reloadConfig(a, b))
	client := newClient(t)
	if got := hitAll(t, client, url+"/", 10); got["a"] != 5 || got["b"] != 5 {
		t.Fatalf("before the reload: %v, want 5 each on a and b", got)
	}
	bb := member(t, p, DefaultPool, b.URL())
	hc := upstreamOf(bb).hc
	// Health checks open a connection each; traffic reuses its own.
	trafficConns := func() int64 { return b.opened.Load() - int64(bb.Stats().Checks) }
	// A check counts once it is done, its connection once accepted: count
	// while none is under way.
	waitFor(t, "b's first health check", 5*time.Second, func() bool { return bb.Stats().Checks >= 1 })
	checks := bb.Stats().Checks
	bOpened, aOpen := trafficConns(), a.openConns()
	if aOpen == 0 {
		t.Fatal("no kept-alive connection to a")
	}

	if err := p.Reload(reloadConfig(b, c)); err != nil {
		t.Fatal(err)
	}
	if got := hitAll(t, client, url+"/", 10); got["b"] != 5 || got["c"] != 5 || got["a"] != 0 {
		t.Errorf("after the reload: %v, want 5 each on b and c", got)
	}
	if member(t, p, DefaultPool, b.URL()) != bb || upstreamOf(bb).hc != hc {
		t.Error("b was rebuilt: it must keep its Backend and connection pool")
	}
	if bb.Requests() != 10 {
		t.Errorf("b counts %d requests, want 10: its counters were lost", bb.Requests())
	}
	// c joined: the reload checks every member at once, b too.
	waitFor(t, "the health checks the reload started", 5*time.Second, func() bool { return bb.Stats().Checks > checks })
	if n := trafficConns(); n != bOpened {
		t.Errorf("b accepted %d new connections for traffic: its kept-alive ones were not reused", n-bOpened)
	}
	waitFor(t, "a's idle connections to close", 5*time.Second, func() bool { return a.openConns() == 0 })
	if p.Pool().Lookup(a.URL()) != nil {
		t.Error("a is still a member")
	}
}

// TestReloadUnderLoad reloads 20 times while clients send requests, fast and
// slow, through every change of backends, policy, affinity and routes: no
// request may fail.
func TestReloadUnderLoad(t *testing.T) {
	bs := []*testBackend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c"), startBackend(t, "d")}
	configs := make([]Config, 4)
	for i := range configs {
		configs[i] = reloadConfig(bs[i], bs[(i+1)%4])
	}
	configs[1].Policy = pool.NewLeastConn()
	configs[2].Policy = pool.NewMaglev(pool.Key{Kind: pool.KeyURI})
	configs[2].StickyCookie = "lb"
	configs[3].Pools = []PoolConfig{{Name: "slow", Backends: []string{bs[0].URL(), bs[3].URL()}}}
	configs[3].Routes = []Route{{PathPrefix: "/delay/", Pool: "slow"}}
	p, url := startProxy(t, configs[0])

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(t)
			path := "/"
			if w%3 == 0 {
				path = "/delay/30ms"
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(fmt.Sprintf("%s%s?i=%d", url, path, i))
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || backendOf(string(body)) == "" {
						err = fmt.Errorf("status %d: %q", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	var took []time.Duration
	for i := range 20 {
		before := ok.Load()
		waitFor(t, "requests between reloads", 5*time.Second, func() bool { return ok.Load() >= before+10 })
		start := time.Now()
		if err := p.Reload(configs[(i+1)%4]); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		took = append(took, time.Since(start))
	}
	before := ok.Load()
	waitFor(t, "requests after the last reload", 5*time.Second, func() bool { return ok.Load() >= before+10 })
	close(stop)
	wg.Wait()
	slices.Sort(took)
	t.Logf("%d requests through 20 reloads; reload took %v median, %v max", ok.Load(), took[len(took)/2], took[len(took)-1])
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during reloads (first: %v)", n, firstErr.Load())
	}
}

// TestReloadRefusesBadConfig: a configuration that does not validate changes
// nothing, and the running one goes on serving.
func TestReloadRefusesBadConfig(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, reloadConfig(a))
	client := newClient(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad backend", Config{Backends: []string{b.URL(), "htp://x"}}, `invalid backend "htp://x": unsupported scheme "htp"`},
		{"unknown pool", Config{Backends: []string{b.URL()}, Routes: []Route{{PathPrefix: "/api/", Pool: "api"}}}, `unknown pool "api"`},
		{"no backends", Config{}, "no backends configured"},
		{"duplicate pool", Config{Pools: []PoolConfig{{Name: "x", Backends: []string{b.URL()}}, {Name: "x", Backends: []string{a.URL()}}}}, `pool "x": defined twice`},
		{"bad pool name", Config{Pools: []PoolConfig{{Name: "a b", Backends: []string{b.URL()}}}}, `invalid pool name "a b"`},
		{"empty pool", Config{Pools: []PoolConfig{{Name: "x"}}}, `pool "x": no backends and no discovery`},
		{"bad health path", Config{Pools: []PoolConfig{{Name: "x", Backends: []string{b.URL()}, HealthPath: "h"}}}, `health path "h"`},
		{"nil policy", Config{Backends: []string{b.URL()}, Policy: (*pool.LeastConn)(nil)}, `pool "default": policy is a nil *pool.LeastConn`},
		{"nil pool policy", Config{Pools: []PoolConfig{{Name: "x", Backends: []string{b.URL()}, Policy: (*pool.RoundRobin)(nil)}}}, `pool "x": policy is a nil *pool.RoundRobin`},
		// One endpoint spelt otherwise: a port with a leading zero, an
		// IPv4-mapped IPv6 address.
		{"duplicate backend", Config{Pools: []PoolConfig{{Name: "x", Backends: []string{b.URL(), strings.Replace(b.URL(), "127.0.0.1:", "127.0.0.1:0", 1)}}}},
			`pool "x": duplicate backend`},
		{"duplicate default backend", Config{Backends: []string{b.URL(), strings.Replace(b.URL(), "127.0.0.1", "[::ffff:127.0.0.1]", 1)}},
			`duplicate backend`},
		{"duplicate backend, with a trailing dot", Config{Backends: []string{"http://localhost:1", "http://LocalHost.:1"}},
			`pool "default": duplicate backend "http://LocalHost.:1" (and "http://localhost:1")`},
	} {
		err := p.Reload(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
		if got := hitAll(t, client, url+"/", 4); got["a"] != 4 {
			t.Fatalf("%s: after a refused reload: %v, want a alone", tc.name, got)
		}
	}
	if len(p.Pools()) != 1 || len(p.Pool().Backends()) != 1 {
		t.Errorf("a refused reload left pools %v", p.Pools())
	}
}

// TestChangeAfterClose: Reload and AddBackend after Close (or Shutdown,
// which ends with it) return an error wrapping ErrClosed and start nothing:
// no pool, backend, health checker or discovery source is set up, since
// nothing would close them. Before, they were set up as on a running
// proxy, and the new backends' connections were never closed.
func TestChangeAfterClose(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	for _, stop := range []string{"Close", "Shutdown"} {
		for _, change := range []string{"Reload", "AddBackend"} {
			t.Run(stop+"/"+change, func(t *testing.T) {
				p, err := New(reloadConfig(a))
				if err != nil {
					t.Fatal(err)
				}
				if stop == "Close" {
					p.Close()
				} else {
					p.Shutdown(context.Background()) //nolint:errcheck // nothing in flight
				}
				disc := newFakeDiscoverer("fake")
				if change == "Reload" {
					cfg := reloadConfig(a, b)
					cfg.Pools = []PoolConfig{{Name: "svc", Backends: []string{b.URL()}, Discovery: []Discoverer{disc}}}
					err = p.Reload(cfg)
				} else {
					_, err = p.AddBackend("", b.URL())
				}
				if !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "the proxy is closed") {
					t.Errorf("%s after %s: %v, want an error wrapping ErrClosed", change, stop, err)
				}
				var members []string
				for _, pl := range p.Pools() {
					for _, m := range pl.Backends() {
						members = append(members, pl.Name()+": "+m.URL())
					}
				}
				if want := []string{DefaultPool + ": " + a.URL()}; !slices.Equal(members, want) {
					t.Errorf("%s after %s: members %q, want %q", change, stop, members, want)
				}
				p.mu.Lock()
				n := len(p.pools)
				p.mu.Unlock()
				if n != 1 {
					t.Errorf("%s after %s: %d live pools, want 1", change, stop, n)
				}
				if disc.started.Load() != 0 || b.opened.Load() != 0 {
					t.Errorf("%s after %s: discovery started %d times, backend b reached %d times, want nothing started",
						change, stop, disc.started.Load(), b.opened.Load())
				}
			})
		}
	}
}

// TestNewRefusesNilPolicy: a policy that is a typed nil (a *pool.LeastConn
// declared, never made) is refused by New, naming it, rather than panicking
// on the first request.
func TestNewRefusesNilPolicy(t *testing.T) {
	var lc *pool.LeastConn
	_, err := New(Config{Backends: []string{"http://127.0.0.1:1"}, Policy: lc, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), "policy is a nil *pool.LeastConn") {
		t.Errorf("New with a nil *pool.LeastConn: %v, want an error naming it", err)
	}
}

// TestNewChecksDiscoverers: New (and Check, and Reload) call the Check
// method of a discovery source built by hand, so a bad name, port, endpoint
// or prefix is refused at once, naming the pool and the value, rather than
// failing at run time; a good one is accepted with its defaults filled in.
// Before, no Check was called: a DNS source named by an IP address stayed
// empty without a word of why.
func TestNewChecksDiscoverers(t *testing.T) {
	// Nothing answers there: a good source runs, finds nothing, and
	// stops with the proxy.
	const resolver, endpoint = "127.0.0.1:1", "http://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		d    Discoverer
		want string // in the error; empty: accepted
		then func(t *testing.T, d Discoverer)
	}{
		{name: "dns named by an IP address", d: &discovery.DNS{Name: "10.0.0.1", Port: 8080, Resolver: resolver},
			want: `pool "svc": dns: invalid name "10.0.0.1": an IP address`},
		{name: "dns A without a port", d: &discovery.DNS{Name: "api.internal", Resolver: resolver},
			want: `pool "svc": dns: api.internal: A records need a port, 1-65535 (got 0)`},
		{name: "dns port out of range", d: &discovery.DNS{Name: "api.internal", Port: 70000, Resolver: resolver},
			want: `pool "svc": dns: api.internal: A records need a port, 1-65535 (got 70000)`},
		{name: "dns bad resolver", d: &discovery.DNS{Name: "api.internal", Port: 8080, Resolver: "127.0.0.1"},
			want: `pool "svc": dns: invalid resolver "127.0.0.1"`},
		{name: "etcd endpoint without a scheme", d: &discovery.Etcd{Endpoints: []string{"127.0.0.1:2379"}, Prefix: "/lb/"},
			want: `pool "svc": etcd: invalid endpoint "127.0.0.1:2379"`},
		{name: "etcd without a prefix", d: &discovery.Etcd{Endpoints: []string{endpoint}},
			want: `pool "svc": etcd: empty prefix`},
		{name: "dns A", d: &discovery.DNS{Name: "API.internal.", Port: 8080, Resolver: resolver, Logger: discardLogger()},
			then: func(t *testing.T, d Discoverer) {
				if got, want := d.String(), "dns A api.internal:8080 http every 30s via "+resolver; got != want {
					t.Errorf("checked: %q, want %q", got, want)
				}
			}},
		{name: "dns SRV", d: &discovery.DNS{Name: "_api._tcp.example.com", Resolver: resolver, Logger: discardLogger()},
			then: func(t *testing.T, d Discoverer) {
				if got, want := d.String(), "dns SRV _api._tcp.example.com http every 30s via "+resolver; got != want {
					t.Errorf("checked: %q, want %q", got, want)
				}
			}},
		{name: "etcd", d: &discovery.Etcd{Endpoints: []string{endpoint}, Prefix: "/lb/", Logger: discardLogger()},
			then: func(t *testing.T, d Discoverer) {
				if got := d.(*discovery.Etcd).DialTimeout; got != discovery.DefaultEtcdDialTimeout {
					t.Errorf("checked: dial timeout %v, want the default %v", got, discovery.DefaultEtcdDialTimeout)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Pools: []PoolConfig{{Name: "svc", Discovery: []Discoverer{tc.d}}}, Logger: discardLogger()}
			p, err := New(cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				p.Close()
				tc.then(t, tc.d)
				return
			}
			if err == nil {
				p.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error with %q", err, tc.want)
			}
			if err := Check(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Check: %v, want an error with %q", err, tc.want)
			}
			running, err := New(reloadConfig(startBackend(t, "a")))
			if err != nil {
				t.Fatal(err)
			}
			defer running.Close()
			if err := running.Reload(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Reload: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestReloadKeepsCheckedDiscoverer: a reload given the discovery source that
// runs checks it again, and keeps it running: Check finds nothing to change
// and writes nothing that Discover reads (under the race detector, a
// write there is a race with the running source).
func TestReloadKeepsCheckedDiscoverer(t *testing.T) {
	d := &discovery.DNS{Name: "api.internal.", Port: 8080, Resolver: "127.0.0.1:1", Logger: discardLogger()}
	e := &discovery.Etcd{Endpoints: []string{"http://127.0.0.1:1"}, Prefix: "/lb/", Logger: discardLogger()}
	cfg := Config{Pools: []PoolConfig{{Name: "svc", Discovery: []Discoverer{d, e}}}, Logger: discardLogger()}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	runs := func() map[string]*discoveryRun {
		p.mu.Lock()
		defer p.mu.Unlock()
		return maps.Clone(p.pools["svc"].discovery)
	}
	before := runs()
	for range 2 {
		if err := p.Reload(cfg); err != nil {
			t.Fatal(err)
		}
		if err := Check(cfg); err != nil {
			t.Fatal(err)
		}
	}
	after := runs()
	if len(before) != 2 || !maps.Equal(before, after) {
		t.Errorf("discovery runs %v, then %v after the reloads: want the same two, kept", before, after)
	}
}

// TestRoutesByHostAndPath sends requests to pools by host and path, each pool
// with its own policy and sticky cookie, and refuses what no route takes.
func TestRoutesByHostAndPath(t *testing.T) {
	web, api1, api2, static := startBackend(t, "web"), startBackend(t, "api1"), startBackend(t, "api2"), startBackend(t, "static")
	cfg := Config{
		Health: HealthConfig{Path: "/health", Interval: time.Hour},
		Pools: []PoolConfig{
			{Name: "web", Backends: []string{web.URL()}},
			{Name: "api", Backends: []string{api1.URL(), api2.URL()}, StickyCookie: "api_lb"},
			{Name: "static", Backends: []string{static.URL()}},
		},
		Routes: []Route{
			{Host: "api.example.com", Pool: "api"},
			{PathPrefix: "/api/", Pool: "api"},
			{Host: "*.cdn.example.com", Pool: "static"},
			{Host: "www.example.com", Pool: "web"},
		},
	}
	p, url := startProxy(t, cfg)
	client := newClient(t)
	for _, tc := range []struct{ host, path, want string }{
		{"API.example.com:8080", "/", "api"},
		{"other.org", "/api/users", "api"},       // a host without routes of its own
		{"www.example.com", "/api/users", "web"}, // the host's own route wins over a hostless prefix
		{"img.cdn.example.com", "/x.png", "static"},
		{"www.example.com", "/", "web"},
	} {
		status, body, header := getHost(t, client, url+tc.path, tc.host)
		name := backendOf(body)
		if status != http.StatusOK || !strings.HasPrefix(name, tc.want) {
			t.Errorf("%s%s: %d from %q, want pool %s", tc.host, tc.path, status, name, tc.want)
		}
		if sticky := strings.Contains(header.Get("Set-Cookie"), "api_lb="); sticky != (tc.want == "api") {
			t.Errorf("%s%s: Set-Cookie %q: only the api pool pins clients", tc.host, tc.path, header.Get("Set-Cookie"))
		}
	}
	status, body, _ := getHost(t, client, url+"/", "other.org")
	if status != http.StatusNotFound || !strings.Contains(body, "no route") {
		t.Errorf("no route, no default pool: %d %q, want 404", status, body)
	}

	// A reload adds a default route: what no route took now goes to web.
	cfg.Routes = append(cfg.Routes, Route{Pool: "web"})
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := getHost(t, client, url+"/", "other.org"); status != http.StatusOK || backendOf(body) != "web" {
		t.Errorf("default route: %d %q, want web", status, body)
	}
	if n := len(p.Pools()); n != 3 {
		t.Errorf("%d pools, want 3", n)
	}
}

// getHost does a GET with the Host header host.
func getHost(t *testing.T, c *http.Client, url, host string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// slowGets starts n GETs of path in the background and returns a channel
// that gets each one's status (or -1 on error) when it completes.
func slowGets(t *testing.T, url string, n int) <-chan int {
	t.Helper()
	done := make(chan int, n)
	for range n {
		go func() {
			c := &http.Client{Timeout: 10 * time.Second}
			resp, err := c.Get(url)
			if err != nil {
				done <- -1
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			done <- resp.StatusCode
		}()
	}
	return done
}

// TestDrainFinishesInFlight drains a backend holding slow requests: they
// finish, no new request reaches it, it reports drained, and enabling it
// brings it back.
func TestDrainFinishesInFlight(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, reloadConfig(a, b))
	ba := member(t, p, DefaultPool, a.URL())
	done := slowGets(t, url+"/delay/400ms", 4) // round-robin: two on each
	// At the backend too, so that hitsA below counts them.
	waitFor(t, "two slow requests on a", 5*time.Second, func() bool { return ba.InFlight() == 2 && a.busy.Load() == 2 })

	if _, err := p.DrainBackend("", a.URL()); err != nil {
		t.Fatal(err)
	}
	if !ba.Draining() || ba.Drained() {
		t.Fatalf("draining %v, drained %v: want draining with requests in flight", ba.Draining(), ba.Drained())
	}
	client := newClient(t)
	hitsA := a.hits.Load()
	if got := hitAll(t, client, url+"/", 10); got["b"] != 10 {
		t.Errorf("while a drains: %v, want all on b", got)
	}
	for range 4 {
		if status := <-done; status != http.StatusOK {
			t.Errorf("a slow request in flight ended with %d", status)
		}
	}
	waitFor(t, "a drained", 5*time.Second, ba.Drained)
	if got := hitAll(t, client, url+"/", 10); got["b"] != 10 {
		t.Errorf("a drained: %v, want all on b", got)
	}
	if n := a.hits.Load(); n != hitsA {
		t.Errorf("a got %d requests after the drain began", n-hitsA)
	}

	if _, err := p.EnableBackend("", a.URL()); err != nil {
		t.Fatal(err)
	}
	if got := hitAll(t, client, url+"/", 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("enabled again: %v, want 5 each", got)
	}
}

// TestRemovedBackendFinishesInFlight: a reload that removes a backend lets
// its requests in flight finish before closing its connections.
func TestRemovedBackendFinishesInFlight(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, reloadConfig(a, b))
	ba := member(t, p, DefaultPool, a.URL())
	done := slowGets(t, url+"/delay/300ms", 2)
	waitFor(t, "a slow request on a", 5*time.Second, func() bool { return ba.InFlight() == 1 })
	if err := p.Reload(reloadConfig(b)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if status := <-done; status != http.StatusOK {
			t.Errorf("a request in flight through the reload ended with %d", status)
		}
	}
	waitFor(t, "a's connections closed", 5*time.Second, func() bool { return a.openConns() == 0 })
}

// fakeDiscoverer sends the lists a test gives it.
type fakeDiscoverer struct {
	name    string
	lists   chan []string
	applied chan struct{}
	started atomic.Int64
}

func newFakeDiscoverer(name string) *fakeDiscoverer {
	return &fakeDiscoverer{name: name, lists: make(chan []string), applied: make(chan struct{})}
}

func (d *fakeDiscoverer) String() string { return d.name }

func (d *fakeDiscoverer) Discover(ctx context.Context, update func([]string)) {
	d.started.Add(1)
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-d.lists:
			update(l)
			d.applied <- struct{}{}
		}
	}
}

// send gives the discoverer a list and waits until the proxy has applied it.
func (d *fakeDiscoverer) send(t *testing.T, entries ...string) {
	t.Helper()
	for _, c := range []func() bool{
		func() bool { d.lists <- entries; return true },
		func() bool { <-d.applied; return true },
	} {
		done := make(chan bool, 1)
		go func() { done <- c() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the discoverer is not running")
		}
	}
}

// TestDiscoveryAndControl: discovered backends join and leave beside the
// static ones; the admin API's changes apply until a reload; a reload that
// keeps a discovery source keeps it running and what it found.
func TestDiscoveryAndControl(t *testing.T) {
	s, d1, d2, extra := startBackend(t, "static"), startBackend(t, "d1"), startBackend(t, "d2"), startBackend(t, "extra")
	disc := newFakeDiscoverer("fake")
	cfg := reloadConfig()
	cfg.Pools = []PoolConfig{{Name: "svc", Backends: []string{s.URL()}, Discovery: []Discoverer{disc}}}
	p, url := startProxy(t, cfg)
	client := newClient(t)

	disc.send(t, d1.URL(), d2.URL()+" weight=2", s.URL()+" weight=9", "htp://bad")
	if got := hitAll(t, client, url+"/", 8); got["static"] != 2 || got["d1"] != 2 || got["d2"] != 4 {
		t.Errorf("static plus discovered: %v, want static 2, d1 2, d2 4 (the static entry wins over the discovered one)", got)
	}
	disc.send(t, d2.URL())
	if got := hitAll(t, client, url+"/", 4); got["d1"] != 0 {
		t.Errorf("d1 left discovery but got requests: %v", got)
	}

	// The admin API.
	if _, err := p.AddBackend("svc", extra.URL()+" weight=2"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddBackend("svc", extra.URL()); !errors.Is(err, ErrConflict) {
		t.Errorf("adding it twice: %v, want ErrConflict", err)
	}
	if _, err := p.AddBackend("nope", extra.URL()); !errors.Is(err, ErrNotFound) {
		t.Errorf("adding to an unknown pool: %v, want ErrNotFound", err)
	}
	if err := p.RemoveBackend("svc", d2.URL()); !errors.Is(err, ErrConflict) {
		t.Errorf("removing a discovered backend: %v, want ErrConflict", err)
	}
	if err := p.SetWeight("svc", d2.URL(), 4); err != nil {
		t.Fatal(err)
	}
	disc.send(t, d2.URL()+" max_conns=50") // discovery again: the admin's weight stays
	bd2 := member(t, p, "svc", d2.URL())
	if bd2.Weight() != 4 || bd2.MaxConns() != 50 {
		t.Errorf("d2: weight %d, max_conns %d; want the admin's weight 4 and discovery's max_conns 50", bd2.Weight(), bd2.MaxConns())
	}
	if err := p.RemoveBackend("svc", s.URL()); err != nil {
		t.Fatal(err)
	}
	if got := hitAll(t, client, url+"/", 6); got["d2"] != 4 || got["extra"] != 2 || got["static"] != 0 {
		t.Errorf("after the admin's changes: %v, want d2 4, extra 2", got)
	}
	// Added back with options of its own, the configuration's backend
	// comes back as the admin API says, not as the configuration did.
	if m, err := p.AddBackend("svc", s.URL()+" weight=6"); err != nil || m.Weight() != 6 {
		t.Fatalf("adding the removed static backend back with weight=6: %v, %v", m, err)
	}
	if got := hitAll(t, client, url+"/", 12); got["static"] != 6 || got["d2"] != 4 || got["extra"] != 2 {
		t.Errorf("with static back at weight 6: %v, want static 6, d2 4, extra 2", got)
	}
	if err := p.RemoveBackend("svc", s.URL()); err != nil {
		t.Fatal(err)
	}

	// A reload keeps the discovery source (same String) running, and drops
	// the admin's changes.
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if n := disc.started.Load(); n != 1 {
		t.Errorf("the discoverer started %d times, want once", n)
	}
	got := hitAll(t, client, url+"/", 6)
	if got["static"] != 3 || got["d2"] != 3 || got["extra"] != 0 {
		t.Errorf("after the reload: %v, want static and d2 alike (weights from the configuration), extra gone", got)
	}
}

// TestEnableConfiguredDown: EnableBackend cannot put a backend configured
// "down" into rotation, so it says so (ErrConflict, naming the backend)
// instead of answering success with the backend still out; the admin API's
// enable would otherwise answer 200 for nothing.
func TestEnableConfiguredDown(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	cfg := reloadConfig(b)
	cfg.Backends = append(cfg.Backends, a.URL()+" down")
	p, url := startProxy(t, cfg)
	_, err := p.EnableBackend("", a.URL())
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), a.URL()) {
		t.Fatalf("enabling a backend configured down: %v, want an ErrConflict naming %s", err, a.URL())
	}
	if got := hitAll(t, newClient(t), url+"/", 4); got["b"] != 4 {
		t.Errorf("after the refused enable: %v, want all on b", got)
	}
	// A drained one that is not configured down is enabled as before.
	if _, err := p.DrainBackend("", b.URL()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.EnableBackend("", b.URL()); err != nil {
		t.Fatalf("enabling drained b: %v", err)
	}
	if got := hitAll(t, newClient(t), url+"/", 4); got["b"] != 4 {
		t.Errorf("b enabled again: %v, want all on b", got)
	}
}
