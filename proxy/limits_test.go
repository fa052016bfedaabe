package proxy

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

func TestRateLimit(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, RateLimit: 2, RateBurst: 3, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	for i := range 3 {
		if status, _ := get(t, client, url+"/"); status != http.StatusOK {
			t.Fatalf("request %d of the burst: %d", i, status)
		}
	}
	resp, err := client.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over the rate: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := be.hits.Load(); n != 3 {
		t.Errorf("backend saw %d requests, want the 3 allowed", n)
	}
}

// holdConns opens n connections to addr that send nothing.
func holdConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	return cs
}

func TestConnectionLimits(t *testing.T) {
	be := startBackend(t, "a")
	for _, tc := range []struct {
		name   string
		cfg    Config
		status int
	}{
		{"per IP", Config{MaxConnsPerIP: 3}, http.StatusTooManyRequests},
		{"in all", Config{MaxConns: 3}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Backends = []string{be.URL()}
			tc.cfg.Health = HealthConfig{Interval: -1}
			p, url := startProxy(t, tc.cfg)
			addr := strings.TrimPrefix(url, "http://")
			holdConns(t, addr, 3)
			waitFor(t, "the held connections to be served", 5*time.Second, func() bool {
				return p.Server().GetOpenConnectionsCount() == 3
			})
			status, _ := rawRequest(t, url, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if !strings.Contains(status, http.StatusText(tc.status)) {
				t.Errorf("fourth connection got %q, want %d", status, tc.status)
			}
			if n := p.Traffic().Snapshot().ConnsRefused; n != 1 {
				t.Errorf("%d refusals counted, want 1", n)
			}
		})
	}
}

func echoVia(t *testing.T, url string, header map[string]string) backend.Echo {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/echo", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e backend.Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestTrustedProxies(t *testing.T) {
	be := startBackend(t, "a")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	_, untrustedURL := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	_, trustedURL := startProxy(t, Config{Backends: []string{be.URL()}, TrustedProxies: trusted, Health: HealthConfig{Interval: -1}})
	for _, tc := range []struct {
		name, url, sent, wantXFF, wantReal string
	}{
		{"untrusted peer: replaced", untrustedURL, "203.0.113.5", "127.0.0.1", "127.0.0.1"},
		{"trusted peer: extended", trustedURL, "203.0.113.5", "203.0.113.5, 127.0.0.1", "203.0.113.5"},
		{"trusted hops skipped", trustedURL, "198.51.100.1, 10.0.0.2", "198.51.100.1, 10.0.0.2, 127.0.0.1", "198.51.100.1"},
		{"forged left part ignored", trustedURL, "6.6.6.6, 198.51.100.1", "6.6.6.6, 198.51.100.1, 127.0.0.1", "198.51.100.1"},
		{"garbage stops the walk", trustedURL, "1.2.3.4, not-an-ip", "1.2.3.4, not-an-ip, 127.0.0.1", "127.0.0.1"},
		{"no header from a trusted peer", trustedURL, "", "127.0.0.1", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.sent != "" {
				h["X-Forwarded-For"] = tc.sent
			}
			e := echoVia(t, tc.url, h)
			if got := e.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != tc.wantXFF {
				t.Errorf("X-Forwarded-For %q, want %q", got, tc.wantXFF)
			}
			if got := e.Headers["X-Real-IP"]; len(got) != 1 || got[0] != tc.wantReal {
				t.Errorf("X-Real-IP %q, want %q", got, tc.wantReal)
			}
		})
	}
}

// TestTrustedProxyChainInLines: a trusted peer's X-Forwarded-For in several
// lines is one list, the lines joined with commas in order (RFC 9110,
// section 5.3), over HTTP/1.1 and HTTP/2 alike. HAProxy's option forwardfor
// adds a line of its own after the client's: the client named is the
// address the trusted proxy added, not the one the client wrote, and the
// backend gets the whole chain in one line.
func TestTrustedProxyChainInLines(t *testing.T) {
	be := startBackend(t, "a")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	var alog logBuffer
	_, u := startProxy(t, Config{Backends: []string{be.URL()}, TrustedProxies: trusted, HTTP2: HTTP2Config{H2C: true},
		AccessLog: &alog, AccessLogFormat: AccessLogJSON, Health: HealthConfig{Interval: -1}})
	h2 := newH2Client(t, nil)
	// The access log's client for each request, by its URI: the lines are
	// read once at the end, as the log writes them out every 200 ms.
	wantLogged := map[string]string{}
	for _, tc := range []struct {
		name     string
		lines    []string // header lines as sent
		wantXFF  string
		wantReal string
	}{
		{"one line", []string{"X-Forwarded-For: 203.0.113.5"},
			"203.0.113.5, 127.0.0.1", "203.0.113.5"},
		{"two lines: the trusted proxy's is the client", []string{"X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 9.9.9.9"},
			"6.6.6.6, 9.9.9.9, 127.0.0.1", "9.9.9.9"},
		{"two lines in other letter cases, a header between", []string{"X-Forwarded-For: 6.6.6.6", "X-Other: 1", "x-forwarded-for: 9.9.9.9"},
			"6.6.6.6, 9.9.9.9, 127.0.0.1", "9.9.9.9"},
		{"three lines", []string{"X-Forwarded-For: 6.6.6.6", "X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 10.0.0.2"},
			"6.6.6.6, 198.51.100.1, 10.0.0.2, 127.0.0.1", "198.51.100.1"},
		{"a line of several, then another", []string{"X-Forwarded-For: 6.6.6.6, 198.51.100.1", "X-Forwarded-For: 10.0.0.2"},
			"6.6.6.6, 198.51.100.1, 10.0.0.2, 127.0.0.1", "198.51.100.1"},
		{"trusted hops skipped across lines", []string{"X-Forwarded-For: 6.6.6.6, 198.51.100.1, 10.0.0.3", "X-Forwarded-For: 10.0.0.2, 10.0.0.1"},
			"6.6.6.6, 198.51.100.1, 10.0.0.3, 10.0.0.2, 10.0.0.1, 127.0.0.1", "198.51.100.1"},
		{"an untrusted address between trusted ones", []string{"X-Forwarded-For: 10.0.0.4", "X-Forwarded-For: 203.0.113.9, 10.0.0.3", "X-Forwarded-For: 10.0.0.2"},
			"10.0.0.4, 203.0.113.9, 10.0.0.3, 10.0.0.2, 127.0.0.1", "203.0.113.9"},
		{"trusted all the way: the leftmost", []string{"X-Forwarded-For: 10.0.0.3", "X-Forwarded-For: 10.0.0.2"},
			"10.0.0.3, 10.0.0.2, 127.0.0.1", "10.0.0.3"},
		{"garbage in the last line stops the walk", []string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: not-an-ip"},
			"198.51.100.1, not-an-ip, 127.0.0.1", "127.0.0.1"},
		{"garbage in an earlier line stops the walk there", []string{"X-Forwarded-For: 198.51.100.1, not-an-ip", "X-Forwarded-For: 10.0.0.2"},
			"198.51.100.1, not-an-ip, 10.0.0.2, 127.0.0.1", "10.0.0.2"},
		{"an empty line adds nothing", []string{"X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: ", "X-Forwarded-For: 10.0.0.2"},
			"198.51.100.1, 10.0.0.2, 127.0.0.1", "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
				var e backend.Echo
				uri := fmt.Sprintf("/echo?n=%d", len(wantLogged))
				wantLogged[uri] = tc.wantReal
				if proto == "HTTP/1.1" {
					raw := "GET " + uri + " HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n\r\n"
					status, rest := rawRequest(t, u, raw)
					_, body, _ := strings.Cut(rest, "\r\n\r\n")
					if !strings.Contains(status, " 200 ") {
						t.Fatalf("%s: %s %s", proto, status, rest)
					}
					if err := json.Unmarshal([]byte(body), &e); err != nil {
						t.Fatalf("%s: echo: %v: %q", proto, err, body)
					}
				} else {
					req := newRequest(t, "GET", u+uri, nil)
					for _, line := range tc.lines {
						k, v, _ := strings.Cut(line, ":")
						req.Header.Add(k, strings.TrimSpace(v))
					}
					_, body := do(t, h2, req)
					if err := json.Unmarshal([]byte(body), &e); err != nil {
						t.Fatalf("%s: echo: %v: %q", proto, err, body)
					}
				}
				if got := header(e, "X-Forwarded-For"); len(got) != 1 || got[0] != tc.wantXFF {
					t.Errorf("%s: X-Forwarded-For %q, want %q", proto, got, tc.wantXFF)
				}
				if got := header(e, "X-Real-IP"); len(got) != 1 || got[0] != tc.wantReal {
					t.Errorf("%s: X-Real-IP %q, want %q", proto, got, tc.wantReal)
				}
			}
		})
	}
	for _, line := range accessLines(t, &alog, len(wantLogged)) {
		m := jsonLine(t, line)
		if want := wantLogged[fmt.Sprint(m["uri"])]; m["client"] != want {
			t.Errorf("access log client %v for %v %v, want %q", m["client"], m["proto"], m["uri"], want)
		}
	}
}

// TestTrustedPeerOtherForwardingHeaders: from a trusted peer only
// X-Forwarded-For is believed. X-Real-IP, X-Forwarded-Host and
// X-Forwarded-Proto, in two lines each of two letter cases, are replaced by
// one line of the proxy's own, and Forwarded goes through unread, every
// line of it, over HTTP/1.1 and HTTP/2 alike.
func TestTrustedPeerOtherForwardingHeaders(t *testing.T) {
	be := startBackend(t, "a")
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	_, u := startProxy(t, Config{Backends: []string{be.URL()}, TrustedProxies: trusted, HTTP2: HTTP2Config{H2C: true}, Health: HealthConfig{Interval: -1}})
	lines := []string{
		"X-Forwarded-For: 203.0.113.5",
		"X-Real-IP: 6.6.6.6", "x-real-ip: 7.7.7.7",
		"X-Forwarded-Host: evil", "x-forwarded-host: evil2",
		"X-Forwarded-Proto: https", "x-forwarded-proto: https",
		"Forwarded: for=6.6.6.6", "Forwarded: for=203.0.113.5;proto=https",
	}
	want := map[string]string{
		"X-Forwarded-For":   "203.0.113.5, 127.0.0.1",
		"X-Real-IP":         "203.0.113.5",
		"X-Forwarded-Host":  "shop.example",
		"X-Forwarded-Proto": "http",
		// Compared as a set: stripping a header on the HTTP/1.1 path moves
		// fasthttp's last header into its place (RequestHeader.Del), which
		// here reverses the two Forwarded lines.
		"Forwarded": "for=203.0.113.5;proto=https | for=6.6.6.6",
	}
	h2 := newH2Client(t, nil)
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		var e backend.Echo
		var body string
		if proto == "HTTP/1.1" {
			status, rest := rawRequest(t, u, "GET /echo HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n"+strings.Join(lines, "\r\n")+"\r\n\r\n")
			if !strings.Contains(status, " 200 ") {
				t.Fatalf("%s: %s %s", proto, status, rest)
			}
			_, body, _ = strings.Cut(rest, "\r\n\r\n")
		} else {
			req := newRequest(t, "GET", u+"/echo", nil)
			req.Host = "shop.example"
			for _, line := range lines {
				k, v, _ := strings.Cut(line, ":")
				req.Header.Add(k, strings.TrimSpace(v))
			}
			_, body = do(t, h2, req)
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%s: echo: %v: %q", proto, err, body)
		}
		for name, w := range want {
			got := header(e, name)
			sort.Strings(got)
			if got := strings.Join(got, " | "); got != w {
				t.Errorf("%s: %s %q, want %q", proto, name, got, w)
			}
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.7,2001:db8::/32")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.7/32" {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "10.0.0/8"} {
		if _, err := ParseTrustedProxies(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: error %v, want one naming it", bad, err)
		}
	}
}

// TestSlowloris keeps 2,000 connections dribbling their headers a byte at a
// time while a normal client measures its latency: it stays within twice
// what it was without them.
func TestSlowloris(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientHeaderTimeout: 3 * time.Second, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	measure := func() time.Duration {
		var ds []time.Duration
		for range 200 {
			start := time.Now()
			if status, _ := get(t, client, url+"/"); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	baseline := measure()

	addr := strings.TrimPrefix(url, "http://")
	conns := holdConns(t, addr, 2000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a byte every 100ms on every connection: never a whole header
		defer wg.Done()
		header := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
		for i := 0; ; i++ {
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(time.Second))
				c.Write([]byte{header[i%len(header)]})
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	underAttack := measure()
	close(stop)
	wg.Wait()
	t.Logf("median latency %v alone, %v beside 2,000 slowloris connections", baseline, underAttack)
	if underAttack > 2*baseline+time.Millisecond {
		t.Errorf("median latency %v under slowloris, more than twice the %v baseline", underAttack, baseline)
	}
	// The dribblers get 408 at the header timeout, and are closed (reset,
	// when their next byte comes after the close; the 408 may be lost then).
	c := conns[0]
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("slowloris connection not closed after the header timeout: %v", err)
	}
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 408 Request Timeout\r\n") {
		t.Errorf("slowloris connection answered %q, want 408", got)
	}
}

// TestConnectionsPerAddress: -max-conns-per-ip counts a client address's
// connections over both ports. One over the limit is refused as it is
// accepted (a 429 on the plain port, a bare close on the TLS one, where
// nothing can be said before a handshake) and counted; closing one makes
// room again; and the connections let through keep their guard beneath
// them: a head of bare LFs is answered at once, not at the header timeout.
func TestConnectionsPerAddress(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := startTLSProxy(t, Config{
		Backends:            []string{be.URL()},
		Health:              HealthConfig{Interval: -1},
		MaxConnsPerIP:       2,
		ClientHeaderTimeout: time.Hour,
		TLS:                 &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})
	plainAddr := strings.TrimPrefix(tp.plainURL, "http://")
	dialTLS := func() (*tls.Conn, error) {
		return tls.Dial("tcp", tp.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	}
	held := holdConns(t, plainAddr, 1)
	tc, err := dialTLS()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	waitFor(t, "both connections to be served", 5*time.Second, func() bool {
		return tp.Traffic().Snapshot().Conns == 2
	})

	c, err := net.Dial("tcp", plainAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(answer), "HTTP/1.1 429 ") || !strings.Contains(string(answer), "too many connections from your address") {
		t.Errorf("third connection, plain: %q (%v), want a 429 naming the cause", answer, err)
	}
	if c, err := dialTLS(); err == nil {
		c.Close()
		t.Error("third connection, TLS: handshake completed, want the connection closed")
	}
	if got := tp.Traffic().Snapshot().ConnsRefused; got != 2 {
		t.Errorf("%d connections counted as refused, want 2", got)
	}

	held[0].Close()
	var bare net.Conn
	waitFor(t, "a connection to be let through again", 5*time.Second, func() bool {
		c, err := net.Dial("tcp", plainAddr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /echo HTTP/1.1\nHost: x\n\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode == http.StatusBadRequest {
			bare = c
			return true
		}
		c.Close()
		if err == nil && resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a head of bare LFs got %d, want 400 (or 429 while the closed connection is not yet counted out)", resp.StatusCode)
		}
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			// A read that timed out: the head waited for the header
			// timeout instead of meeting the scan.
			t.Fatalf("a head of bare LFs: %v, want 400 at once", err)
		}
		return false
	})
	bare.Close()
}

func TestConnLimit(t *testing.T) {
	l := newConnLimit(0, 2, pool.NewTraffic(), discardLogger())
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, step := range []struct {
		op   string
		addr netip.Addr
		want bool
	}{
		{"take", a, true}, {"take", a, true}, {"take", a, false},
		{"take", b, true}, {"take", b, true}, {"take", b, false},
		{"put", a, true}, {"take", a, true}, {"take", a, false},
		{"put", b, true}, {"put", b, true}, {"take", b, true},
	} {
		switch step.op {
		case "take":
			if got := l.take(step.addr) == admitted; got != step.want {
				t.Fatalf("take(%v) = %v, want %v (counts %v)", step.addr, got, step.want, l.open)
			}
		case "put":
			l.put(step.addr)
		}
	}
	if n := l.open[b]; n != 1 {
		t.Errorf("%v counted %d times, want 1", b, n)
	}
	l.put(b)
	if _, ok := l.open[b]; ok || len(l.open) != 1 {
		t.Errorf("counts %v after the last of %v closed, want only %v", l.open, b, a)
	}

	// Both limits: 3 in all, 2 from an address. The limit in all comes
	// first, and a refusal counts nothing.
	l = newConnLimit(3, 2, pool.NewTraffic(), discardLogger())
	for i, step := range []struct {
		put  bool
		addr netip.Addr
		want int
	}{
		{false, a, admitted}, {false, a, admitted}, {false, a, tooManyFromAddr},
		{false, b, admitted}, {false, b, tooManyInAll}, {true, a, admitted},
		{false, b, admitted}, {false, b, tooManyInAll},
	} {
		if step.put {
			l.put(step.addr)
			continue
		}
		if got := l.take(step.addr); got != step.want {
			t.Fatalf("step %d: take(%v) = %d, want %d (%d in all, %v)", i, step.addr, got, step.want, l.all, l.open)
		}
	}
	if l.all != 3 || l.open[a] != 1 || l.open[b] != 2 {
		t.Errorf("%d in all, %v by address; want 3, and 1 and 2", l.all, l.open)
	}

	// In all only: addresses are not counted.
	l = newConnLimit(1, 0, pool.NewTraffic(), discardLogger())
	if l.take(a) != admitted || l.take(b) != tooManyInAll || len(l.open) != 0 {
		t.Errorf("limit of 1 in all: %d in all, %v by address", l.all, l.open)
	}
	l.put(a)
	if l.take(b) != admitted {
		t.Error("no room after the only connection closed")
	}
}
