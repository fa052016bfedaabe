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

// TestFlushInterval: with -flush-interval, a response of known length
// reaches the client as it arrives from the backend, not when fasthttp's
// write buffer fills or the body ends: the backend sends the second half
// only once the client has read the first. It keeps its Content-Length,
// and the connection stays good for the next request. Over plain HTTP and
// TLS, flushed at once (-1) or within an interval; and a body larger than
// the buffered limit arrives whole.
func TestFlushInterval(t *testing.T) {
	release := make(chan struct{})
	trickle := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			if _, ok := rb.readRequest(r); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return
			}
			io.WriteString(c, "world")
		}
	})
	ca := testpki.NewCA(t, "test CA")
	for _, interval := range []time.Duration{-1, 30 * time.Millisecond} {
		tp := startTLSProxy(t, Config{
			Backends:      []string{trickle.URL()},
			Health:        HealthConfig{Interval: -1},
			FlushInterval: interval,
			TLS:           &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
		})
		for _, over := range []string{"plain", "TLS"} {
			t.Run(fmt.Sprintf("%v/%s", interval, over), func(t *testing.T) {
				var c net.Conn
				var err error
				if over == "TLS" {
					c, err = tls.Dial("tcp", tp.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}})
				} else {
					c, err = net.Dial("tcp", strings.TrimPrefix(tp.plainURL, "http://"))
				}
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				for i := range 2 {
					io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
					resp, err := http.ReadResponse(r, nil)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					first := make([]byte, 5)
					if _, err := io.ReadFull(resp.Body, first); err != nil {
						t.Fatalf("request %d: the first half never came before the second was sent: %v", i, err)
					}
					release <- struct{}{}
					rest, err := io.ReadAll(resp.Body)
					if got := string(first) + string(rest); err != nil || got != "helloworld" || resp.ContentLength != 10 {
						t.Fatalf("request %d: body %q (%v), Content-Length %d; want helloworld, 10", i, got, err, resp.ContentLength)
					}
				}
			})
		}
	}

	t.Run("3 MiB", func(t *testing.T) {
		be := startBackend(t, "a")
		_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}, FlushInterval: 10 * time.Millisecond})
		client := newClient(t)
		for range 2 {
			const size = 3 << 20
			if status, body := get(t, client, fmt.Sprintf("%s/bytes/%d", url, size)); status != http.StatusOK || len(body) != size {
				t.Fatalf("status %d, %d bytes; want 200, %d", status, len(body), size)
			}
		}
	})
}
