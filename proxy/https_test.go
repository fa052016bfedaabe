package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// noRedirects makes c hand back redirects instead of following them.
func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// TestRedirectHTTPSOverH2C redirects HTTP/2 with prior knowledge on the
// plain port as it does HTTP/1.1 there: the same 308 to the same Location,
// the health path proxied, a host that would change the URL refused, and
// nothing else reaching a backend in clear text.
func TestRedirectHTTPSOverH2C(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1, Path: "/healthz"},
		TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost")),
			RedirectHTTP: true, RedirectPort: 3443, HSTS: time.Hour},
		HTTP2: HTTP2Config{H2C: true},
	})
	clients := []struct {
		name  string
		c     *http.Client
		major int
	}{
		{"HTTP/1.1", noRedirects(newClient(t)), 1},
		{"h2c", noRedirects(newH2Client(t, nil)), 2},
	}
	cases := []struct {
		name, method, target, host, body string
		status                           int
		location                         string
	}{
		{"path and query", "GET", "/a/b?c=d&e", "shop.example.com:3030", "",
			http.StatusPermanentRedirect, "https://shop.example.com:3443/a/b?c=d&e"},
		{"escapes kept", "GET", "/a%20b/%2F?q=%41", "example.com", "",
			http.StatusPermanentRedirect, "https://example.com:3443/a%20b/%2F?q=%41"},
		{"POST keeps its method under 308", "POST", "/form", "example.com", "hi",
			http.StatusPermanentRedirect, "https://example.com:3443/form"},
		{"IPv6 host", "GET", "/", "[::1]:3030", "",
			http.StatusPermanentRedirect, "https://[::1]:3443/"},
		{"host that would change the URL", "GET", "/", "a!b.example", "",
			http.StatusBadRequest, ""},
		{"CONNECT names no resource: 405 as over TLS", "CONNECT", "", "example.com:443", "",
			http.StatusMethodNotAllowed, ""},
		{"health path proxied", "GET", "/healthz", "example.com", "", http.StatusOK, ""},
		{"health path with query proxied", "GET", "/healthz?full=1", "example.com", "", http.StatusOK, ""},
	}
	for _, cl := range clients {
		for _, tc := range cases {
			t.Run(cl.name+"/"+tc.name, func(t *testing.T) {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req := newRequest(t, tc.method, tp.plainURL+tc.target, body)
				req.Host = tc.host
				resp, got := do(t, cl.c, req)
				if resp.ProtoMajor != cl.major {
					t.Fatalf("answered over %s", resp.Proto)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tc.status)
				}
				if loc := resp.Header.Get("Location"); loc != tc.location {
					t.Errorf("Location %q, want %q", loc, tc.location)
				}
				if tc.status == http.StatusPermanentRedirect && got != string(reasonRedirect) {
					t.Errorf("body %q, want %q", got, reasonRedirect)
				}
				if v := resp.Header.Get(headerHSTS); v != "" {
					t.Errorf("plain HTTP got %s: %s", headerHSTS, v)
				}
			})
		}
	}
	if n := be.hits.Load(); n != 4 {
		t.Errorf("backend served %d requests, want the 2 health-path ones of each client", n)
	}

	// A gRPC call gets the redirect as the proxy's other answers to gRPC:
	// trailers-only, with the Location still there.
	req := newRequest(t, "POST", tp.plainURL+"/pkg.Svc/Method", strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, _ := do(t, clients[1].c, req)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Grpc-Status") != grpcInternal ||
		resp.Header.Get("Location") != "https://127.0.0.1:3443/pkg.Svc/Method" {
		t.Errorf("gRPC call: %d, grpc-status %q, grpc-message %q, Location %q", resp.StatusCode,
			resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message"), resp.Header.Get("Location"))
	}

	// Without :authority (or Host), the address the client reached, as
	// an HTTP/1.0 request without Host gets.
	status, location := rawH2Get(t, strings.TrimPrefix(tp.plainURL, "http://"), "/x?y")
	if status != "308" || location != "https://127.0.0.1:3443/x?y" {
		t.Errorf("without :authority: %s, Location %q; want 308 to https://127.0.0.1:3443/x?y", status, location)
	}

	// Over TLS nothing is redirected, on either protocol.
	for _, c := range []*http.Client{newTLSClient(t, ca.Pool()), newH2Client(t, ca.Pool())} {
		if status, body := get(t, c, tp.tlsURL("localhost", "/")); status != http.StatusOK || backendOf(body) != "a" {
			t.Errorf("over TLS: %d %q", status, body)
		}
	}
}

// rawH2Get sends one GET for path over h2c to addr, without :authority
// (which net/http's client always sends), and returns the response's
// :status and Location.
func rawH2Get(t *testing.T, addr, path string) (status, location string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}) //nolint:errcheck // into a buffer
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		switch f.Name {
		case ":status":
			status = f.Value
		case "location":
			location = f.Value
		}
	})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck() //nolint:errcheck // a failed write fails the read
			}
		case *http2.HeadersFrame:
			if f.StreamID == 1 {
				if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
					t.Fatal(err)
				}
				return status, location
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY: %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			t.Fatalf("stream reset: %v", f.ErrCode)
		}
	}
}

// TestRedirectHTTPSOptionsAsterisk: OPTIONS * asks about the server, not
// a resource, so the redirect has nothing to point at (it sent
// https://host/%2A, an OPTIONS of a resource named "*"). It passes, as
// CONNECT does, and gets what it gets without the redirect and over TLS:
// the backend's answer. OPTIONS of a path is still redirected. Over
// HTTP/1.1 and h2c alike. GET * is no request at all (RFC 9112 §3.2.4):
// over HTTP/1.1 it gets 400, as without the redirect and from nginx.
func TestRedirectHTTPSOptionsAsterisk(t *testing.T) {
	seen := make(chan string, 16)
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, ok := rb.readRequest(r)
			if !ok {
				return
			}
			seen <- req.Method + " " + req.RequestURI
			io.WriteString(c, "HTTP/1.1 200 OK\r\nAllow: GET, POST, OPTIONS\r\nContent-Length: 0\r\n\r\n")
		}
	})
	ca := testpki.NewCA(t, "test CA")
	tp := startTLSProxy(t, Config{
		Backends: []string{rb.URL()},
		Health:   HealthConfig{Interval: -1},
		TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost")),
			RedirectHTTP: true, RedirectPort: 3443},
		HTTP2: HTTP2Config{H2C: true},
	})
	clients := []struct {
		name  string
		c     *http.Client
		major int
	}{
		{"HTTP/1.1", noRedirects(newClient(t)), 1},
		{"h2c", noRedirects(newH2Client(t, nil)), 2},
	}
	status, rest := rawRequest(t, tp.plainURL, "GET * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, " 400 ") {
		t.Errorf("GET * over HTTP/1.1: %q, want 400\n%s", status, rest)
	}
	for _, cl := range clients {
		for _, tc := range []struct {
			target   string
			status   int
			location string
			backend  string // the request line the backend gets; "" for none
		}{
			{"*", http.StatusOK, "", "OPTIONS *"},
			{"/a", http.StatusPermanentRedirect, "https://example.com:3443/a", ""},
		} {
			t.Run(cl.name+"/"+tc.target, func(t *testing.T) {
				req := newRequest(t, http.MethodOptions, tp.plainURL+"/", nil)
				if tc.target == "*" {
					req.URL.Path, req.URL.Opaque = "", "*"
				} else {
					req.URL.Path = tc.target
				}
				req.Host = "example.com"
				resp, _ := do(t, cl.c, req)
				if resp.ProtoMajor != cl.major {
					t.Fatalf("answered over %s", resp.Proto)
				}
				if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
					t.Errorf("%d, Location %q; want %d, Location %q", resp.StatusCode, resp.Header.Get("Location"), tc.status, tc.location)
				}
				var got string
				select {
				case got = <-seen:
				default:
				}
				if got != tc.backend {
					t.Errorf("the backend got %q, want %q", got, tc.backend)
				}
				if tc.backend != "" && resp.Header.Get("Allow") != "GET, POST, OPTIONS" {
					t.Errorf("Allow %q: not the backend's answer", resp.Header.Get("Allow"))
				}
			})
		}
	}
}

// TestRedirectHTTPSExpectContinue redirects a plain-HTTP request that
// expects 100-continue before any backend sees it, as one that does not,
// instead of asking a backend and leaving its exchange half done.
func TestRedirectHTTPSExpectContinue(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	var alog logBuffer
	tp := startTLSProxy(t, Config{
		Backends:        []string{be.URL()},
		Health:          HealthConfig{Interval: -1},
		AccessLog:       &alog,
		AccessLogFormat: AccessLogJSON,
		TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost")),
			RedirectHTTP: true, RedirectPort: 3443},
	})
	c := dialProxy(t, tp.plainURL, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "POST /up?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(br, nil); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusContinue {
			break
		}
		t.Error("asked for the body of a request to redirect")
		io.WriteString(c, "hello")
	}
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://example.com:3443/up?x=1" {
		t.Errorf("got %d, Location %q; want 308 to https://example.com:3443/up?x=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	b := tp.Pool().Backends()[0]
	waitFor(t, "the backend to be let go", 5*time.Second, func() bool { return b.InFlight() == 0 })
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
	if n := b.Stats().Requests; n != 0 {
		t.Errorf("backend counted %d requests", n)
	}
	// Counted and logged as any answer.
	var counted uint64
	for _, n := range tp.Traffic().Snapshot().Requests {
		counted += n
	}
	if counted != 1 {
		t.Errorf("%d requests counted, want 1", counted)
	}
	line := jsonLine(t, accessLines(t, &alog, 1)[0])
	if line["status"] != float64(308) || line["uri"] != "/up?x=1" {
		t.Errorf("access log line %v, want the 308 for /up?x=1", line)
	}
}

// hstsClient is one of the four ways to reach a proxy with TLS and h2c:
// HSTS is due over the first two only. Each subtest makes its client after
// its proxy, so that the client's connections close before the proxy
// shuts down.
type hstsClient struct {
	name    string
	overTLS bool
	client  func(t *testing.T, roots *x509.CertPool) *http.Client
}

var hstsClients = []hstsClient{
	{"HTTP/1.1 over TLS", true, newTLSClient},
	{"HTTP/2 over TLS", true, newH2Client},
	{"HTTP/1.1", false, func(t *testing.T, _ *x509.CertPool) *http.Client { return newClient(t) }},
	{"h2c", false, func(t *testing.T, _ *x509.CertPool) *http.Client { return newH2Client(t, nil) }},
}

// checkHSTS fails t unless resp carries exactly the HSTS value want over
// TLS, and none over plain HTTP.
func checkHSTS(t *testing.T, resp *http.Response, overTLS bool, want string) {
	t.Helper()
	got := resp.Header.Values(headerHSTS)
	switch {
	case overTLS && (len(got) != 1 || got[0] != want):
		t.Errorf("over TLS: %s %q, want one %q", headerHSTS, got, want)
	case !overTLS && len(got) != 0:
		t.Errorf("over plain HTTP: %s %q, want none", headerHSTS, got)
	}
}

// TestHSTSOnOwnAnswers: every answer over TLS carries HSTS, the proxy's
// own as much as a backend's, over HTTP/1.1 and HTTP/2 alike (as nginx's
// add_header ... always and Caddy send it); none over plain HTTP.
func TestHSTSOnOwnAnswers(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	files := certFiles(t, ca.Issue(t, "localhost"))
	up := startBackend(t, "up")
	down := startBackend(t, "down")
	down.kill()
	frozen := startBackend(t, "frozen")
	frozen.freeze()
	// HTTP/2 backends: HTTP/1.1 clients reach them through the net/http
	// path too.
	h2up := startH2Backend(t, "h2up", nil)
	h2down := startH2Backend(t, "h2down", nil)
	h2down.kill()

	cases := []struct {
		name   string
		cfg    Config
		before int // requests sent first, whose answers are not looked at
		method string
		target string
		body   string
		grpc   bool
		status int
	}{
		{name: "proxied", cfg: Config{Backends: []string{up.URL()}}, status: http.StatusOK},
		{name: "502 backend down", cfg: Config{Backends: []string{down.URL()}, Retries: -1}, status: http.StatusBadGateway},
		{name: "504 no answer in time", cfg: Config{Backends: []string{frozen.URL()}, Retries: -1, TryTimeout: 50 * time.Millisecond},
			status: http.StatusGatewayTimeout},
		{name: "405 TRACE", cfg: Config{Backends: []string{up.URL()}}, method: "TRACE", status: http.StatusMethodNotAllowed},
		{name: "404 no route", cfg: Config{
			Pools:  []PoolConfig{{Name: "a", Backends: []string{up.URL()}}, {Name: "b", Backends: []string{up.URL()}}},
			Routes: []Route{{PathPrefix: "/a/", Pool: "a"}, {PathPrefix: "/b/", Pool: "b"}},
		}, target: "/elsewhere", status: http.StatusNotFound},
		{name: "429 over the rate", cfg: Config{Backends: []string{up.URL()}, RateLimit: 0.001, RateBurst: 1},
			before: 1, status: http.StatusTooManyRequests},
		{name: "413 body too large", cfg: Config{Backends: []string{up.URL()}, MaxBodySize: 10},
			method: "POST", body: strings.Repeat("x", 100), status: http.StatusRequestEntityTooLarge},
		{name: "gRPC error", cfg: Config{Backends: []string{down.URL()}, Retries: -1}, method: "POST", grpc: true},
		{name: "proxied from an HTTP/2 backend", cfg: Config{Backends: []string{h2up.URL()}}, status: http.StatusOK},
		{name: "502 HTTP/2 backend down", cfg: Config{Backends: []string{h2down.URL()}, Retries: -1}, status: http.StatusBadGateway},
	}
	for _, tc := range cases {
		for _, cl := range hstsClients {
			t.Run(tc.name+"/"+cl.name, func(t *testing.T) {
				cfg := tc.cfg
				cfg.Health.Interval = -1
				cfg.TLS = &TLSConfig{Certificates: files, HSTS: 365 * 24 * time.Hour}
				cfg.HTTP2.H2C = true
				tp := startTLSProxy(t, cfg)
				client := cl.client(t, ca.Pool())
				base := tp.plainURL
				if cl.overTLS {
					base = tp.tlsURL("localhost", "")
				}
				method, target := tc.method, tc.target
				if method == "" {
					method = "GET"
				}
				if target == "" {
					target = "/"
				}
				send := func() *http.Response {
					var body io.Reader
					if tc.body != "" {
						body = strings.NewReader(tc.body)
					}
					req := newRequest(t, method, base+target, body)
					if tc.grpc {
						req.Header.Set("Content-Type", "application/grpc")
						req.Header.Set("TE", "trailers")
					}
					resp, _ := do(t, client, req)
					return resp
				}
				for range tc.before {
					send()
				}
				resp := send()
				want := tc.status
				if tc.grpc {
					// Trailers-only over HTTP/2; HTTP/1.1 gets the
					// HTTP answer.
					want = http.StatusBadGateway
					if resp.ProtoMajor == 2 {
						want = http.StatusOK
						if resp.Header.Get("Grpc-Status") != "14" {
							t.Errorf("grpc-status %q, want 14", resp.Header.Get("Grpc-Status"))
						}
					}
				}
				if resp.StatusCode != want {
					t.Fatalf("status %d, want %d", resp.StatusCode, want)
				}
				checkHSTS(t, resp, cl.overTLS, "max-age=31536000")
			})
		}
	}
}

// TestHSTSOnBusyAnswer: the 503 of backends at their max_conns carries HSTS
// over TLS too.
func TestHSTSOnBusyAnswer(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	files := certFiles(t, ca.Issue(t, "localhost"))
	be := startBackend(t, "a")
	for _, cl := range hstsClients {
		t.Run(cl.name, func(t *testing.T) {
			tp := startTLSProxy(t, Config{
				Backends:   []string{be.URL() + " max_conns=1"},
				Health:     HealthConfig{Interval: -1},
				TryTimeout: -1,
				TLS:        &TLSConfig{Certificates: files, HSTS: time.Hour},
				HTTP2:      HTTP2Config{H2C: true},
			})
			client := cl.client(t, ca.Pool())
			base := tp.plainURL
			if cl.overTLS {
				base = tp.tlsURL("localhost", "")
			}
			be.freeze()
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(base + "/held")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			defer wg.Wait()
			defer be.thaw()
			waitFor(t, "the first request to be held", 5*time.Second, func() bool { return be.busy.Load() == 1 })
			resp, _ := do(t, client, newRequest(t, "GET", base+"/", nil))
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
			checkHSTS(t, resp, cl.overTLS, "max-age=3600")
		})
	}
}

// TestHSTSOnUnreadRequests: the answers to requests the server could not
// read (handleReadError) and to refused expectations (expectContinue),
// written before any handler runs, carry HSTS over TLS, and not over plain
// HTTP.
func TestHSTSOnUnreadRequests(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	files := certFiles(t, ca.Issue(t, "localhost"))
	refusing := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		if _, err := http.ReadRequest(r); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n")
	})
	tp := startTLSProxy(t, Config{
		Backends:            []string{refusing.URL()},
		Health:              HealthConfig{Interval: -1},
		MaxHeaderSize:       4096,
		MaxBodySize:         1000,
		ClientHeaderTimeout: 200 * time.Millisecond,
		TLS:                 &TLSConfig{Certificates: files, HSTS: time.Hour},
	})
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"431 header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8000) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge},
		{"400 malformed", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", http.StatusBadRequest},
		{"408 header too slow", "GET / HTTP/1.1\r\nHost: x\r\n", http.StatusRequestTimeout},
		{"413 expectation over the limit", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
			http.StatusRequestEntityTooLarge},
		{"backend refuses the expectation", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nExpect: 100-continue\r\n\r\n",
			http.StatusUnauthorized},
	} {
		for _, overTLS := range []bool{true, false} {
			name := tc.name + "/plain"
			if overTLS {
				name = tc.name + "/TLS"
			}
			t.Run(name, func(t *testing.T) {
				var c net.Conn
				if overTLS {
					c = dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
				} else {
					var err error
					if c, err = net.Dial("tcp", strings.TrimPrefix(tp.plainURL, "http://")); err != nil {
						t.Fatal(err)
					}
					defer c.Close()
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(c, tc.raw); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("reading the answer: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				checkHSTS(t, resp, overTLS, "max-age=3600")
			})
		}
	}
}
