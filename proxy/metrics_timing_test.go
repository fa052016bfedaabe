package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// What monitoring costs a proxied request: BenchmarkRequestMetrics runs only
// what the request path records for one request, beside what it recorded
// before monitoring; BenchmarkProxiedRequest (proxy_timing_test.go) runs the
// whole path with it. Run:
//
//	go test ./proxy -run '^$' -bench 'ProxiedRequest/GET-20B|RequestMetrics' -benchmem -count 5

// BenchmarkRequestMetrics is the monitoring work of one successful proxied
// request, exactly as HandleFastHTTP and proxy do it: the attempt's two
// clock reads and counters, and the front end's request, byte and status
// counts (cleanResponse's header sum rides on a loop that runs anyway).
func BenchmarkRequestMetrics(b *testing.B) {
	bk, err := pool.NewBackend("http://backend-a:80")
	if err != nil {
		b.Fatal(err)
	}
	_, err = pool.New([]*pool.Backend{bk}, nil)
	tr := pool.NewTraffic()
	if err != nil {
		b.Fatal(err)
	}
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader("GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"))); err != nil {
		b.Fatal(err)
	}
	var resp fasthttp.Response
	resp.SetBodyString("Backend server is running on port a")
	record := func() {
		bk.Begin()
		start := pool.Monotonic()
		bk.RecordResponse(resp.StatusCode(), pool.Monotonic()-start)
		bk.ResetFailureStreak()
		bk.Done(false)
		tr.Request(resp.StatusCode(), requestSize(&req), responseSize(&resp, 120))
	}
	// What the request path counted before monitoring: the difference is
	// what monitoring adds.
	baseline := func() {
		bk.Begin()
		bk.ResetFailureStreak()
		bk.Done(false)
	}
	for _, tc := range []struct {
		name string
		fn   func()
	}{{"baseline", baseline}, {"metrics", record}} {
		b.Run(tc.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tc.fn()
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tc.fn()
				}
			})
		})
	}
}
