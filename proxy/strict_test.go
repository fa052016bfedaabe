package proxy

import (
	"bufio"
	"io"
	"net/http"
	"testing"
	"time"
)

// smugglingCases are the request shapes a proxy must refuse, or pass only
// re-serialised. Each is sent on a fresh connection; want is the status, or
// 0 for "no response: the connection is closed at the header timeout".
var smugglingCases = []struct {
	name, raw string
	want      int
}{
	{"Content-Length with Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding with Content-Length", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
	{"two differing Content-Lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400},
	{"two equal Content-Lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
	{"Content-Length list", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
	{"Content-Length signed", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400},
	{"Content-Length negative", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
	{"Content-Length overflow", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
	{"Transfer-Encoding identity", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400},
	{"Transfer-Encoding gzip, chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding chunked, gzip", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding xchunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding twice", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"Transfer-Encoding in HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"obs-fold", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
	{"obs-fold hiding a coding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: x\r\n chunked\r\n\r\n0\r\n\r\n", 400},
	{"whitespace before colon", "GET /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
	{"space in a name", "GET /echo HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n", 400},
	{"space in Content Length", "POST /echo HTTP/1.1\r\nHost: x\r\nContent Length: 5\r\n\r\nhello", 400},
	{"space in Transfer Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
	{"tab in a name", "GET /echo HTTP/1.1\r\nHost: x\r\nX\tA: 1\r\n\r\n", 400},
	{"bare LF in the header", "GET /echo HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400},
	{"bare LF throughout", "GET /echo HTTP/1.1\nHost: x\nX-A: b\n\n", 400},
	{"bare LF ending the head", "GET /echo HTTP/1.1\r\nHost: x\n\r\n", 400},
	{"bare LF after the request line", "GET /echo HTTP/1.1\nHost: x\r\n\r\n", 400},
	{"bare CR in a value", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", 400},
	{"NUL in a value", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n", 400},
	{"NUL in a name", "GET /echo HTTP/1.1\r\nHost: x\r\nX-\x00A: b\r\n\r\n", 400},
	{"control byte in a value", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: b\x01c\r\n\r\n", 400},
	{"DEL in a value", "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: b\x7fc\r\n\r\n", 400},
	{"invalid chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
	{"chunk size overflow", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400},
	{"negative chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400},
	{"0x chunk size", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 400},
	{"absolute form to another host", "GET http://evil.example/echo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"absolute form to another port", "GET http://x:443/echo HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"HTTP/0.9", "GET /echo\r\n\r\n", 400},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
	{"HTTP/2.0 request line", "GET /echo HTTP/2.0\r\nHost: x\r\n\r\n", 505},
	{"no Host in HTTP/1.1", "GET /echo HTTP/1.1\r\n\r\n", 400},
	{"empty Host in HTTP/1.1", "GET /echo HTTP/1.1\r\nHost:\r\n\r\n", 400},
	{"two Hosts", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	{"space in the target", "GET /e cho HTTP/1.1\r\nHost: x\r\n\r\n", 400},
	{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405},
	{"TRACE", "TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405},
	// Accepted, and sent on re-serialised:
	{"absolute form to the same host", "GET http://x/echo HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	{"absolute form with the default port", "GET http://x:80/echo HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	{"absolute form, Host with the default port", "GET http://X/echo HTTP/1.1\r\nHost: x:80\r\n\r\n", 200},
	{"absolute form, https with its default port", "GET https://x:443/echo HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	{"Transfer-Encoding in capitals", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200},
	{"HTTP/1.0 without Host", "GET /echo HTTP/1.0\r\n\r\n", 200},
}

func TestRequestSmuggling(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: 300 * time.Millisecond, ClientHeaderTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	passed := int64(0)
	for _, tc := range smugglingCases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			io.WriteString(c, tc.raw)
			r := bufio.NewReader(c)
			resp, err := http.ReadResponse(r, nil)
			if tc.want == 0 {
				if err == nil {
					t.Errorf("got %s, want the connection closed without a response", resp.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 {
				passed++
				return
			}
			// Refused: the connection is closed, so nothing smuggled after
			// the request can be read as another one.
			if _, err := r.ReadByte(); err != io.EOF {
				t.Errorf("connection still open after a %d (%v)", tc.want, err)
			}
		})
	}
	if n := be.hits.Load(); n != passed {
		t.Errorf("backend saw %d requests, want only the %d accepted ones", n, passed)
	}
}
