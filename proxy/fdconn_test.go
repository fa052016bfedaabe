package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fdPair accepts one connection from a TCP listener on network and address
// as an fdConn, and returns it with the client's end.
func fdPair(t *testing.T, network, address string) (*fdConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, address, err)
	}
	defer ln.Close()
	a := newAcceptor(ln)
	if a == nil {
		t.Fatal("no acceptor for a TCP listener: pollLayout found no listener poll descriptor")
	}
	client, err := net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := a.accept()
	if err != nil {
		t.Fatal(err)
	}
	fc := c.(*fdConn)
	t.Cleanup(func() { fc.Close() })
	return fc, client
}

// TestFDConnAsNetConn: an fdConn behaves as net.TCPConn does, through
// net.Conn alone: data both ways, addresses, half-close, end of stream,
// deadlines, Close, and the errors of each.
func TestFDConnAsNetConn(t *testing.T) {
	for _, tc := range []struct{ network, address string }{
		{"tcp4", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
		{"tcp", ":0"}, // dual stack: IPv4 clients come as mapped IPv6
	} {
		t.Run(tc.network+" "+tc.address, func(t *testing.T) {
			c, client := fdPair(t, tc.network, tc.address)
			if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
				t.Errorf("RemoteAddr %s, want %s", got, want)
			}
			if got, want := c.LocalAddr().String(), client.RemoteAddr().String(); got != want {
				t.Errorf("LocalAddr %s, want %s", got, want)
			}
			if c.RemoteAddr() != c.RemoteAddr() {
				t.Error("RemoteAddr gives a new value each time: maps keyed by it would miss")
			}

			// Both ways, a large write in several sendto calls.
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			go func() { c.Write(big) }()
			got := make([]byte, len(big))
			if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("client read %d bytes of the 1 MiB write: %v", len(got), err)
			}
			io.WriteString(client, "ping")
			buf := make([]byte, 16)
			if n, err := io.ReadAtLeast(c, buf, 4); err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
			if n, err := c.Read(nil); n != 0 || err != nil {
				t.Errorf("empty read: %d, %v", n, err)
			}

			// A deadline that passed fails the read as a timeout.
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(buf)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past its deadline: %v, want a timeout", err)
			}
			c.SetReadDeadline(time.Time{})

			// Half-close: the client sees the end, and can still send.
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if n, err := client.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("client read after CloseWrite: %d, %v, want EOF", n, err)
			}
			if _, err := c.Write([]byte("x")); err == nil || !strings.Contains(err.Error(), "broken pipe") {
				t.Errorf("write after CloseWrite: %v, want broken pipe", err)
			}
			io.WriteString(client, "last")
			client.(*net.TCPConn).CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != "last" {
				t.Fatalf("read to the end: %q, %v", b, err)
			}

			// Close, then everything fails with net.ErrClosed.
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			for name, err := range map[string]error{
				"close again":  c.Close(),
				"read":         second(c.Read(buf)),
				"write":        second(c.Write(buf)),
				"set deadline": c.SetDeadline(time.Now()),
				"close write":  c.CloseWrite(),
			} {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("%s after Close: %v, want net.ErrClosed", name, err)
				}
			}
		})
	}
}

func second(_ int, err error) error { return err }

// TestFDConnCloseWhileBusy: Close ends a read blocked on the poller, a
// wait without a read, and a write blocked on a full socket, each with
// net.ErrClosed; the descriptor itself closes once they have returned,
// which the peer sees as a reset or the end of the stream.
func TestFDConnCloseWhileBusy(t *testing.T) {
	c, client := fdPair(t, "tcp4", "127.0.0.1:0")
	// sockIO's wait without a read, on a second connection: a connection
	// has one reader at a time, and the poller allows one waiter.
	w, _ := fdPair(t, "tcp4", "127.0.0.1:0")
	var wg sync.WaitGroup
	var readErr, writeErr error
	waited := make(chan int, 1)
	wg.Add(3)
	go func() { // a read with nothing to read
		defer wg.Done()
		_, readErr = c.Read(make([]byte, 8))
	}()
	go func() { // a write the client never reads
		defer wg.Done()
		_, writeErr = c.Write(make([]byte, 64<<20))
	}()
	go func() {
		defer wg.Done()
		w.raw().Control(func(uintptr) { waited <- pollWait(w.pd, 'r') })
	}()
	// Close once all three hold a reference: each is then parked on the
	// poller or about to, and Close must end it.
	deadline := time.Now().Add(10 * time.Second)
	for c.state.Load() != 3 || w.state.Load() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("references %d and %d, want 3 and 2 (the connections' own and the calls')", c.state.Load(), w.state.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(readErr, net.ErrClosed) || !errors.Is(writeErr, net.ErrClosed) {
		t.Errorf("read and write ended by Close: %v; %v; want net.ErrClosed", readErr, writeErr)
	}
	if res := <-waited; res != pollErrClosing {
		t.Errorf("wait ended by Close with %d, want pollErrClosing", res)
	}
	for _, fc := range []*fdConn{c, w} {
		if s := fc.state.Load(); s != fdClosing {
			t.Errorf("state %#x after every call returned, want closing and no references", s)
		}
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client after Close: %v, want the end of the stream or a reset", err)
	}
}

// TestAcceptorClosedListener: closing the listener ends an accept waiting
// for a connection with the error fasthttp takes for a closed listener.
func TestAcceptorClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := newAcceptor(ln)
	if a == nil {
		t.Fatal("no acceptor for a TCP listener")
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.accept()
		done <- err
	}()
	ln.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) || !strings.Contains(err.Error(), "use of closed network connection") {
			t.Fatalf("accept on a closed listener: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("accept still waiting 10 s after its listener closed")
	}
}

// TestProxyOverNetConnections: with fdConns off, the proxy's listeners
// accept through net as before, and requests are proxied the same, kept
// alive or not.
func TestProxyOverNetConnections(t *testing.T) {
	rawAccept = false
	defer func() { rawAccept = true }()
	be := startBackend(t, "a")
	p, url := startProxy(t, Config{Backends: []string{be.URL()}, Health: HealthConfig{Interval: -1}})
	client := newClient(t)
	for i, closing := range []bool{false, false, true, false} {
		req, _ := http.NewRequest("GET", url+"/", nil)
		req.Close = closing
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "a") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if i == 0 { // the kept-alive connection is tracked: see what it is
			set := &p.wd.clients
			set.mu.Lock() // not snapshot: that is the sweep's
			tracked := append([]*clientConn(nil), set.list...)
			set.mu.Unlock()
			for _, cc := range tracked {
				if g, ok := cc.conn.(*guardConn); !ok || g.io.pd == 0 {
					t.Fatalf("client connection %T, want a guardConn reading through sockIO", cc.conn)
				} else if _, ok := g.Conn.(*net.TCPConn); !ok {
					t.Fatalf("accepted a %T with fdConns off", g.Conn)
				}
			}
		}
	}
}

// TestAcceptedSocketsHaveNoDelay: every accepted socket has TCP_NODELAY,
// inherited from the listener (no setsockopt per connection) or, where a
// socket comes without it, set on each.
func TestAcceptedSocketsHaveNoDelay(t *testing.T) {
	for _, tc := range []struct {
		name       string
		clearFirst bool // take TCP_NODELAY off the listener after the acceptor set it
		want       int32
	}{
		{"inherited from the listener", false, noDelayInherited},
		{"set on each", true, noDelayPerConn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			a := newAcceptor(ln)
			if a == nil {
				t.Fatal("no acceptor for a TCP listener")
			}
			if got := a.noDelay.Load(); got != noDelayUnchecked {
				t.Fatalf("acceptor's noDelay %d before any accept, want %d (the listener has it)", got, noDelayUnchecked)
			}
			if tc.clearFirst {
				raw, _ := ln.(*net.TCPListener).SyscallConn()
				raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 0) })
			}
			for i := range 3 {
				client, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				c, err := a.accept()
				if err != nil {
					t.Fatal(err)
				}
				fc := c.(*fdConn)
				if !hasNoDelay(uintptr(fc.fd)) {
					t.Errorf("accepted socket %d has no TCP_NODELAY", i)
				}
				fc.Close()
			}
			if got := a.noDelay.Load(); got != tc.want {
				t.Errorf("acceptor's noDelay %d after accepting, want %d", got, tc.want)
			}
		})
	}
}
