package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// keptConn is a client's keep-alive connection, read and written by hand.
type keptConn struct {
	net.Conn
	r *bufio.Reader
}

func dialKept(t *testing.T, url string) *keptConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{Conn: c, r: bufio.NewReader(c)}
}

// get sends a GET and reads its answer: the status and the backend it names.
func (k *keptConn) get(t *testing.T) (int, string) {
	t.Helper()
	k.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.Close {
		t.Fatalf("body %q, %v, close %v: want a whole answer on a kept connection", body, err, resp.Close)
	}
	return resp.StatusCode, backendOf(string(body))
}

// closed waits for the proxy to close the connection.
func (k *keptConn) closed(t *testing.T, within time.Duration) {
	t.Helper()
	k.SetReadDeadline(time.Now().Add(within))
	if b, err := k.r.ReadByte(); err != io.EOF {
		t.Fatalf("read %q, %v: want the proxy to close the connection within %v", b, err, within)
	}
}

// keptThrough starts a proxy over a backend with cfg's settings besides,
// and a kept-alive connection through it that has had one answer.
func keptThrough(t *testing.T, cfg Config) (*Proxy, string, *keptConn) {
	t.Helper()
	cfg.Backends, cfg.Health = []string{startBackend(t, "a").URL()}, HealthConfig{Interval: -1}
	p, url := startProxy(t, cfg)
	c := dialKept(t, url)
	c.get(t)
	return p, url, c
}

// waitConnsParked waits for n connections to be parked.
func waitConnsParked(t *testing.T, p *Proxy, n int) {
	t.Helper()
	waitFor(t, "the idle connections to be parked", 10*time.Second, func() bool { return parked(p) == n })
}

func parked(p *Proxy) int {
	if pk := p.parkerOf(); pk != nil {
		return pk.Len()
	}
	return -1
}

// TestIdleConnectionParked: a keep-alive connection idle for parkAfter is
// held without a goroutine, stays open and counted, and is served again
// when its next request comes, as many times as it goes idle; a client's
// close, the idle timeout and Shutdown end it as they end any.
func TestIdleConnectionParked(t *testing.T) {
	t.Run("served again", func(t *testing.T) { // alone: it counts goroutines
		a := startBackend(t, "a")
		p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
		const n = 20
		conns := make([]*keptConn, n)
		for i := range conns {
			conns[i] = dialKept(t, url)
			if status, name := conns[i].get(t); status != http.StatusOK || name != "a" {
				t.Fatalf("first request: %d from %q", status, name)
			}
		}
		for round := range 2 {
			waitConnsParked(t, p, n)
			if st := p.Traffic().Snapshot(); st.Conns != n || st.ConnsParked != n {
				t.Errorf("round %d: %d connections counted open, %d parked; want %d and %d", round, st.Conns, st.ConnsParked, n, n)
			}
			if g := goroutinesIn("proxy.(*guardConn).Read"); g != 0 {
				t.Errorf("round %d: %d goroutines serve parked connections, want none", round, g)
			}
			// All come back at once.
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Go(func() {
					if status, name := c.get(t); status != http.StatusOK || name != "a" {
						t.Errorf("round %d: %d from %q after parking", round, status, name)
					}
				})
			}
			wg.Wait()
		}
		if got := a.hits.Load(); got != 3*n {
			t.Errorf("backend saw %d requests, want %d", got, 3*n)
		}
		if total := p.Traffic().Snapshot().ConnsTotal; total != n {
			t.Errorf("%d connections opened in all, want %d: parking must not count anew", total, n)
		}
		// The client closes a parked connection: it is let go and no
		// longer counted.
		waitConnsParked(t, p, n)
		conns[0].Close()
		waitFor(t, "the closed connection to be let go", 5*time.Second, func() bool {
			st := p.Traffic().Snapshot()
			return parked(p) == n-1 && st.Conns == n-1 && st.ConnsParked == n-1
		})
		for _, c := range conns[1:] {
			c.get(t)
		}
		if st := p.Traffic().Snapshot(); st.ConnsParked != 0 {
			t.Errorf("%d connections counted parked while all are being served", st.ConnsParked)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		t.Parallel()
		const idle = 2 * time.Second
		p, _, c := keptThrough(t, Config{ClientIdleTimeout: idle})
		start := time.Now()
		waitConnsParked(t, p, 1)
		c.closed(t, 10*time.Second)
		if d := time.Since(start); d < idle {
			t.Errorf("closed after %v idle, before the idle timeout %v", d, idle)
		}
		waitFor(t, "the connection to be let go", 5*time.Second, func() bool {
			return parked(p) == 0 && p.Traffic().Snapshot().Conns == 0
		})
	})
	t.Run("per-address limit", func(t *testing.T) {
		t.Parallel()
		p, url, c := keptThrough(t, Config{MaxConnsPerIP: 1})
		waitConnsParked(t, p, 1)
		// A parked connection still holds its place.
		extra := dialKept(t, url)
		extra.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(extra.r, nil); err != nil || resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a second connection from the address: %v, %v; want 429", resp, err)
		}
		c.Close()
		waitFor(t, "the parked connection's place to free", 5*time.Second, func() bool {
			return p.Traffic().Snapshot().Conns == 0
		})
		if status, _ := dialKept(t, url).get(t); status != http.StatusOK {
			t.Errorf("after the parked connection closed: %d, want 200", status)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		p, _, c := keptThrough(t, Config{})
		waitConnsParked(t, p, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown with a parked connection: %v", err)
		}
		c.closed(t, 5*time.Second)
		if st := p.Traffic().Snapshot(); st.Conns != 0 || st.ConnsParked != 0 {
			t.Errorf("%d connections counted open, %d parked after shutdown", st.Conns, st.ConnsParked)
		}
	})
	t.Run("request as the sweep asks", func(t *testing.T) {
		t.Parallel()
		// The sweep saw the connection idle a moment before its next
		// request began: the ask comes while the header is half read.
		p, _, c := keptThrough(t, Config{})
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHo")
		var g *guardConn
		waitFor(t, "the request to begin", 5*time.Second, func() bool {
			// Not snapshot: its slice is the sweep's.
			p.wd.clients.mu.Lock()
			defer p.wd.clients.mu.Unlock()
			for _, cc := range p.wd.clients.list {
				if cc.guard != nil && cc.phase.Load() == phaseHeader {
					g = cc.guard
					return true
				}
			}
			return false
		})
		g.askPark()
		io.WriteString(c, "st: x\r\n\r\n")
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("a request the sweep asked to park in the middle of: %v, %v; want 200", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
		if st := g.park.Load(); st != parkNone {
			t.Errorf("park state %d after the request, want none", st)
		}
	})
	t.Run("resumed as the sweep runs", func(t *testing.T) {
		t.Parallel()
		// A sweep between the parker taking the connection back and its
		// first read must not see it idle (since it went idle) and ask
		// it to park again: the first read of a resumed connection is
		// its first request's, which fasthttp would answer with a 400.
		p, _, c := keptThrough(t, Config{})
		pk := p.parkerOf()
		waitConnsParked(t, p, 1)
		pk.mu.Lock()
		var fd int32
		for fd = range pk.held {
		}
		pk.mu.Unlock()
		// As run and serve do on the request's arrival, step by step here,
		// with the sweep between.
		g := pk.take(fd)
		if g == nil {
			t.Fatal("the parked connection was not there to take")
		}
		g.unpark()
		// Not sweepClients, whose snapshot is the watchdog's own.
		now := p.wd.now() + int64(2*parkAfter)
		p.wd.sweepClient(g.cc, now, now)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		go pk.srv.ServeConn(g) //nolint:errcheck // the answer tells
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("a resumed connection the sweep ran over: %v, %v; want 200", resp, err)
		}
		io.Copy(io.Discard, resp.Body)
	})
	t.Run("memory given back", func(t *testing.T) {
		t.Parallel()
		a := startBackend(t, "a")
		p, url := startProxy(t, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}})
		pk := p.parkerOf()
		pk.mu.Lock()
		pk.release.after, pk.release.delay, pk.release.gap = 8, time.Millisecond, time.Hour
		pk.mu.Unlock()
		var conns []*keptConn
		for range 10 {
			c := dialKept(t, url)
			if status, _ := c.get(t); status != http.StatusOK {
				t.Fatalf("first request: %d", status)
			}
			conns = append(conns, c)
		}
		waitConnsParked(t, p, 10)
		waitFor(t, "the memory parking freed to be given back", 10*time.Second, func() bool { return pk.release.count.Load() == 1 })
		// They come back and park again: the count fell and grew by 10
		// again, but within the gap, and no second release comes.
		for _, c := range conns {
			if status, _ := c.get(t); status != http.StatusOK {
				t.Fatalf("served again: %d", status)
			}
		}
		waitConnsParked(t, p, 10)
		if n := pk.release.count.Load(); n != 1 {
			t.Errorf("%d releases, want 1: the second parking came within the gap", n)
		}
	})

	t.Run("-max-conns", func(t *testing.T) {
		t.Parallel()
		// A parked connection counts under the limit in all, as under
		// the per-address one, though fasthttp no longer serves it.
		p, url, c := keptThrough(t, Config{MaxConns: 1})
		waitConnsParked(t, p, 1)
		status, _ := rawRequest(t, url, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		if !strings.Contains(status, "503") {
			t.Fatalf("a second connection with one parked under -max-conns=1: %q, want 503", status)
		}
		if status, _ := c.get(t); status != http.StatusOK {
			t.Errorf("the parked connection, served again: %d", status)
		}
		c.Close()
		waitFor(t, "the connection's place to free", 5*time.Second, func() bool { return p.Traffic().Snapshot().Conns == 0 })
		if status, _ := dialKept(t, url).get(t); status != http.StatusOK {
			t.Errorf("after the parked connection closed: %d, want 200", status)
		}
	})
}

// BenchmarkIdleConnectionMemory reports what an idle keep-alive client
// connection costs the proxy's heap and goroutine stacks once the runtime
// has collected (KiB/conn), parked and, under -max-conns, not. The client
// side of the connections, in this same process, is left out by holding
// bare sockets, counted in the baseline.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, tc := range []struct {
		name     string
		maxConns int
	}{{"parked", 0}, {"with goroutine", 100000}} {
		b.Run(tc.name, func(b *testing.B) {
			const n = 2000
			a := startBackend(b, "a")
			p, url := startProxy(b, Config{Backends: []string{a.URL()}, Health: HealthConfig{Interval: -1}, MaxConns: tc.maxConns})
			addr := strings.TrimPrefix(url, "http://")
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			var before, after runtime.MemStats
			for range b.N {
				settle(&before)
				for range n {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				buf := make([]byte, 4096)
				for _, c := range conns[len(conns)-n:] {
					io.WriteString(c, "GET /bytes/20 HTTP/1.1\r\nHost: x\r\n\r\n")
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if m, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:m]), "HTTP/1.1 200") {
						b.Fatalf("answer %q, %v", buf[:m], err)
					}
				}
				if tc.maxConns == 0 {
					waitFor(b, "the connections to be parked", 30*time.Second, func() bool { return parked(p) == len(conns) })
					// and the workers that served them to end
					waitFor(b, "the idle workers to end", 30*time.Second, func() bool { return runtime.NumGoroutine() < n/10 })
				}
				settle(&after)
			}
			used := float64(after.HeapInuse+after.StackInuse) - float64(before.HeapInuse+before.StackInuse)
			b.ReportMetric(used/1024/float64(n), "KiB/conn")
		})
	}
}

// settle collects until the heap holds only what is live, then reads the
// memory statistics.
func settle(m *runtime.MemStats) {
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(m)
}

// TestMemReleaseDue: a release is due when the parked count has grown by
// after since the lowest it fell to after the last release, and gap has
// passed since that release.
func TestMemReleaseDue(t *testing.T) {
	const sec = int64(time.Second)
	type step struct {
		n    int
		now  int64
		want bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"grows to the threshold", []step{{1, sec, false}, {9, sec, false}, {10, sec, true}}},
		{"counted from the lowest", []step{{10, sec, true}, {4, 4 * sec, false}, {13, 4 * sec, false}, {14, 4 * sec, true}}},
		{"within the gap", []step{{10, sec, true}, {25, 2 * sec, false}, {25, 3 * sec, true}}},
		{"steady churn", []step{{10, sec, true}, {5, 5 * sec, false}, {10, 6 * sec, false}, {14, 7 * sec, false}, {15, 8 * sec, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := memRelease{after: 10, gap: 2 * time.Second}
			for i, s := range tc.steps {
				got := m.due(s.n, s.now)
				if got != s.want {
					t.Fatalf("step %d (%d parked at %ds): due %v, want %v", i, s.n, s.now/sec, got, s.want)
				}
				if got {
					m.base, m.last = s.n, s.now // as parked does
				}
			}
		})
	}
}

// TestMemReleaseOff: under Config.KeepIdleMemory no release is started,
// however many connections park.
func TestMemReleaseOff(t *testing.T) {
	for _, keep := range []bool{false, true} {
		m := newMemRelease(&Config{KeepIdleMemory: keep})
		m.delay = time.Hour // started or not, it never runs here
		m.parked(releaseAfter, int64(time.Second))
		if started := m.running.Load(); started == keep {
			t.Errorf("KeepIdleMemory %v: release started %v", keep, started)
		}
	}
}
