package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// getFrom does a GET with extra headers and returns the status, the name of
// the backend that answered ("" for the proxy's own answers) and the
// response's Set-Cookie headers.
func getFrom(t *testing.T, c *http.Client, url string, header ...string) (int, string, []string) {
	t.Helper()
	status, body, h := getWith(t, c, url, header...)
	return status, backendOf(body), h.Values("Set-Cookie")
}

// hammer runs workers goroutines that each do n GETs of url, and returns how
// many each backend served; any status but 200 fails the test.
func hammer(t *testing.T, c *http.Client, url string, workers, n int) map[string]int {
	t.Helper()
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				status, name, _ := getFrom(t, c, url)
				if status != http.StatusOK {
					t.Errorf("status %d", status)
					return
				}
				mu.Lock()
				served[name]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return served
}

func TestWeightedRoundRobinEndToEnd(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	_, url := startProxy(t, Config{
		Backends: []string{a.URL() + " weight=3", b.URL() + " weight=1"},
		Health:   HealthConfig{Interval: -1},
	})
	client := newClient(t)
	var order []string
	for range 8 {
		status, name, _ := getFrom(t, client, url+"/")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		order = append(order, name)
	}
	if got := strings.Join(order, ""); got != "aabaaaba" {
		t.Errorf("order %s, want aabaaaba (smoothly interleaved)", got)
	}

	served := hammer(t, client, url+"/", 8, 500)
	if n := served["a"]; n < 3000-80 || n > 3000+80 {
		t.Errorf("a (weight 3) served %d of 4000, want 3000 ± 2%%", n)
	}
	if n := served["b"]; n < 1000-80 || n > 1000+80 {
		t.Errorf("b (weight 1) served %d of 4000, want 1000 ± 2%%", n)
	}
}

// TestLeastConnAvoidsBusyBackends: with two backends each holding a slow
// request, every new request goes to the third.
func TestLeastConnAvoidsBusyBackends(t *testing.T) {
	bes := []*testBackend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	p, url := startProxy(t, Config{
		Backends:   []string{bes[0].URL(), bes[1].URL(), bes[2].URL()},
		Policy:     pool.NewLeastConn(),
		TryTimeout: -1, // the slow requests are slow on purpose
		Health:     HealthConfig{Interval: -1},
	})
	client := newClient(t)
	busy := func() (n int) {
		for _, b := range p.Pool().Backends() {
			n += int(b.InFlight())
		}
		return n
	}
	slow := make(chan string, 2)
	for i := range 2 {
		go func() {
			_, name, _ := getFrom(t, client, url+"/delay/1500ms")
			slow <- name
		}()
		waitFor(t, fmt.Sprintf("slow request %d at a backend", i+1), 5*time.Second, func() bool { return busy() == i+1 })
	}
	var idle string
	for i, b := range p.Pool().Backends() {
		if b.InFlight() == 0 {
			idle = bes[i].name
		}
	}
	for i := range 30 {
		status, name, _ := getFrom(t, client, url+"/")
		if status != http.StatusOK || name != idle {
			t.Fatalf("request %d: %d from %q, want 200 from %s, the backend without a slow request", i, status, name, idle)
		}
	}
	if n := busy(); n != 2 {
		t.Fatalf("%d slow requests in flight after the fast ones, want 2: the test proved nothing", n)
	}
	first, second := <-slow, <-slow
	if first == second || first == idle || second == idle {
		t.Errorf("slow requests went to %s and %s, want the two backends other than %s", first, second, idle)
	}
}

// TestP2CSpreadsEvenlyEndToEnd: under equal load, four backends each serve
// a quarter of the requests within ±10%.
func TestP2CSpreadsEvenlyEndToEnd(t *testing.T) {
	var urls []string
	for _, n := range []string{"a", "b", "c", "d"} {
		urls = append(urls, startBackend(t, n).URL())
	}
	_, url := startProxy(t, Config{Backends: urls, Policy: pool.NewP2C(nil), Health: HealthConfig{Interval: -1}})
	// At this concurrency most picks find both candidates idle and take the
	// first, so the spread is close to random: 8,000 requests put ±10% at
	// five standard deviations.
	served := hammer(t, newClient(t), url+"/", 8, 1000)
	for _, n := range []string{"a", "b", "c", "d"} {
		if got := served[n]; got < 1800 || got > 2200 {
			t.Errorf("%s served %d of 8000, want 2000 ± 10%%: %v", n, got, served)
		}
	}
}

// TestHashEndToEnd: with consistent hashing, every request with the same
// key reaches the same backend while it is healthy; when a backend dies,
// only its keys move.
func TestHashEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		key    string
		header func(i int) []string // request i's key, as header name and value
		path   func(i int) string
	}{
		{"uri", nil, func(i int) string { return fmt.Sprintf("/item/%d?v=%d", i, i*31) }},
		{"header:X-User", func(i int) []string { return []string{"X-User", fmt.Sprint("user-", i)} }, nil},
		{"cookie:sid", func(i int) []string {
			return []string{"Cookie", fmt.Sprintf("theme=dark; sid=%x; lang=en", i*7919)}
		}, nil},
	} {
		t.Run(tc.key, func(t *testing.T) {
			bes := []*testBackend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c"), startBackend(t, "d")}
			key, err := pool.ParseKey(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			var urls []string
			for _, b := range bes {
				urls = append(urls, b.URL())
			}
			_, url := startProxy(t, Config{Backends: urls, Policy: pool.NewMaglev(key), Health: HealthConfig{Interval: -1}})
			client := newClient(t)
			do := func(i int) string {
				path, header := "/", []string(nil)
				if tc.path != nil {
					path = tc.path(i)
				}
				if tc.header != nil {
					header = tc.header(i)
				}
				status, name, _ := getFrom(t, client, url+path, header...)
				if status != http.StatusOK {
					t.Fatalf("key %d: status %d", i, status)
				}
				return name
			}
			const keys = 60
			owner := make([]string, keys)
			used := map[string]bool{}
			for i := range keys {
				owner[i] = do(i)
				used[owner[i]] = true
			}
			if len(used) != len(bes) {
				t.Errorf("%d keys reached %d of %d backends", keys, len(used), len(bes))
			}
			for round := range 3 {
				for i := range keys {
					if got := do(i); got != owner[i] {
						t.Fatalf("round %d: key %d reached %s, before %s", round, i, got, owner[i])
					}
				}
			}

			// When a dies its keys move. Maglev refills the whole table, so a
			// few entries of the others change hands too (well under 1% of
			// keys, see TestMaglevDisruption); allow 5%.
			bes[0].kill()
			moved, others := 0, 0
			for i := range keys {
				got := do(i)
				switch {
				case owner[i] == "a" && got == "a":
					t.Fatalf("key %d reached the dead backend", i)
				case owner[i] == "a":
					moved++
				case got != owner[i]:
					others++
					t.Logf("key %d of %s moved to %s when a died", i, owner[i], got)
				}
			}
			if moved == 0 {
				t.Error("a owned no key: the test proved nothing")
			}
			if others > keys/20 {
				t.Errorf("%d keys of the live backends moved when a died, want at most %d", others, keys/20)
			}
		})
	}

	// Requests without the key are balanced round-robin.
	a, b := startBackend(t, "a"), startBackend(t, "b")
	_, url := startProxy(t, Config{
		Backends: []string{a.URL(), b.URL()},
		Policy:   pool.NewMaglev(pool.Key{Kind: pool.KeyHeader, Name: "X-User"}),
		Health:   HealthConfig{Interval: -1},
	})
	var order []string
	for range 4 {
		_, name, _ := getFrom(t, newClient(t), url+"/")
		order = append(order, name)
	}
	if got := strings.Join(order, ""); got != "abab" {
		t.Errorf("without the key: %s, want abab", got)
	}
}

// stickyValue returns the value the Set-Cookie headers give name, or "".
func stickyValue(setCookies []string, name string) string {
	for _, sc := range setCookies {
		if v, ok := strings.CutPrefix(sc, name+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v
		}
	}
	return ""
}

func TestStickyCookie(t *testing.T) {
	bes := []*testBackend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	var urls []string
	for _, b := range bes {
		urls = append(urls, b.URL())
	}
	_, url := startProxy(t, Config{Backends: urls, StickyCookie: "lb", Health: HealthConfig{Interval: -1}})
	client := newClient(t)

	status, first, set := getFrom(t, client, url+"/")
	value := stickyValue(set, "lb")
	if status != http.StatusOK || value == "" {
		t.Fatalf("first response: %d, Set-Cookie %q", status, set)
	}
	if len(set) != 1 || !strings.HasSuffix(set[0], "; Path=/; HttpOnly; SameSite=Lax") {
		t.Errorf("Set-Cookie %q, want one lb=...; Path=/; HttpOnly; SameSite=Lax", set)
	}
	for _, b := range bes {
		addr := strings.TrimPrefix(b.URL(), "http://")
		_, port, _ := strings.Cut(addr, ":")
		if strings.Contains(value, port) || strings.Contains(value, "127.0.0.1") {
			t.Errorf("cookie value %q shows a backend's address %s", value, addr)
		}
	}

	// Round-robin alone would rotate; the cookie holds the client.
	for i := range 100 {
		status, name, set := getFrom(t, client, url+"/", "Cookie", "a=1; lb="+value)
		if status != http.StatusOK || name != first {
			t.Fatalf("request %d with the cookie: %d from %s, want %s", i, status, name, first)
		}
		if len(set) != 0 {
			t.Fatalf("request %d: cookie set again (%q) though it was honoured", i, set)
		}
	}
	// Other clients are still balanced.
	others := map[string]bool{}
	for range 6 {
		_, name, _ := getFrom(t, client, url+"/")
		others[name] = true
	}
	if len(others) != 3 {
		t.Errorf("clients without the cookie reached %v, want all three", others)
	}
	// A cookie naming no backend is ignored and replaced.
	for _, bad := range []string{"0000000000000000", "zzzz", strings.ToUpper(value) + "0"} {
		status, _, set := getFrom(t, client, url+"/", "Cookie", "lb="+bad)
		if status != http.StatusOK || stickyValue(set, "lb") == "" {
			t.Errorf("cookie %q: %d, Set-Cookie %q; want 200 and a fresh cookie", bad, status, set)
		}
	}

	// Its backend dies: the client moves, is told its new backend, and
	// stays there.
	for _, b := range bes {
		if b.name == first {
			b.kill()
		}
	}
	status, moved, set := getFrom(t, client, url+"/", "Cookie", "lb="+value)
	newValue := stickyValue(set, "lb")
	if status != http.StatusOK || moved == first || newValue == "" || newValue == value {
		t.Fatalf("after %s died: %d from %s, Set-Cookie %q; want 200 from another backend and a new cookie", first, status, moved, set)
	}
	for i := range 20 {
		if _, name, _ := getFrom(t, client, url+"/", "Cookie", "lb="+newValue); name != moved {
			t.Fatalf("request %d with the new cookie went to %s, want %s", i, name, moved)
		}
	}

	// Another balancer with the same backends, listed in another order,
	// reads the cookie the same way.
	_, url2 := startProxy(t, Config{Backends: []string{urls[2], urls[1], urls[0]}, StickyCookie: "lb", Health: HealthConfig{Interval: -1}})
	for range 5 {
		if _, name, _ := getFrom(t, client, url2+"/", "Cookie", "lb="+newValue); name != moved {
			t.Fatalf("the second balancer sent the cookie to %s, want %s", name, moved)
		}
	}
}

// TestStickyCookieExpectContinue: a request that expects 100-continue is
// sticky as any other. Its backend, asked before the body is sent, is the
// one the cookie names, and its answer sets the cookie when the client has
// none, whether it is the final answer a backend gives instead of its 100
// (a refusal) or the answer after the body. (The header went to the
// policy's pick and no answer set the cookie.)
func TestStickyCookieExpectContinue(t *testing.T) {
	backend := func(name string, refuse bool) *rawBackend {
		return startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
			for {
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				rb.requests.Add(1)
				if req.Header.Get("Expect") == "100-continue" {
					if refuse {
						io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nX-Backend: "+name+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
						return
					}
					io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Backend: "+name+"\r\nContent-Length: 0\r\n\r\n")
			}
		})
	}
	// expect uploads five bytes expecting 100-continue, with cookie as the
	// Cookie header unless empty, and returns the final status, the
	// backend that gave it and its Set-Cookie headers.
	expect := func(t *testing.T, url, cookie string) (int, string, []string) {
		t.Helper()
		c := dialProxy(t, url, 5*time.Second)
		defer c.Close()
		head := "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
		if cookie != "" {
			head += "Cookie: " + cookie + "\r\n"
		}
		io.WriteString(c, head+"\r\n")
		br := bufio.NewReader(c)
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusContinue {
				return resp.StatusCode, resp.Header.Get("X-Backend"), resp.Header.Values("Set-Cookie")
			}
			io.WriteString(c, "hello")
		}
	}
	for _, tc := range []struct {
		name   string
		refuse bool
		status int
	}{
		{"refused before the body", true, http.StatusExpectationFailed},
		{"answered after the body", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := backend("a", tc.refuse), backend("b", tc.refuse)
			_, url := startProxy(t, Config{Backends: []string{a.URL(), b.URL()}, StickyCookie: "lb", Health: HealthConfig{Interval: -1}})
			status, first, set := expect(t, url, "")
			value := stickyValue(set, "lb")
			if status != tc.status || value == "" {
				t.Fatalf("without the cookie: %d from %s, Set-Cookie %q; want %d and the cookie", status, first, set, tc.status)
			}
			// Round-robin alone would alternate; the cookie holds the
			// client, and is not set again.
			for i := range 4 {
				status, name, set := expect(t, url, "lb="+value)
				if status != tc.status || name != first || len(set) != 0 {
					t.Fatalf("request %d with the cookie: %d from %s, Set-Cookie %q; want %d from %s and no cookie", i, status, name, set, tc.status, first)
				}
			}
			// The cookie names that backend for requests of any kind.
			for range 2 {
				if _, _, h := getWith(t, newClient(t), url+"/", "Cookie", "lb="+value); h.Get("X-Backend") != first {
					t.Fatalf("a GET with the cookie went to %q, want %s", h.Get("X-Backend"), first)
				}
			}
		})
	}
}

// TestStickyCookieWithHash: affinity comes first, whatever the policy.
func TestStickyCookieWithHash(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	_, url := startProxy(t, Config{
		Backends:     []string{a.URL(), b.URL()},
		Policy:       pool.NewMaglev(pool.Key{Kind: pool.KeyURI}),
		StickyCookie: "srv",
		Health:       HealthConfig{Interval: -1},
	})
	client := newClient(t)
	_, owner, set := getFrom(t, client, url+"/x")
	value := stickyValue(set, "srv")
	// Find a path the hash sends elsewhere, and pin it to owner by cookie.
	for i := range 50 {
		path := fmt.Sprintf("/p%d", i)
		_, hashed, _ := getFrom(t, client, url+path)
		if hashed == owner {
			continue
		}
		if _, name, _ := getFrom(t, client, url+path, "Cookie", "srv="+value); name != owner {
			t.Fatalf("%s with the cookie of %s went to %s", path, owner, name)
		}
		return
	}
	t.Fatal("every path hashed to one backend")
}

// TestBackupOnlyWhenPrimariesDown: a backup serves nothing while a primary
// is healthy, everything while none is, and nothing again once one is back.
func TestBackupOnlyWhenPrimariesDown(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	p, url := startProxy(t, Config{
		Backends: []string{a.URL(), b.URL(), c.URL() + " backup"},
		Health:   HealthConfig{Interval: 30 * time.Millisecond, Timeout: 25 * time.Millisecond, Rise: 1, Fall: 1},
	})
	client := newClient(t)
	pa, pb := p.Pool().Backends()[0], p.Pool().Backends()[1]
	served := hammer(t, client, url+"/", 4, 25)
	if served["c"] != 0 || served["a"] == 0 || served["b"] == 0 {
		t.Errorf("all healthy: %v, want a and b only", served)
	}

	a.handler.SetHealthy(false)
	waitFor(t, "a down", 5*time.Second, func() bool { return !pa.Up() })
	served = hammer(t, client, url+"/", 4, 25)
	if served["c"] != 0 || served["b"] != 100 {
		t.Errorf("a down: %v, want b only", served)
	}

	b.handler.SetHealthy(false)
	waitFor(t, "b down", 5*time.Second, func() bool { return !pb.Up() })
	served = hammer(t, client, url+"/", 4, 25)
	if served["c"] != 100 {
		t.Errorf("both primaries down: %v, want c only", served)
	}

	a.handler.SetHealthy(true)
	waitFor(t, "a up", 5*time.Second, func() bool { return pa.Up() })
	served = hammer(t, client, url+"/", 4, 25)
	if served["a"] != 100 {
		t.Errorf("a back: %v, want a only", served)
	}
}

func TestDownOptionNeverUsed(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{
		Backends: []string{a.URL(), b.URL() + " down"},
		Health:   HealthConfig{Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond},
	})
	served := hammer(t, newClient(t), url+"/", 4, 25)
	if served["a"] != 100 || b.hits.Load() != 0 {
		t.Errorf("served %v, b saw %d: want everything on a", served, b.hits.Load())
	}
	if len(p.Pool().Up()) != 1 {
		t.Errorf("%d usable backends, want 1", len(p.Pool().Up()))
	}
}

// TestMaxConnsEndToEnd: a backend never holds more requests than its
// max_conns, and when every backend is at its limit the client gets 503 at
// once instead of waiting.
func TestMaxConnsEndToEnd(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{
		Backends:   []string{a.URL() + " max_conns=2", b.URL() + " max_conns=1"},
		TryTimeout: -1, // the slow requests are slow on purpose
		Health:     HealthConfig{Interval: -1},
	})
	client := newClient(t)

	slow := make(chan int, 3)
	for range 3 {
		go func() {
			status, _, _ := getFrom(t, client, url+"/delay/1s")
			slow <- status
		}()
	}
	waitFor(t, "three slow requests at the backends", 5*time.Second, func() bool {
		return a.busy.Load() == 2 && b.busy.Load() == 1
	})
	for i := range 5 {
		status, body := get(t, client, url+"/")
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "connection limit") {
			t.Errorf("request %d with every backend full: %d %q, want 503", i, status, body)
		}
	}
	if a.busy.Load() != 2 || b.busy.Load() != 1 {
		t.Fatal("the slow requests ended before the full-pool requests: the test proved nothing")
	}
	for range 3 {
		if status := <-slow; status != http.StatusOK {
			t.Errorf("slow request: %d", status)
		}
	}

	// Many clients at once: statuses are 200 or 503, and the limits hold.
	var ok, full atomic.Int64
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				status, _, _ := getFrom(t, client, url+"/delay/2ms")
				switch status {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					full.Add(1)
				default:
					t.Errorf("status %d", status)
				}
			}
		}()
	}
	wg.Wait()
	if pa, pb := a.peak.Load(), b.peak.Load(); pa > 2 || pb > 1 {
		t.Errorf("peak concurrency a %d (max_conns=2), b %d (max_conns=1)", pa, pb)
	}
	if ok.Load() == 0 || full.Load() == 0 {
		t.Errorf("%d served, %d refused: want both under overload", ok.Load(), full.Load())
	}
	for _, be := range p.Pool().Backends() {
		if be.InFlight() != 0 {
			t.Errorf("%s: %d in flight after the load", be, be.InFlight())
		}
	}
}
