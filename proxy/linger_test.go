package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// lingerBody is more than loopback's socket buffers hold, so that a client
// writing it whole is still writing when the proxy has answered.
const lingerBody = 16 << 20

// TestLingeringClose: a client that sends its whole request before it reads
// gets the proxy's answer, not a reset, when the proxy refuses the request
// before it has all come: the proxy reads and drops the rest, then closes.
func TestLingeringClose(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	start := func(cfg Config) *tlsProxy {
		cfg.TLS = &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))}
		cfg.Health.Interval = -1
		if cfg.Backends == nil && cfg.Pools == nil {
			cfg.Backends = []string{startBackend(t, "a").URL()}
		}
		return startTLSProxy(t, cfg)
	}
	dead := startBackend(t, "dead")
	dead.kill()
	proxies := map[string]*tlsProxy{
		// Limits a request can pass.
		"limits": start(Config{MaxBodySize: 64 << 10, MaxHeaderSize: 8 << 10}),
		// Answers of its own to a body within the limits, which it has
		// not read.
		"dead":  start(Config{Backends: []string{dead.URL()}, MaxBodySize: -1}),
		"rated": start(Config{RateLimit: 0.001, RateBurst: 1, MaxBodySize: -1}),
		"routed": start(Config{
			Pools: []PoolConfig{
				{Name: "api", Backends: []string{startBackend(t, "api").URL()}},
				{Name: "web", Backends: []string{startBackend(t, "web").URL()}},
			},
			Routes:      []Route{{Host: "api.example", Pool: "api"}, {Host: "web.example", Pool: "web"}},
			MaxBodySize: -1,
		}),
	}
	// The one request the rate allows, over both kinds of connection.
	if status, _ := rawRequest(t, proxies["rated"].plainURL, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.Contains(status, " 200 ") {
		t.Fatalf("first request under the rate limit: %q", status)
	}
	dial := func(kind string, tp *tlsProxy) (net.Conn, error) {
		if kind == "plain" {
			return net.Dial("tcp", strings.TrimPrefix(tp.plainURL, "http://"))
		}
		return tls.Dial("tcp", tp.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	}

	chunked := func(w io.Writer) error {
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("x", 64<<10))
		for range lingerBody / (64 << 10) {
			if _, err := io.WriteString(w, chunk); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, "0\r\n\r\n")
		return err
	}
	body := func(w io.Writer) error {
		_, err := w.Write(make([]byte, lingerBody))
		return err
	}
	post := fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", lingerBody)
	for _, tc := range []struct {
		name   string
		proxy  string
		head   string
		rest   func(io.Writer) error
		status string
	}{
		{"length over the body limit", "limits", post, body, "413"},
		{"chunked body over the limit", "limits", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", chunked, "413"},
		{"expectation refused, body sent anyway", "limits", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", lingerBody), body, "413"},
		{"header over the header limit", "limits", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", body, "431"},
		{"framing refused", "limits", fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\nContent-Length: 1\r\n\r\n", lingerBody), body, "400"},
		{"no backend for a streamed body", "dead", post, body, "502"},
		{"no backend for a chunked body", "dead", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", chunked, "502"},
		{"over the rate limit", "rated", post, body, "429"},
		{"no route", "routed", post, body, "404"},
	} {
		for _, kind := range []string{"plain", "TLS"} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				c, err := dial(kind, proxies[tc.proxy])
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				// Written as a simple client writes: all of it, then read.
				err = func() error {
					if _, err := io.WriteString(c, tc.head); err != nil {
						return err
					}
					return tc.rest(c)
				}()
				if err != nil {
					t.Fatalf("sending the request: %v (the proxy reset the connection)", err)
				}
				c.(interface{ CloseWrite() error }).CloseWrite()
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 "+tc.status+" ") {
					t.Fatalf("status line %q, %v; want %s", line, err, tc.status)
				}
				// The proxy closes once the client has: an end of
				// stream, not a reset.
				if _, err := io.Copy(io.Discard, r); err != nil {
					t.Errorf("after the answer: %v, want the end of the stream", err)
				}
			})
		}
	}
}

// TestLingeringCloseEndsAtShutdown: a connection lingering for a client
// that neither sends nor closes is closed by the proxy's shutdown, without
// waiting out the linger.
func TestLingeringCloseEndsAtShutdown(t *testing.T) {
	be := startBackend(t, "a")
	p, addr, served := serveProxy(t, Config{Backends: []string{be.URL()}, MaxHeaderSize: 4 << 10})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: "+strings.Repeat("b", 8<<10)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 431 ") {
		t.Fatalf("status line %q, %v; want 431", line, err)
	}
	// The answer is out and the proxy has half-closed: its end of stream
	// comes while the connection lingers.
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("after the answer: %v, want the proxy's end of stream", err)
	}
	p.lingerers.mu.Lock()
	n := len(p.lingerers.conns)
	p.lingerers.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections lingering, want 1", n)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve ended by Shutdown returned %v, want http.ErrServerClosed", err)
	}
	if d := time.Since(start); d >= lingerTimeout {
		t.Errorf("shutdown took %v: it waited out the linger", d)
	}
	p.lingerers.mu.Lock()
	n = len(p.lingerers.conns)
	p.lingerers.mu.Unlock()
	if n != 0 {
		t.Errorf("%d connections still lingering after shutdown", n)
	}
}
