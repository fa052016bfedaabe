package proxy

import (
	"bufio"
	"cmp"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// TestProxiedRequestAllocations keeps the request path free of allocations:
// a whole round trip (client, proxy, backend, all fasthttp) allocates
// nothing in steady state, with an access log in either format or none.
func TestProxiedRequestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, tc := range []struct {
		name  string
		setup func(req *fasthttp.Request)
		// allowed is what fasthttp's server allocates itself: after a
		// request whose body came as a stream it drains the stream with
		// io.CopyN, whose io.LimitReader escapes.
		allowed float64
		// warm is how many requests run before counting: 100 unless set.
		warm int
		// configure adjusts the proxy's Config, when set.
		configure func(c *Config)
	}{
		{"GET", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
		}, 0, 0, nil},
		{"GET with hop-by-hop headers", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/?q=1")
			req.Header.Set("Connection", "keep-alive, X-Hop")
			req.Header.Set("X-Hop", "1")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
		}, 0, 0, nil},
		// Lines of one name after a hop-by-hop header, put back in order.
		{"GET with hop-by-hop headers and names twice", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
			req.Header.Set("Connection", "keep-alive")
			req.Header.Add("Forwarded", "for=192.0.2.1")
			req.Header.Add("Via", "1.1 cdn")
			req.Header.Add("Forwarded", "for=198.51.100.7")
		}, 0, 0, nil},
		// From a trusted proxy the chain is extended: in one line, and in
		// two, as HAProxy's option forwardfor sends it when the client
		// sent one of its own.
		{"GET from a trusted proxy", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
			req.Header.Add("X-Forwarded-For", "6.6.6.6, 203.0.113.9")
		}, 0, 0, trustClient},
		{"GET from a trusted proxy, X-Forwarded-For in two lines", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
			req.Header.Add("X-Forwarded-For", "6.6.6.6")
			req.Header.Add("X-Forwarded-For", "203.0.113.9")
		}, 0, 0, trustClient},
		// An expectation without a body, dropped before the body's read.
		{"GET expecting 100-continue", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
			req.Header.Set("Expect", "100-continue")
		}, 0, 0, nil},
		{"POST", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/form")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBodyString("hello, backend")
		}, 1, 0, nil},
		// One request in fifty with 64 KiB, past 50,000 requests (the
		// body buffers' old pool calibrated itself to the common size
		// after 42,000 and then dropped the rare large buffers).
		{"GET, one response in fifty of 64 KiB", oneInFifty(func(req *fasthttp.Request, large bool) {
			req.SetRequestURI("http://example.com/")
			if large {
				req.SetRequestURI("http://example.com/bytes/65536")
			}
		}), 0, 50_000, nil},
		{"POST, one body in fifty of 64 KiB", oneInFifty(func(req *fasthttp.Request, large bool) {
			req.SetRequestURI("http://example.com/form")
			req.Header.SetMethod(fasthttp.MethodPost)
			if large {
				req.SetBody(largeBody)
			} else {
				req.SetBodyString("hello, backend")
			}
		}), 1, 50_000, nil},
	} {
		for _, format := range []AccessLogFormat{"", AccessLogCombined, AccessLogJSON} {
			name := tc.name
			if format != "" {
				name += ", access log " + string(format)
			}
			t.Run(name, func(t *testing.T) {
				proxiedRequestAllocations(t, format, tc.configure, tc.setup, tc.allowed, cmp.Or(tc.warm, 100))
			})
		}
	}
}

// trustClient makes the in-memory client's address a trusted proxy.
func trustClient(c *Config) {
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
}

// proxiedRequestAllocations measures one kind of request, with an access
// log in format (empty: none), through a proxy configure adjusts (nil:
// none).
func proxiedRequestAllocations(t *testing.T, format AccessLogFormat, configure func(c *Config), setup func(req *fasthttp.Request), allowed float64, warm int) {
	t.Helper()
	rig := newInmemoryRigConfig(t, 2, func(c *Config) {
		if format != "" {
			c.AccessLog, c.AccessLogFormat = io.Discard, format
		}
		if configure != nil {
			configure(c)
		}
	})
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	// The client keeps its body buffers: fasthttp's own pools, like the
	// proxy's before, drop buffers larger than the common size, and the
	// count is of the proxy's allocations.
	req.KeepBodyBuffer, resp.KeepBodyBuffer = true, true
	do := func() {
		req.Reset()
		setup(req)
		if err := rig.client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
		}
	}
	for range warm {
		do()
	}
	if n := allocsPerRun(t, 5000, do); n > allowed+strayAllocs {
		t.Errorf("%.4f allocations per proxied request, want at most %v", n, allowed)
	}
}

// largeBody is a 64 KiB request body.
var largeBody = make([]byte, 64<<10)

// oneInFifty returns a request setup that makes every fiftieth request
// the large kind.
func oneInFifty(setup func(req *fasthttp.Request, large bool)) func(req *fasthttp.Request) {
	i := 0
	return func(req *fasthttp.Request) {
		i++
		setup(req, i%50 == 0)
	}
}

// TestBalancingAllocations keeps every policy and the sticky cookie off the
// allocator too: a whole proxied request allocates nothing with any of them.
func TestBalancingAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	get := func(uri string, header ...string) func(req *fasthttp.Request) {
		return func(req *fasthttp.Request) {
			req.SetRequestURI(uri)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
		}
	}
	weighted := func(c *Config) {
		c.Backends[0] += " weight=3 max_conns=100"
		c.Backends[1] += " weight=2"
	}
	for _, tc := range []struct {
		name      string
		configure func(c *Config)
		setup     func(req *fasthttp.Request)
	}{
		{"weighted round-robin", weighted, get("http://example.com/")},
		{"least-conn", func(c *Config) { weighted(c); c.Policy = pool.NewLeastConn() }, get("http://example.com/")},
		{"p2c", func(c *Config) { weighted(c); c.Policy = pool.NewP2C(nil) }, get("http://example.com/")},
		{"random", func(c *Config) { weighted(c); c.Policy = pool.NewRandom(nil) }, get("http://example.com/")},
		{"hash ip", func(c *Config) { c.Policy = pool.NewMaglev(pool.Key{Kind: pool.KeyClientIP}) }, get("http://example.com/")},
		{"hash uri", func(c *Config) { c.Policy = pool.NewMaglev(pool.Key{Kind: pool.KeyURI}) }, get("http://example.com/a?b=c")},
		{"hash header", func(c *Config) { c.Policy = pool.NewMaglev(pool.Key{Kind: pool.KeyHeader, Name: "X-User"}) },
			get("http://example.com/", "X-User", "u-42")},
		{"hash cookie", func(c *Config) { c.Policy = pool.NewMaglev(pool.Key{Kind: pool.KeyCookie, Name: "sid"}) },
			get("http://example.com/", "Cookie", "theme=dark; sid=abc123")},
		{"sticky, first visit", func(c *Config) { c.StickyCookie = "lb" }, get("http://example.com/")},
		{"sticky, pinned", func(c *Config) { c.StickyCookie = "lb" }, nil}, // cookie from the first answer
		{"routed by host and path", routedConfig, get("http://example.com/bytes/10")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newInmemoryRigConfig(t, 3, tc.configure)
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			setup := tc.setup
			if setup == nil {
				req.SetRequestURI("http://example.com/")
				if err := rig.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				c := fasthttp.AcquireCookie()
				c.SetKey("lb")
				if !resp.Header.Cookie(c) {
					t.Fatalf("no sticky cookie set:\n%s", resp.Header.String())
				}
				setup = get("http://example.com/", "Cookie", "a=1; lb="+string(c.Value()))
			}
			var first []byte
			do := func() {
				req.Reset()
				setup(req)
				if err := rig.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode() != fasthttp.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
				}
				if pinned := tc.setup == nil; pinned {
					moved := first != nil && string(resp.Body()) != string(first)
					if moved || len(resp.Header.PeekCookie("lb")) != 0 {
						t.Fatalf("pinned request answered by %q, cookie %q; want %q and no cookie",
							resp.Body(), resp.Header.PeekCookie("lb"), first)
					}
				}
				if tc.name == "sticky, first visit" && len(resp.Header.PeekCookie("lb")) == 0 {
					t.Fatal("no cookie on a first visit")
				}
			}
			do()
			first = append(first, resp.Body()...)
			for range 100 {
				do()
			}
			if n := allocsPerRun(t, 5000, do); n > strayAllocs {
				t.Errorf("%.4f allocations per proxied request, want 0", n)
			}
		})
	}
}

// strayAllocs is how many allocations per request an allocation test
// forgives: a handful over thousands of requests come from outside the
// request path (a timer, the watchdog's sweep, a pool refilled), while
// one in two hundred requests or more is the path's.
const strayAllocs = 0.005

// allocsPerRun is testing.AllocsPerRun without its rounding down to a whole
// number, which hides an allocation made every few requests: it returns the
// mean number of allocations per call of f. A garbage collection moves
// what the sync.Pools hold aside, and refilling them allocates, so the
// count starts after a collection and 100 calls, and is taken again if a
// collection ran during it (the test fails if one ran during three).
func allocsPerRun(tb testing.TB, runs int, f func()) float64 {
	tb.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	for range 3 {
		runtime.GC()
		for range 100 {
			f()
		}
		runtime.ReadMemStats(&before)
		for range runs {
			f()
		}
		runtime.ReadMemStats(&after)
		if after.NumGC == before.NumGC {
			return float64(after.Mallocs-before.Mallocs) / float64(runs)
		}
	}
	tb.Fatalf("a garbage collection ran during each of three counts of %d calls: the count is not the calls' alone", runs)
	return 0
}

// TestLineOrderAllocations keeps the strip's putting back of lines of one
// name off the allocator, for requests and responses, a response's lines
// copied on the stack or, past 1 KiB, into a lent buffer.
func TestLineOrderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	long := strings.Repeat("x", 600)
	for _, tc := range []struct{ name, headers string }{
		{"two spellings", "Connection: keep-alive\r\nforwarded: for=a\r\nVia: 1.0 a\r\nFORWARDED: for=b\r\nCookie: a=1\r\nCookie: b=2\r\n"},
		{"more names than are noted", "Connection: keep-alive\r\n" + manyNames("X-N-") + "Via: 1.0 a\r\nVia: 1.1 b\r\n"},
	} {
		t.Run("request, "+tc.name, func(t *testing.T) {
			var src, h fasthttp.RequestHeader
			src.DisableNormalizing()
			if err := src.Read(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n"))); err != nil {
				t.Fatal(err)
			}
			if n := allocsPerRun(t, 1000, func() {
				src.CopyTo(&h)
				stripRequestHeaders(&h, h.RawHeaders())
			}); n > strayAllocs {
				t.Errorf("%.4f allocations per strip, want none", n)
			}
		})
	}
	for _, tc := range []struct{ name, headers string }{
		{"on the stack", "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nLink: <a>\r\nVary: Accept\r\nLink: <b>\r\nVary: Origin\r\n"},
		{"lent", "Connection: keep-alive\r\nLink: <a" + long + ">\r\nX-A: 1\r\nLink: <b" + long + ">\r\n"},
		{"more names than are noted", "Connection: keep-alive\r\n" + manyNames("X-N-") + "Via: 1.0 a\r\nVia: 1.1 b\r\n"},
	} {
		t.Run("response, "+tc.name, func(t *testing.T) {
			var src fasthttp.ResponseHeader
			var resp fasthttp.Response
			src.DisableNormalizing()
			if err := src.Read(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + tc.headers + "\r\n"))); err != nil {
				t.Fatal(err)
			}
			if n := allocsPerRun(t, 1000, func() {
				src.CopyTo(&resp.Header)
				cleanResponse(&resp)
			}); n > strayAllocs {
				t.Errorf("%.4f allocations per clean, want none", n)
			}
		})
	}
}
