package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestBareLFResponseHead: a backend's response head whose lines end in LF
// alone is read at once, as nginx reads it (RFC 9112 §2.2 lets a recipient
// take LF for a line's end), and relayed with CRLFs; the connection, read
// to the end of the body, stays in use. (fasthttp reads such lines but
// ends a head only at CRLF CRLF, so the proxy waited for more until the
// try timeout, 5 s here, and answered 504.) A chunked body's framing lines
// may end in LF alone too, whether the body is streamed or read whole (the
// client got a body cut short, or a 502, before).
func TestBareLFResponseHead(t *testing.T) {
	for _, tc := range []struct {
		name, resp string
	}{
		{"bare LF throughout", "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok"},
		{"CRLF status line", "HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: b\n\nok"},
		{"bare LF ending the head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\nok"},
		{"chunked body", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-A: b\n\n2\r\nok\r\n0\r\n\r\n"},
		{"chunked body, bare LF framing", "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nX-A: b\n\n1\no\n1;x=y\nk\n0\n\n"},
		{"chunked body, bare LF framing, CRLF end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n1\no\n1\nk\r\n0\r\n\r\n"},
		{"chunked body, bare LF trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n2\r\nok\r\n0\nX-T: 1\n\n"},
		{"after an interim 100", "HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok"},
		{"folded line", "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n  c\n\nok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				for {
					if _, ok := rb.readRequest(r); !ok {
						return
					}
					io.WriteString(c, tc.resp)
				}
			})
			_, url := startProxy(t, Config{Backends: []string{rb.URL()}, TryTimeout: 5 * time.Second,
				BackendTimeout: time.Minute, Health: HealthConfig{Interval: -1}})
			c := newClient(t)
			c.Timeout = 3 * time.Second
			for i := range 2 {
				status, body, h := getWith(t, c, url+"/")
				if status != http.StatusOK || body != "ok" || (h.Get("X-A") != "b" && h.Get("X-A") != "b c") {
					t.Fatalf("request %d: %d %q, X-A %q; want the backend's 200 ok, X-A b", i, status, body, h.Get("X-A"))
				}
			}
			if n := rb.accepted.Load(); n != 1 {
				t.Errorf("%d backend connections for two requests, want 1", n)
			}
		})
	}
}

// TestBareLFResponseHeadHealthCheck: a health check reads a head of bare
// LFs as requests do, so the backend that sends one stays up. (A check
// failed on it, and Fall took the backend down.)
func TestBareLFResponseHeadHealthCheck(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		if _, ok := rb.readRequest(r); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\nContent-Length: 2\nConnection: close\n\nok")
		}
	})
	p, _ := startProxy(t, Config{Backends: []string{rb.URL()},
		Health: HealthConfig{Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}})
	b := p.Pool().Backends()[0]
	waitFor(t, "three health checks", 5*time.Second, func() bool { return b.Stats().Checks >= 3 })
	if s := b.Stats(); s.CheckFailures != 0 || !b.Up() {
		t.Errorf("%d of %d checks failed, backend %s; want none failed and up", s.CheckFailures, s.Checks, b.State())
	}
}

// TestReadHead reads heads sent in pieces, as separate reads bring them, on
// a connection that stays open: a head of bare LFs is read as soon as it
// is whole (it used to wait for more, until the read deadline here), a CRLF
// one as before, and what follows the head stays in the reader.
func TestReadHead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pieces []string
		status int
		xa     string // the X-A header read
		rest   string // what stays buffered for the body
	}{
		{"bare LF, one piece", []string{"HTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\nok"}, 200, "b", "ok"},
		{"bare LF, split in a line", []string{"HTTP/1.1 404 Not Found\nX-", "A: b\nContent-Length: 2\n", "\nok"}, 404, "b", "ok"},
		{"bare LF, split before the empty line", []string{"HTTP/1.1 200 OK\nX-A: b\n", "\n"}, 200, "b", ""},
		{"CRLF, split", []string{"HTTP/1.1 200 OK\r\nX-A: b\r\n", "Content-Length: 2\r\n\r\nok"}, 200, "b", "ok"},
		{"CRLF with a bare LF in the body", []string{"HTTP/1.1 200 OK\r\nX-A: b\r\n", "\r\n\n\n"}, 200, "b", "\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			t.Cleanup(func() { client.Close(); server.Close() })
			go func() {
				for _, p := range tc.pieces {
					if _, err := io.WriteString(server, p); err != nil {
						return
					}
				}
			}()
			client.SetReadDeadline(time.Now().Add(3 * time.Second))
			bc := &backendConn{}
			bc.sockConn.init(client)
			bc.br = bufio.NewReader(bc)
			var h fasthttp.ResponseHeader
			h.DisableNormalizing()
			if err := readHead(bc, bc.br, &h); err != nil {
				t.Fatal(err)
			}
			rest, _ := bc.br.Peek(bc.br.Buffered())
			if h.StatusCode() != tc.status || string(h.Peek("X-A")) != tc.xa || string(rest) != tc.rest || bc.head {
				t.Errorf("status %d, X-A %q, %q left, head %v; want %d, %q, %q, false", h.StatusCode(), h.Peek("X-A"), rest, bc.head, tc.status, tc.xa, tc.rest)
			}
		})
	}
}

// TestLFConn: a health check's connection gives its reader the first head
// with a CR before each bare LF, and the rest as it came, whatever the size
// of the reads.
func TestLFConn(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"bare LF", "HTTP/1.1 200 OK\nA: b\n\nbody\n\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody\n\n"},
		{"CRLF", "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody\n"},
		{"mixed", "HTTP/1.1 200 OK\r\nA: b\n\r\nx\n", "HTTP/1.1 200 OK\r\nA: b\r\n\r\nx\n"},
		{"bare CR kept", "HTTP/1.1 200 OK\nA: b\rc\n\n", "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n"},
	} {
		for _, size := range []int{1, 2, 3, 7, 4096} {
			t.Run(fmt.Sprintf("%s/reads of %d", tc.name, size), func(t *testing.T) {
				c := &lfConn{Conn: &readOnlyConn{r: strings.NewReader(tc.in)}}
				var got []byte
				buf := make([]byte, size)
				for {
					n, err := c.Read(buf)
					got = append(got, buf[:n]...)
					if err != nil {
						break
					}
				}
				if string(got) != tc.want {
					t.Errorf("read %q, want %q", got, tc.want)
				}
			})
		}
	}
}

// readOnlyConn is a net.Conn that reads from r.
type readOnlyConn struct {
	net.Conn
	r io.Reader
}

func (c *readOnlyConn) Read(b []byte) (int, error) { return c.r.Read(b) }
