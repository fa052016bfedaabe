package proxy

import (
	"bufio"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// headerNames lists a header's names in lower case, in order.
func headerNames(all func(yield func(k, v []byte) bool)) []string {
	var names []string
	for k := range all {
		names = append(names, strings.ToLower(string(k)))
	}
	return names
}

// TestStripRequestHeaders: hop-by-hop headers go, and those any Connection
// line names, but not the framing or Host; a protocol switch is kept only
// for one Upgrade header that does not ask for h2c.
func TestStripRequestHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers string // after the request line and Host: x
		want    []string
		upgrade bool
	}{
		{"one Connection line", "Connection: keep-alive, X-A\r\nX-A: 1\r\nX-B: 2\r\n", []string{"host", "x-b"}, false},
		{"two Connection lines", "Connection: X-A\r\nX-A: 1\r\nConnection: X-B\r\nX-B: 2\r\nX-C: 3\r\n", []string{"host", "x-c"}, false},
		{"more lines than are held", "Connection: X-A\r\nConnection: X-B\r\nConnection: X-C\r\nConnection: X-D\r\nConnection: X-E\r\n" +
			"X-A: 1\r\nX-B: 1\r\nX-C: 1\r\nX-D: 1\r\nX-E: 1\r\nX-F: 1\r\n", []string{"host", "x-f"}, false},
		{"naming the framing and the target", "Connection: content-length, HOST, x-a\r\nContent-Length: 5\r\nX-A: 1\r\n", []string{"host", "content-length"}, false},
		{"hop-by-hop and forwarding", "Keep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: x\r\nX-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\nX-E: 1\r\n", []string{"host", "x-e"}, false},
		{"WebSocket", "Connection: Upgrade\r\nUpgrade: websocket\r\n", []string{"host", "upgrade", "connection"}, true},
		{"upgrade in a second Connection line", "Connection: Upgrade\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n", []string{"host", "upgrade", "connection"}, true},
		{"Upgrade without Connection: upgrade", "Connection: keep-alive\r\nUpgrade: websocket\r\n", []string{"host"}, false},
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", []string{"host"}, false},
		{"h2c among others", "Connection: Upgrade\r\nUpgrade: websocket, H2C\r\n", []string{"host"}, false},
		{"two Upgrade headers", "Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n", []string{"host"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			body := ""
			if strings.Contains(tc.headers, "Content-Length: 5") {
				body = "hello"
			}
			raw := "POST / HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n" + body
			if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			upgrade := stripRequestHeaders(&h, h.RawHeaders())
			h.ResetConnectionClose()
			if got := headerNames(h.All()); !slices.Equal(got, tc.want) {
				t.Errorf("headers %q, want %q", got, tc.want)
			}
			if upgrade != tc.upgrade {
				t.Errorf("upgrade %v, want %v", upgrade, tc.upgrade)
			}
			if body != "" && h.ContentLength() != len(body) {
				t.Errorf("Content-Length %d, want %d", h.ContentLength(), len(body))
			}
			if string(h.Host()) != "x" {
				t.Errorf("Host %q, want x", h.Host())
			}
		})
	}
}

// TestCleanResponse: a response's hop-by-hop headers go, and every one its
// Connection lines name, however many and however long their names, but
// not its framing.
func TestCleanResponse(t *testing.T) {
	long := "X-" + strings.Repeat("l", 60)
	var many, manyListed strings.Builder
	for i := range 12 {
		name := "X-Hop-" + string(rune('a'+i))
		many.WriteString(name + ": 1\r\n")
		manyListed.WriteString(", " + name)
	}
	for _, tc := range []struct {
		name    string
		headers string
		want    []string // besides Content-Length, which stays
	}{
		{"none", "X-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n", []string{"set-cookie", "set-cookie", "x-a"}},
		{"keep-alive", "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\n", []string{"x-a"}},
		{"two Connection lines", "Connection: X-B\r\nX-B: 1\r\nConnection: X-C\r\nX-C: 1\r\nX-A: 1\r\n", []string{"x-a"}},
		{"more names than a round holds", "Connection: keep-alive" + manyListed.String() + "\r\n" + many.String() + "X-A: 1\r\n", []string{"x-a"}},
		{"a long name", "Connection: " + long + "\r\n" + long + ": 1\r\nX-A: 1\r\n", []string{"x-a"}},
		{"naming the framing", "Connection: Content-Length, X-B\r\nX-B: 1\r\nX-A: 1\r\n", []string{"x-a"}},
		{"hop-by-hop only", "Proxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-A: 1\r\n", []string{"x-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp fasthttp.Response
			resp.Header.DisableNormalizing()
			raw := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + tc.headers + "\r\nhello"
			if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			size := cleanResponse(&resp)
			var got []string
			for _, n := range headerNames(resp.Header.All()) {
				if n != "content-length" && n != "content-type" {
					got = append(got, n)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("headers %q, want %q", got, tc.want)
			}
			if resp.Header.ContentLength() != 5 || string(resp.Body()) != "hello" {
				t.Errorf("Content-Length %d, body %q; want 5, hello", resp.Header.ContentLength(), resp.Body())
			}
			if size <= len(tc.headers) {
				t.Errorf("header size %d, want the whole block's (over %d)", size, len(tc.headers))
			}
		})
	}
}
