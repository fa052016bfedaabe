package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// openPipes counts the process's open pipe descriptors: each backend
// connection that has carried a spliced body holds two.
func openPipes(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
}

// patternSum reads body to its end and returns its length and SHA-256, to
// compare with the backend's pattern.
func patternSum(body io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, body)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// TestSplicedBody: a body of known length with more than spliceMin to come
// past its header is moved with splice(2), whole and in order, for sizes
// from just past the threshold to past maxBufferedResponse (which streamed
// before), on one kept-alive backend connection whose pipe is made once
// and closed with it. A smaller body is read whole, as before.
func TestSplicedBody(t *testing.T) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, BackendIdleTimeout: 300 * time.Millisecond,
		Health: HealthConfig{Interval: -1}})
	pipes := openPipes(t)
	client := newClient(t)
	b := p.Pool().Backends()[0]
	for _, tc := range []struct {
		size    int64
		spliced bool
	}{
		{8 << 10, false},
		{64 << 10, true},
		{200_000, true},
		{maxBufferedResponse, true},
		{3 << 20, true},
		{8 << 10, false}, // and on the same connection as the spliced ones
	} {
		before := p.spliced.Load()
		resp, err := client.Get(url + "/download/" + strconv.FormatInt(tc.size, 10))
		if err != nil {
			t.Fatal(err)
		}
		n, sum, err := patternSum(resp.Body)
		resp.Body.Close()
		if err != nil || n != tc.size || sum != backend.PatternSHA256(tc.size) {
			t.Fatalf("%d bytes: got %d (%v), sha256 %s; want the backend's pattern", tc.size, n, err, sum)
		}
		if resp.ContentLength != tc.size {
			t.Errorf("%d bytes: Content-Length %d", tc.size, resp.ContentLength)
		}
		// The last bytes spliced are counted once they are out: the
		// client may have them before. The attempt ends after.
		waitFor(t, "the attempt ended", 5*time.Second, func() bool { return b.InFlight() == 0 })
		// What came with the header, and what fills the server's write
		// buffer behind the header, go through memory: the rest is spliced.
		moved := p.spliced.Load() - before
		if tc.spliced && (moved < tc.size-64<<10 || moved > tc.size) {
			t.Errorf("%d bytes: %d spliced, want all but what came with the header", tc.size, moved)
		}
		if !tc.spliced && moved != 0 {
			t.Errorf("%d bytes: %d spliced, want none below spliceMin", tc.size, moved)
		}
	}
	if n := be.opened.Load(); n != 1 {
		t.Errorf("the backend accepted %d connections, want 1: a spliced body ends its exchange cleanly and the connection is reused", n)
	}
	if n := b.Failures(); n != 0 {
		t.Errorf("%d failed attempts, want none", n)
	}
	if n := openPipes(t) - pipes; n != 2 {
		t.Errorf("%d pipe descriptors opened, want 2: one pipe for the one backend connection", n)
	}
	// The idle connection is closed past the backend idle timeout, and
	// its pipe with it.
	waitFor(t, "the idle backend connection and its pipe closed", 10*time.Second, func() bool {
		return upstreamOf(b).hc.ConnsCount() == 0 && openPipes(t) <= pipes
	})
}

// TestSpliceNotUsed: a body is copied through memory where splicing it
// would be wrong or is not possible: a HEAD (no body), a TLS client (the
// bytes must be encrypted), a hedged attempt (it must not touch the client
// until it wins), a body over MaxResponseBodySize (refused as before), and
// without Config.Splice (the default). Each body still arrives whole.
func TestSpliceNotUsed(t *testing.T) {
	const size = 256 << 10
	path := "/download/" + strconv.Itoa(size)
	check := func(t *testing.T, p *Proxy, client *http.Client, method, url string, wantStatus int, wantBody int64) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("status %d, want %d", resp.StatusCode, wantStatus)
		}
		if wantStatus == http.StatusOK {
			n, sum, err := patternSum(resp.Body)
			if want := backend.PatternSHA256(wantBody); err != nil || n != wantBody || (n > 0 && sum != want) {
				t.Errorf("body of %d bytes (%v), sha256 %s; want %d bytes of the backend's pattern", n, err, sum, wantBody)
			}
		}
		if n := p.spliced.Load(); n != 0 {
			t.Errorf("%d bytes spliced, want none", n)
		}
	}

	t.Run("HEAD", func(t *testing.T) {
		be := startBackend(t, "a")
		p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
		check(t, p, newClient(t), http.MethodHead, url+path, http.StatusOK, 0)
		check(t, p, newClient(t), http.MethodGet, url+"/download/100", http.StatusOK, 100)
	})
	t.Run("Splice off (the default)", func(t *testing.T) {
		be := startBackend(t, "a")
		p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
		check(t, p, newClient(t), http.MethodGet, url+path, http.StatusOK, size)
		check(t, p, newClient(t), http.MethodGet, url+"/download/"+strconv.Itoa(3<<20), http.StatusOK, 3<<20)
	})
	t.Run("over MaxResponseBodySize", func(t *testing.T) {
		be := startBackend(t, "a")
		p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, MaxResponseBodySize: 100 << 10, Health: HealthConfig{Interval: -1}})
		check(t, p, newClient(t), http.MethodGet, url+path, http.StatusBadGateway, 0)
	})
	t.Run("TLS client", func(t *testing.T) {
		be := startBackend(t, "a")
		ca := testpki.NewCA(t, "test CA")
		leaf := ca.Issue(t, "localhost")
		tp := startTLSProxy(t, Config{Splice: true, Backends: []string{be.URL()}, TLS: &TLSConfig{Certificates: certFiles(t, leaf)},
			Health: HealthConfig{Interval: -1}})
		check(t, tp.Proxy, newTLSClient(t, ca.Pool()), http.MethodGet, tp.tlsURL("localhost", path), http.StatusOK, size)
	})
	t.Run("hedged", func(t *testing.T) {
		// The first request to reach a backend waits before answering;
		// the hedge to the other one wins, with a body to splice.
		var first atomic.Bool
		body := strings.Repeat("h", size)
		handle := func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
			for {
				if _, ok := rb.readRequest(r); !ok {
					return
				}
				if first.CompareAndSwap(false, true) {
					time.Sleep(500 * time.Millisecond) // the slow backend the hedge goes around
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", size, body)
			}
		}
		a, b := startRawBackend(t, handle), startRawBackend(t, handle)
		p, url := startProxy(t, Config{Splice: true, Backends: []string{a.URL(), b.URL()}, HedgeAfter: 50 * time.Millisecond, HedgeBudget: 100,
			Health: HealthConfig{Interval: -1}})
		resp, err := newClient(t).Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != body {
			t.Errorf("body of %d bytes (%v), want %d bytes of h", len(got), err, size)
		}
		if n := p.spliced.Load(); n != 0 {
			t.Errorf("%d bytes spliced, want none from a hedged attempt", n)
		}
		if a.requests.Load()+b.requests.Load() != 2 {
			t.Errorf("%d and %d requests reached the backends, want a hedge: 2 in all", a.requests.Load(), b.requests.Load())
		}
	})
}

// TestSplicedBodyCut: a backend that ends its connection, or goes silent
// past the backend timeout, in the middle of a spliced body gives the
// client what came and then a closed connection, as a streamed body does:
// the header has gone, so the client sees the body cut short. The attempt
// counts as failed, the backend connection and its pipe are closed, the
// access log counts the bytes relayed, and the next request goes on a
// fresh connection.
func TestSplicedBodyCut(t *testing.T) {
	const announced, sent = 1 << 20, 300_000
	for _, stall := range []bool{false, true} {
		t.Run("stall="+strconv.FormatBool(stall), func(t *testing.T) {
			var conns atomic.Int64
			release := make(chan struct{})
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				first := conns.Add(1) == 1
				for {
					if _, ok := rb.readRequest(r); !ok {
						return
					}
					if first {
						fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", announced, strings.Repeat("c", sent))
						if stall {
							<-release
						}
						return // and close
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			defer close(release)
			var log logBuffer
			p, url := startProxy(t, Config{Splice: true, Backends: []string{rb.URL()}, BackendTimeout: 300 * time.Millisecond,
				AccessLog: &log, AccessLogFormat: AccessLogJSON, Health: HealthConfig{Interval: -1}})
			pipes := openPipes(t)
			c := dialProxy(t, url, 10*time.Second)
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || resp.ContentLength != announced {
				t.Fatalf("status %d, Content-Length %d; want 200 and %d", resp.StatusCode, resp.ContentLength, announced)
			}
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("body read ended with %v, want the connection closed before the body's end", err)
			}
			if len(body) != sent || strings.Trim(string(body), "c") != "" {
				t.Errorf("body of %d bytes, want the %d sent", len(body), sent)
			}
			if p.spliced.Load() == 0 {
				t.Error("nothing spliced: the test did not test the splice")
			}
			b := p.Pool().Backends()[0]
			waitFor(t, "the failed attempt recorded and its connection closed", 5*time.Second, func() bool {
				return b.Failures() == 1 && b.InFlight() == 0 && upstreamOf(b).hc.ConnsCount() == 0
			})
			waitFor(t, "the backend connection's pipe closed", 5*time.Second, func() bool { return openPipes(t) <= pipes })
			m := jsonLine(t, accessLines(t, &log, 1)[0])
			if m["status"] != float64(200) || m["bytes"] != float64(sent) {
				t.Errorf("access log line %v: want status 200, %d bytes", m, sent)
			}
			if status, body := get(t, newClient(t), url+"/"); status != http.StatusOK || body != "ok" {
				t.Errorf("next request: %d %q, want 200 \"ok\"", status, body)
			}
			if n := rb.accepted.Load(); n != 2 {
				t.Errorf("the backend accepted %d connections, want 2: the next request on a fresh one", n)
			}
		})
	}
}

// TestSplicedBodyAllocations: a proxied request whose 64 KiB response is
// spliced, over real sockets (in-memory connections cannot be spliced),
// allocates nothing in steady state: the pipe is the connection's, made
// once, and the splice steps are bound once with the pooled stream.
func TestSplicedBodyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(url, "http://"), MaxConns: 1}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	resp.KeepBodyBuffer = true
	req.SetRequestURI(url + "/bytes/65536")
	do := func() {
		if err := hc.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != fasthttp.StatusOK || len(resp.Body()) != 65536 {
			t.Fatalf("status %d, %d bytes", resp.StatusCode(), len(resp.Body()))
		}
	}
	for range 100 {
		do()
	}
	before := p.spliced.Load()
	if n := allocsPerRun(t, 2000, do); n > strayAllocs {
		t.Errorf("%.4f allocations per spliced request, want none", n)
	}
	if p.spliced.Load() == before {
		t.Error("nothing spliced: the test did not test the splice")
	}
}

// TestSplicedClientGone: a client that closes its connection in the middle
// of a spliced body ends the relay: the backend connection, with the rest
// of the body in its socket and maybe some in its pipe, is closed rather
// than reused, no failure is charged to the backend, and the next request
// gets its own body whole.
func TestSplicedClientGone(t *testing.T) {
	// Copied (-splice=false), the body streams the same way (it is over
	// 1 MiB), through memory.
	for _, disable := range []bool{false, true} {
		t.Run("splice="+strconv.FormatBool(!disable), func(t *testing.T) { testClientGone(t, disable) })
	}
}

func testClientGone(t *testing.T, disable bool) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, Splice: !disable, Health: HealthConfig{Interval: -1}})
	pipes := openPipes(t)
	c := dialProxy(t, url, 10*time.Second)
	io.WriteString(c, "GET /download/"+strconv.Itoa(32<<20)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b := p.Pool().Backends()[0]
	waitFor(t, "the backend connection closed", 10*time.Second, func() bool {
		return b.InFlight() == 0 && upstreamOf(b).hc.ConnsCount() == 0 && openPipes(t) <= pipes
	})
	if spliced := p.spliced.Load() > 0; spliced == disable {
		t.Errorf("spliced: %v", spliced)
	}
	if n := b.Failures(); n != 0 {
		t.Errorf("%d failed attempts recorded, want none: the client went away, not the backend", n)
	}
	resp2, err := newClient(t).Get(url + "/download/" + strconv.Itoa(3<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	if n, sum, err := patternSum(resp2.Body); err != nil || n != 3<<20 || sum != backend.PatternSHA256(3<<20) {
		t.Errorf("next body: %d bytes (%v), sha256 %s; want the backend's pattern", n, err, sum)
	}
}
