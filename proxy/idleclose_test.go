package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestIdleClosedBackendConnection: a backend that closes each kept-alive
// connection soon after answering (a keep-alive timeout shorter than the
// proxy's) costs no request an error, whatever its method: the next one,
// sent after the close, goes on a fresh connection, and the backend sees
// each request once.
func TestIdleClosedBackendConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"TLS", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var closedAt atomic.Int64 // when the backend last closed a connection, unix ns
			var rb *rawBackend
			handle := func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				if _, ok := rb.readRequest(r); !ok {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				// Its keep-alive timeout: close once the answer is out.
				c.Close()
				closedAt.Store(time.Now().UnixNano())
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{Health: HealthConfig{Interval: -1}}
			scheme := "http://"
			if tc.tls {
				ca := testpki.NewCA(t, "test CA")
				ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, "127.0.0.1").TLS}})
				cfg.BackendTLS = &tls.Config{RootCAs: ca.Pool()}
				scheme = "https://"
			}
			rb = serveRawBackend(t, ln, handle)
			cfg.Backends = []string{scheme + ln.Addr().String()}
			p, url := startProxy(t, cfg)
			client := newClient(t)
			for i, method := range []string{"POST", "POST", "PATCH", "GET"} {
				if i > 0 {
					// The backend has closed the last connection, and
					// it has been idle long enough to be asked.
					waitFor(t, "the backend to close the connection", 5*time.Second, func() bool { return rb.closed.Load() == int64(i) })
					at := closedAt.Load()
					waitFor(t, "the connection to sit idle", 5*time.Second, func() bool {
						return p.wd.now()-at > int64(staleCheckAfter)+int64(20*time.Millisecond)
					})
				}
				req, _ := http.NewRequest(method, url+"/p", strings.NewReader("form=1"))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(body) != "ok" {
					t.Fatalf("%s #%d: %d %q, want 200 ok", method, i+1, resp.StatusCode, body)
				}
			}
			if n := rb.requests.Load(); n != 4 {
				t.Errorf("backend saw %d requests, want each of the 4 once", n)
			}
		})
	}
}
