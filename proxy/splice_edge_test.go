package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// checkSpliced checks that p has spliced a body, or none. The count follows
// the bytes out: the client may have them before it is taken.
func checkSpliced(t *testing.T, p *Proxy, want bool) {
	t.Helper()
	if want {
		waitFor(t, "bytes counted as spliced", 5*time.Second, func() bool { return p.spliced.Load() > 0 })
	} else if n := p.spliced.Load(); n != 0 {
		t.Errorf("%d bytes spliced, want none", n)
	}
}

// splicedMore checks that p has spliced more than before.
func splicedMore(t *testing.T, p *Proxy, before int64) {
	t.Helper()
	waitFor(t, "a body spliced", 5*time.Second, func() bool { return p.spliced.Load() > before })
}

// TestSplicedBodyPastContentLength: a backend that sends more than its
// Content-Length, in the same write as the body's end, has its connection
// closed rather than reused, whether the body is spliced or streamed (as
// one over 1 MiB is without splicing): the bytes past the body are not the
// answer to the next request, whoever sends it. (A body read whole, as
// one of 64 KiB is without splicing, is read from the socket up to its end
// and not a byte more: bytes past it go unseen there.)
func TestSplicedBodyPastContentLength(t *testing.T) {
	for _, c := range []struct {
		size    int
		disable bool
	}{{64 << 10, false}, {3 << 20, false}, {3 << 20, true}} {
		size, disable := c.size, c.disable
		t.Run(strconv.Itoa(size)+"/splice="+strconv.FormatBool(!disable), func(t *testing.T) {
			body := strings.Repeat("b", size)
			smuggled := "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nWRONG!!"
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				for {
					req, ok := rb.readRequest(r)
					if !ok {
						return
					}
					if req.URL.Path == "/big" {
						// All in one write: the extra bytes come with the body's end.
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"+body+smuggled)
						continue
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nright")
				}
			})
			p, url := startProxy(t, Config{Backends: []string{rb.URL()}, Splice: !disable, Health: HealthConfig{Interval: -1}})
			client := newClient(t)
			if status, got := get(t, client, url+"/big"); status != http.StatusOK || got != body {
				t.Fatalf("first request: %d, %d bytes", status, len(got))
			}
			checkSpliced(t, p, !disable)
			if status, got := get(t, newClient(t), url+"/next"); status != http.StatusOK || got != "right" {
				t.Errorf("next request: %d %q, want 200 \"right\": the bytes past the first body answered it", status, got)
			}
		})
	}
}

// TestSplicedBodyConnectionClose: a backend that answers with Connection:
// close (or as HTTP/1.0 without keep-alive), and takes no other request on
// that connection, has it closed after the body, spliced or streamed, as
// after a body read whole: it is not given back for the next request,
// which would wait there for an answer that never comes (or find it
// closed), and a POST, which cannot be sent again, would fail.
func TestSplicedBodyConnectionClose(t *testing.T) {
	for _, tc := range []struct{ name, status, header string }{
		{"Connection: close", "HTTP/1.1 200 OK", "Connection: close\r\n"},
		{"HTTP/1.0", "HTTP/1.0 200 OK", ""},
	} {
		// 64 KiB: spliced, or read whole; 3 MiB: spliced, or streamed.
		for _, c := range []struct {
			size    int
			disable bool
		}{{64 << 10, false}, {64 << 10, true}, {3 << 20, false}, {3 << 20, true}} {
			size, disable := c.size, c.disable
			t.Run(tc.name+"/"+strconv.Itoa(size)+"/splice="+strconv.FormatBool(!disable), func(t *testing.T) {
				body := strings.Repeat("b", size)
				release := make(chan struct{})
				defer close(release)
				rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
					req, ok := rb.readRequest(r)
					if !ok {
						return
					}
					if req.Method == http.MethodGet {
						fmt.Fprintf(c, "%s\r\n%sContent-Length: %d\r\n\r\n%s", tc.status, tc.header, size, body)
						// As it said, it takes no other request on this
						// connection: it reads no more, and keeps it open
						// until the test ends (a request sent on it would
						// wait for an answer that never comes).
						<-release
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				})
				p, url := startProxy(t, Config{Backends: []string{rb.URL()}, Splice: !disable,
					BackendTimeout: 5 * time.Second, Health: HealthConfig{Interval: -1}})
				if status, got := get(t, newClient(t), url+"/"); status != http.StatusOK || got != body {
					t.Fatalf("GET: %d, %d bytes", status, len(got))
				}
				checkSpliced(t, p, !disable)
				b := p.Pool().Backends()[0]
				resp, err := newClient(t).Post(url+"/", "text/plain", strings.NewReader("x"))
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(got) != "ok" {
					t.Errorf("POST: %d %q, want 200 \"ok\" on a fresh connection", resp.StatusCode, got)
				}
				if n := b.Failures(); n != 0 {
					t.Errorf("%d failed attempts, want none", n)
				}
				if n := rb.accepted.Load(); n != 2 {
					t.Errorf("the backend accepted %d connections, want 2: the POST on a fresh one", n)
				}
			})
		}
	}
}

// TestSplicedBodyFlushInterval: with FlushInterval -1, a spliced body's
// header and first bytes reach the client as they come, as a streamed
// body's do, not once fasthttp's write buffer has filled: a backend that
// sends its header and a few bytes and then pauses has them at the client
// during the pause.
func TestSplicedBodyFlushInterval(t *testing.T) {
	const size, first = 64 << 10, 100
	release := make(chan struct{})
	defer close(release)
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		if _, ok := rb.readRequest(r); !ok {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", size, strings.Repeat("f", first))
		<-release
		io.WriteString(c, strings.Repeat("f", size-first))
	})
	p, url := startProxy(t, Config{Splice: true, Backends: []string{rb.URL()}, FlushInterval: -1, Health: HealthConfig{Interval: -1}})
	c := dialProxy(t, url, 3*time.Second)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response header while the backend pauses: %v", err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, first)); err != nil {
		t.Fatalf("the first %d bytes did not come while the backend pauses: %v", first, err)
	}
	release <- struct{}{}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size-first {
		t.Errorf("rest of the body: %d bytes (%v), want %d", n, err, size-first)
	}
	checkSpliced(t, p, true)
}

// TestGuardConnReadFromAllocations: the client connection's ReadFrom,
// which the server's write buffer hands every streamed body of known
// length that is not spliced (one over 1 MiB without Splice, a hedged
// attempt's), copies it without allocating.
func TestGuardConnReadFromAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, c, peer := tcpPair(t)
	g := &guardConn{}
	g.sockConn.init(c)
	go func() { // the client, reading all
		buf := make([]byte, 64<<10)
		for {
			if _, err := peer.Read(buf); err != nil {
				return
			}
		}
	}()
	body := bytes.NewReader(make([]byte, 100<<10))
	lr := &io.LimitedReader{}
	var r io.Reader = onlyReader{body} // as a streamedBody: a Reader only
	if n := testing.AllocsPerRun(100, func() {
		body.Seek(0, io.SeekStart) //nolint:errcheck // in memory
		*lr = io.LimitedReader{R: r, N: body.Size()}
		if n, err := g.ReadFrom(lr); err != nil || n != body.Size() {
			t.Fatalf("ReadFrom: %d, %v", n, err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per body copied, want none", n)
	}
}

// onlyReader hides all but Read.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestSplicedBodyClients: a spliced body reaches clients whole and in
// order however they ask: two requests pipelined in one write (the first
// answer's body spliced behind the header, the second's after it), an
// HTTP/1.0 client, and a POST that expected 100-continue.
func TestSplicedBodyClients(t *testing.T) {
	const size = 200_000
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	path := "/download/" + strconv.Itoa(size)
	read := func(t *testing.T, br *bufio.Reader, want int64) *http.Response {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, sum, err := patternSum(resp.Body)
		if err != nil || n != want || sum != backend.PatternSHA256(want) {
			t.Fatalf("status %d, body of %d bytes (%v); want %d bytes of the backend's pattern", resp.StatusCode, n, err, want)
		}
		return resp
	}
	t.Run("pipelined", func(t *testing.T) {
		defer splicedMore(t, p, p.spliced.Load())
		c := dialProxy(t, url, 10*time.Second)
		defer c.Close()
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\nGET /download/100 HTTP/1.1\r\nHost: x\r\n\r\nGET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		read(t, br, size)
		read(t, br, 100)
		read(t, br, size)
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		defer splicedMore(t, p, p.spliced.Load())
		c := dialProxy(t, url, 10*time.Second)
		defer c.Close()
		io.WriteString(c, "GET "+path+" HTTP/1.0\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		read(t, br, size)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("after the body: %v, want the connection closed", err)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		defer splicedMore(t, p, p.spliced.Load())
		c := dialProxy(t, url, 10*time.Second)
		defer c.Close()
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("%q (%v), want 100 Continue", line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello")
		read(t, br, size)
		// And the connection carries the next request.
		io.WriteString(c, "GET /download/100 HTTP/1.1\r\nHost: x\r\n\r\n")
		read(t, br, 100)
	})
	if n := p.Pool().Backends()[0].Failures(); n != 0 {
		t.Errorf("%d failed attempts, want none", n)
	}
}

// TestSplicedBodyH2C: on a plain listener that also takes HTTP/2 with
// prior knowledge (H2C), an HTTP/1.1 client's body is spliced as on any
// plain listener, not streamed through the server's write buffer instead.
func TestSplicedBodyH2C(t *testing.T) {
	const size = 256 << 10
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, HTTP2: HTTP2Config{H2C: true}, Health: HealthConfig{Interval: -1}})
	resp, err := newClient(t).Get(url + "/download/" + strconv.Itoa(size))
	if err != nil {
		t.Fatal(err)
	}
	n, sum, err := patternSum(resp.Body)
	resp.Body.Close()
	if err != nil || n != size || sum != backend.PatternSHA256(size) {
		t.Fatalf("body of %d bytes (%v); want %d bytes of the backend's pattern", n, err, size)
	}
	checkSpliced(t, p, true)
}

// TestSplicedBodyServerSettings: a spliced body keeps to the settings of
// the server Proxy.Server returns: its WriteTimeout ends the response of a
// client that stops reading (and the backend connection with it, not
// counted against the backend), and with ReduceMemoryUsage, spliced bodies
// pipelined on one connection arrive whole and in order.
func TestSplicedBodyServerSettings(t *testing.T) {
	t.Run("WriteTimeout", func(t *testing.T) {
		be := startBackend(t, "a")
		p, url := startProxyWith(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}},
			func(s *fasthttp.Server) { s.WriteTimeout = 300 * time.Millisecond })
		stopReading(t, p, url, "the response cut at the write timeout")
	})
	t.Run("ReduceMemoryUsage", func(t *testing.T) {
		be := startBackend(t, "a")
		p, url := startProxyWith(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}},
			func(s *fasthttp.Server) { s.ReduceMemoryUsage = true })
		c := dialProxy(t, url, 10*time.Second)
		defer c.Close()
		const size = 200_000
		req := "GET /download/" + strconv.Itoa(size) + " HTTP/1.1\r\nHost: x\r\n\r\n"
		br := bufio.NewReader(c)
		read := func() {
			t.Helper()
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			n, sum, err := patternSum(resp.Body)
			if err != nil || n != size || sum != backend.PatternSHA256(size) {
				t.Fatalf("body of %d bytes (%v); want %d bytes of the backend's pattern", n, err, size)
			}
		}
		io.WriteString(c, req+req) // pipelined
		read()
		read()
		io.WriteString(c, req) // and one after the connection went idle
		read()
		checkSpliced(t, p, true)
	})
}

// TestSplicedBodyNoPipe: when a pipe cannot be made (the process is out of
// descriptors), a body that would be spliced is copied through memory, whole,
// and the next one, once descriptors are free again, is spliced.
func TestSplicedBodyNoPipe(t *testing.T) {
	const size = 256 << 10
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	tr := &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	download := func(size int) {
		t.Helper()
		resp, err := client.Get(url + "/download/" + strconv.Itoa(size))
		if err != nil {
			t.Fatal(err)
		}
		n, sum, err := patternSum(resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(size) || sum != backend.PatternSHA256(int64(size)) {
			t.Fatalf("body of %d bytes (%v); want %d bytes of the backend's pattern", n, err, size)
		}
	}
	download(100) // both connections made, and kept alive: no pipe yet

	// Take every descriptor but one under a lowered limit.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(fds)) + 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip("cannot lower the descriptor limit:", err)
	}
	var held []int
	release := func() {
		for _, fd := range held {
			syscall.Close(fd)
		}
		held = nil
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) //nolint:errcheck // back as it was
	}
	defer release()
	for {
		fd, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		held = append(held, fd)
	}
	syscall.Close(held[len(held)-1]) // one free: a pipe needs two
	held = held[:len(held)-1]

	download(size)
	checkSpliced(t, p, false)
	release()
	download(size)
	checkSpliced(t, p, true)
	if n := p.Pool().Backends()[0].Failures(); n != 0 {
		t.Errorf("%d failed attempts, want none", n)
	}
}

// TestSplicedClientStopsReading: a client that stops reading a spliced
// body has its connection dropped at the client idle timeout, which times
// a write to it that waits, as for a body copied; the backend connection
// is closed with the relay, and the backend not blamed.
func TestSplicedClientStopsReading(t *testing.T) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Splice: true, Backends: []string{be.URL()}, ClientIdleTimeout: 300 * time.Millisecond,
		BackendTimeout: 10 * time.Second, Health: HealthConfig{Interval: -1}})
	stopReading(t, p, url, "the response dropped at the client idle timeout")
}

// stopReading asks p for a large spliced body, reads its header and no
// more, and checks that the proxy ends the response (what ends it: until)
// with the backend connection closed and no failure counted against the
// backend.
func stopReading(t *testing.T, p *Proxy, url, until string) {
	t.Helper()
	c := dialProxy(t, url, 10*time.Second)
	defer c.Close()
	io.WriteString(c, "GET /download/"+strconv.Itoa(64<<20)+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	b := p.Pool().Backends()[0]
	waitFor(t, until, 10*time.Second, func() bool {
		return b.InFlight() == 0 && upstreamOf(b).hc.ConnsCount() == 0
	})
	checkSpliced(t, p, true)
	if n := b.Failures(); n != 0 {
		t.Errorf("%d failed attempts, want none: the client stopped reading", n)
	}
}
