package pool

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func newBackends(t testing.TB, n int) []*Backend {
	t.Helper()
	var bs []*Backend
	for i := range n {
		b, err := NewBackend(fmt.Sprintf("http://10.0.%d.%d:8080", i/250, i%250+1))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

func newPool(t testing.TB, n int) (*Pool, []*Backend) {
	t.Helper()
	bs := newBackends(t, n)
	p, err := New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, bs
}

func TestNewBackend(t *testing.T) {
	for _, tc := range []struct {
		in, url, addr, err string
		tls                bool
		opts               Options // Weight 0: the defaults
	}{
		{in: "http://localhost:8081", url: "http://localhost:8081", addr: "localhost:8081"},
		{in: "http://LocalHost:8081/", url: "http://localhost:8081", addr: "localhost:8081"},
		{in: "HTTP://10.0.0.1", url: "http://10.0.0.1:80", addr: "10.0.0.1:80"},
		{in: "http://[::1]:9000", url: "http://[::1]:9000", addr: "[::1]:9000"},
		{in: " http://b:1 ", url: "http://b:1", addr: "b:1"},
		{in: "https://example.com", url: "https://example.com:443", addr: "example.com:443", tls: true},
		{in: "HTTPS://Example.com:8443/", url: "https://example.com:8443", addr: "example.com:8443", tls: true},
		{in: "https://[::1]", url: "https://[::1]:443", addr: "[::1]:443", tls: true},
		// Other spellings of one endpoint have one URL: the port as a
		// number, an IP in its canonical form, IPv4-mapped IPv6 unmapped.
		{in: "http://127.0.0.1:024081", url: "http://127.0.0.1:24081", addr: "127.0.0.1:24081"},
		{in: "http://h:00080", url: "http://h:80", addr: "h:80"},
		{in: "http://[::ffff:127.0.0.1]:24081", url: "http://127.0.0.1:24081", addr: "127.0.0.1:24081"},
		{in: "http://[::FFFF:7f00:1]:24081", url: "http://127.0.0.1:24081", addr: "127.0.0.1:24081"},
		{in: "http://[0:0::0001]:9000", url: "http://[::1]:9000", addr: "[::1]:9000"},
		{in: "https://[2001:DB8::A]:8443", url: "https://[2001:db8::a]:8443", addr: "[2001:db8::a]:8443", tls: true},
		// A name's trailing dot is the same name: not in the URL, but
		// dialled, so that the resolver skips its search list as asked.
		{in: "http://localhost.:8081", url: "http://localhost:8081", addr: "localhost.:8081"},
		{in: "https://API.Example.com.:8443", url: "https://api.example.com:8443", addr: "api.example.com.:8443", tls: true},
		// Names with numbers in them, but not only numbers, are names.
		{in: "http://host-1.2a:1", url: "http://host-1.2a:1", addr: "host-1.2a:1"},
		{in: "http://0xg.1x:1", url: "http://0xg.1x:1", addr: "0xg.1x:1"},
		{in: "http://1.2.3.example:1", url: "http://1.2.3.example:1", addr: "1.2.3.example:1"},
		{in: "http://7.up:1", url: "http://7.up:1", addr: "7.up:1"},
		// Hosts of numbers only are IPv4 addresses in dotted decimal, or
		// refused: Go's resolver reads no other form as an address (C's
		// inet_aton does), and no DNS name is all numbers.
		{in: "http://127.1:8081", err: `host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1`},
		{in: "http://127.0.1:8081", err: `host "127.0.1": an IPv4 address takes the dotted-decimal form`},
		{in: "http://0x7f.1:8081", err: `host "0x7f.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1`},
		{in: "http://0X7F000001:8081", err: `host "0x7f000001": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1`},
		{in: "http://2130706433:8081", err: `host "2130706433": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1`},
		{in: "http://0177.0.0.1:8081", err: `(C's inet_aton reads this one as 127.0.0.1;`},
		{in: "http://127.0.0.010:8081", err: `host "127.0.0.010": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.8`},
		{in: "http://127.1.:8081", err: `host "127.1.": an IPv4 address takes the dotted-decimal form`},
		{in: "http://0x:1", err: `(C's inet_aton reads this one as 0.0.0.0;`},
		{in: "http://127.0.0.1.:8081", err: `host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{in: "http://999.1.1.1:1", err: `host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{in: "http://1.2.3.4.5:1", err: `host "1.2.3.4.5": not an IPv4 address`},
		{in: "http://1.2.65536:1", err: `host "1.2.65536": not an IPv4 address`},
		{in: "http://4294967296:1", err: `host "4294967296": not an IPv4 address`},
		{in: "http://08.1:1", err: `host "08.1": not an IPv4 address`},
		{in: "http://99999999999999999999999:1", err: `not an IPv4 address`},
		{in: "http://.:1", err: "missing host"},
		{in: "http://..:1", err: `host "..": an empty label (a dot at the start, or two in a row), which no name has`},
		{in: "http://a..b:1", err: `host "a..b": an empty label`},
		{in: "http://localhost..:1", err: `host "localhost..": an empty label`},
		{in: "http://.localhost:1", err: `host ".localhost": an empty label`},
		{in: "https://h:1 weight=2", url: "https://h:1", addr: "h:1", tls: true, opts: Options{Weight: 2}},
		{in: "htp://x", err: `invalid backend "htp://x": unsupported scheme "htp"`},
		{in: "localhost:8081", err: `missing scheme`},
		{in: "", err: "empty address"},
		{in: "http://", err: "missing host"},
		{in: "http://:8080", err: "missing host"},
		{in: "http://h:0", err: `invalid port "0"`},
		{in: "http://h:70000", err: `invalid port "70000"`},
		{in: "http://h:", err: "empty port"},
		{in: "http://h:x", err: `invalid port ":x"`},
		{in: "http://h:1/api", err: `path "/api" is not supported`},
		{in: "http://h:1/?a=b", err: "query is not supported"},
		{in: "http://u:p@h:1", err: "user info is not supported"},
		{in: "http://h:1#f", err: "fragment is not supported"},
		{in: "http://h:1 weight=3", url: "http://h:1", addr: "h:1", opts: Options{Weight: 3}},
		{in: "  http://h:1   weight=1000  max_conns=200 ", url: "http://h:1", addr: "h:1", opts: Options{Weight: 1000, MaxConns: 200}},
		{in: "http://h:1 max_conns=0", url: "http://h:1", addr: "h:1", opts: Options{Weight: 1}},
		{in: "http://h:1 backup", url: "http://h:1", addr: "h:1", opts: Options{Weight: 1, Backup: true}},
		{in: "http://h:1\tdown weight=2", url: "http://h:1", addr: "h:1", opts: Options{Weight: 2, Down: true}},
		{in: "http://h:1 wieght=3", err: `invalid backend "http://h:1 wieght=3": unknown option "wieght=3" (want weight=N, max_conns=N, backup, down, proto=h2|h2c or health=grpc)`},
		{in: "http://h:1 weight=0", err: `invalid weight "0": want 1-1000`},
		{in: "http://h:1 weight=1001", err: `invalid weight "1001": want 1-1000`},
		{in: "http://h:1 weight=x", err: `invalid weight "x"`},
		{in: "http://h:1 weight", err: `option "weight" wants a value, such as weight=2`},
		{in: "http://h:1 weight=", err: `option "weight=" wants a value`},
		{in: "http://h:1 max_conns=-1", err: `invalid max_conns "-1": want a count, 0 for no limit`},
		{in: "http://h:1 backup=yes", err: `option "backup=yes" takes no value`},
		{in: "http://h:1 weight=2 weight=3", err: "option weight given twice"},
		{in: "http://h:1 fail_timeout=10s", err: `unknown option "fail_timeout=10s"`},
		{in: "htp://h:1 weight=2", err: `unsupported scheme "htp"`},
		{in: "https://h:1 proto=h2", url: "https://h:1", addr: "h:1", tls: true, opts: Options{Weight: 1, Protocol: H2}},
		{in: "http://h:1 proto=h2c health=grpc", url: "http://h:1", addr: "h:1", opts: Options{Weight: 1, Protocol: H2C, Health: HealthGRPC}},
		{in: "https://h:1 proto=h2 health=grpc:pkg.Svc", url: "https://h:1", addr: "h:1", tls: true,
			opts: Options{Weight: 1, Protocol: H2, Health: HealthGRPC, HealthService: "pkg.Svc"}},
		{in: "http://h:1 proto=http/1.1 health=http", url: "http://h:1", addr: "h:1", opts: Options{Weight: 1}},
		{in: "http://h:1 proto=h3", err: `unknown proto "h3" (want h2, h2c or http/1.1)`},
		{in: "http://h:1 proto=h2", err: "proto=h2 is HTTP/2 over TLS and needs an https:// URL"},
		{in: "https://h:1 proto=h2c", err: "proto=h2c is HTTP/2 without TLS and needs an http:// URL"},
		{in: "http://h:1 health=tcp", err: `unknown health check "tcp" (want http, grpc or grpc:SERVICE)`},
		{in: "http://h:1 health=grpc", err: "health=grpc needs an HTTP/2 backend"},
		{in: "http://h:1 proto=h2c health=grpc:", err: `invalid gRPC health service ""`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			b, err := NewBackend(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.URL() != tc.url || b.Addr() != tc.addr {
				t.Errorf("url %q addr %q, want %q %q", b.URL(), b.Addr(), tc.url, tc.addr)
			}
			if !b.Up() {
				t.Error("a new backend should start up")
			}
			if b.TLS() != tc.tls {
				t.Errorf("TLS() = %v, want %v", b.TLS(), tc.tls)
			}
			want := tc.opts
			if want.Weight == 0 {
				want = Options{Weight: 1}
			}
			if b.Options() != want {
				t.Errorf("options %+v, want %+v", b.Options(), want)
			}
			if b.Weight() != want.Weight || b.MaxConns() != want.MaxConns ||
				b.Backup() != want.Backup || b.Disabled() != want.Down {
				t.Error("accessors disagree with Options")
			}
		})
	}
	if s := (Options{Weight: 3, MaxConns: 200, Backup: true, Down: true}).String(); s != "weight=3 max_conns=200 backup down" {
		t.Errorf("String() = %q", s)
	}
	if s := (Options{Weight: 1, Protocol: H2C, Health: HealthGRPC, HealthService: "a.B"}).String(); s != "proto=h2c health=grpc:a.B" {
		t.Errorf("String() = %q", s)
	}
	if s := (Options{Weight: 1}).String(); s != "" {
		t.Errorf("defaults String() = %q, want empty", s)
	}
}

func TestNewPoolRejects(t *testing.T) {
	if p, err := New(nil, nil); err != nil {
		t.Errorf("empty pool refused: %v", err)
	} else if b, res := p.Acquire(nil, Tried{}); b != nil || res != NoneUsable {
		t.Errorf("empty pool gave %v, %v; want nil, none usable", b, res)
	}
	for _, pair := range [][2]string{
		{"http://h:1", "http://H:1/"},
		{"http://127.0.0.1:24081", "http://127.0.0.1:024081"},
		{"http://127.0.0.1:1", "http://[::ffff:127.0.0.1]:1"},
		{"http://[::1]:1", "http://[0::1]:01"},
		{"http://localhost:1", "http://localhost.:1"},
		{"https://api.example:1", "https://API.example.:1"},
	} {
		a, errA := NewBackend(pair[0])
		b, errB := NewBackend(pair[1])
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if _, err := New([]*Backend{a, b}, nil); err == nil || !strings.Contains(err.Error(), "duplicate") {
			t.Errorf("%s and %s: duplicate accepted: %v", pair[0], pair[1], err)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	p, bs := newPool(t, 3)
	var got []string
	for range 7 {
		got = append(got, p.Next(nil, Tried{}).Addr())
	}
	want := []string{bs[0].Addr(), bs[1].Addr(), bs[2].Addr(), bs[0].Addr(), bs[1].Addr(), bs[2].Addr(), bs[0].Addr()}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("picks %v, want %v", got, want)
	}
}

func TestNextSkipsTried(t *testing.T) {
	p, bs := newPool(t, 3)
	var tried Tried
	seen := map[*Backend]bool{}
	for range 3 {
		b := p.Next(nil, tried)
		if b == nil {
			t.Fatal("ran out of backends early")
		}
		if seen[b] {
			t.Fatalf("%s picked twice", b)
		}
		seen[b] = true
		tried.Add(b)
	}
	if b := p.Next(nil, tried); b != nil {
		t.Errorf("picked %s with every backend tried", b)
	}
	if len(seen) != len(bs) {
		t.Errorf("saw %d backends, want %d", len(seen), len(bs))
	}
}

func TestMarkDownAndUp(t *testing.T) {
	p, bs := newPool(t, 3)
	if !p.MarkDown(bs[1], "refused") {
		t.Fatal("MarkDown of an up backend reported no change")
	}
	if p.MarkDown(bs[1], "refused again") {
		t.Error("second MarkDown reported a change: the transition would be logged twice")
	}
	if bs[1].LastError() != "refused again" {
		t.Errorf("last error %q", bs[1].LastError())
	}
	for range 10 {
		if b := p.Next(nil, Tried{}); b == bs[1] {
			t.Fatal("picked a down backend")
		}
	}
	if got := len(p.Up()); got != 2 {
		t.Errorf("%d up, want 2", got)
	}
	p.MarkDown(bs[0], "x")
	p.MarkDown(bs[2], "x")
	if b := p.Next(nil, Tried{}); b != nil {
		t.Errorf("picked %s with all down", b)
	}
	if !p.MarkUp(bs[1]) || p.MarkUp(bs[1]) {
		t.Error("MarkUp should report the change exactly once")
	}
	if b := p.Next(nil, Tried{}); b != bs[1] {
		t.Errorf("picked %v, want the only backend up", b)
	}
}

// flap takes the backends of p down and up in turn on a goroutine of its
// own, rebuilding snapshots as fast as it can, until the returned stop is
// called.
func flap(p *Pool, bs []*Backend) (stop func()) {
	done := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			b := bs[i%len(bs)]
			p.MarkDown(b, "test")
			p.MarkUp(b)
		}
	}()
	return func() {
		close(done)
		writer.Wait()
	}
}

// TestConcurrentPicksWithHealthChanges runs picks on many goroutines while
// backends go down and up, for the race detector.
func TestConcurrentPicksWithHealthChanges(t *testing.T) {
	p, bs := newPool(t, 4)
	stop := flap(p, bs)
	var readers sync.WaitGroup
	for range 8 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for range 5000 {
				var tried Tried
				for b := p.Next(nil, tried); b != nil; b = p.Next(nil, tried) {
					if tried.Has(b) {
						t.Errorf("%s picked twice for one request", b)
						return
					}
					tried.Add(b)
					b.Begin()
					b.Done(false)
				}
			}
		}()
	}
	readers.Wait()
	stop()
	var total uint64
	for _, b := range bs {
		if n := b.InFlight(); n != 0 {
			t.Errorf("%s: %d in flight after all attempts ended", b, n)
		}
		total += b.Requests()
	}
	if total == 0 {
		t.Error("no picks at all")
	}
}

func TestBackendInOnePoolOnly(t *testing.T) {
	bs := newBackends(t, 2)
	if _, err := New(bs, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(bs[:1], nil); err == nil || !strings.Contains(err.Error(), "already belongs to a pool") {
		t.Errorf("a backend shared by two pools: %v", err)
	}
}

func upURLs(p *Pool) string {
	var s []string
	for _, b := range p.Up() {
		s = append(s, b.URL())
	}
	return strings.Join(s, " ")
}

// TestBackupsAndDown: backups take traffic only while no primary is healthy;
// a backend configured down never does.
func TestBackupsAndDown(t *testing.T) {
	bs := backendsWith(t, "", "weight=2", "backup", "backup", "down", "down backup")
	a, b, c, d := bs[0], bs[1], bs[2], bs[3]
	p, err := New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := func(what string, usable ...*Backend) {
		t.Helper()
		var s []string
		for _, u := range usable {
			s = append(s, u.URL())
		}
		if got := upURLs(p); got != strings.Join(s, " ") {
			t.Fatalf("%s: usable %q, want %q", what, got, s)
		}
		for range 20 {
			got := p.Next(nil, Tried{})
			if len(usable) == 0 && got != nil {
				t.Fatalf("%s: picked %s", what, got)
			}
			if len(usable) > 0 && !slices.Contains(usable, got) {
				t.Fatalf("%s: picked %v", what, got)
			}
		}
	}
	want("all healthy", a, b)
	p.MarkDown(a, "x")
	want("one primary down", b)
	p.MarkDown(b, "x")
	want("all primaries down", c, d)
	p.MarkDown(c, "x")
	want("one backup left", d)
	p.MarkDown(d, "x")
	want("everything down")
	p.MarkUp(c)
	want("a backup back", c)
	p.MarkUp(b)
	want("a primary back", b)
}

func TestAcquireResults(t *testing.T) {
	bs := backendsWith(t, "max_conns=1", "max_conns=1")
	p, err := New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, res := p.Acquire(nil, Tried{})
	if x == nil || res != Acquired {
		t.Fatalf("first: %v %v", x, res)
	}
	y, res := p.Acquire(nil, Tried{})
	if y == nil || y == x || res != Acquired {
		t.Fatalf("second: %v %v", y, res)
	}
	if b, res := p.Acquire(nil, Tried{}); b != nil || res != AllAtLimit {
		t.Errorf("both at their limit: %v %v, want nil, all at limit", b, res)
	}
	x.Done(false)
	var tried Tried
	tried.Add(x)
	if b, res := p.Acquire(nil, tried); b != nil || res != AllAtLimit {
		t.Errorf("the free one tried, the other full: %v %v, want all at limit", b, res)
	}
	tried.Add(y)
	if b, res := p.Acquire(nil, tried); b != nil || res != NoneUsable {
		t.Errorf("all tried: %v %v, want none usable", b, res)
	}
	if b, res := p.Acquire(nil, Tried{}); b != x || res != Acquired {
		t.Errorf("after Done: %v %v, want %s again", b, res, x)
	}
	p.MarkDown(x, "x")
	p.MarkDown(y, "x")
	if b, res := p.Acquire(nil, Tried{}); b != nil || res != NoneUsable {
		t.Errorf("all down: %v %v, want none usable", b, res)
	}
	if s := AllAtLimit.String(); s != "all at limit" {
		t.Errorf("String() = %q", s)
	}
}

// TestMaxConnsUnderConcurrency: however many goroutines race for the last
// slots, no backend ever has more attempts in flight than its max_conns,
// and requests that find every backend full are refused, not queued.
func TestMaxConnsUnderConcurrency(t *testing.T) {
	for name, pol := range policies() {
		t.Run(name, func(t *testing.T) {
			bs := backendsWith(t, "max_conns=3", "max_conns=2 weight=4", "max_conns=1")
			p, err := New(bs, pol)
			if err != nil {
				t.Fatal(err)
			}
			peak := make([]atomic.Int64, len(bs))
			var refused, served atomic.Int64
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 3000 {
						b, res := p.Acquire(keyRequest(fmt.Sprint(g, i%13)), Tried{})
						if b == nil {
							if res != AllAtLimit {
								t.Errorf("refused with %v, want all at limit", res)
								return
							}
							refused.Add(1)
							continue
						}
						n := b.InFlight()
						for j, x := range bs {
							if x == b {
								for {
									old := peak[j].Load()
									if n <= old || peak[j].CompareAndSwap(old, n) {
										break
									}
								}
							}
						}
						served.Add(1)
						if i%7 == 0 {
							runtime.Gosched() // hold the slot a while
						}
						b.Done(false)
					}
				}()
			}
			wg.Wait()
			for j, b := range bs {
				if pk := peak[j].Load(); pk > int64(b.MaxConns()) {
					t.Errorf("%s: %d in flight at once, limit %d", b, pk, b.MaxConns())
				}
				if b.InFlight() != 0 {
					t.Errorf("%s: %d left in flight", b, b.InFlight())
				}
			}
			if served.Load() == 0 {
				t.Error("nothing served")
			}
			t.Logf("%d served, %d refused at the limit", served.Load(), refused.Load())
		})
	}
}

// TestAcquireBackend is session affinity's way in: only a backend that is
// usable now, untried and below its limit is begun.
func TestAcquireBackend(t *testing.T) {
	bs := backendsWith(t, "max_conns=1", "", "backup", "down")
	a, b, c, d := bs[0], bs[1], bs[2], bs[3]
	p, err := New(bs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.AcquireBackend(a, Tried{}) {
		t.Fatal("a usable backend refused")
	}
	if p.AcquireBackend(a, Tried{}) {
		t.Error("a backend at its max_conns acquired")
	}
	a.Done(false)
	var tried Tried
	tried.Add(b)
	if p.AcquireBackend(b, tried) {
		t.Error("a tried backend acquired")
	}
	if p.AcquireBackend(c, Tried{}) {
		t.Error("a backup acquired while primaries are up")
	}
	if p.AcquireBackend(d, Tried{}) {
		t.Error("a backend configured down acquired")
	}
	p.MarkDown(b, "x")
	if p.AcquireBackend(b, Tried{}) {
		t.Error("a down backend acquired")
	}
	p.MarkDown(a, "x")
	if !p.AcquireBackend(c, Tried{}) {
		t.Error("a backup refused with every primary down")
	}
	c.Done(false)
	other := newBackends(t, 1)[0]
	if p.AcquireBackend(other, Tried{}) {
		t.Error("a backend of no pool acquired")
	}
}

func TestEjectRespectsMaxPercent(t *testing.T) {
	for _, tc := range []struct {
		n, maxPercent, wantEjected int
	}{
		{4, 50, 2}, {4, 100, 4}, {4, 0, 0}, {2, 50, 1}, {3, 50, 1}, {5, 40, 2}, {1, 50, 0},
	} {
		t.Run(fmt.Sprintf("%d backends max %d%%", tc.n, tc.maxPercent), func(t *testing.T) {
			p, bs := newPool(t, tc.n)
			ejected := 0
			for _, b := range bs {
				if p.Eject(b, "slow", tc.maxPercent) {
					ejected++
					if b.Ejections() != 1 || b.Up() {
						t.Errorf("%s ejected but up=%v ejections=%d", b, b.Up(), b.Ejections())
					}
				}
			}
			if ejected != tc.wantEjected {
				t.Errorf("ejected %d, want %d", ejected, tc.wantEjected)
			}
			if len(p.Up()) != tc.n-tc.wantEjected {
				t.Errorf("%d up, want %d", len(p.Up()), tc.n-tc.wantEjected)
			}
		})
	}
}

func TestFailureStreak(t *testing.T) {
	_, bs := newPool(t, 1)
	b := bs[0]
	if b.AddFailureStreak() != 1 || b.AddFailureStreak() != 2 {
		t.Fatal("streak does not count up")
	}
	b.ResetFailureStreak()
	if b.AddFailureStreak() != 1 {
		t.Error("streak not reset by a success")
	}
}
