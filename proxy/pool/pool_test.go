package pool

import (
	"fmt"
	"strings"
	"sync"
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
	}{
		{in: "http://localhost:8081", url: "http://localhost:8081", addr: "localhost:8081"},
		{in: "http://LocalHost:8081/", url: "http://localhost:8081", addr: "localhost:8081"},
		{in: "HTTP://10.0.0.1", url: "http://10.0.0.1:80", addr: "10.0.0.1:80"},
		{in: "http://[::1]:9000", url: "http://[::1]:9000", addr: "[::1]:9000"},
		{in: " http://b:1 ", url: "http://b:1", addr: "b:1"},
		{in: "https://example.com", url: "https://example.com:443", addr: "example.com:443", tls: true},
		{in: "HTTPS://Example.com:8443/", url: "https://example.com:8443", addr: "example.com:8443", tls: true},
		{in: "https://[::1]", url: "https://[::1]:443", addr: "[::1]:443", tls: true},
		{in: "https://h:", err: "empty port"},
		{in: "socks5://h:1", err: `unsupported scheme "socks5"`},
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
			if b.TLS() != tc.tls {
				t.Errorf("TLS() = %v, want %v", b.TLS(), tc.tls)
			}
			if !b.Up() {
				t.Error("a new backend should start up")
			}
		})
	}
}

func TestNewPoolRejects(t *testing.T) {
	if _, err := New(nil, nil); err == nil {
		t.Error("empty pool accepted")
	}
	a, _ := NewBackend("http://h:1")
	b, _ := NewBackend("http://H:1/")
	if _, err := New([]*Backend{a, b}, nil); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("duplicate accepted: %v", err)
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

// TestConcurrentPicksWithHealthChanges runs picks on many goroutines while
// backends go down and up, for the race detector.
func TestConcurrentPicksWithHealthChanges(t *testing.T) {
	p, bs := newPool(t, 4)
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b := bs[i%len(bs)]
			p.MarkDown(b, "test")
			p.MarkUp(b)
		}
	}()
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
	close(stop)
	writer.Wait()
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
