package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// What a client may do on a kept-alive connection besides one request after
// another: pipeline requests (in one write, or while an answer is being
// made), split a request across writes, close, half-close, HEAD, expect
// 100-continue, and be idle at Shutdown. The idle timeout is a minute, so
// a connection left waiting fails a read's 5-second deadline.

// rawExchange is one step on a raw client connection: bytes to send, then
// the responses to read, each to a request with that method.
type rawExchange struct {
	send  string
	reads []rawRead
}

type rawRead struct {
	method string
	status int
	size   int // body length; -1: any
}

func TestKeptAliveConnectionBetweenRequests(t *testing.T) {
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n" }
	ok20 := rawRead{"GET", 200, 20}
	for _, tc := range []struct {
		name   string
		steps  []rawExchange
		closes bool // the proxy closes the connection after the last step
	}{
		{name: "one after another", steps: []rawExchange{
			{get("/bytes/20"), []rawRead{ok20}},
			{get("/bytes/6000"), []rawRead{{"GET", 200, 6000}}},
			{get("/bytes/20"), []rawRead{ok20}},
		}},
		{name: "pipelined", steps: []rawExchange{
			{get("/bytes/20") + get("/bytes/6000") + get("/bytes/20") + get("/bytes/100000"),
				[]rawRead{ok20, {"GET", 200, 6000}, ok20, {"GET", 200, 100000}}},
			{get("/bytes/20"), []rawRead{ok20}},
		}},
		{name: "header split after a pipelined request", steps: []rawExchange{
			{get("/bytes/20") + "GET /bytes/30 HTTP/1.1\r\nHo", []rawRead{ok20}},
			{"st: x\r\n\r\n", []rawRead{{"GET", 200, 30}}},
		}},
		{name: "HEAD", steps: []rawExchange{
			{"HEAD /bytes/20 HTTP/1.1\r\nHost: x\r\n\r\n", []rawRead{{"HEAD", 200, 0}}},
			{get("/bytes/20"), []rawRead{ok20}},
		}},
		{name: "body after 100 Continue", steps: []rawExchange{
			{get("/bytes/20"), []rawRead{ok20}},
			{"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", []rawRead{{"POST", 100, 0}}},
			{"hello", []rawRead{{"POST", 200, -1}}},
			{get("/bytes/20"), []rawRead{ok20}},
		}},
		{name: "Connection: close", closes: true, steps: []rawExchange{
			{get("/bytes/20"), []rawRead{ok20}},
			{"GET /bytes/20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", []rawRead{ok20}},
		}},
		{name: "HTTP/1.0", closes: true, steps: []rawExchange{
			{"GET /bytes/20 HTTP/1.0\r\n\r\n", []rawRead{ok20}},
		}},
		{name: "HTTP/1.0 kept alive", steps: []rawExchange{
			{"GET /bytes/20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []rawRead{ok20}},
			{"GET /bytes/20 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", []rawRead{ok20}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := startBackend(t, "a")
			_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: time.Minute, Health: HealthConfig{Interval: -1}})
			c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i, step := range tc.steps {
				if _, err := io.WriteString(c, step.send); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				for j, want := range step.reads {
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					resp, err := http.ReadResponse(br, &http.Request{Method: want.method})
					if err != nil {
						t.Fatalf("step %d, response %d: %v", i, j, err)
					}
					body, err := io.ReadAll(resp.Body)
					if err != nil || resp.StatusCode != want.status || (want.size >= 0 && len(body) != want.size) {
						t.Fatalf("step %d, response %d: %d with %d bytes (%v), want %d with %d",
							i, j, resp.StatusCode, len(body), err, want.status, want.size)
					}
				}
			}
			if tc.closes {
				closedWithin(t, c, 5*time.Second)
			}
		})
	}
}

// TestRequestsDuringAnswer: a request pipelined while the previous one is
// being answered, and a client that closes its side right after its
// request (as nc -N does), are served at once.
func TestRequestsDuringAnswer(t *testing.T) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: time.Minute, Health: HealthConfig{Interval: -1}})
	// No wait for a next request may miss an end of stream already there:
	// with the watchdog's wake-up out of reach, such a wait would hold the
	// half-closed connection for the idle minute.
	p.wd.wakeClient.Store(int64(time.Hour))
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}
	read := func(c net.Conn, br *bufio.Reader, what string) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d, %v", what, resp.StatusCode, err)
		}
	}

	c, br := dial()
	io.WriteString(c, "GET /delay/200ms HTTP/1.1\r\nHost: x\r\n\r\n")
	waitFor(t, "the first request at the backend", 5*time.Second, func() bool { return be.busy.Load() == 1 })
	io.WriteString(c, "GET /bytes/20 HTTP/1.1\r\nHost: x\r\n\r\n")
	read(c, br, "the first response")
	read(c, br, "the response to the request sent meanwhile")

	c, br = dial()
	io.WriteString(c, "GET /delay/50ms HTTP/1.1\r\nHost: x\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	read(c, br, "the response to a half-closed connection")
	closedWithin(t, c, 5*time.Second)
}

// TestPipelinedHeaderTimesOut: a request header left unfinished behind a
// pipelined one is under the header timeout, not the idle timeout.
func TestPipelinedHeaderTimesOut(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: time.Minute,
		ClientHeaderTimeout: 300 * time.Millisecond, Health: HealthConfig{Interval: -1}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendAndRead(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHo")
	closedWithin(t, c, 5*time.Second)
}

// sendAndRead writes req on c and reads one response to a GET.
func sendAndRead(t *testing.T, c net.Conn, req string) {
	t.Helper()
	io.WriteString(c, req)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
}

// TestShutdownEndsKeptAliveConnections: Shutdown closes a connection idle
// between requests at once rather than at the idle timeout.
func TestShutdownEndsKeptAliveConnections(t *testing.T) {
	be := startBackend(t, "a")
	p, addr, served := serveProxy(t, Config{Backends: []string{be.URL()}, ClientIdleTimeout: time.Minute,
		Health: HealthConfig{Interval: -1}})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendAndRead(t, c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(ctx) }()
	closedWithin(t, c, 5*time.Second)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	<-served
}
