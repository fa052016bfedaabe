package discovery

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"codeberg.org/miekg/dns"
	"codeberg.org/miekg/dns/dnstest"
	"codeberg.org/miekg/dns/dnsutil"
	"codeberg.org/miekg/dns/rdata"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

// zone is an authoritative DNS server on loopback whose records a test
// changes as it goes.
type zone struct {
	addr    string
	queries atomic.Int64

	mu      sync.Mutex
	records map[string][]dns.RR // by name (lowercase, with the final dot)
	failing bool                // answer SERVFAIL
}

func startZone(t *testing.T) *zone {
	t.Helper()
	z := &zone{records: map[string][]dns.RR{}}
	cancel, addr, err := dnstest.UDPServer("127.0.0.1:0", func(s *dns.Server) { s.Handler = z })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cancel)
	z.addr = addr
	return z
}

// set replaces the records of name.
func (z *zone) set(name string, rrs ...dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records[dnsutil.Fqdn(name)] = rrs
}

// remove deletes name: queries for it get NXDOMAIN.
func (z *zone) remove(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.records, dnsutil.Fqdn(name))
}

func (z *zone) fail(on bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.failing = on
}

func (z *zone) ServeDNS(_ context.Context, w dns.ResponseWriter, req *dns.Msg) {
	z.queries.Add(1)
	m := new(dns.Msg)
	dnsutil.SetReply(m, req)
	q := req.Question[0]
	name, qt := strings.ToLower(q.Header().Name), dns.RRToType(q)
	z.mu.Lock()
	rrs, ok := z.records[name]
	failing := z.failing
	z.mu.Unlock()
	switch {
	case failing:
		m.Rcode = dns.RcodeServerFailure
	case !ok:
		m.Rcode = dns.RcodeNameError
	}
	for _, rr := range rrs {
		if dns.RRToType(rr) == qt {
			m.Answer = append(m.Answer, rr)
		}
	}
	io.Copy(w, m) //nolint:errcheck // a lost answer is a timeout for the client
}

func aRecord(name, ip string, ttl uint32) dns.RR {
	h := dns.Header{Name: dnsutil.Fqdn(name), Class: dns.ClassINET, TTL: ttl}
	a := netip.MustParseAddr(ip)
	if a.Is6() {
		return &dns.AAAA{Hdr: h, AAAA: rdata.AAAA{Addr: a}}
	}
	return &dns.A{Hdr: h, A: rdata.A{Addr: a}}
}

func srvRecord(name string, priority, weight, port uint16, target string, ttl uint32) dns.RR {
	return &dns.SRV{
		Hdr: dns.Header{Name: dnsutil.Fqdn(name), Class: dns.ClassINET, TTL: ttl},
		SRV: rdata.SRV{Priority: priority, Weight: weight, Port: port, Target: dnsutil.Fqdn(target)},
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// updates runs d and collects what it sends.
type updates struct {
	ch chan []string
}

func run(t *testing.T, d proxy.Discoverer) *updates {
	t.Helper()
	u := &updates{ch: make(chan []string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Discover(ctx, func(l []string) { u.ch <- l })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return u
}

// next returns the next list sent within timeout.
func (u *updates) next(t *testing.T, timeout time.Duration) []string {
	t.Helper()
	select {
	case l := <-u.ch:
		return l
	case <-time.After(timeout):
		t.Fatalf("no update within %v", timeout)
		return nil
	}
}

// none checks that nothing is sent for d.
func (u *updates) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case l := <-u.ch:
		t.Fatalf("unexpected update %v", l)
	case <-time.After(d):
	}
}

func TestDNSCheck(t *testing.T) {
	for _, tc := range []struct {
		d    DNS
		want string // "" for valid
	}{
		{DNS{Name: "api.internal", Port: 8080}, ""},
		{DNS{Name: "_api._tcp.example.com"}, ""},
		{DNS{Name: "API.Internal.", Port: 1, Type: "aaaa", Scheme: "https", Refresh: time.Second, Resolver: "127.0.0.1:53", Options: "max_conns=5"}, ""},
		{DNS{}, "empty name"},
		{DNS{Name: "api.internal"}, "A records need a port"},
		{DNS{Name: "_api._tcp.example.com", Port: 80}, "SRV records carry their ports"},
		{DNS{Name: "api", Port: 1, Type: "MX"}, `invalid type "MX"`},
		{DNS{Name: "api", Port: 1, Scheme: "ftp"}, `invalid scheme "ftp"`},
		{DNS{Name: "api", Port: 1, Refresh: time.Millisecond}, "refresh 1ms: at least 1s"},
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1"}, `invalid resolver "127.0.0.1"`},
		{DNS{Name: "api", Port: 1, Options: "wieght=2"}, `unknown option "wieght=2"`},
		{DNS{Name: "_a._tcp.x", Options: "weight=2"}, "SRV records give weights"},
		// The options are checked with the scheme the entries will have.
		{DNS{Name: "api", Port: 1, Scheme: "https", Options: "proto=h2 health=grpc"}, ""},
		{DNS{Name: "api", Port: 1, Options: "proto=h2c"}, ""},
		{DNS{Name: "api", Port: 1, Options: "proto=h2"}, "needs an https:// URL"},
		{DNS{Name: "api", Port: 1, Scheme: "https", Options: "proto=h2c"}, "needs an http:// URL"},
		{DNS{Name: "http://api", Port: 1}, "invalid name"},
		// The rules of every host: a name of numbers only is an IPv4
		// address in dotted decimal (and then no name to look up), an
		// IP address takes no trailing dot, a name no empty label.
		{DNS{Name: "localhost", Port: 1}, ""},
		{DNS{Name: "api.internal.", Port: 1, Resolver: "localhost:53"}, ""},
		{DNS{Name: "_api._tcp.example.com.", Resolver: "[::1]:53"}, ""},
		{DNS{Name: "127.1", Port: 1}, `dns: invalid name "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{DNS{Name: "0x7f.1", Port: 1}, `dns: invalid name "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{DNS{Name: "2130706433", Port: 1}, `dns: invalid name "2130706433": an IPv4 address takes the dotted-decimal form`},
		{DNS{Name: "0177.0.0.1", Port: 1}, `dns: invalid name "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{DNS{Name: "127.0.0.1.", Port: 1}, `dns: invalid name "127.0.0.1.": an IP address takes no trailing dot`},
		{DNS{Name: "10.0.0.1", Port: 1}, `dns: invalid name "10.0.0.1": an IP address, which has no records to look up (list it in backends instead)`},
		{DNS{Name: "api..internal", Port: 1}, `dns: invalid name "api..internal": an empty label (a dot at the start, or two in a row), which no name has`},
		{DNS{Name: "api.internal..", Port: 1}, `dns: invalid name "api.internal..": an empty label`},
		{DNS{Name: "._api._tcp.example.com"}, `dns: invalid name "._api._tcp.example.com": an empty label`},
		{DNS{Name: ".", Port: 1}, "empty name"},
		{DNS{Name: "api", Port: 1, Resolver: "127.1:53"}, `dns: invalid resolver "127.1:53": host "127.1": an IPv4 address takes the dotted-decimal form`},
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1.:53"}, `dns: invalid resolver "127.0.0.1.:53": host "127.0.0.1.": an IP address takes no trailing dot`},
		{DNS{Name: "api", Port: 1, Resolver: "ns..internal:53"}, `dns: invalid resolver "ns..internal:53": host "ns..internal": an empty label`},
		{DNS{Name: "api", Port: 1, Resolver: "0x7f.1:53"}, `dns: invalid resolver "0x7f.1:53": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{DNS{Name: "api", Port: 1, Resolver: "[::1::2]:53"}, `dns: invalid resolver "[::1::2]:53": host "::1::2": not an IP address`},
		// A port the resolver can be asked on.
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1:65535"}, ""},
		{DNS{Name: "api", Port: 1, Resolver: "[::1]:053"}, ""},
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1:0"}, `dns: invalid resolver "127.0.0.1:0": port "0": want 1-65535`},
		{DNS{Name: "api", Port: 1, Resolver: "[::1]:65536"}, `dns: invalid resolver "[::1]:65536": port "65536": want 1-65535`},
		{DNS{Name: "api", Port: 1, Resolver: "localhost:-53"}, `dns: invalid resolver "localhost:-53": port "-53": want 1-65535`},
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1:"}, `dns: invalid resolver "127.0.0.1:": port "": want 1-65535`},
		{DNS{Name: "api", Port: 1, Resolver: "127.0.0.1:domain"}, `dns: invalid resolver "127.0.0.1:domain": port "domain": want 1-65535`},
	} {
		err := tc.d.Check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.d, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.d, err, tc.want)
		}
	}
	d := DNS{Name: "API.internal.", Port: 8080}
	d.Check()
	if d.Name != "api.internal" || d.Type != TypeA || d.Scheme != "http" || d.Refresh != DefaultRefresh {
		t.Errorf("defaults: %+v", d)
	}
}

// TestDNSRecordsHonourTTL resolves A and AAAA records: a change shows after
// the records' TTL (1s) even though the refresh is an hour.
func TestDNSRecordsHonourTTL(t *testing.T) {
	z := startZone(t)
	z.set("api.test", aRecord("api.test", "10.0.0.2", 1), aRecord("api.test", "10.0.0.1", 1), aRecord("api.test", "fd00::1", 1))
	d := &DNS{Name: "api.test", Port: 8080, Resolver: z.addr, Refresh: time.Hour, Options: "max_conns=10", Logger: quiet()}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	u := run(t, d)
	got := u.next(t, 5*time.Second)
	want := []string{"http://10.0.0.1:8080 max_conns=10", "http://10.0.0.2:8080 max_conns=10", "http://[fd00::1]:8080 max_conns=10"}
	if !slices.Equal(got, want) {
		t.Fatalf("found %q, want %q", got, want)
	}
	changed := time.Now()
	z.set("api.test", aRecord("api.test", "10.0.0.2", 1))
	got = u.next(t, 5*time.Second)
	t.Logf("a DNS change (TTL 1s) reached the pool after %v", time.Since(changed).Round(time.Millisecond))
	if !slices.Equal(got, []string{"http://10.0.0.2:8080 max_conns=10"}) {
		t.Errorf("after the change: %q", got)
	}
	// The same answer again sends nothing.
	u.none(t, 1500*time.Millisecond)
	if q := z.queries.Load(); q < 4 {
		t.Errorf("%d queries: the name was not resolved again at its TTL", q)
	}
}

// TestDNSSRV turns SRV records into backends: their ports, weights scaled
// into 1..1000, the best priority as primaries and the rest as backups.
func TestDNSSRV(t *testing.T) {
	z := startZone(t)
	name := "_api._tcp.example.test"
	z.set(name,
		srvRecord(name, 10, 6000, 8081, "a.example.test", 60),
		srvRecord(name, 10, 3000, 8082, "b.example.test", 30),
		srvRecord(name, 20, 0, 8083, "c.example.test", 60),
		srvRecord(name, 10, 100, 80, ".", 60), // "no service here"
	)
	d := &DNS{Name: name, Resolver: z.addr, Scheme: "https", Options: "max_conns=50", Logger: quiet()}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	if d.Type != TypeSRV {
		t.Fatalf("type %s: a name starting with _ is SRV", d.Type)
	}
	got := run(t, d).next(t, 5*time.Second)
	want := []string{
		"https://a.example.test:8081 weight=1000 max_conns=50",
		"https://b.example.test:8082 weight=500 max_conns=50",
		"https://c.example.test:8083 weight=1 backup max_conns=50",
	}
	if !slices.Equal(got, want) {
		t.Errorf("found %q, want %q", got, want)
	}
	entries, ttl, err := d.resolve(context.Background())
	if err != nil || ttl != 30*time.Second || len(entries) != 3 {
		t.Errorf("resolve: %d entries, ttl %v, %v; want 3, the smallest TTL 30s", len(entries), ttl, err)
	}
}

// TestDNSKeepsLastAnswer: a failing resolver changes nothing; an answer that
// the name has no records empties the list.
func TestDNSKeepsLastAnswer(t *testing.T) {
	z := startZone(t)
	z.set("api.test", aRecord("api.test", "10.0.0.1", 1))
	d := &DNS{Name: "api.test", Port: 80, Resolver: z.addr, Refresh: time.Second, Logger: quiet()}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	u := run(t, d)
	if got := u.next(t, 5*time.Second); len(got) != 1 {
		t.Fatalf("found %q", got)
	}
	z.fail(true)
	q := z.queries.Load()
	u.none(t, 2500*time.Millisecond)
	if z.queries.Load() == q {
		t.Fatal("not asked again while failing")
	}
	z.fail(false)
	z.remove("api.test") // NXDOMAIN
	if got := u.next(t, 5*time.Second); len(got) != 0 {
		t.Errorf("after NXDOMAIN: %q, want no backends", got)
	}
}

// TestDNSPool runs a pool on DNS discovery through the proxy: requests reach
// the addresses the records name, and follow a change.
func TestDNSPool(t *testing.T) {
	first := backendtest.Start(t, "a")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(first.URL(), "http://"))
	second := backendtest.StartAt(t, "127.0.0.2:"+port, "b")
	z := startZone(t)
	z.set("web.test", aRecord("web.test", "127.0.0.1", 1), aRecord("web.test", "127.0.0.2", 1))
	n, _ := strconv.Atoi(port)
	d := &DNS{Name: "web.test", Port: n, Resolver: z.addr, Refresh: time.Hour, Logger: quiet()}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	p, url := startProxy(t, proxy.Config{Pools: []proxy.PoolConfig{{Name: "web", Discovery: []proxy.Discoverer{d}}}})
	waitFor(t, "both backends discovered", 5*time.Second, func() bool { return len(p.Pool().Up()) == 2 })
	if got := spread(t, url, 10); got["a"] != 5 || got["b"] != 5 {
		t.Errorf("requests %v, want 5 on each", got)
	}
	changed := time.Now()
	z.set("web.test", aRecord("web.test", "127.0.0.2", 1))
	waitFor(t, "a removed", 5*time.Second, func() bool { return len(p.Pool().Backends()) == 1 })
	t.Logf("a DNS change (TTL 1s) reached the pool's traffic after %v", time.Since(changed).Round(time.Millisecond))
	if got := spread(t, url, 10); got["b"] != 10 || second.Hits() != 15 {
		t.Errorf("after the change: %v (b served %d in all), want all on b", got, second.Hits())
	}
}

// spread sends n GETs and counts the answers by backend name.
func spread(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	got := map[string]int{}
	for range n {
		resp, err := c.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		got[strings.TrimPrefix(string(b), "Backend server is running on port ")]++
	}
	return got
}

// startProxy runs a proxy with cfg on loopback until the test ends.
func startProxy(t *testing.T, cfg proxy.Config) (*proxy.Proxy, string) {
	t.Helper()
	cfg.Logger = quiet()
	cfg.Health = proxy.HealthConfig{Path: "/health", Interval: time.Hour}
	p, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck // ends at shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at test end
	})
	return p, "http://" + ln.Addr().String()
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
