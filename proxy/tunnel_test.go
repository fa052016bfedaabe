package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func dialWS(t *testing.T, proxyURL string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(proxyURL, "http")+"/ws", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	return c
}

func echo(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	typ, got, err := c.ReadMessage()
	if err != nil || typ != websocket.TextMessage || string(got) != msg {
		t.Fatalf("echo of %q: %d %q %v", msg, typ, got, err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	p, url := startProxy(t, Config{Backends: []string{a.URL(), b.URL()}, Health: HealthConfig{Interval: -1}})
	c := dialWS(t, url)
	for i := range 1000 {
		echo(t, c, fmt.Sprintf("message %d", i))
	}
	// Binary and large messages pass as well.
	big := strings.Repeat("0123456789", 20000)
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(big)); err != nil {
		t.Fatal(err)
	}
	if typ, got, err := c.ReadMessage(); err != nil || typ != websocket.BinaryMessage || string(got) != big {
		t.Fatalf("binary echo: %d %d bytes %v", typ, len(got), err)
	}

	// While the WebSocket is open, ordinary requests are still balanced.
	client := newClient(t)
	seen := map[string]int{}
	for range 20 {
		_, body := get(t, client, url+"/")
		seen[backendOf(body)]++
	}
	if seen["a"] != 10 || seen["b"] != 10 {
		t.Errorf("requests beside the WebSocket went %v, want 10 each", seen)
	}
	echo(t, c, "still here")
	if n := p.wd.tunnels.Len(); n != 1 {
		t.Errorf("%d tunnels open, want 1", n)
	}

	// The client closes: the close handshake completes and nothing is left.
	err := c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after closing: %v, want the backend's close", err)
	}
	c.Close()
	waitFor(t, "the tunnel to end", 5*time.Second, func() bool {
		return p.wd.tunnels.Len() == 0 && goroutinesIn("runTunnel") == 0
	})
}

func TestWebSocketClosedByBackend(t *testing.T) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	c := dialWS(t, url)
	defer c.Close()
	echo(t, c, "hello")
	c.WriteMessage(websocket.TextMessage, []byte("bye")) // the backend closes first
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("got %v, want the backend's normal close", err)
	}
	c.Close() // RFC 6455: the client closes TCP after the server's close
	waitFor(t, "the tunnel to end", 5*time.Second, func() bool {
		return p.wd.tunnels.Len() == 0 && goroutinesIn("runTunnel") == 0
	})
}

func TestShutdownClosesTunnels(t *testing.T) {
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	c := dialWS(t, url)
	defer c.Close()
	echo(t, c, "hello")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); err == nil {
		t.Error("Shutdown reported success with a WebSocket still open past its deadline")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("the WebSocket is still open after Shutdown")
	}
	waitFor(t, "the tunnel goroutines to end", 5*time.Second, func() bool { return goroutinesIn("runTunnel") == 0 })
}

func TestUpgradeRefusedIsRelayed(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	// Upgrade to a path that does not switch: the backend's plain answer
	// comes back, and the connection stays usable.
	req, _ := http.NewRequest(http.MethodGet, url+"/echo", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

// TestTunnelsAfterDrain: a tunnel that opens once drain has returned (its
// 101 was on the way while the proxy shut down) is closed as it opens, not
// left running past Shutdown.
func TestTunnelsAfterDrain(t *testing.T) {
	var ts tunnels
	if err := ts.drain(context.Background()); err != nil {
		t.Fatalf("drain with no tunnels: %v", err)
	}
	client, clientPeer := net.Pipe()
	backend, backendPeer := net.Pipe()
	defer clientPeer.Close()
	defer backendPeer.Close()
	tn := &tunnel{client: client, backend: &backendConn{sockConn: sockConn{Conn: backend}}}
	ts.add(tn)
	for name, c := range map[string]net.Conn{"client": client, "backend": backend} {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second)) // an open pipe would block: bound it
		if _, err := c.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("%s connection still open after drain (write: %v)", name, err)
		}
	}
	ts.remove(tn)
}

// TestTunnelReadsWait: a tunnel's reads wait for the poller after a short
// read, on both connections, instead of reading and finding nothing: a
// WebSocket echoed message by message leaves its reads' EAGAIN count near
// zero (before, every message cost one on each side).
func TestTunnelReadsWait(t *testing.T) {
	if raceEnabled {
		t.Skip("reads the tunnel's counters while its goroutines run")
	}
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	c := dialWS(t, url)
	defer c.Close()
	const messages = 200
	for i := range messages {
		echo(t, c, fmt.Sprintf("message %d", i))
	}
	p.wd.tunnels.mu.Lock()
	var tn *tunnel
	for tn = range p.wd.tunnels.set {
	}
	p.wd.tunnels.mu.Unlock()
	if tn == nil {
		t.Fatal("no tunnel")
	}
	g := clientOf(tn.client)
	if g == nil || !g.io.on() || !tn.backend.io.on() {
		t.Skip("the tunnel's connections are not plain TCP sockets here")
	}
	if n := int(tn.backend.io.empty.Load()); n > messages/10 {
		t.Errorf("backend side: %d of %d reads found nothing, want few", n, messages)
	}
	if n := int(g.io.empty.Load()); n > messages/10 {
		t.Errorf("client side: %d of %d reads found nothing, want few", n, messages)
	}
}

// TestTunnelNeverRunReleasesBackend: a 101 that reaches the proxy once a
// graceful shutdown has begun goes out with Connection: close, and the
// server closes the client connection instead of handing it to a tunnel;
// the backend connection that answered is closed too, not left open.
func TestTunnelNeverRunReleasesBackend(t *testing.T) {
	gotRequest, answer, backendEOF := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	be := upgradeBackend(t, func(c net.Conn, r *bufio.Reader, err error) {
		if err != nil {
			backendEOF <- err
			return
		}
		close(gotRequest)
		<-answer
		io.WriteString(c, switched)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = r.ReadByte()
		backendEOF <- err
	})
	// /up goes to the upgrade backend, which takes one connection; other
	// paths to a backend of their own.
	web := startBackend(t, "web")
	p, url := startProxy(t, Config{
		Pools:  []PoolConfig{{Name: "up", Backends: []string{be}}, {Name: "web", Backends: []string{web.URL()}}},
		Routes: []Route{{PathPrefix: "/up", Pool: "up"}, {Pool: "web"}}, Health: HealthConfig{Interval: -1},
	})
	client, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	io.WriteString(client, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n")
	select {
	case <-gotRequest:
	case err := <-backendEOF:
		t.Fatalf("backend: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the upgrade request never reached the backend")
	}
	// A keep-alive connection, idle after an answer.
	idle := dialProxy(t, url, 10*time.Second)
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	ir := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ir, nil); err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /: %v, want a 200 that keeps the connection", err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	// fasthttp's shutdown is under way (so the 101 will go out with
	// Connection: close) once it closes idle connections: the listeners
	// close before that, so a refused dial does not tell.
	if _, err := ir.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection at shutdown: %v, want it closed", err)
	}
	close(answer)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("no answer to the upgrade: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !resp.Close {
		t.Fatalf("answer %d, close %v; want 101 with Connection: close", resp.StatusCode, resp.Close)
	}
	select {
	case err := <-backendEOF:
		if err != io.EOF {
			t.Errorf("backend connection: %v, want it closed by the proxy", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("backend connection still open")
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestTunnelHalfClose: a backend that finishes sending is half-closed on
// the client, which can still send; what it sends reaches the backend.
// With H2C on, the client connection is the prior-knowledge sniffer's; with
// a per-address limit, the listener that counts it.
func TestTunnelHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h2c       bool
		perIPConn int
	}{{"plain", false, 0}, {"h2c", true, 0}, {"-max-conns-per-ip", false, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan string, 1)
			be := upgradeBackend(t, func(c net.Conn, r *bufio.Reader, err error) {
				if err != nil {
					got <- err.Error()
					return
				}
				io.WriteString(c, switched+"bye")
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				rest, err := io.ReadAll(r)
				if err != nil {
					got <- err.Error()
					return
				}
				got <- string(rest)
			})
			_, url := startProxy(t, Config{Backends: []string{be}, Health: HealthConfig{Interval: -1},
				HTTP2: HTTP2Config{H2C: tc.h2c}, MaxConnsPerIP: tc.perIPConn})
			client := dialProxy(t, url, 10*time.Second)
			defer client.Close()
			io.WriteString(client, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n")
			r := bufio.NewReader(client)
			resp, err := http.ReadResponse(r, nil)
			if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("upgrade: %v, %v", resp, err)
			}
			if b, err := io.ReadAll(r); err != nil || string(b) != "bye" {
				t.Fatalf("read %q, %v; want the backend's bye, then its end of stream", b, err)
			}
			io.WriteString(client, "still here")
			client.(*net.TCPConn).CloseWrite()
			if s := <-got; s != "still here" {
				t.Errorf("backend got %q after its half-close, want the client's last words", s)
			}
		})
	}
}

// upgradeBackend is a backend of one connection: once it has read an
// upgrade request, answer takes over the connection (r holds what follows
// the request). It returns the backend's URL.
func upgradeBackend(t *testing.T, answer func(c net.Conn, r *bufio.Reader, err error)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		_, err = http.ReadRequest(r)
		answer(c, r, err)
	}()
	return "http://" + ln.Addr().String()
}

// switched is a 101 for the test protocol.
const switched = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n"

// TestTunnelIdleTimeout: a tunnel that carries nothing either way for the
// tunnel limit is closed, one that keeps talking is not; and one whose
// write to a client that stopped reading has stalled that long is closed
// even while the client still sends.
func TestTunnelIdleTimeout(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		const limit = time.Second
		be := startBackend(t, "a")
		p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}, TunnelIdleTimeout: limit})
		c := dialWS(t, url)
		defer c.Close()
		// Messages a tenth of the limit apart, for over twice the limit.
		tick := time.NewTicker(limit / 10)
		defer tick.Stop()
		for i := range 25 {
			echo(t, c, fmt.Sprintf("message %d", i))
			<-tick.C
		}
		quiet := time.Now()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err == nil {
			t.Fatal("read a message on an idle tunnel, want it closed")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("idle tunnel still open after 10s, limit %v", limit)
		}
		if idle := time.Since(quiet); idle < limit {
			t.Errorf("tunnel closed after %v idle, before its limit %v", idle, limit)
		}
		waitFor(t, "the tunnel to end", 5*time.Second, func() bool { return p.wd.tunnels.Len() == 0 })
		if n := p.Traffic().Snapshot().TunnelsTimedOut; n != 1 {
			t.Errorf("%d tunnels counted timed out, want 1", n)
		}
	})
	t.Run("stalled write", func(t *testing.T) {
		t.Parallel()
		const limit = 500 * time.Millisecond
		flooded := make(chan error, 1)
		be := upgradeBackend(t, func(c net.Conn, r *bufio.Reader, err error) {
			if err != nil {
				flooded <- err
				return
			}
			go io.Copy(io.Discard, r) // the client's bytes keep arriving
			io.WriteString(c, switched)
			chunk := make([]byte, 64<<10)
			for {
				if _, err := c.Write(chunk); err != nil {
					flooded <- err
					return
				}
			}
		})
		p, url := startProxy(t, Config{Backends: []string{be}, Health: HealthConfig{Interval: -1}, TunnelIdleTimeout: limit})
		client, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(client, "GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(client), nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v, %v", resp, err)
		}
		start := time.Now()
		// The client reads nothing more, but keeps sending.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(limit / 10)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					client.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := client.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		waitFor(t, "the stalled tunnel to be closed", 10*time.Second, func() bool { return p.wd.tunnels.Len() == 0 })
		if d := time.Since(start); d < limit {
			t.Errorf("tunnel closed after %v, before its limit %v", d, limit)
		}
		select {
		case <-flooded:
		case <-time.After(5 * time.Second):
			t.Error("the backend's connection is still open")
		}
		if n := p.Traffic().Snapshot().TunnelsTimedOut; n != 1 {
			t.Errorf("%d tunnels counted timed out, want 1", n)
		}
	})
}

// TestTunnelExpired: the sweep's rule, on the coarse clock.
func TestTunnelExpired(t *testing.T) {
	const limit = int64(time.Second)
	for _, tc := range []struct {
		name    string
		moved   int64
		writing [2]int64
		now     int64
		want    bool
	}{
		{"just moved", 100, [2]int64{}, 100, false},
		{"at the limit", 100, [2]int64{}, 100 + limit, false},
		{"idle past it", 100, [2]int64{}, 101 + limit, true},
		{"writing, within it", 100 + limit, [2]int64{100 + limit, 0}, 100 + 2*limit, false},
		{"client write stalled", 100 + limit, [2]int64{0, 100}, 101 + limit, true},
		{"backend write stalled", 100 + limit, [2]int64{100, 0}, 101 + limit, true},
	} {
		var tn tunnel
		tn.moved.Store(tc.moved)
		for i, w := range tc.writing {
			tn.writing[i].Store(w)
		}
		if got := tn.expired(tc.now, limit); got != tc.want {
			t.Errorf("%s: expired %v, want %v", tc.name, got, tc.want)
		}
	}
}
