package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHeadScan(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		bare     bool
		ends     bool // the scan stops at the end of the head
	}{
		{"CRLF head", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, true},
		{"CRLF head and a body with bare LFs", "POST / HTTP/1.1\r\nHost: a\r\n\r\nb\n\nc\n", false, true},
		{"empty lines before the request line", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false, true},
		{"bare LF throughout", "GET / HTTP/1.1\nHost: a\n\n", true, false},
		{"bare LF after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", true, false},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\n\r\n", true, false},
		{"LF alone before the request line", "\n\r\n\nGET / HTTP/1.1\r\n\r\n", false, true},
		{"bare LF ending a header line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", true, false},
		{"head not yet whole", "GET / HTTP/1.1\r\nHost: a\r\n", false, false},
		{"CR alone inside a line", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", false, true},
	} {
		// Every split of the bytes into two reads gives the same answer.
		for cut := 0; cut <= len(tc.in); cut++ {
			var h headScan
			h.start()
			bare := h.scan([]byte(tc.in[:cut]))
			if !bare && h.on {
				bare = h.scan([]byte(tc.in[cut:]))
			}
			if bare != tc.bare || h.bare != tc.bare {
				t.Errorf("%s, cut at %d: bare %v (%v), want %v", tc.name, cut, bare, h.bare, tc.bare)
			}
			if ended := !h.on && !bare; ended != tc.ends {
				t.Errorf("%s, cut at %d: head ended %v, want %v", tc.name, cut, ended, tc.ends)
			}
		}
	}
}

// TestBareLFAnsweredAtOnce: a head of bare LFs gets its 400 as soon as it
// arrives, not at the header timeout, and bodies with bare LFs, sent with
// their head or after it, or behind another request, pass untouched.
func TestBareLFAnsweredAtOnce(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientHeaderTimeout: time.Minute, Health: HealthConfig{Interval: -1}})
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	read := func(t *testing.T, r *bufio.Reader) (int, string) {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	t.Run("bare LFs throughout", func(t *testing.T) {
		c, r := dial(t)
		start := time.Now()
		io.WriteString(c, "GET /echo HTTP/1.1\nHost: x\n\n")
		if code, _ := read(t, r); code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", code)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("answered after %v: the header timeout, not the scan", d)
		}
	})
	t.Run("body after the head", func(t *testing.T) {
		c, r := dial(t)
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
		io.WriteString(c, "a\n\nb\n")
		if code, body := read(t, r); code != http.StatusOK || !strings.Contains(body, `"body_length":5`) {
			t.Fatalf("status %d, body %q; want 200 echoing the body", code, body)
		}
	})
	t.Run("body behind another request", func(t *testing.T) {
		c, r := dial(t)
		// The body follows in a write of its own. (fasthttp holds a
		// response while the next request is in its buffer, so the
		// client must not wait for the first answer before sending it.)
		io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
		io.WriteString(c, "\n\n\n\n")
		if code, _ := read(t, r); code != http.StatusOK {
			t.Fatalf("first request: status %d", code)
		}
		if code, body := read(t, r); code != http.StatusOK || !strings.Contains(body, `"body_length":4`) {
			t.Fatalf("second request: status %d, body %q", code, body)
		}
		io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\n\r\n")
		if code, _ := read(t, r); code != http.StatusBadRequest {
			t.Fatalf("third request, bare LF: status %d, want 400", code)
		}
	})
}

// BenchmarkHeadScan: the scan of a typical browser request head.
func BenchmarkHeadScan(b *testing.B) {
	head := []byte("GET /assets/app.js?v=3 HTTP/1.1\r\nHost: www.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
		"Accept: */*\r\nAccept-Language: en-GB,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
		"Referer: https://www.example.com/\r\nConnection: keep-alive\r\nCookie: sid=abc123; theme=dark\r\n\r\n")
	b.SetBytes(int64(len(head)))
	var h headScan
	for b.Loop() {
		h.start()
		if h.scan(head) || h.on {
			b.Fatal("head not scanned to its end")
		}
	}
}
