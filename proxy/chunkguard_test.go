package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestChunkExtensionLimit: a chunked request body whose chunk header runs on
// (extensions, which fasthttp skips without a limit) gets 400 and the
// connection closed once it passes the budget, on every path a chunked
// body takes: streamed to an HTTP/1.1 backend, over TLS, after
// Expect: 100-continue, and through the net/http path to an HTTP/2
// backend. Extensions of a sensible size, on every chunk, still pass.
func TestChunkExtensionLimit(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	tp := startTLSProxy(t, Config{
		Backends: []string{startBackend(t, "a").URL()},
		Health:   HealthConfig{Interval: -1},
		TLS:      &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})
	_, viaNet := startProxy(t, Config{Backends: []string{startH2Backend(t, "h2", nil).URL()}, Health: HealthConfig{Interval: time.Hour}})
	// With a per-address limit (connlimit.go).
	perIP := startTLSProxy(t, Config{
		Backends:      []string{startBackend(t, "b").URL()},
		Health:        HealthConfig{Interval: -1},
		MaxConnsPerIP: 10,
		TLS:           &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})

	plain := func(addr string) func() (net.Conn, error) {
		return func() (net.Conn, error) { return net.Dial("tcp", addr) }
	}
	overTLS := func() (net.Conn, error) {
		return tls.Dial("tcp", tp.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	}
	paths := []struct {
		name   string
		dial   func() (net.Conn, error)
		header string
	}{
		{"fast path", plain(strings.TrimPrefix(tp.plainURL, "http://")), ""},
		{"TLS", overTLS, ""},
		{"Expect: 100-continue", plain(strings.TrimPrefix(tp.plainURL, "http://")), "Expect: 100-continue\r\n"},
		{"net/http path", plain(strings.TrimPrefix(viaNet, "http://")), ""},
		{"-max-conns-per-ip", plain(strings.TrimPrefix(perIP.plainURL, "http://")), ""},
		{"-max-conns-per-ip, TLS", func() (net.Conn, error) {
			return tls.Dial("tcp", perIP.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		}, ""},
	}
	long := strings.Repeat("e", 1<<20)
	for _, path := range paths {
		for _, tc := range []struct {
			name   string
			chunks string // the body after the request header
			want   int
		}{
			{"a long extension on the first chunk", "5;x=" + long + "\r\nhello\r\n0\r\n\r\n", 400},
			{"a long extension on a later chunk", "5\r\nhello\r\n5;x=" + long + "\r\nworld\r\n0\r\n\r\n", 400},
			{"a long extension on the last chunk", "5\r\nhello\r\n0;x=" + long + "\r\n\r\n", 400},
			{"a 2 KiB extension on each of 40 chunks", strings.Repeat("5;x="+strings.Repeat("e", 2<<10)+"\r\nhello\r\n", 40) + "0\r\n\r\n", 200},
		} {
			t.Run(path.name+"/"+tc.name, func(t *testing.T) {
				c, err := path.dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				// The writer runs on its own: the proxy answers and
				// closes before it has read what a refused request sends.
				go io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"+path.header+"\r\n"+tc.chunks) //nolint:errcheck // the proxy may close first
				r := bufio.NewReader(c)
				resp, err := http.ReadResponse(r, nil)
				if err == nil && resp.StatusCode == http.StatusContinue {
					resp, err = http.ReadResponse(r, nil)
				}
				if err != nil {
					t.Fatalf("no response: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.want)
				}
				if tc.want == http.StatusOK {
					if want := fmt.Sprintf(`"body_length":%d`, 40*5); !strings.Contains(string(body), want) {
						t.Errorf("backend's answer %s, want %s", body, want)
					}
					return
				}
				if !resp.Close {
					t.Errorf("a %d without Connection: close", resp.StatusCode)
				}
			})
		}
	}
}

// TestChunkedBodyNotDrained: a chunked body the proxy answers without
// reading (here no backend can be reached) is not drained by fasthttp
// before the next request, where no guard would bound its chunk headers:
// the answer says Connection: close and the connection ends.
func TestChunkedBodyNotDrained(t *testing.T) {
	_, url := startProxy(t, Config{Backends: []string{"http://127.0.0.1:1"}, Health: HealthConfig{Interval: -1}})
	c := dialProxy(t, url, 10*time.Second)
	defer c.Close()
	go io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5;x="+strings.Repeat("e", 8<<20)+"\r\nworld\r\n0\r\n\r\n") //nolint:errcheck // the proxy closes first
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusBadGateway || !resp.Close {
		t.Fatalf("status %d, close %v; want 502 and Connection: close", resp.StatusCode, resp.Close)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("the connection is still open after the answer")
	}
}
