package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAccessLogEscaping: quoted fields cannot break a line or close their
// quotes early, in either format, and JSON lines always parse.
func TestAccessLogEscaping(t *testing.T) {
	for _, tc := range []struct {
		in, combined, json string
	}{
		{"plain /a?b=c", "plain /a?b=c", "plain /a?b=c"},
		{`say "hi"`, `say \x22hi\x22`, `say \"hi\"`},
		{`back\slash`, `back\x5Cslash`, `back\\slash`},
		{"line\nbreak\r\ttab", `line\x0Abreak\x0D\x09tab`, `line\nbreak\r\ttab`},
		{"nul\x00 del\x7f", `nul\x00 del\x7F`, `nul\u0000 del` + "\x7f"},
		{"café", `caf\xC3\xA9`, "café"},
		{"bad \xff utf-8", `bad \xFF utf-8`, "bad \ufffd utf-8"},
	} {
		if got := string(appendLogEscaped(nil, tc.in)); got != tc.combined {
			t.Errorf("combined %q: got %s, want %s", tc.in, got, tc.combined)
		}
		if got := string(appendLogEscaped(nil, []byte(tc.in))); got != tc.combined {
			t.Errorf("combined %q as bytes: got %s, want %s", tc.in, got, tc.combined)
		}
		got := string(appendJSONEscaped(nil, []byte(tc.in)))
		if got != tc.json {
			t.Errorf("json %q: got %s, want %s", tc.in, got, tc.json)
		}
		if got2 := string(appendJSONEscaped(nil, tc.in)); got2 != got {
			t.Errorf("json %q as string: got %s, as bytes %s", tc.in, got2, got)
		}
		var back string
		if err := json.Unmarshal([]byte(`"`+got+`"`), &back); err != nil {
			t.Errorf("json %q: %s does not parse: %v", tc.in, got, err)
		}
	}
}

// TestAccessLogLine: both formats, field by field, with a fixed clock.
func TestAccessLogLine(t *testing.T) {
	zone := time.FixedZone("", 2*3600)
	start := time.Date(2024, 3, 9, 14, 5, 7, 120e6, zone)
	full := accessEntry[string]{
		start: start, client: netip.MustParseAddr("203.0.113.9"),
		method: "GET", uri: "/a?q=\"x\"", proto: "HTTP/1.1", host: "shop.example",
		referer: "https://ref.example/", agent: "curl/8.5.0",
		status: 200, bytes: 512, backend: "http://10.0.0.1:8081", attempts: 2,
	}
	empty := accessEntry[string]{start: start, status: 400}
	end := start.Add(3456 * time.Microsecond)
	for _, tc := range []struct {
		name   string
		e      accessEntry[string]
		format AccessLogFormat
		want   string
	}{
		{"combined", full, AccessLogCombined,
			`203.0.113.9 - - [09/Mar/2024:14:05:07 +0200] "GET /a?q=\x22x\x22 HTTP/1.1" 200 512 "https://ref.example/" "curl/8.5.0" 0.003 "http://10.0.0.1:8081"` + "\n"},
		{"combined, nothing known", empty, AccessLogCombined,
			`- - - [09/Mar/2024:14:05:07 +0200] "-" 400 0 "-" "-" 0.003 "-"` + "\n"},
		{"json", full, AccessLogJSON,
			`{"time":"2024-03-09T14:05:07.123+02:00","client":"203.0.113.9","method":"GET","uri":"/a?q=\"x\"","proto":"HTTP/1.1",` +
				`"host":"shop.example","status":200,"bytes":512,"duration_ms":3.456,"backend":"http://10.0.0.1:8081","attempts":2,` +
				`"referer":"https://ref.example/","user_agent":"curl/8.5.0"}` + "\n"},
		{"json, nothing known", empty, AccessLogJSON,
			`{"time":"2024-03-09T14:05:07.123+02:00","client":"-","method":"","uri":"","proto":"","host":"","status":400,"bytes":0,` +
				`"duration_ms":3.456,"backend":"","attempts":0,"referer":"","user_agent":""}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ll logLine
			asJSON := tc.format == AccessLogJSON
			ll.stamp(end, asJSON)
			var got []byte
			if asJSON {
				got = tc.e.appendJSON(nil, &ll, end)
				var m map[string]any
				if err := json.Unmarshal(got, &m); err != nil {
					t.Fatalf("%s does not parse: %v", got, err)
				}
			} else {
				got = tc.e.appendCombined(nil, &ll, end)
			}
			if string(got) != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// TestAccessLogTimeCache: a new second is formatted anew, in either format.
func TestAccessLogTimeCache(t *testing.T) {
	var ll logLine
	t0 := time.Date(2024, 3, 9, 14, 5, 7, 0, time.UTC)
	ll.stamp(t0, false)
	ll.stamp(t0.Add(time.Second), false)
	if got := string(ll.local); got != "09/Mar/2024:14:05:08 +0000" {
		t.Errorf("combined stamp %q", got)
	}
	ll.stamp(t0.Add(time.Second), true)
	if got := string(ll.iso) + string(ll.zone); got != "2024-03-09T14:05:08Z" {
		t.Errorf("json stamp %q", got)
	}
}

// TestParseAccessLogFormat names a bad format.
func TestParseAccessLogFormat(t *testing.T) {
	for _, ok := range []string{"combined", "json"} {
		if _, err := ParseAccessLogFormat(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	_, err := ParseAccessLogFormat("xml")
	if err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("xml: %v, want an error naming it", err)
	}
	if _, err := New(Config{Backends: []string{"http://127.0.0.1:1"}, AccessLogFormat: "clf", Logger: discardLogger()}); err == nil ||
		!strings.Contains(err.Error(), `"clf"`) {
		t.Errorf("New with format clf: %v, want an error naming it", err)
	}
}

// accessLines waits for n lines in buf and returns them.
func accessLines(t *testing.T, buf *logBuffer, n int) []string {
	t.Helper()
	var lines []string
	waitFor(t, fmt.Sprintf("%d access log lines", n), 5*time.Second, func() bool {
		s := buf.String() // once: the log may grow between two reads
		lines = strings.Split(strings.TrimSuffix(s, "\n"), "\n")
		return s != "" && len(lines) >= n
	})
	return lines
}

// jsonLine parses one JSON access log line.
func jsonLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	return m
}

// TestAccessLogStreamedResponse: a body too large to hold streams through,
// and its line, written when the stream has been relayed, counts every
// byte sent.
func TestAccessLogStreamedResponse(t *testing.T) {
	be := startBackend(t, "a")
	var buf logBuffer
	_, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf, AccessLogFormat: AccessLogJSON})
	const size = 3 << 20 // past maxBufferedResponse: streamed
	status, body := get(t, newClient(t), fmt.Sprintf("%s/bytes/%d", u, size))
	if status != 200 || len(body) != size {
		t.Fatalf("status %d, %d bytes", status, len(body))
	}
	m := jsonLine(t, accessLines(t, &buf, 1)[0])
	if m["bytes"] != float64(size) || m["status"] != float64(200) || m["backend"] != be.URL() {
		t.Errorf("line %v: want %d bytes, status 200, backend %s", m, size, be.URL())
	}
}

// TestAccessLogReadError: requests the balancer answers itself for a bad
// header are logged too, and both formats say the same of the request line:
// what was read, or nothing ("-" in combined, empty strings in JSON) where
// fasthttp kept none of it (a header it could not read).
func TestAccessLogReadError(t *testing.T) {
	be := startBackend(t, "a")
	var combined, asJSON logBuffer
	_, cu := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &combined, MaxHeaderSize: 1024})
	_, ju := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &asJSON, AccessLogFormat: AccessLogJSON, MaxHeaderSize: 1024})
	for i, tc := range []struct {
		name, raw string
		status    int
		line      string // method, target and protocol as logged; "" for none
	}{
		{"header too large", "GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 4096) + "\r\n\r\n", 431, ""},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", 400, ""},
		{"header line without a colon", "GET /nc HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, ""},
		{"NUL in a header value", "GET /nul HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n", 400, ""},
		{"space in a header name", "GET /sp HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400, "GET /sp HTTP/1.1"},
		{"obsolete line folding", "GET /fold HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400, "GET /fold HTTP/1.1"},
		{"Content-Length with Transfer-Encoding", "POST /te HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "POST /te HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, u := range []string{cu, ju} {
				if status, _ := rawRequest(t, u, tc.raw); !strings.Contains(status, " "+strconv.Itoa(tc.status)+" ") {
					t.Fatalf("status %q, want %d", status, tc.status)
				}
			}
			c := accessLines(t, &combined, i+1)[i]
			wantLine := tc.line
			if wantLine == "" {
				wantLine = "-"
			}
			if !strings.HasPrefix(c, "127.0.0.1 - - [") || !strings.Contains(c, `] "`+wantLine+`" `+strconv.Itoa(tc.status)+" ") {
				t.Errorf("combined %q: want 127.0.0.1, request %q and %d", c, wantLine, tc.status)
			}
			m := jsonLine(t, accessLines(t, &asJSON, i+1)[i])
			got := strings.TrimSpace(fmt.Sprint(m["method"], " ", m["uri"], " ", m["proto"]))
			if got != tc.line || m["status"] != float64(tc.status) || m["client"] != "127.0.0.1" {
				t.Errorf("json %v: want request %q, status %d, client 127.0.0.1", m, tc.line, tc.status)
			}
		})
	}
}

// TestAccessLogReadErrorTime: the line of a request the server could not
// read counts its time from its first byte (the watchdog's record of the
// connection), as nginx's $request_time does, not 0.000: the handler, whose
// first clock read starts a request's time, never ran. Each request sends
// its first part, then the rest once the proxy's clock has gone pause past
// the request's start (or nothing, and the header limit answers it).
func TestAccessLogReadErrorTime(t *testing.T) {
	be := startBackend(t, "a")
	const pause = 150 * time.Millisecond
	for _, tc := range []struct {
		name        string
		first, rest string // rest "": none, the header limit passes
		status      int
		least       time.Duration // the time the line must count at least
	}{
		{"bad header line", "GET /nc HTTP/1.1\r\nHost: x\r\n", "NoColon\r\n\r\n", 400, pause},
		{"header too large", "GET /big HTTP/1.1\r\nHost: x\r\n", "X-Big: " + strings.Repeat("a", 2048) + "\r\n\r\n", 431, pause},
		{"request line too long", "GET /" + strings.Repeat("u", 100), strings.Repeat("u", 2048) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, pause},
		{"header not finished in time", "GET /slow HTTP/1.1\r\nHost: x\r\n", "", 408, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf logBuffer
			p, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf, AccessLogFormat: AccessLogJSON,
				MaxHeaderSize: 1024, ClientHeaderTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, u, 5*time.Second)
			defer c.Close()
			io.WriteString(c, tc.first)
			// The request has begun when the connection's record says so.
			var cc *clientConn
			waitFor(t, "the request to begin", 5*time.Second, func() bool {
				p.wd.clients.mu.Lock() // snapshot's slice is the sweep's
				defer p.wd.clients.mu.Unlock()
				for _, r := range p.wd.clients.list {
					if r.phase.Load() == phaseHeader {
						cc = r
						return true
					}
				}
				return false
			})
			began := cc.since.Load()
			if tc.rest != "" {
				waitFor(t, "the proxy's clock to pass the pause", 5*time.Second, func() bool { return p.wd.now()-began >= int64(pause) })
				io.WriteString(c, tc.rest)
			}
			status, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.Contains(status, " "+strconv.Itoa(tc.status)+" ") {
				t.Fatalf("status %q, %v; want %d", status, err, tc.status)
			}
			m := jsonLine(t, accessLines(t, &buf, 1)[0])
			ms, _ := m["duration_ms"].(float64)
			if m["status"] != float64(tc.status) || ms < float64(tc.least.Milliseconds()) || ms > 5000 {
				t.Errorf("line %v: want status %d and duration_ms from %d to 5000", m, tc.status, tc.least.Milliseconds())
			}
		})
	}
}

// TestAccessLogFlushedAtShutdown: Shutdown writes out every pending line,
// without waiting for the next periodic write.
func TestAccessLogFlushedAtShutdown(t *testing.T) {
	be := startBackend(t, "a")
	var buf logBuffer
	p, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf})
	c := newClient(t)
	for range 5 {
		if status, _ := get(t, c, u+"/"); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Errorf("%d lines after Shutdown, want 5:\n%s", n, buf.String())
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	entered chan struct{} // closed at the first Write
	release chan struct{}
	once    sync.Once
	logBuffer
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.logBuffer.Write(b)
}

// TestAccessLogDropsWhenBlocked: a destination that blocks never holds up
// requests: once the pending lines reach the limit, more are dropped and
// counted, and what was pending is written once it unblocks.
func TestAccessLogDropsWhenBlocked(t *testing.T) {
	be := startBackend(t, "a")
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	p, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: w})
	p.alog.mu.Lock()
	p.alog.limit = 2048 // a dozen lines
	p.alog.mu.Unlock()
	released := false
	release := func() {
		if !released {
			released = true
			close(w.release)
		}
	}
	t.Cleanup(release)
	c := newClient(t)
	get(t, c, u+"/")
	select {
	case <-w.entered: // the flusher is stuck in Write
	case <-time.After(5 * time.Second):
		t.Fatal("the access log was never written")
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.AccessLogDropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no line dropped while the writer blocks")
		}
		if status, _ := get(t, c, u+"/"); status != 200 {
			t.Fatalf("status %d while the access log blocks", status)
		}
	}
	release()
	accessLines(t, &w.logBuffer, 2)
}

// TestAccessLogWebSocket: a protocol switch is logged when the 101 is
// sent, while the tunnel is still open.
func TestAccessLogWebSocket(t *testing.T) {
	be := startBackend(t, "a")
	var buf logBuffer
	_, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf})
	c := dialWS(t, u)
	defer c.Close()
	line := accessLines(t, &buf, 1)[0]
	if !strings.Contains(line, `"GET /ws HTTP/1.1" 101 0 `) || !strings.HasSuffix(line, `"`+be.URL()+`"`) {
		t.Errorf("line %q: want GET /ws, 101 and the backend", line)
	}
}

// TestAccessLogHTTP1ViaNet: an HTTP/1.1 request to a pool of HTTP/2
// backends, proxied by the net/http path, is logged once, by that path.
func TestAccessLogHTTP1ViaNet(t *testing.T) {
	be := startH2Backend(t, "h2", nil)
	var buf logBuffer
	p, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf, AccessLogFormat: AccessLogJSON})
	if status, _ := get(t, newClient(t), u+"/x"); status != 200 {
		t.Fatalf("status %d", status)
	}
	m := jsonLine(t, accessLines(t, &buf, 1)[0])
	if m["proto"] != "HTTP/1.1" || m["status"] != float64(200) || m["attempts"] != float64(1) || m["backend"] != "http://"+be.addr {
		t.Errorf("line %v: want HTTP/1.1, 200, one attempt on http://%s", m, be.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.Shutdown(ctx) //nolint:errcheck // flushes the log
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want 1:\n%s", n, buf.String())
	}
}

// TestAccessLogHTTP10: the line shows the protocol the client spoke, though
// the backend is sent HTTP/1.1.
func TestAccessLogHTTP10(t *testing.T) {
	be := startBackend(t, "a")
	var buf logBuffer
	_, u := startProxy(t, Config{Backends: []string{be.URL()}, AccessLog: &buf})
	status, _ := rawRequest(t, u, "GET /x HTTP/1.0\r\n\r\n")
	if !strings.Contains(status, "200") {
		t.Fatalf("status %q, want 200", status)
	}
	if line := accessLines(t, &buf, 1)[0]; !strings.Contains(line, `"GET /x HTTP/1.0" 200 `) {
		t.Errorf("line %q: want \"GET /x HTTP/1.0\" 200", line)
	}
}
