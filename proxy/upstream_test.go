package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// forwardProxy is a minimal forward proxy on loopback, HTTP CONNECT or
// SOCKS5, that records the targets it was asked for. It resolves the names
// in hosts itself: a backend named only there is reachable through the
// proxy and nowhere else, so a working request proves the proxy carried it.
type forwardProxy struct {
	ln    net.Listener
	hosts map[string]string // name -> IP, known only to the proxy
	user  string            // required credentials, when not empty
	pass  string
	stall bool // accept connections and never answer

	mu      sync.Mutex
	targets []string
	auths   []string // Proxy-Authorization values or SOCKS user:pass
}

func startForwardProxy(t *testing.T, kind string, fp *forwardProxy) *forwardProxy {
	t.Helper()
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, _ *rawBackend) {
		switch {
		case fp.stall:
			io.Copy(io.Discard, r) // until the client gives up
		case kind == "socks5":
			fp.serveSOCKS5(c, r)
		default:
			fp.serveConnect(c, r)
		}
	})
	fp.ln = rb.ln
	return fp
}

// URL returns the proxy's URL with the credentials it requires.
func (fp *forwardProxy) URL(scheme string) string {
	u := &url.URL{Scheme: scheme, Host: fp.ln.Addr().String()}
	if fp.user != "" {
		u.User = url.UserPassword(fp.user, fp.pass)
	}
	return u.String()
}

func (fp *forwardProxy) record(target, auth string) {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	fp.targets = append(fp.targets, target)
	fp.auths = append(fp.auths, auth)
}

// seen returns how many tunnels were asked for each target.
func (fp *forwardProxy) seen() map[string]int {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	m := map[string]int{}
	for _, t := range fp.targets {
		m[t]++
	}
	return m
}

func (fp *forwardProxy) credentials() []string {
	fp.mu.Lock()
	defer fp.mu.Unlock()
	return append([]string(nil), fp.auths...)
}

// dialTarget connects to host:port, resolving host from fp.hosts.
func (fp *forwardProxy) dialTarget(target string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip, ok := fp.hosts[host]; ok {
		host = ip
	}
	return net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
}

// pipe copies both ways until either side closes. The tunnels end when the
// proxy under test closes its connections, at the latest at its shutdown,
// which runs before the forward proxy's cleanup.
func pipe(client net.Conn, r *bufio.Reader, up net.Conn) {
	defer up.Close()
	go func() {
		io.Copy(up, r)
		up.Close()
	}()
	io.Copy(client, up)
}

func (fp *forwardProxy) serveConnect(c net.Conn, r *bufio.Reader) {
	req, err := http.ReadRequest(r)
	if err != nil {
		return
	}
	auth := req.Header.Get("Proxy-Authorization")
	fp.record(req.Host, auth)
	want := ""
	if fp.user != "" {
		want = "Basic " + base64.StdEncoding.EncodeToString([]byte(fp.user+":"+fp.pass))
	}
	switch {
	case req.Method != http.MethodConnect:
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	case auth != want:
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := fp.dialTarget(req.Host)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	pipe(c, r, up)
}

// serveSOCKS5 speaks RFC 1928 (CONNECT only) and RFC 1929 user/password.
func (fp *forwardProxy) serveSOCKS5(c net.Conn, r *bufio.Reader) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return
	}
	want := byte(0) // no authentication
	if fp.user != "" {
		want = 2 // user/password
	}
	if !strings.Contains(string(methods), string([]byte{want})) {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	auth := ""
	if want == 2 {
		readField := func() string {
			n, _ := r.ReadByte()
			b := make([]byte, n)
			io.ReadFull(r, b)
			return string(b)
		}
		if v, _ := r.ReadByte(); v != 1 {
			return
		}
		user := readField()
		pass := readField()
		auth = user + ":" + pass
		if user != fp.user || pass != fp.pass {
			fp.record("", auth)
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(r, req[:]); err != nil || req[0] != 5 || req[1] != 1 {
		return
	}
	var host string
	switch req[3] {
	case 1:
		ip := make([]byte, 4)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	case 4:
		ip := make([]byte, 16)
		io.ReadFull(r, ip)
		host = net.IP(ip).String()
	case 3:
		n, _ := r.ReadByte()
		name := make([]byte, n)
		io.ReadFull(r, name)
		host = string(name)
	default:
		return
	}
	var port [2]byte
	if _, err := io.ReadFull(r, port[:]); err != nil {
		return
	}
	target := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(port[:]))))
	fp.record(target, auth)
	up, err := fp.dialTarget(target)
	if err != nil {
		c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}) // connection refused
		return
	}
	c.Write([]byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	pipe(c, r, up)
}

// TestUpstreamProxy carries traffic and health checks to http and https
// backends through an HTTP CONNECT and a SOCKS5 proxy, with and without
// credentials. The backends' names resolve only inside the proxy.
func TestUpstreamProxy(t *testing.T) {
	ca := testpki.NewCA(t, "backend CA")
	plain := startBackend(t, "plain")
	secure := startTLSBackend(t, "secure", ca.Issue(t, "secure.test"))
	_, plainPort, _ := net.SplitHostPort(plain.addr)
	plainURL := "http://plain.test:" + plainPort
	secureURL := secure.URLFor("secure.test")
	hosts := map[string]string{"plain.test": "127.0.0.1", "secure.test": "127.0.0.1"}

	for _, tc := range []struct {
		kind, scheme string
		user, pass   string
		wantAuth     string
	}{
		{"connect", "http", "", "", ""},
		{"connect", "http", "lb", "s3cret", "Basic " + base64.StdEncoding.EncodeToString([]byte("lb:s3cret"))},
		{"socks5", "socks5", "", "", ""},
		{"socks5", "socks5h", "lb", "s3cret", "lb:s3cret"},
	} {
		t.Run(tc.scheme+" "+tc.user, func(t *testing.T) {
			fp := startForwardProxy(t, tc.kind, &forwardProxy{hosts: hosts, user: tc.user, pass: tc.pass})
			logs, log := newLogBuffer()
			p, url := startProxy(t, Config{
				Backends:      []string{plainURL, secureURL},
				BackendTLS:    &tls.Config{RootCAs: ca.Pool()},
				UpstreamProxy: fp.URL(tc.scheme),
				Logger:        log,
				Health:        HealthConfig{Path: "/health", Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 1, Fall: 1},
			})
			client := newClient(t)
			got := map[string]int{}
			for range 4 {
				status, body := get(t, client, url+"/")
				if status != http.StatusOK {
					t.Fatalf("status %d %q\nlog:\n%s", status, body, logs)
				}
				got[backendOf(body)]++
			}
			if got["plain"] != 2 || got["secure"] != 2 {
				t.Errorf("answers %v, want 2 from each backend", got)
			}
			seen := fp.seen()
			if seen["plain.test:"+plainPort] == 0 || seen[strings.TrimPrefix(secureURL, "https://")] == 0 {
				t.Errorf("proxy carried %v, want both backends", seen)
			}
			for _, a := range fp.credentials() {
				if a != tc.wantAuth {
					t.Errorf("proxy got credentials %q, want %q", a, tc.wantAuth)
				}
			}
			if sni := secure.handshakes(); len(sni) == 0 || sni[len(sni)-1] != "secure.test" {
				t.Errorf("TLS through the tunnel: SNI %q, want secure.test", sni)
			}
			if !logs.contains("backend reached through upstream proxy") || (tc.pass != "" && logs.contains(tc.pass)) {
				t.Errorf("start-up log should name the proxy without its password:\n%s", logs)
			}

			// Health checks take the tunnel too: they see the backend fail
			// and recover.
			b := p.Pool().Backends()[0]
			plain.handler.SetHealthy(false)
			waitFor(t, "the check through the proxy to fail", 5*time.Second, func() bool { return !b.Up() })
			plain.handler.SetHealthy(true)
			waitFor(t, "the check through the proxy to pass", 5*time.Second, func() bool { return b.Up() })
		})
	}
}

// TestUpstreamProxyFailures answers 502 when the forward proxy refuses or
// stalls, within the dial timeout, and logs the reason.
func TestUpstreamProxyFailures(t *testing.T) {
	be := startBackend(t, "a")
	for _, tc := range []struct {
		name, kind, scheme string
		fp                 *forwardProxy
		creds              string
		log                string
	}{
		{"wrong credentials", "connect", "http", &forwardProxy{user: "lb", pass: "right"}, "lb:wrong@", "status code: 407"},
		{"CONNECT stalls", "connect", "http", &forwardProxy{stall: true}, "", "connect via proxy"},
		{"SOCKS5 wrong credentials", "socks5", "socks5", &forwardProxy{user: "lb", pass: "right"}, "lb:wrong@", "connect via proxy"},
		{"SOCKS5 stalls", "socks5", "socks5", &forwardProxy{stall: true}, "", "i/o timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := startForwardProxy(t, tc.kind, tc.fp)
			logs, log := newLogBuffer()
			_, url := startProxy(t, Config{
				Backends:      []string{be.URL()},
				UpstreamProxy: tc.scheme + "://" + tc.creds + fp.ln.Addr().String(),
				DialTimeout:   150 * time.Millisecond,
				Logger:        log,
				Health:        HealthConfig{Interval: -1},
			})
			status, body := get(t, newClient(t), url+"/")
			if status != http.StatusBadGateway || body != "502 Bad Gateway: backend unavailable\n" {
				t.Errorf("status %d %q, want the short 502", status, body)
			}
			if !logs.contains(tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logs)
			}
			if strings.Contains(logs.String(), "wrong") {
				t.Errorf("the log shows the proxy password:\n%s", logs)
			}
		})
	}
}

// TestUpstreamProxyFromEnvironment follows HTTP_PROXY for http backends,
// HTTPS_PROXY for https ones, and goes direct to loopback addresses.
func TestUpstreamProxyFromEnvironment(t *testing.T) {
	ca := testpki.NewCA(t, "backend CA")
	plain, local := startBackend(t, "plain"), startBackend(t, "local")
	secure := startTLSBackend(t, "secure", ca.Issue(t, "secure.test"))
	hosts := map[string]string{"plain.test": "127.0.0.1", "secure.test": "127.0.0.1"}
	connect := startForwardProxy(t, "connect", &forwardProxy{hosts: hosts})
	socks := startForwardProxy(t, "socks5", &forwardProxy{hosts: hosts})
	t.Setenv("HTTP_PROXY", connect.URL("http"))
	t.Setenv("HTTPS_PROXY", socks.URL("socks5"))
	t.Setenv("NO_PROXY", "")
	_, plainPort, _ := net.SplitHostPort(plain.addr)

	_, url := startProxy(t, Config{
		Backends:      []string{"http://plain.test:" + plainPort, secure.URLFor("secure.test"), local.URL()},
		BackendTLS:    &tls.Config{RootCAs: ca.Pool()},
		UpstreamProxy: UpstreamProxyEnv,
		Health:        HealthConfig{Interval: -1},
	})
	client := newClient(t)
	got := map[string]int{}
	for range 3 {
		status, body := get(t, client, url+"/")
		if status != http.StatusOK {
			t.Fatalf("status %d %q", status, body)
		}
		got[backendOf(body)]++
	}
	if got["plain"] != 1 || got["secure"] != 1 || got["local"] != 1 {
		t.Errorf("answers %v, want one from each", got)
	}
	if seen := connect.seen(); len(seen) != 1 || seen["plain.test:"+plainPort] == 0 {
		t.Errorf("HTTP_PROXY carried %v, want only plain.test", seen)
	}
	if seen := socks.seen(); len(seen) != 1 || seen[strings.TrimPrefix(secure.URLFor("secure.test"), "https://")] == 0 {
		t.Errorf("HTTPS_PROXY carried %v, want only secure.test", seen)
	}
}

// TestUpstreamRoutes decides each backend's route once, at start.
func TestUpstreamRoutes(t *testing.T) {
	t.Setenv("HTTP_PROXY", "proxy.internal:3128") // no scheme: http, as curl reads it
	t.Setenv("HTTPS_PROXY", "socks5://u:p@socks.internal")
	t.Setenv("NO_PROXY", "direct.example,.corp.example")
	var backends []*pool.Backend
	for _, raw := range []string{"http://a.example", "https://a.example", "http://direct.example:8080",
		"https://x.corp.example", "http://127.0.0.1:8080", "http://localhost:1"} {
		b, err := pool.NewBackend(raw)
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, b)
	}
	routes, err := upstreamRoutes(UpstreamProxyEnv, backends)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://proxy.internal:3128", "socks5://u:p@socks.internal:1080", "", "", "", ""}
	for i, b := range backends {
		got := ""
		if u := routes[b]; u != nil {
			got = u.String()
		}
		if got != want[i] {
			t.Errorf("%s: route %q, want %q", b.URL(), got, want[i])
		}
	}

	routes, err = upstreamRoutes("http://u:p@fixed:8080", backends)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		if u := routes[b]; u == nil || u.String() != "http://u:p@fixed:8080" {
			t.Errorf("%s: route %v, want the fixed proxy for every backend", b.URL(), u)
		}
	}

	t.Setenv("HTTP_PROXY", "ftp://proxy.internal")
	if _, err := upstreamRoutes(UpstreamProxyEnv, backends); err == nil || !strings.Contains(err.Error(), `unsupported scheme "ftp"`) {
		t.Errorf("an ftp proxy in the environment: %v", err)
	}
	// The environment's proxy follows the rules of a host, as the flag's.
	t.Setenv("HTTP_PROXY", "http://127.1:3128")
	if _, err := upstreamRoutes(UpstreamProxyEnv, backends); err == nil ||
		!strings.Contains(err.Error(), `upstream proxy "http://127.1:3128" from the environment for http://a.example:80: host "127.1": an IPv4 address takes the dotted-decimal form`) {
		t.Errorf("a proxy at 127.1 in the environment: %v", err)
	}
}

func TestCheckUpstreamProxy(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"", ""},
		{"env", ""},
		{"http://proxy:3128", ""},
		{"http://user:pass@proxy:3128", ""},
		{"HTTP://proxy", ""},
		{"socks5://proxy:1080", ""},
		{"socks5h://u:p@[::1]:1080", ""},
		{"proxy:3128", "missing scheme"},
		{"https://proxy:3128", `unsupported scheme "https"`},
		{"ftp://proxy", `unsupported scheme "ftp"`},
		{"http://", "missing host"},
		{"http://proxy:0", `invalid port "0"`},
		{"http://proxy:3128/path", "path"},
		{"http://proxy:port", "invalid port"},
		// The rules of every host: forms that are no address to Go's
		// resolver are refused, naming the host and what is wrong.
		{"http://127.0.0.1:3128", ""},
		{"http://localhost:3128", ""},
		{"http://proxy.internal.:3128", ""},
		{"socks5://[::1]:1080", ""},
		{"http://127.1:3128", `host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"socks5://0x7f.1:1080", `host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"http://2130706433:3128", `host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{"socks5h://0177.0.0.1", `host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{"http://127.0.0.1.:3128", `host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{"http://proxy..internal:3128", `host "proxy..internal": an empty label`},
		{"http://999.1.1.1:3128", `host "999.1.1.1": not an IPv4 address`},
	} {
		err := CheckUpstreamProxy(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want it to contain %q", tc.in, err, tc.err)
		}
		if tc.err == "" || !strings.HasPrefix(tc.err, "host ") {
			continue
		}
		// New and Reload refuse it with the same error.
		cfg := Config{Backends: []string{"http://127.0.0.1:1"}, UpstreamProxy: tc.in, Health: HealthConfig{Interval: -1}, Logger: discardLogger()}
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), `upstream proxy "`+tc.in+`": `+tc.err) {
			t.Errorf("New with %q: %v, want an error with %q", tc.in, err, tc.err)
		}
		p, err := New(Config{Backends: cfg.Backends, Health: cfg.Health, Logger: cfg.Logger})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Reload(cfg); err == nil || !strings.Contains(err.Error(), `upstream proxy "`+tc.in+`": `+tc.err) {
			t.Errorf("Reload with %q: %v, want an error with %q", tc.in, err, tc.err)
		}
		p.Close()
	}
	// The proxy is dialled at its host in one form, a name's trailing
	// dot kept, as a backend's is.
	for in, want := range map[string]string{
		"HTTP://Proxy.Internal.:3128": "http://proxy.internal.:3128",
		"socks5://[::ffff:10.0.0.1]":  "socks5://10.0.0.1:1080",
	} {
		if u, err := parseProxyURL(in); err != nil || u.String() != want {
			t.Errorf("%q: %v, %v; want %s", in, u, err, want)
		}
	}
	_, err := New(Config{Backends: []string{"http://a:1"}, UpstreamProxy: "http://p:1",
		Dial: func(string, time.Duration) (net.Conn, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "exclusive") {
		t.Errorf("UpstreamProxy with Dial: %v", err)
	}
	_, err = New(Config{Backends: []string{"http://a:1"}, UpstreamProxy: "http://user:hidden@p:0"})
	if err == nil || strings.Contains(err.Error(), "hidden") || !strings.Contains(err.Error(), "invalid port") {
		t.Errorf("a bad proxy's error must name it without the password: %v", err)
	}
}
