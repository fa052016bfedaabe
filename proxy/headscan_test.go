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
		bare     bool // a line ends in a bare LF
		fail     bool // read whole, the read fails: the head cannot end
		ends     bool // the scan stops at the end of a good head
	}{
		{"CRLF head", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, false, true},
		{"CRLF head and a body with bare LFs", "POST / HTTP/1.1\r\nHost: a\r\n\r\nb\n\nc\n", false, false, true},
		{"empty lines before the request line", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", false, false, true},
		{"LF alone before the request line", "\n\r\n\nGET / HTTP/1.1\r\n\r\n", false, false, true},
		{"head not yet whole", "GET / HTTP/1.1\r\nHost: a\r\n", false, false, false},
		{"CR alone inside a line", "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", false, false, true},
		{"bare LF throughout", "GET / HTTP/1.1\nHost: a\n\n", true, true, false},
		{"bare LF ending the head", "GET / HTTP/1.1\r\nHost: a\n\r\n", true, true, false},
		// fasthttp reads these whole; inspectRequest refuses them.
		{"bare LF after the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", true, false, false},
		{"bare LF ending a header line", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", true, false, false},
	} {
		// Every split of the bytes into two reads finds the same.
		for cut := 0; cut <= len(tc.in); cut++ {
			var h headScan
			h.start()
			fail := h.read([]byte(tc.in[:cut]))
			if !fail && h.on {
				fail = h.read([]byte(tc.in[cut:]))
			}
			if h.bare != tc.bare || (fail && !tc.bare) || (cut == len(tc.in) && fail != tc.fail) {
				t.Errorf("%s, cut at %d: bare %v, read failed %v; want bare %v, failed %v", tc.name, cut, h.bare, fail, tc.bare, tc.fail)
			}
			if ended := !h.on && !h.bare; ended != tc.ends {
				t.Errorf("%s, cut at %d: head ended %v, want %v", tc.name, cut, ended, tc.ends)
			}
		}
	}
}

// TestHeadScanFollowsHeads: after a response the scan starts again only if
// nothing past the last head was read, since whatever was is in
// fasthttp's buffer where the scan cannot see it.
func TestHeadScanFollowsHeads(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	var h headScan
	h.start()
	h.read(head)
	h.next()
	if !h.on {
		t.Fatal("a head that ended its read: the next is not scanned")
	}
	h.read(append(head, "GET"...)) // the next head begins in the same read
	h.next()
	if h.on {
		t.Fatal("bytes past the head were read, yet the next head is scanned")
	}
	h.start()
	h.read(head)
	h.read([]byte("a body\n")) // read by the handler
	h.next()
	if h.on {
		t.Fatal("a body was read after the head, yet the next head is scanned")
	}
	if h.read([]byte("x\n")) {
		t.Fatal("a read failed with the scan off")
	}
}

// TestBareLFAnsweredAtOnce: a head of bare LFs gets its 400 as soon as it
// arrives, not at the header timeout, on a new connection or after
// bodyless requests; bodies with bare LFs, sent with their head or after
// it, or behind another request, pass untouched.
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
	t.Run("bodies behind another request", func(t *testing.T) {
		// The second head ends in the middle of a read, or on its last
		// CRLF at the start of the next, and its body follows.
		for _, writes := range [][]string{
			{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n", "a\nb\nc\n"},
			{"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n", "\r\na\nb\nc\n"},
		} {
			c, r := dial(t)
			// The body goes once the proxy has read the heads and sent
			// the first request on, so that it comes in a read of its
			// own. (fasthttp holds the first response while the next
			// request is in its buffer, so the client cannot wait for
			// that instead.)
			hits := be.hits.Load()
			io.WriteString(c, writes[0])
			for deadline := time.Now().Add(5 * time.Second); be.hits.Load() == hits; {
				if time.Now().After(deadline) {
					t.Fatal("the first request never reached the backend")
				}
				time.Sleep(time.Millisecond)
			}
			io.WriteString(c, writes[1])
			if code, _ := read(t, r); code != http.StatusOK {
				t.Fatalf("%q: first request: status %d", writes, code)
			}
			if code, body := read(t, r); code != http.StatusOK || !strings.Contains(body, `"body_length":6`) {
				t.Fatalf("%q: second request: status %d, body %q", writes, code, body)
			}
		}
	})
	t.Run("after bodyless requests", func(t *testing.T) {
		c, r := dial(t)
		for range 2 {
			io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
			if code, _ := read(t, r); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
		}
		io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\n\n")
		if code, _ := read(t, r); code != http.StatusBadRequest {
			t.Fatalf("third request, bare LFs: status %d, want 400", code)
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
