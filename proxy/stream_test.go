package proxy

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/valyala/fasthttp"
)

// bigTransfer is the size streamed each way in the in-process tests; the
// end-to-end test of the binaries moves 1 GiB.
const bigTransfer = 96 << 20

// bigClient is a client for bigTransfer: its timeout guards against a
// hang, and leaves room for the race detector on a slow machine (one took
// 11 s each way, past newClient's 10).
func bigClient(t *testing.T) *http.Client {
	c := newClient(t)
	c.Timeout = 2 * time.Minute
	return c
}

// upload POSTs size zero bytes to url (chunked unless announced) with the
// extra header fields given, and returns what the backend's /upload saw.
func upload(t *testing.T, client *http.Client, url string, size int64, announced bool, header map[string]string) backend.Upload {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, backend.Zeros(size))
	if announced {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var up backend.Upload
	if err := json.NewDecoder(resp.Body).Decode(&up); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return up
}

func TestStreamedDownload(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			u := url + "/download/" + strconv.Itoa(bigTransfer)
			if chunked {
				u += "?chunked=1"
			}
			resp, err := bigClient(t).Get(u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if chunked != (resp.ContentLength == -1) {
				t.Errorf("Content-Length %d for chunked=%v", resp.ContentLength, chunked)
			}
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			if err != nil || n != bigTransfer {
				t.Fatalf("read %d bytes (%v), want %d", n, err, bigTransfer)
			}
			if got, want := hex.EncodeToString(h.Sum(nil)), backend.PatternSHA256(bigTransfer); got != want {
				t.Errorf("sha256 %s, want %s", got, want)
			}
		})
	}
}

func TestStreamedUpload(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, MaxBodySize: -1, Health: HealthConfig{Interval: -1}})
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			up := upload(t, bigClient(t), url+"/upload", bigTransfer, !chunked, nil)
			if up.Bytes != bigTransfer || up.SHA256 != backend.ZerosSHA256(bigTransfer) {
				t.Errorf("backend got %d bytes with sha256 %s", up.Bytes, up.SHA256)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, MaxBodySize: 1 << 20, Health: HealthConfig{Interval: -1}})

	// An announced length over the limit is refused without reading the
	// rest of the body or sending any of it.
	status, rest := rawRequest(t, url, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n"+
		strings.Repeat("z", 64<<10))
	if !strings.Contains(status, " 413 ") || !strings.Contains(strings.ToLower(rest), "connection: close") {
		t.Errorf("announced 2 GiB: %s\n%s", status, rest)
	}
	// ... as soon as the body has begun, not once some kilobytes of it
	// have come: a client sending a little and waiting hears at once.
	c := dialProxy(t, url, 5*time.Second)
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\n"+strings.Repeat("z", 100))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("announced 2 GiB, 100 bytes sent: %v, %v; want 413", resp, err)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}

	// A chunked body is counted as it streams.
	req, _ := http.NewRequest(http.MethodPost, url+"/upload", backend.Zeros(3<<20))
	resp, err := newClient(t).Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked 3 MiB: status %d, want 413", resp.StatusCode)
		}
	} // else the proxy closed while the client was still sending: also a refusal

	// Within the limit, both kinds pass.
	for _, size := range []int64{1 << 20, 300 << 10} {
		if up := upload(t, newClient(t), url+"/upload", size, true, nil); up.Bytes != size {
			t.Errorf("%d-byte body: backend got %d", size, up.Bytes)
		}
	}
}

// TestServerSentEvents checks each event reaches the client while the
// stream is live: the first arrives before the last is sent.
func TestServerSentEvents(t *testing.T) {
	be := startBackend(t, "a")
	// A backend timeout shorter than the stream: it bounds the gaps between
	// events, not the whole stream.
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, BackendTimeout: 400 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	resp, err := newClient(t).Get(url + "/sse?n=6&every=150ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var arrived []int64
	var sent []int64
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		arrived = append(arrived, time.Now().UnixMilli())
		f := strings.Fields(line)
		ms, _ := strconv.ParseInt(f[len(f)-1], 10, 64)
		sent = append(sent, ms)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("stream cut after %d events: %v", len(arrived), err)
	}
	if len(arrived) != 6 {
		t.Fatalf("%d events, want 6", len(arrived))
	}
	if arrived[0] >= sent[5] {
		t.Errorf("first event arrived at %d, after the last was sent at %d: the stream was buffered", arrived[0], sent[5])
	}
}

func TestStalledStreamCut(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, BackendTimeout: 200 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	resp, err := newClient(t).Get(url + "/sse?n=3&every=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	if err == nil {
		t.Error("a stream silent past the backend timeout ended cleanly; want it cut")
	}
}

// TestTruncatedChunkedResponse: a backend that closes a chunked body before
// its last chunk, wherever in the framing it stops, gives the client what
// came and then a closed connection without a last chunk of the proxy's
// own, so the client sees the body cut. The backend connection is closed,
// not pooled, the attempt counts as failed, the access log counts the bytes
// relayed, and the next request goes on a fresh connection.
func TestTruncatedChunkedResponse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string // the chunked body as sent before the close
		relayed string // what the client gets of it
	}{
		{"closed after a chunk", "5\r\nhello\r\n", "hello"},
		{"closed inside a chunk-size line", "5\r\nhello\r\n1", "hello"},
		{"closed inside chunk data", "5\r\nhello\r\na\r\nhel", "hellohel"},
		{"closed before a chunk's CRLF", "5\r\nhello", "hello"},
		{"closed after the last chunk, inside the trailer", "5\r\nhello\r\n0\r\nX-T: 1\r\n", "hello"},
		{"closed after the last chunk, before its CRLF", "5\r\nhello\r\n0\r\n", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int64
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				first := conns.Add(1) == 1
				for {
					if _, ok := rb.readRequest(r); !ok {
						return
					}
					if first {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
						io.WriteString(c, tc.body)
						return // and close
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			})
			var log logBuffer
			p, url := startProxy(t, Config{Backends: []string{rb.URL()}, AccessLog: &log, AccessLogFormat: AccessLogJSON,
				Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || len(resp.TransferEncoding) != 1 {
				t.Fatalf("status %d, Transfer-Encoding %v; want 200 chunked", resp.StatusCode, resp.TransferEncoding)
			}
			// A chunked reader that meets the end of the connection before
			// a last chunk reports an unexpected EOF; a last chunk ends the
			// body cleanly.
			body, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("body read ended with %v, want the connection closed before a last chunk", err)
			}
			if string(body) != tc.relayed {
				t.Errorf("body %q, want %q", body, tc.relayed)
			}
			// The stream was closed, and the backend connection with it,
			// before the client saw the body end.
			b := p.Pool().Backends()[0]
			if n, idle := upstreamOf(b).hc.ConnsCount(), upstreamOf(b).hc.IdleConnsCount(); n != 0 || b.InFlight() != 0 {
				t.Errorf("%d backend connections open (%d of them pooled), %d attempts in flight; want none",
					n, idle, b.InFlight())
			}
			if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("after the body: %d bytes, %v; want the connection closed", n, err)
			}
			if n := b.Failures(); n != 1 {
				t.Errorf("%d failed attempts recorded, want 1", n)
			}
			m := jsonLine(t, accessLines(t, &log, 1)[0])
			if m["status"] != float64(200) || m["bytes"] != float64(len(tc.relayed)) {
				t.Errorf("access log line %v: want status 200, %d bytes", m, len(tc.relayed))
			}

			if status, body := get(t, newClient(t), url+"/"); status != http.StatusOK || body != "ok" {
				t.Errorf("next request: %d %q, want 200 \"ok\"", status, body)
			}
			if n := rb.accepted.Load(); n != 2 {
				t.Errorf("the backend accepted %d connections, want 2: the next request on a fresh one", n)
			}
		})
	}
}

// readToClose reads what the proxy sends on c until it closes the
// connection, and splits it into header block and body; it fails the test
// if the connection stays open.
func readToClose(t *testing.T, c net.Conn) (header, body string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("after %d bytes: %v; want the connection closed at the body's end", len(b), err)
	}
	header, body, ok := strings.Cut(string(b), "\r\n\r\n")
	if !ok {
		t.Fatalf("no header block in %q", b)
	}
	return header, body
}

// TestHTTP10ClientUnframedBody: an HTTP/1.0 client cannot take chunks
// (RFC 9112 §6.1), so a body of unknown length goes to it as it comes, with
// neither Transfer-Encoding nor Content-Length, and the connection's close
// ends it, even if the client asked to keep it alive.
func TestHTTP10ClientUnframedBody(t *testing.T) {
	be := startBackend(t, "a")
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		if _, ok := rb.readRequest(r); ok {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
			for i := range 3 {
				io.WriteString(c, strings.Repeat(strconv.Itoa(i), 70000))
			}
		}
	})
	rb10 := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		if _, ok := rb.readRequest(r); ok {
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nbody of a 1.0 backend")
		}
	})
	const size = 3000000
	sse := regexp.MustCompile(`^(id: \d\ndata: event \d sent at \d+\n\n){3}$`)
	download := func(body string) bool {
		sum := sha256.Sum256([]byte(body))
		return len(body) == size && hex.EncodeToString(sum[:]) == backend.PatternSHA256(size)
	}
	for _, tc := range []struct {
		name, backend, request string
		hedgeAfter             time.Duration // the request takes the hedged path, which has attempts of its own
		check                  func(body string) bool
	}{
		{"chunked download", be.URL(), "GET /download/3000000?chunked=1 HTTP/1.0\r\n\r\n", 0, download},
		{"chunked download, hedged", be.URL(), "GET /download/3000000?chunked=1 HTTP/1.0\r\n\r\n", time.Minute, download},
		{"server-sent events", be.URL(), "GET /sse?n=3&every=10ms HTTP/1.0\r\n\r\n", 0, sse.MatchString},
		{"server-sent events, kept alive", be.URL(), "GET /sse?n=3&every=10ms HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, sse.MatchString},
		{"body ending with the backend's connection", rb.URL(), "GET / HTTP/1.0\r\n\r\n", 0, func(body string) bool {
			return body == strings.Repeat("0", 70000)+strings.Repeat("1", 70000)+strings.Repeat("2", 70000)
		}},
		{"from an HTTP/1.0 backend", rb10.URL(), "GET / HTTP/1.0\r\n\r\n", 0, func(body string) bool {
			return body == "body of a 1.0 backend"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startProxy(t, Config{Backends: []string{tc.backend}, HedgeAfter: tc.hedgeAfter, Health: HealthConfig{Interval: -1}})
			c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, tc.request)
			header, body := readToClose(t, c)
			lower := strings.ToLower(header)
			if !strings.HasPrefix(header, "HTTP/1.1 200 ") {
				t.Errorf("status line %q, want HTTP/1.1 200", strings.SplitN(header, "\r\n", 2)[0])
			}
			if strings.Contains(lower, "\r\ntransfer-encoding:") || strings.Contains(lower, "\r\ncontent-length:") {
				t.Errorf("header frames the body:\n%s", header)
			}
			if !strings.Contains(lower, "\r\nconnection: close") {
				t.Errorf("header lacks Connection: close:\n%s", header)
			}
			if !tc.check(body) {
				n := len(body)
				if n > 200 {
					body = body[:200] + "..."
				}
				t.Errorf("body not as the backend sent it (%d bytes): %q", n, body)
			}
		})
	}
}

// TestHTTP10Backend: the status line an HTTP/1.1 client gets says HTTP/1.1,
// the proxy's own version (RFC 9110 §6.2), whatever version the backend
// answered in; a body the backend ends by closing its connection reaches
// the client chunked, one of known length with its length, and the client
// connection stays open for the next request.
func TestHTTP10Backend(t *testing.T) {
	long := strings.Repeat("0123456789", 30000) // streams in several reads
	for _, tc := range []struct {
		name, answer, body string
		chunked            bool
	}{
		{"close-delimited", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody of a 1.0 backend", "body of a 1.0 backend", true},
		{"close-delimited, long", "HTTP/1.0 200 OK\r\n\r\n" + long, long, true},
		{"with a length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				if _, ok := rb.readRequest(r); ok {
					io.WriteString(c, tc.answer)
				}
			})
			_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			br := bufio.NewReader(c)
			for i := range 2 { // the second on the same client connection
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("request %d: body: %v", i, err)
				}
				if resp.Proto != "HTTP/1.1" || resp.StatusCode != http.StatusOK {
					t.Errorf("request %d: status line %s %d, want HTTP/1.1 200", i, resp.Proto, resp.StatusCode)
				}
				if chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"; chunked != tc.chunked ||
					(!tc.chunked && resp.ContentLength != int64(len(tc.body))) {
					t.Errorf("request %d: Transfer-Encoding %v, Content-Length %d; want chunked %v", i,
						resp.TransferEncoding, resp.ContentLength, tc.chunked)
				}
				if string(body) != tc.body {
					t.Errorf("request %d: body of %d bytes, want %d: %.60q", i, len(body), len(tc.body), body)
				}
				if resp.Close {
					t.Fatalf("request %d: the proxy closes the client connection", i)
				}
			}
		})
	}
}

// TestChunkFraming: the chunk parser a response body is read with, whole or
// streamed, takes CRLF or LF alone for a framing line's end (RFC 9112 §2.2,
// as nginx does), and nothing else: a CR must be followed by LF.
func TestChunkFraming(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		body     string // the body read, when it is read whole
		err      bool
	}{
		{"CRLF", "2\r\nok\r\n0\r\n\r\n", "ok", false},
		{"LF alone", "2\nok\n0\n\n", "ok", false},
		{"mixed", "1\r\no\n1\nk\r\n0\n\r\n", "ok", false},
		{"extension", "2;a=b\nok\n0;c\r\n\r\n", "ok", false},
		{"space before the line end", "2 \r\nok\r\n0\r\n\r\n", "ok", false},
		{"trailer, LF alone", "2\nok\n0\nX-T: 1\nX-U: 2\n\n", "ok", false},
		{"trailer, CRLF", "2\r\nok\r\n0\r\nX-T: 1\r\n\r\n", "ok", false},
		{"CR without LF after the size", "2\rok\r\n0\r\n\r\n", "", true},
		{"CR without LF after the data", "2\r\nok\rx0\r\n\r\n", "", true},
		{"no line end after the data", "2\r\nokx\r\n0\r\n\r\n", "", true},
		{"no size", "\r\nok\r\n0\r\n\r\n", "", true},
		{"size not hex", "g\r\n", "", true},
		{"size too large", "1000000000000000\r\n", "", true},
		{"cut in the data", "5\r\nok", "", true},
		{"cut in the trailer", "2\r\nok\r\n0\r\nX-T: 1\r\n", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp fasthttp.Response
			resp.Header.SetContentLength(-1)
			err := readChunkedBody(bufio.NewReader(strings.NewReader(tc.in)), &resp, 0)
			if (err != nil) != tc.err || (err == nil && string(resp.Body()) != tc.body) {
				t.Errorf("read whole: body %q, error %v; want %q, error %v", resp.Body(), err, tc.body, tc.err)
			}
			if !tc.err && !errors.Is(readChunkedBody(bufio.NewReader(strings.NewReader(tc.in)), &resp, 1), fasthttp.ErrBodyTooLarge) {
				t.Errorf("a 2-byte body under a 1-byte limit is not refused as too large")
			}
		})
	}
}
