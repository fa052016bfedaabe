package proxy

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// goroutinesIn counts the goroutines whose stack passes through a function
// whose name contains fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// startHandlerBackend serves h on a loopback port.
func startHandlerBackend(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, Logger: quietLogger{}}
	go srv.Serve(ln) //nolint:errcheck // ends at cleanup
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestHedgingBeatsTheSlowAnswers: backend a answers one request in 20 only
// after a long pause, b always at once. Without hedging those are the slow
// tail; with it, each of them is answered by b, and nothing else is hedged.
//
// A request the machine itself slows past the hedge delay (a loaded CI
// runner) is hedged too, rightly, so the test bounds the hedges by the
// requests the client saw take that long: a hedge starts only after an
// attempt has waited HedgeAfter, which the client's own clock includes.
func TestHedgingBeatsTheSlowAnswers(t *testing.T) {
	const hedgeAfter = 50 * time.Millisecond
	var aCount, aSlow atomic.Int64
	release := make(chan struct{}) // the slow answers wait for the test's end
	defer close(release)
	a := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) {
		if aCount.Add(1)%20 == 0 {
			aSlow.Add(1)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		ctx.Response.Header.Set("X-Backend", "a")
	})
	b := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Backend", "b")
	})
	p, url := startProxy(t, Config{
		Backends:    []string{a, b},
		HedgeAfter:  hedgeAfter,
		HedgeBudget: 20,
		TryTimeout:  -1,
		Health:      HealthConfig{Interval: -1},
	})
	client := newClient(t)
	byB, late := 0, 0
	for range 200 {
		start := time.Now()
		resp, err := client.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if time.Since(start) >= hedgeAfter {
			late++
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if resp.Header.Get("X-Backend") == "b" {
			byB++
		}
	}
	backendA, backendB := p.Pool().Backends()[0], p.Pool().Backends()[1]
	causedA, _ := backendA.Hedges()
	causedB, wonB := backendB.Hedges()
	slow := int(aSlow.Load())
	if slow == 0 {
		t.Fatal("a never paused; the test proves nothing")
	}
	// A pause on an attempt that was itself b's hedge is not a's to hedge:
	// only b's slowness, counted in causedB, could have sent it there.
	if int(causedA+causedB) < slow || int(wonB+causedB) < slow {
		t.Errorf("a paused %d times; hedges caused by a %d (won by b %d), by b %d: want every pause hedged and won by b", slow, causedA, wonB, causedB)
	}
	if int(causedA+causedB) > late {
		t.Errorf("%d hedges (a %d, b %d) but only %d requests took %v or more: something not slow was hedged", causedA+causedB, causedA, causedB, late, hedgeAfter)
	}
	if byB < slow {
		t.Errorf("b answered %d of 200, fewer than the %d paused", byB, slow)
	}
	t.Logf("a paused %d times; %d requests took %v or more; hedges caused by a %d, by b %d; won by b %d", slow, late, hedgeAfter, causedA, causedB, wonB)
	// The abandoned attempts end once their connections close, while the
	// backend still holds its side of them.
	waitFor(t, "abandoned attempts to end", 5*time.Second, func() bool {
		return backendA.InFlight() == 0 && goroutinesIn("startAttempt") == 0
	})
}

func TestHedgeBudget(t *testing.T) {
	slowA := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(30 * time.Millisecond)
		ctx.Response.Header.Set("X-Backend", "a")
	})
	slowB := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) {
		time.Sleep(30 * time.Millisecond)
		ctx.Response.Header.Set("X-Backend", "b")
	})
	p, url := startProxy(t, Config{
		Backends:    []string{slowA, slowB},
		HedgeAfter:  time.Millisecond,
		HedgeBudget: 10,
		Health:      HealthConfig{Interval: -1},
	})
	client := newClient(t)
	const n = 100
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / 4 {
				if status, _ := get(t, client, url+"/"); status != http.StatusOK {
					t.Errorf("status %d", status)
				}
			}
		}()
	}
	wg.Wait()
	var hedges uint64
	for _, be := range p.Pool().Backends() {
		c, _ := be.Hedges()
		hedges += c
	}
	// Every request is slow enough to hedge; the budget allows 10% of them.
	if hedges == 0 || hedges > n/10+1 {
		t.Errorf("%d hedges for %d always-slow requests with a 10%% budget", hedges, n)
	}
}

func TestNoHedgeForPost(t *testing.T) {
	var aPosts, bPosts atomic.Int64
	a := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) {
		aPosts.Add(1)
		time.Sleep(200 * time.Millisecond)
	})
	b := startHandlerBackend(t, func(ctx *fasthttp.RequestCtx) { bPosts.Add(1) })
	_, url := startProxy(t, Config{Backends: []string{a, b}, HedgeAfter: 10 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	resp, err := newClient(t).Post(url+"/", "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || aPosts.Load() != 1 || bPosts.Load() != 0 {
		t.Errorf("status %d, a got %d, b got %d: a POST must never be hedged", resp.StatusCode, aPosts.Load(), bPosts.Load())
	}
}
