package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestExpectContinueRefused: the backend refuses the upload from its header
// alone, so the client gets the refusal instead of 100 Continue and the body
// never travels.
func TestExpectContinueRefused(t *testing.T) {
	var bodyBytes atomic.Int64
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		rb.requests.Add(1)
		if req.Header.Get("Expect") != "100-continue" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 5\r\nConnection: close\r\n\r\nnope\n")
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ := io.Copy(io.Discard, r)
		bodyBytes.Add(n)
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})

	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusUnauthorized || string(body) != "nope\n" {
		t.Errorf("got %d %q, want the backend's 401", resp.StatusCode, body)
	}
	if n := bodyBytes.Load(); n != 0 {
		t.Errorf("the backend received %d body bytes of a refused upload", n)
	}
}

func TestExpectContinueAccepted(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	const size = 3 << 20
	for _, chunked := range []bool{false, true} {
		t.Run("chunked="+strconv.FormatBool(chunked), func(t *testing.T) {
			tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			up := upload(t, &http.Client{Transport: tr}, url+"/upload", size, !chunked, map[string]string{"Expect": "100-continue"})
			if up.Bytes != size || up.SHA256 != backend.ZerosSHA256(size) {
				t.Errorf("backend got %d bytes, sha256 %s", up.Bytes, up.SHA256)
			}
		})
	}
}

// A backend that ignores the expectation and just waits for the body gets
// it after a short wait.
func TestExpectContinueSilentBackend(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		rb.requests.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n")
		c.Write(b)
	})
	_, url := startProxy(t, Config{Backends: []string{rb.URL()}, TryTimeout: 200 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	payload := bytes.Repeat([]byte("p"), 100000)
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(payload))
	req.Header.Set("Expect", "100-continue")
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, payload) {
		t.Errorf("status %d, %d bytes back", resp.StatusCode, len(got))
	}
}

func TestExpectContinueOverLimit(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, MaxBodySize: 1 << 20, Health: HealthConfig{Interval: -1}})
	status, _ := rawRequest(t, url, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
	if !strings.Contains(status, " 413 ") {
		t.Errorf("status %s, want 413 before any body", status)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
}

// TestExpectContinueWithoutBody: a request that expects 100-continue but
// announces no body (no Content-Length, or 0, and not chunked) proceeds as
// an ordinary one: no backend is asked first (which could hold it for the
// continue wait), the backend gets the request without the expectation (the
// proxy strips Expect from every request it does not preflight), and the
// connection stays open for the next request. fasthttp's own 100 Continue
// comes first, as RFC 9110 §10.1.1 allows. A request with a body still gets
// its 100 from the backend it asked.
func TestExpectContinueWithoutBody(t *testing.T) {
	type seen struct {
		expect string
		body   string
	}
	for _, tc := range []struct {
		name       string
		head, body string // the request's header block, and the body sent once the 100 came
		continued  bool   // a 100 Continue is due before the final answer
		expect     string // the Expect header the backend gets
		got        string // the body the backend gets
	}{
		{name: "GET without Content-Length", head: "GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", continued: true},
		{name: "POST with Content-Length 0", head: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n", continued: true},
		{name: "PUT with Content-Length 00", head: "PUT /a HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 00\r\n\r\n", continued: true},
		{name: "POST with a body", head: "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
			body: "hello", continued: true, expect: "100-continue", got: "hello"},
		{name: "chunked, with an empty body", head: "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
			body: "0\r\n\r\n", continued: true, expect: "100-continue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan seen, 2)
			rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
				for {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					if req.Header.Get("Expect") == "100-continue" {
						io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
					}
					b, _ := io.ReadAll(req.Body)
					got <- seen{req.Header.Get("Expect"), string(b)}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
				}
			})
			_, url := startProxy(t, Config{Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}})
			c := dialProxy(t, url, 5*time.Second)
			defer c.Close()
			br := bufio.NewReader(c)
			// Twice on one connection: the first answer leaves nothing
			// behind, and does not close the connection.
			for i := range 2 {
				io.WriteString(c, tc.head)
				if tc.continued {
					line, err := br.ReadString('\n')
					if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
						t.Fatalf("request %d: read %q, %v; want 100 Continue", i, line, err)
					}
					if blank, _ := br.ReadString('\n'); blank != "\r\n" {
						t.Fatalf("request %d: 100 Continue followed by %q", i, blank)
					}
					io.WriteString(c, tc.body)
				}
				line, err := br.ReadString('\n')
				if err != nil || line != "HTTP/1.1 200 OK\r\n" {
					t.Fatalf("request %d: read %q, %v; want the backend's 200 at once", i, line, err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if string(b) != "ok\n" || resp.Close {
					t.Fatalf("request %d: body %q, close %v; want ok and the connection kept", i, b, resp.Close)
				}
				select {
				case s := <-got:
					if s.expect != tc.expect || s.body != tc.got {
						t.Errorf("request %d: the backend got Expect %q and body %q; want %q and %q", i, s.expect, s.body, tc.expect, tc.got)
					}
				default:
					t.Fatalf("request %d: the backend answered without a request", i)
				}
			}
			// Nothing more comes: the proxy closes when the client has.
			c.(*net.TCPConn).CloseWrite()
			if rest, err := io.ReadAll(br); len(rest) != 0 || err != nil {
				t.Errorf("after the answers: %q, %v; want nothing, then the close", rest, err)
			}
		})
	}
}

// TestExpectContinueAnswersCountedAndLogged: an answer given to an
// expectation, before the handler would run, is held to the rate limit,
// counted and access-logged as the handler's own are: over the limit, a
// request expecting 100-continue gets 429 as any other (it used to be
// preflighted past the limit), and each answer has its line.
func TestExpectContinueAnswersCountedAndLogged(t *testing.T) {
	be := startBackend(t, "a")
	var buf logBuffer
	p, url := startProxy(t, Config{
		Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1},
		RateLimit: 0.001, RateBurst: 1, MaxBodySize: 1 << 20,
		AccessLog: &buf, AccessLogFormat: AccessLogJSON,
	})
	expect := func(size int) string {
		return fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", size)
	}
	// The one request the limit allows: the backend asks for the body.
	if status, rest := rawRequest(t, url, expect(5)+"hello"); status != "HTTP/1.1 100 Continue" || !strings.Contains(rest, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("first request: %q then %q, want the backend's 100 Continue, then 200", status, rest)
	}
	for _, tc := range []struct {
		head, status string
	}{
		{expect(5), "429"},
		{expect(5 << 20), "413"},
		{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n", "400"},
	} {
		if status, _ := rawRequest(t, url, tc.head); !strings.HasPrefix(status, "HTTP/1.1 "+tc.status+" ") {
			t.Errorf("%q: %q, want %s at once", tc.head, status, tc.status)
		}
	}
	lines := accessLines(t, &buf, 4)
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprint(jsonLine(t, l)["status"]))
	}
	if strings.Join(got, " ") != "200 429 413 400" {
		t.Errorf("access log statuses %v, want 200 429 413 400: a line for each answer", got)
	}
	if n := be.hits.Load(); n != 1 {
		t.Errorf("the backend saw %d requests, want only the first", n)
	}
	if tr := p.Traffic().Snapshot(); tr.Requests[1] != 1 || tr.Requests[3] != 3 {
		t.Errorf("counted %d 2xx and %d 4xx, want 1 and 3", tr.Requests[1], tr.Requests[3])
	}
}

// TestExpectContinueAnyCase: header names are case-insensitive (RFC 9110
// §5.1), so an expectation spelled "expect" or "EXPECT" is the one spelled
// "Expect", on the plain port and over TLS: a backend that wants the body
// gets it after its 100 Continue, one that refuses is answered at once, and
// a body over -max-body-size gets 413 before it is sent. (fasthttp finds
// Expect only under its canonical name when the server keeps names as
// received: a lower-case one got no 100, and the client waited out its own
// timeout, curl's 1 s, before sending the body.)
func TestExpectContinueAnyCase(t *testing.T) {
	rb := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			rb.requests.Add(1)
			if req.Header.Get("Expect") != "100-continue" {
				io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				return
			}
			if req.URL.Path == "/refuse" {
				io.WriteString(c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				return
			}
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			b, _ := io.ReadAll(req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n")
			c.Write(b)
		}
	})
	ca := testpki.NewCA(t, "test CA")
	tp := startTLSProxy(t, Config{
		Backends: []string{rb.URL()}, Health: HealthConfig{Interval: -1}, MaxBodySize: 1 << 20,
		TLS: &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
	})
	ports := []struct {
		name string
		dial func() net.Conn
	}{
		{"plain", func() net.Conn { return dialProxy(t, tp.plainURL, 3*time.Second) }},
		{"TLS", func() net.Conn {
			c := dialTLS(t, tp.tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
			c.SetDeadline(time.Now().Add(3 * time.Second))
			return c
		}},
	}
	for _, port := range ports {
		for _, name := range []string{"Expect", "expect", "EXPECT", "eXpEcT"} {
			for _, tc := range []struct {
				name    string
				path    string
				framing string // the header that announces the body
				body    string // sent once the 100 came
				want    []int  // the statuses before the body is sent, then after
			}{
				{"accepted", "/up", "Content-Length: 5", "hello", []int{http.StatusContinue, http.StatusOK}},
				{"accepted, chunked", "/up", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n", []int{http.StatusContinue, http.StatusOK}},
				{"refused by the backend", "/refuse", "Content-Length: 5", "", []int{http.StatusExpectationFailed}},
				{"over the body limit", "/up", "Content-Length: 5242880", "", []int{http.StatusRequestEntityTooLarge}},
			} {
				t.Run(port.name+"/"+name+"/"+tc.name, func(t *testing.T) {
					c := port.dial()
					defer c.Close()
					fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n%s: 100-continue\r\n\r\n", tc.path, tc.framing, name)
					br := bufio.NewReader(c)
					var got []int
					for len(got) < len(tc.want) {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							t.Fatalf("after %v: %v; want %v, the first before any body", got, err, tc.want)
						}
						body, _ := io.ReadAll(resp.Body)
						got = append(got, resp.StatusCode)
						if resp.StatusCode == http.StatusContinue {
							io.WriteString(c, tc.body)
						} else if resp.StatusCode == http.StatusOK && string(body) != "hello" {
							t.Errorf("the backend echoed %q, want hello", body)
						}
					}
					if fmt.Sprint(got) != fmt.Sprint(tc.want) {
						t.Errorf("got %v, want %v", got, tc.want)
					}
				})
			}
		}
	}
}

// TestSpellExpect: Expect headers in any letter case take the name fasthttp
// looks for, in the parsed header and in the raw block, which keeps its
// length; other names, Expect-CT among them, stay as they were.
func TestSpellExpect(t *testing.T) {
	for _, tc := range []struct {
		name, lines string
		want        []string // the values under Expect, in order
		raw         string   // the raw block after
	}{
		{"canonical", "Expect: 100-continue\r\n", []string{"100-continue"}, "Expect: 100-continue\r\n"},
		{"lower case", "expect: 100-continue\r\nX-A: 1\r\n", []string{"100-continue"}, "Expect: 100-continue\r\nX-A: 1\r\n"},
		{"upper case, no space", "EXPECT:100-continue\r\n", []string{"100-continue"}, "Expect:100-continue\r\n"},
		{"two lines, one spelling", "expect: a\r\nX-A: 1\r\nexpect: b\r\n", []string{"a", "b"}, "Expect: a\r\nX-A: 1\r\nExpect: b\r\n"},
		{"two spellings", "Expect: a\r\neXpEcT: b\r\n", []string{"a", "b"}, "Expect: a\r\nExpect: b\r\n"},
		{"longer names", "expect-ct: max-age=0\r\nexpected: 1\r\n", nil, "expect-ct: max-age=0\r\nexpected: 1\r\n"},
		{"no Expect", "X-A: 1\r\ne: 2\r\n", nil, "X-A: 1\r\ne: 2\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			h.DisableNormalizing()
			const first = "Host: x\r\nContent-Length: 1\r\n"
			head := "POST / HTTP/1.1\r\n" + first + tc.lines + "\r\n"
			if err := h.Read(bufio.NewReader(strings.NewReader(head))); err != nil {
				t.Fatal(err)
			}
			headerReceived(&h)
			var got []string
			for _, v := range h.PeekAll("Expect") {
				got = append(got, string(v))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Expect %q, want %q", got, tc.want)
			}
			if raw, want := string(h.RawHeaders()), first+tc.raw+"\r\n"; raw != want {
				t.Errorf("raw block %q, want %q", raw, want)
			}
		})
	}
}
