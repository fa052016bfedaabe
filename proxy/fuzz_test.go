package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failOnError is a slog handler that counts error records: a panic the
// handler recovered from is logged at error level.
type failOnError struct {
	slog.Handler
	errors *atomic.Int64
}

func (h failOnError) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h failOnError) Handle(_ context.Context, r slog.Record) error {
	h.errors.Add(1)
	return nil
}

// FuzzRequest sends arbitrary bytes to the proxy as a client would: it must
// never panic, and must answer with well-formed HTTP responses or close the
// connection.
func FuzzRequest(f *testing.F) {
	for _, tc := range smugglingCases {
		f.Add([]byte(tc.raw))
	}
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n",
		"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"GET /download/100000?chunked=1 HTTP/1.0\r\n\r\n",
		"HEAD /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}

	errs := new(atomic.Int64)
	log := slog.New(failOnError{Handler: slog.DiscardHandler, errors: errs})
	be := startBackendF(f)
	p, err := New(Config{
		Backends:            []string{be},
		Health:              HealthConfig{Interval: -1},
		ClientHeaderTimeout: time.Second,
		MaxBodySize:         1 << 20,
		Logger:              log,
	})
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go p.Serve(ln) //nolint:errcheck // ends at cleanup
	f.Cleanup(func() { p.Shutdown(context.Background()) })

	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write(raw)
		c.(*net.TCPConn).CloseWrite()
		out, _ := io.ReadAll(c)
		// Whatever came back is a sequence of well-formed responses.
		r := bufio.NewReader(bytes.NewReader(out))
		for len(out) > 0 {
			if _, err := r.Peek(1); err != nil {
				break
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				if strings.HasPrefix(string(out), "HTTP/1.1 101 ") {
					break // a switched protocol carries anything after
				}
				t.Fatalf("malformed response to %q: %v\n%q", raw, err, out)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if n := errs.Load(); n != 0 {
			t.Fatalf("%d error records (a recovered panic?) after %q", n, raw)
		}
	})
}

// startBackendF runs the project's backend for a fuzz target.
func startBackendF(f *testing.F) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := backendServer("a")
	go srv.Serve(ln) //nolint:errcheck // ends at cleanup
	f.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}
