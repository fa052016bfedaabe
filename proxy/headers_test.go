package proxy

import (
	"bufio"
	"math/rand/v2"
	"slices"
	"strconv"
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

// linesByName groups a header block's lines ("Name: value", spelled as
// sent) by name in lower case, each group in order, leaving out the first
// line (request or status line) and the names in skip.
func linesByName(block string, skip ...string) map[string][]string {
	lines := map[string][]string{}
	for i, line := range strings.Split(block, "\r\n") {
		name, _, ok := strings.Cut(line, ":")
		if i == 0 || !ok || slices.Contains(skip, strings.ToLower(name)) {
			continue
		}
		lines[strings.ToLower(name)] = append(lines[strings.ToLower(name)], line)
	}
	return lines
}

// sameLines reports how got differs from want, group by group: a group
// missing, grown or in another order.
func sameLines(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for name, w := range want {
		if g := got[name]; !slices.Equal(g, w) {
			t.Errorf("%s lines %q, want %q", name, g, w)
		}
	}
	for name, g := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s lines %q, want none", name, g)
		}
	}
}

// manyNames is more distinct header names than the strip notes one by one.
func manyNames(prefix string) string {
	var b strings.Builder
	for i := range 40 {
		b.WriteString(prefix + strconv.Itoa(i) + ": " + strconv.Itoa(i) + "\r\n")
	}
	return b.String()
}

// TestStripRequestKeepsLineOrder: lines of one name reach the backend in the
// order the client sent them (RFC 9110 §5.3), spelled as sent, whatever is
// stripped before, between or after them; every other kept line stays too.
func TestStripRequestKeepsLineOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers string   // after the request line and Host: x
		gone    []string // names stripped, in lower case
		upgrade bool
	}{
		{"after a hop-by-hop one", "Connection: keep-alive\r\nForwarded: for=192.0.2.1\r\nVia: 1.1 a\r\nForwarded: for=192.0.2.2\r\n",
			[]string{"connection"}, false},
		{"before and after", "Forwarded: for=a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-A: 1\r\nForwarded: for=b\r\nForwarded: for=c\r\n",
			[]string{"connection", "x-hop"}, false},
		{"among hop-by-hop ones", "Cache-Control: no-cache\r\nKeep-Alive: 5\r\nCache-Control: no-store\r\nTE: trailers\r\nVia: 1.0 a\r\n" +
			"Proxy-Connection: keep-alive\r\nVia: 1.1 b\r\nX-Real-IP: 6.6.6.6\r\nCache-Control: max-age=0\r\nConnection: keep-alive\r\n",
			[]string{"connection", "keep-alive", "te", "proxy-connection", "x-real-ip"}, false},
		{"spelled differently", "forwarded: for=a\r\nConnection: keep-alive\r\nFORWARDED: for=b\r\nX-B: 1\r\nForwarded: for=c\r\n",
			[]string{"connection"}, false},
		{"Cookie lines, kept apart", "Connection: keep-alive\r\nCookie: a=1\r\nX-A: 1\r\nCookie: b=2\r\nCookie: c\r\n",
			[]string{"connection"}, false},
		{"a listed name among them", "Connection: X-L\r\nX-L: 1\r\nAccept: text/html\r\nX-L: 2\r\nX-A: 1\r\nAccept: */*\r\n",
			[]string{"connection", "x-l"}, false},
		{"chunked", "Transfer-Encoding: chunked\r\nVia: 1.0 a\r\nX-A: 1\r\nVia: 1.1 b\r\n",
			[]string{"transfer-encoding"}, false},
		{"more names than are noted", "Connection: keep-alive\r\n" + manyNames("X-N-") + "Via: 1.0 a\r\nX-A: 1\r\nVia: 1.1 b\r\nX-N-0: again\r\n",
			[]string{"connection"}, false},
		{"WebSocket", "Connection: Upgrade\r\nSec-WebSocket-Protocol: a\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: b\r\n",
			[]string{"connection", "upgrade"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			head := "GET / HTTP/1.1\r\nHost: x\r\n" + tc.headers + "\r\n"
			if err := h.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
				t.Fatal(err)
			}
			upgrade := stripRequestHeaders(&h, h.RawHeaders())
			h.ResetConnectionClose()
			want := linesByName(head, tc.gone...)
			if upgrade {
				want["upgrade"] = []string{"Upgrade: websocket"}
				want["connection"] = []string{"Connection: Upgrade"}
			}
			sameLines(t, linesByName(h.String()), want)
			if upgrade != tc.upgrade {
				t.Errorf("upgrade %v, want %v", upgrade, tc.upgrade)
			}
		})
	}
}

// TestCleanResponseKeepsLineOrder: lines of one name reach the client in the
// order the backend sent them (RFC 9110 §5.3), spelled as sent, whatever is
// stripped before, between or after them; every other kept line stays too.
func TestCleanResponseKeepsLineOrder(t *testing.T) {
	long := strings.Repeat("x", 400)
	var many, manyListed strings.Builder
	var manyGone []string
	for i := range 12 {
		name := "X-Hop-" + string(rune('a'+i))
		many.WriteString(name + ": 1\r\n")
		manyListed.WriteString(", " + name)
		manyGone = append(manyGone, strings.ToLower(name))
	}
	for _, tc := range []struct {
		name    string
		headers string
		gone    []string // names stripped, in lower case
	}{
		{"keep-alive first", "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nLink: </a.css>; rel=preload\r\nX-A: 1\r\nLink: </b.js>; rel=preload\r\n",
			[]string{"connection", "keep-alive"}},
		{"keep-alive last, as Node.js sends it", "Link: </a.css>; rel=preload\r\nX-A: 1\r\nLink: </b.js>; rel=preload\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n",
			[]string{"connection", "keep-alive"}},
		{"before and after", "Vary: Accept\r\nConnection: keep-alive\r\nVary: Origin\r\nKeep-Alive: timeout=5\r\nCache-Control: no-cache\r\n" +
			"X-A: 1\r\nCache-Control: private\r\n", []string{"connection", "keep-alive"}},
		{"among hop-by-hop ones", "Connection: keep-alive\r\nWWW-Authenticate: Basic\r\nProxy-Authenticate: Basic\r\nWWW-Authenticate: Bearer\r\n" +
			"Upgrade: h2c\r\nX-A: 1\r\nWWW-Authenticate: Digest\r\n", []string{"connection", "proxy-authenticate", "upgrade"}},
		{"spelled differently", "link: <a>\r\nConnection: keep-alive\r\nLINK: <b>\r\nX-A: 1\r\nLink: <c>\r\n",
			[]string{"connection"}},
		// fasthttp holds Set-Cookie lines in a list of their own.
		{"Set-Cookie", "Set-Cookie: a=1\r\nConnection: keep-alive\r\nSet-Cookie: b=2\r\nX-A: 1\r\nSet-Cookie: c=3\r\n",
			[]string{"connection"}},
		{"a listed name among them", "Connection: X-L\r\nX-L: 1\r\nVary: Accept\r\nX-L: 2\r\nX-A: 1\r\nVary: Origin\r\n",
			[]string{"connection", "x-l"}},
		{"more names than are noted", "Connection: keep-alive\r\n" + manyNames("X-N-") + "Via: 1.0 a\r\nX-A: 1\r\nVia: 1.1 b\r\nX-N-0: again\r\n",
			[]string{"connection"}},
		// Past the 1 KiB the copies take on the stack.
		{"long values", "Connection: keep-alive\r\nLink: <a" + long + ">\r\nX-A: 1\r\nLink: <b" + long + ">\r\nLink: <c" + long + ">\r\n",
			[]string{"connection"}},
		{"more names listed than a round holds", "Vary: Accept\r\nConnection: keep-alive" + manyListed.String() + "\r\n" + many.String() +
			"Vary: Origin\r\nX-A: 1\r\nVary: Cookie\r\n", append([]string{"connection"}, manyGone...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp fasthttp.Response
			resp.Header.DisableNormalizing()
			head := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n" + tc.headers + "\r\n"
			if err := resp.Read(bufio.NewReader(strings.NewReader(head + "hello"))); err != nil {
				t.Fatal(err)
			}
			cleanResponse(&resp)
			skip := []string{"content-length", "content-type", "date", "server"}
			sameLines(t, linesByName(resp.Header.String(), skip...), linesByName(head, append(skip, tc.gone...)...))
		})
	}
}

// TestStripKeepsLineOrderRandom strips random header blocks, names kept
// and names stripped mixed in any order and letter case, and checks that
// every name that stays has all its lines in the order sent.
func TestStripKeepsLineOrderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(lines []string) string { return lines[rng.IntN(len(lines))] }
	block := func(lines []string) string {
		var b strings.Builder
		for range 3 + rng.IntN(40) {
			if rng.IntN(4) == 0 {
				// Many names, past what the strip notes one by one.
				b.WriteString("X-N-" + strconv.Itoa(rng.IntN(40)) + ": " + strconv.Itoa(rng.IntN(100)) + "\r\n")
				continue
			}
			b.WriteString(pick(lines) + strconv.Itoa(rng.IntN(100)) + "\r\n")
		}
		return b.String()
	}
	request := []string{"Forwarded: for=", "forwarded: for=", "FORWARDED: for=", "Via: 1.1 p", "Cookie: c=", "Accept: a/",
		"X-A: ", "X-B: ", "Connection: keep-alive, x", "Connection: X-B, x", "Keep-Alive: ", "TE: t", "Proxy-Connection: x", "X-Real-IP: 1.2.3."}
	response := []string{"Link: <", "link: <", "Vary: v", "Cache-Control: c", "Set-Cookie: c=", "X-A: ", "X-B: ",
		"Connection: keep-alive, x", "Connection: X-B, x", "Keep-Alive: timeout=", "Proxy-Authenticate: p", "Upgrade: u"}
	for range 3000 {
		head := "GET / HTTP/1.1\r\nHost: x\r\n" + block(request) + "\r\n"
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		if err := h.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
			t.Fatal(err)
		}
		stripRequestHeaders(&h, h.RawHeaders())
		sent := linesByName(head)
		for name, got := range linesByName(h.String()) {
			if !slices.Equal(got, sent[name]) {
				t.Fatalf("%s lines %q, want %q, from\n%s", name, got, sent[name], head)
			}
		}

		head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n" + block(response) + "\r\n"
		var resp fasthttp.Response
		resp.Header.DisableNormalizing()
		if err := resp.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
			t.Fatal(err)
		}
		cleanResponse(&resp)
		sent = linesByName(head)
		for name, got := range linesByName(resp.Header.String(), "content-length", "content-type", "date", "server") {
			if !slices.Equal(got, sent[name]) {
				t.Fatalf("%s lines %q, want %q, from\n%s", name, got, sent[name], head)
			}
		}
	}
}
