package proxy

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFrozenBackendUnderLoad freezes one of two backends while 16 clients
// keep GETs flowing: no request fails, none waits much longer than the try
// timeout, and the frozen backend is taken out of rotation at once.
func TestFrozenBackendUnderLoad(t *testing.T) {
	const tryTimeout = 300 * time.Millisecond
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{
		Backends:   []string{a.URL(), b.URL()},
		TryTimeout: tryTimeout,
		Health:     HealthConfig{Path: "/health", Interval: time.Hour},
	})
	backendA := p.Pool().Backends()[0]
	client := newClient(t)

	var (
		stop     atomic.Bool
		failures atomic.Int64
		total    atomic.Int64
		slowest  atomic.Int64
		wg       sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 2000 && !stop.Load(); n++ {
				start := time.Now()
				resp, err := client.Get(url + "/")
				if err != nil {
					failures.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				total.Add(1)
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d)
				}
			}
		}()
	}
	waitFor(t, "traffic on both backends", 5*time.Second, func() bool { return a.hits.Load() > 20 && b.hits.Load() > 20 })
	goroutinesUnderLoad := runtime.NumGoroutine()
	a.freeze()
	frozenAt := time.Now()
	waitFor(t, "a ejected", 10*tryTimeout, func() bool { return !backendA.Up() })
	ejectedAfter := time.Since(frozenAt)
	seen := total.Load()
	waitFor(t, "traffic after the ejection", 5*time.Second, func() bool { return total.Load() > seen+500 })
	stop.Store(true)
	wg.Wait()

	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d GETs failed with a backend frozen", n, total.Load())
	}
	if d := time.Duration(slowest.Load()); d > tryTimeout+time.Second {
		t.Errorf("slowest GET took %v; the try timeout is %v", d, tryTimeout)
	}
	t.Logf("%d GETs; a ejected %v after freezing; slowest GET %v", total.Load(), ejectedAfter, time.Duration(slowest.Load()))

	// Abandoned attempts gave back their connections and in-flight counts,
	// and left no goroutine behind.
	hc := upstreamOf(backendA).hc
	waitFor(t, "a's connections closed", 5*time.Second, func() bool { return hc.ConnsCount() == 0 && backendA.InFlight() == 0 })
	a.thaw()
	client.CloseIdleConnections()
	waitFor(t, "no more goroutines than under load before the freeze", 5*time.Second, func() bool {
		return runtime.NumGoroutine() <= goroutinesUnderLoad
	})
}

func TestPostToFrozenBackend(t *testing.T) {
	frozen, good := startBackend(t, "frozen"), startBackend(t, "good")
	frozen.freeze()
	_, url := startProxy(t, Config{
		Backends:   []string{frozen.URL(), good.URL()},
		TryTimeout: 200 * time.Millisecond,
		Health:     HealthConfig{Interval: -1},
	})
	client := newClient(t)
	resp, err := client.Post(url+"/", "text/plain", strings.NewReader("order #1"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", resp.StatusCode)
	}
	if n := frozen.hits.Load(); n != 1 {
		t.Errorf("frozen backend got %d POSTs, want 1", n)
	}
	if n := good.hits.Load(); n != 0 {
		t.Errorf("the POST was resent to another backend (%d times)", n)
	}
	// A GET moves on after the try timeout.
	status, body := get(t, client, url+"/")
	if status != http.StatusOK || backendOf(body) != "good" {
		t.Errorf("GET: %d %q, want 200 from good", status, body)
	}
}

// TestPanicThreshold freezes every backend: live traffic takes out at most
// half of them, so when they recover traffic flows at once instead of
// waiting for health checks.
func TestPanicThreshold(t *testing.T) {
	var backends []*testBackend
	var urls []string
	for _, name := range []string{"a", "b", "c", "d"} {
		be := startBackend(t, name)
		be.freeze()
		backends = append(backends, be)
		urls = append(urls, be.URL())
	}
	p, url := startProxy(t, Config{
		Backends:   urls,
		TryTimeout: 100 * time.Millisecond,
		EjectAfter: 1,
		Retries:    3,
		Health:     HealthConfig{Interval: -1},
	})
	client := newClient(t)
	for range 3 {
		if status, _ := get(t, client, url+"/"); status != http.StatusGatewayTimeout {
			t.Errorf("status %d with every backend frozen, want 504", status)
		}
	}
	if up := len(p.Pool().Up()); up != 2 {
		t.Errorf("%d of 4 backends left in rotation, want 2 (max ejected 50%%)", up)
	}
	for _, be := range backends {
		be.thaw()
	}
	if status, body := get(t, client, url+"/"); status != http.StatusOK {
		t.Errorf("after recovery: %d %q, want 200 without waiting for health checks", status, body)
	}
}

// TestEjectedReturnsWithoutActiveChecks: with active checks off, a backend
// that live traffic ejected comes back into rotation after
// passiveReturnAfter (nginx's fail_timeout), instead of staying out until a
// restart; if it still fails, it is ejected again at once.
func TestEjectedReturnsWithoutActiveChecks(t *testing.T) {
	old := passiveReturnAfter
	passiveReturnAfter = 100 * time.Millisecond
	t.Cleanup(func() { passiveReturnAfter = old })
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{
		Backends:   []string{a.URL(), b.URL()},
		EjectAfter: 1,
		Health:     HealthConfig{Interval: -1},
	})
	a.kill()
	client := newClient(t)
	for range 4 {
		if status, body := get(t, client, url+"/"); status != http.StatusOK || backendOf(body) != "b" {
			t.Fatalf("with a killed: %d %q, want 200 from b", status, body)
		}
	}
	if up := len(p.Pool().Up()); up != 1 {
		t.Fatalf("%d backends in rotation after a's connect failure, want 1", up)
	}
	// Still dead when it returns: ejected again, no request fails.
	waitFor(t, "a back in rotation while still dead", 5*time.Second, func() bool {
		return p.Pool().Backends()[0].Ejections() >= 1 && len(p.Pool().Up()) == 2
	})
	for range 4 {
		if status, body := get(t, client, url+"/"); status != http.StatusOK {
			t.Fatalf("a returned dead: %d %q, want 200 (retried on b)", status, body)
		}
	}
	a.restart()
	waitFor(t, "a serving again", 5*time.Second, func() bool {
		if len(p.Pool().Up()) != 2 {
			return false
		}
		_, body := get(t, client, url+"/")
		return backendOf(body) == "a"
	})
}
