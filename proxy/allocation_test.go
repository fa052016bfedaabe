package proxy

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestProxiedRequestAllocations keeps the request path free of allocations:
// a whole round trip (client, proxy, backend, all fasthttp) allocates
// nothing in steady state.
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
	}{
		{"GET", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/")
		}, 0},
		{"GET with hop-by-hop headers", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/?q=1")
			req.Header.Set("Connection", "keep-alive, X-Hop")
			req.Header.Set("X-Hop", "1")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
		}, 0},
		{"POST", func(req *fasthttp.Request) {
			req.SetRequestURI("http://example.com/form")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBodyString("hello, backend")
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rig := newInmemoryRig(t, 2)
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			do := func() {
				req.Reset()
				tc.setup(req)
				if err := rig.client.Do(req, resp); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode() != fasthttp.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
				}
			}
			for range 100 {
				do()
			}
			if n := testing.AllocsPerRun(1000, do); n > tc.allowed {
				t.Errorf("%.2f allocations per proxied request, want at most %v", n, tc.allowed)
			}
		})
	}
}
