package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// echoOver GETs /echo through client and returns what the backend saw.
func echoOver(t *testing.T, client *http.Client, url string) (backend.Echo, *http.Response) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var e backend.Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("GET %s: status %d, decoding echo: %v", url, resp.StatusCode, err)
	}
	return e, resp
}

func header(e backend.Echo, name string) []string {
	var vs []string
	for k, v := range e.Headers {
		if strings.EqualFold(k, name) {
			vs = append(vs, v...)
		}
	}
	return vs
}

// TestTLSTermination proxies a request received over TLS to a plain HTTP
// backend: the handshake offers only what the issue allows, and the backend
// learns the client's scheme from X-Forwarded-Proto alone.
func TestTLSTermination(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1},
		TLS:      &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost", "127.0.0.1"))},
	})
	client := newTLSClient(t, ca.Pool())

	e, resp := echoOver(t, client, tp.tlsURL("localhost", "/echo?x=1"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	st := resp.TLS
	if st.Version != tls.VersionTLS13 || !st.HandshakeComplete {
		t.Errorf("TLS state: version %s, handshake complete %v", tls.VersionName(st.Version), st.HandshakeComplete)
	}
	if got := header(e, "X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
		t.Errorf("X-Forwarded-Proto over TLS = %q, want [https]", got)
	}
	if e.URI != "/echo?x=1" || e.Proto != "HTTP/1.1" {
		t.Errorf("backend saw %s %s", e.URI, e.Proto)
	}

	// The plain listener beside it still answers, as http.
	e, _ = echoOver(t, newClient(t), tp.plainURL+"/echo")
	if got := header(e, "X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
		t.Errorf("X-Forwarded-Proto over plain HTTP = %q, want [http]", got)
	}

	// ALPN: a client offering h2 first gets it; one offering http/1.1
	// alone gets that.
	c := dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), NextProtos: []string{"h2", "http/1.1"}})
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN chose %q, want h2", p)
	}
	c = dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("ALPN chose %q, want http/1.1", p)
	}

	// With HTTP/2 disabled, a client offering h2 first gets http/1.1.
	cfg := Config{Backends: []string{be.URL()}, TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))}}
	cfg.HTTP2.Disable = true
	tp = startTLSProxy(t, cfg)
	c = dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), NextProtos: []string{"h2", "http/1.1"}})
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Errorf("HTTP/2 disabled: ALPN chose %q, want http/1.1", p)
	}
}

// TestTLSProtocolFloor refuses what a modern server refuses: TLS below the
// minimum, and TLS 1.2 suites without forward secrecy or AEAD.
func TestTLSProtocolFloor(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	leaf := ca.Issue(t, "localhost")
	for _, tc := range []struct {
		name   string
		min    uint16
		client *tls.Config
		ok     bool
	}{
		{"TLS 1.3", 0, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2", 0, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.1 refused", 0, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0 refused", 0, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"CBC suite refused", 0, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2 refused at min 1.3", tls.VersionTLS13, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		{"TLS 1.3 at min 1.3", tls.VersionTLS13, &tls.Config{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := startTLSProxy(t, Config{
				Backends: []string{be.URL()},
				Health:   HealthConfig{Interval: -1},
				TLS:      &TLSConfig{Certificates: certFiles(t, leaf), MinVersion: tc.min},
			})
			cfg := tc.client
			cfg.ServerName, cfg.RootCAs = "localhost", ca.Pool()
			c, err := tls.Dial("tcp", tp.tlsAddr, cfg)
			if err == nil {
				c.Close()
			}
			if tc.ok && err != nil {
				t.Errorf("handshake failed: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("handshake succeeded with %s", tls.VersionName(c.ConnectionState().Version))
			}
		})
	}
}

// TestTLSSNI picks the certificate by the name the client asks for.
func TestTLSSNI(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	def, b, wild := ca.Issue(t, "a.test"), ca.Issue(t, "b.test"), ca.Issue(t, "*.wild.test")
	be := startBackend(t, "a")
	tp := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1},
		TLS:      &TLSConfig{Certificates: certFiles(t, def, b, wild)},
	})
	for _, tc := range []struct {
		sni  string
		want *testpki.Leaf
	}{
		{"a.test", def},
		{"b.test", b},
		{"B.Test", b},
		{"x.wild.test", wild},
		{"y.x.wild.test", def}, // a wildcard covers one label only
		{"unknown.test", def},
		{"", def}, // no SNI, as when a client connects by IP address
	} {
		// Which certificate came is the question here, not whether it
		// verifies for the name (the fallback does not).
		c := dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		got := c.ConnectionState().PeerCertificates[0]
		if got.SerialNumber.Cmp(tc.want.Cert.SerialNumber) != 0 {
			t.Errorf("SNI %q got the certificate for %v, want %v", tc.sni, got.DNSNames, tc.want.Cert.DNSNames)
		}
		c.Close()
	}
}

// TestTLSSessionResumption resumes a session with a ticket instead of a full
// handshake.
func TestTLSSessionResumption(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1},
		TLS:      &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), MaxVersion: version,
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i := range 2 {
			c := dialTLS(t, tp.tlsAddr, cfg)
			// A TLS 1.3 ticket arrives after the handshake: read a response.
			if status := requestOn(t, c, "localhost"); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			if resumed := c.ConnectionState().DidResume; resumed != (i == 1) {
				t.Errorf("%s connection %d: resumed %v", tls.VersionName(version), i, resumed)
			}
			c.Close()
		}
	}
}

// requestOn sends a GET / on an open connection and returns the status.
func requestOn(t testing.TB, c net.Conn, host string) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n"); err != nil {
		t.Fatalf("writing request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedirectHTTPS answers plain HTTP with 308 to the same host and path
// on the TLS port, except the health path.
func TestRedirectHTTPS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	files := certFiles(t, ca.Issue(t, "localhost"))
	tp := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1, Path: "/healthz"},
		TLS:      &TLSConfig{Certificates: files, RedirectHTTP: true, RedirectPort: 3443},
	})
	for _, tc := range []struct {
		name, raw, status, location string
	}{
		{"path and query", "GET /a/b?c=d&e HTTP/1.1\r\nHost: shop.example.com:3030\r\n\r\n",
			"HTTP/1.1 308 Permanent Redirect", "https://shop.example.com:3443/a/b?c=d&e"},
		{"POST keeps its method under 308", "POST /form HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nhi",
			"HTTP/1.1 308 Permanent Redirect", "https://example.com:3443/form"},
		{"IPv6 host", "GET / HTTP/1.1\r\nHost: [::1]:3030\r\n\r\n",
			"HTTP/1.1 308 Permanent Redirect", "https://[::1]:3443/"},
		{"no Host", "GET /x HTTP/1.0\r\n\r\n",
			"HTTP/1.1 308 Permanent Redirect", "https://127.0.0.1:3443/x"},
		{"absolute form", "GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"HTTP/1.1 308 Permanent Redirect", "https://example.com:3443/p?q"},
		{"host that would change the URL", "GET / HTTP/1.1\r\nHost: evil.test/x?\r\n\r\n",
			"HTTP/1.1 400 Bad Request", ""},
		{"health path proxied", "GET /healthz HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"HTTP/1.1 200 OK", ""},
		{"health path with query proxied", "GET /healthz?full=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
			"HTTP/1.1 200 OK", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Connection: close, so that rawRequest need not wait for the
			// proxy to give up on the connection.
			raw := strings.Replace(tc.raw, "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1)
			status, rest := rawRequest(t, tp.plainURL, raw)
			if status != tc.status {
				t.Fatalf("status %q, want %q", status, tc.status)
			}
			loc := ""
			for _, line := range strings.Split(rest, "\r\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Location") {
					loc = strings.TrimSpace(v)
				}
			}
			if loc != tc.location {
				t.Errorf("Location %q, want %q", loc, tc.location)
			}
		})
	}
	if n := be.hits.Load(); n != 2 {
		t.Errorf("backend served %d requests, want the 2 health-path ones", n)
	}

	// Over TLS nothing is redirected; the 443 default leaves the port out.
	status, body := get(t, newTLSClient(t, ca.Pool()), tp.tlsURL("localhost", "/"))
	if status != http.StatusOK || backendOf(body) != "a" {
		t.Errorf("over TLS: %d %q", status, body)
	}
	tp443 := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1},
		TLS:      &TLSConfig{Certificates: files, RedirectHTTP: true},
	})
	_, rest := rawRequest(t, tp443.plainURL, "GET /x HTTP/1.1\r\nHost: example.com:80\r\nConnection: close\r\n\r\n")
	if !strings.Contains(rest, "Location: https://example.com/x\r\n") {
		t.Errorf("redirect to port 443 names the port or is missing:\n%s", rest)
	}

	// A health path of / (the default) is the home page: redirected too.
	tpRoot := startTLSProxy(t, Config{
		Backends: []string{be.URL()},
		Health:   HealthConfig{Interval: -1, Path: "/"},
		TLS:      &TLSConfig{Certificates: files, RedirectHTTP: true},
	})
	for _, uri := range []string{"/", "/?utm=1"} {
		status, rest := rawRequest(t, tpRoot.plainURL, "GET "+uri+" HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
		if status != "HTTP/1.1 308 Permanent Redirect" || !strings.Contains(rest, "Location: https://example.com"+uri+"\r\n") {
			t.Errorf("GET %s with health path /: %q\n%s, want a 308 to https", uri, status, rest)
		}
	}
}

// TestHSTS adds Strict-Transport-Security to TLS responses only, and leaves
// a backend's own policy alone.
func TestHSTS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	plain := startBackend(t, "a")
	own := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			if _, ok := rb.readRequest(r); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=60; includeSubDomains\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	leaf := ca.Issue(t, "localhost")
	for _, tc := range []struct {
		backend, overTLS, overPlain string
	}{
		{plain.URL(), "max-age=31536000", ""},
		{own.URL(), "max-age=60; includeSubDomains", "max-age=60; includeSubDomains"},
	} {
		tp := startTLSProxy(t, Config{
			Backends: []string{tc.backend},
			Health:   HealthConfig{Interval: -1},
			TLS:      &TLSConfig{Certificates: certFiles(t, leaf), HSTS: 365 * 24 * time.Hour},
		})
		resp, err := newTLSClient(t, ca.Pool()).Get(tp.tlsURL("localhost", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := strings.Join(resp.Header.Values("Strict-Transport-Security"), " | "); got != tc.overTLS {
			t.Errorf("over TLS: Strict-Transport-Security %q, want %q", got, tc.overTLS)
		}
		resp, err = newClient(t).Get(tp.plainURL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := strings.Join(resp.Header.Values("Strict-Transport-Security"), " | "); got != tc.overPlain {
			t.Errorf("over plain HTTP: Strict-Transport-Security %q, want %q", got, tc.overPlain)
		}
	}
}

// TestNewRejectsBadTLSConfig fails at start, naming the file at fault.
func TestNewRejectsBadTLSConfig(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	good := certFiles(t, ca.Issue(t, "a.test"), ca.Issue(t, "b.test"))
	dir := t.TempDir()
	garbage := dir + "/garbage.pem"
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One file with the key first, then the certificate, as HAProxy takes
	// them: good for both.
	combined := dir + "/combined.pem"
	leaf := ca.Issue(t, "c.test")
	if err := os.WriteFile(combined, append(append([]byte{}, leaf.KeyPEM...), leaf.CertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Backends: []string{"http://127.0.0.1:1"}, Logger: discardLogger(),
		TLS: &TLSConfig{Certificates: []CertificateFiles{{combined, combined}}}})
	if err != nil {
		t.Fatalf("a combined key and certificate file: %v", err)
	}
	p.Close()
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"no certificates", TLSConfig{}, "no certificates"},
		{"missing certificate", TLSConfig{Certificates: []CertificateFiles{{dir + "/nope.crt", good[0].KeyFile}}},
			`TLS certificate "` + dir + `/nope.crt": no such file or directory`},
		{"missing key", TLSConfig{Certificates: []CertificateFiles{{good[0].CertFile, dir + "/nope.key"}}},
			`TLS key "` + dir + `/nope.key": no such file or directory`},
		{"key of another certificate", TLSConfig{Certificates: []CertificateFiles{{good[0].CertFile, good[1].KeyFile}}},
			`TLS key "` + good[1].KeyFile + `": does not match certificate "` + good[0].CertFile + `"`},
		{"swapped", TLSConfig{Certificates: []CertificateFiles{{good[0].KeyFile, good[0].CertFile}}},
			`TLS certificate "` + good[0].KeyFile + `": holds a private key, not a certificate`},
		{"not PEM", TLSConfig{Certificates: []CertificateFiles{{garbage, good[0].KeyFile}}},
			`TLS certificate "` + garbage + `": no PEM certificate found`},
		{"key not PEM", TLSConfig{Certificates: []CertificateFiles{{good[0].CertFile, garbage}}},
			`TLS key "` + garbage + `"`},
		{"second pair broken", TLSConfig{Certificates: []CertificateFiles{good[0], {good[1].CertFile, good[0].KeyFile}}},
			`does not match certificate "` + good[1].CertFile + `"`},
		{"TLS 1.1", TLSConfig{Certificates: good, MinVersion: tls.VersionTLS11}, "want TLS 1.2 or 1.3"},
		{"HSTS under a second", TLSConfig{Certificates: good, HSTS: time.Millisecond}, "HSTS max-age 1ms"},
		{"redirect port", TLSConfig{Certificates: good, RedirectHTTP: true, RedirectPort: 70000}, "redirect port 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tlsCfg := tc.tls
			p, err := New(Config{Backends: []string{"http://127.0.0.1:1"}, Logger: discardLogger(), TLS: &tlsCfg})
			if err == nil {
				p.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}

	p, err = New(Config{Backends: []string{"http://127.0.0.1:1"}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ServeTLS(nil); err == nil || !strings.Contains(err.Error(), "needs Config.TLS") {
		t.Errorf("ServeTLS without TLS: %v", err)
	}
	if p.TLSConfig() != nil || p.ReloadCertificates() != nil {
		t.Error("a proxy without TLS has a TLS configuration or reloads")
	}
}

// TestTLSTimeouts applies the watchdog's limits to TLS connections: an idle
// client, a client stuck in its handshake and a slow https backend are cut
// off as their plain counterparts are.
func TestTLSTimeouts(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	slow := startTLSBackend(t, "slow", ca.Issue(t, "localhost"))
	tp := startTLSProxy(t, Config{
		Backends:            []string{slow.URLFor("localhost")},
		BackendTLS:          &tls.Config{RootCAs: ca.Pool()},
		BackendTimeout:      100 * time.Millisecond,
		ClientIdleTimeout:   300 * time.Millisecond,
		ClientHeaderTimeout: 300 * time.Millisecond,
		Health:              HealthConfig{Interval: -1},
		TLS:                 &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})

	idle := dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
	if status := requestOn(t, idle, "localhost"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	closedWithin(t, idle, 5*time.Second)

	stuck, err := net.Dial("tcp", tp.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	io.WriteString(stuck, "\x16\x03\x01") // the start of a ClientHello, and no more
	closedWithin(t, stuck, 5*time.Second)

	// A header begun over TLS and not finished gets its 408 over TLS.
	slowHeader := dialTLS(t, tp.tlsAddr, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()})
	slowHeader.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(slowHeader, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
	if resp, err := http.ReadResponse(bufio.NewReader(slowHeader), nil); err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("a header not finished over TLS: %v, %v; want 408", resp, err)
	}

	client := newTLSClient(t, ca.Pool())
	status, body := get(t, client, tp.tlsURL("localhost", "/delay/3s"))
	if status != http.StatusGatewayTimeout {
		t.Errorf("slow https backend: status %d (%s), want 504", status, body)
	}
	if status, _ := get(t, client, tp.tlsURL("localhost", "/")); status != http.StatusOK {
		t.Errorf("after the timeout: status %d", status)
	}
}

// TestStickyCookieSecure: a sticky cookie set over TLS is marked Secure, on
// HTTP/1.1 and HTTP/2 alike, so a browser never sends it back in clear text;
// over plain HTTP it is not (a browser would drop it).
func TestStickyCookieSecure(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	tp := startTLSProxy(t, Config{
		Backends:     []string{startBackend(t, "a").URL()},
		Health:       HealthConfig{Interval: -1},
		StickyCookie: "lb",
		TLS:          &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})
	for _, tc := range []struct {
		name   string
		client *http.Client
		url    string
		proto  int
		secure bool
	}{
		{"HTTP/1.1 over TLS", newTLSClient(t, ca.Pool()), tp.tlsURL("localhost", "/"), 1, true},
		{"HTTP/2 over TLS", newH2Client(t, ca.Pool()), tp.tlsURL("localhost", "/"), 2, true},
		{"plain HTTP", newClient(t), tp.plainURL + "/", 1, false},
	} {
		resp, err := tc.client.Get(tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		set := resp.Header.Values("Set-Cookie")
		if resp.ProtoMajor != tc.proto || len(set) != 1 {
			t.Fatalf("%s: HTTP/%d, Set-Cookie %q; want HTTP/%d and one cookie", tc.name, resp.ProtoMajor, set, tc.proto)
		}
		want := "; Path=/; HttpOnly; SameSite=Lax"
		if tc.secure {
			want += "; Secure"
		}
		if !strings.HasSuffix(set[0], want) {
			t.Errorf("%s: Set-Cookie %q, want it to end in %q", tc.name, set[0], want)
		}
	}
}
