package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection, the first served
// by a sockIO.
func tcpPair(t *testing.T) (*sockIO, net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	s := &sockIO{}
	if s.init(c); !s.on() {
		t.Fatal("sockIO does not take a *net.TCPConn")
	}
	return s, c, peer
}

// TestSockIOErrors: reads and writes fail as net.Conn's do, so that
// fasthttp and the proxy tell end of stream, a closed connection and a
// timeout apart as before.
func TestSockIOErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(c, peer net.Conn)
		op    string // "read" or "write"
		check func(error) bool
	}{
		{"end of stream", func(_, peer net.Conn) { peer.Close() }, "read",
			func(err error) bool { return err == io.EOF }},
		{"closed here", func(c, _ net.Conn) { c.Close() }, "read",
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
		{"read deadline", func(c, _ net.Conn) { c.SetReadDeadline(time.Now().Add(10 * time.Millisecond)) }, "read",
			func(err error) bool {
				var ne net.Error
				return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
			}},
		{"reset by peer", func(_, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
		}, "read", func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"write when closed here", func(c, _ net.Conn) { c.Close() }, "write",
			func(err error) bool { return errors.Is(err, net.ErrClosed) }},
		{"write deadline", func(c, _ net.Conn) { c.SetWriteDeadline(time.Unix(1, 0)) }, "write",
			func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c, peer := tcpPair(t)
			tc.setup(c, peer)
			var err error
			if tc.op == "read" {
				_, err = s.read(make([]byte, 64))
			} else {
				_, err = s.write([]byte("x"))
			}
			if !tc.check(err) {
				t.Fatalf("%s: got %v (%T)", tc.op, err, err)
			}
			var oe *net.OpError
			if err != io.EOF && (!errors.As(err, &oe) || oe.Op != tc.op) {
				t.Errorf("%s: error %v is not a net.OpError for %q", tc.op, err, tc.op)
			}
		})
	}
}

// TestSockIOAwaitWrite: awaitWrite returns once the answer is there to be
// read, and in every other case has written all it was given.
func TestSockIOAwaitWrite(t *testing.T) {
	t.Run("answer readable on return", func(t *testing.T) {
		s, _, peer := tcpPair(t)
		go func() {
			buf := make([]byte, 5)
			io.ReadFull(peer, buf)
			peer.Write([]byte("answer"))
		}()
		if n, err := s.awaitWrite([]byte("hello")); n != 5 || err != nil {
			t.Fatalf("awaitWrite: %d, %v", n, err)
		}
		// One non-blocking read, no waiting: the answer is in already.
		var got int
		var errno syscall.Errno
		buf := make([]byte, 64)
		s.raw.Read(func(fd uintptr) bool {
			n, err := syscall.Read(int(fd), buf)
			got, errno = n, errnoOf(err)
			return true
		})
		if string(buf[:max(got, 0)]) != "answer" {
			t.Fatalf("read right after awaitWrite: %q (errno %v), want the answer", buf[:max(got, 0)], errno)
		}
	})
	t.Run("more than the socket takes at once", func(t *testing.T) {
		s, _, peer := tcpPair(t)
		msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(io.LimitReader(peer, int64(len(msg))))
			got <- b
			peer.Write([]byte("ok"))
		}()
		if n, err := s.awaitWrite(msg); n != len(msg) || err != nil {
			t.Fatalf("awaitWrite: %d, %v", n, err)
		}
		if b := <-got; !bytes.Equal(b, msg) {
			t.Fatalf("peer got %d bytes, not the %d written", len(b), len(msg))
		}
		buf := make([]byte, 2)
		if n, err := s.read(buf); string(buf[:n]) != "ok" {
			t.Fatalf("read after: %q, %v", buf[:n], err)
		}
	})
	t.Run("read deadline passed", func(t *testing.T) {
		s, c, peer := tcpPair(t)
		c.SetReadDeadline(time.Unix(1, 0))
		if n, err := s.awaitWrite([]byte("hello")); n != 5 || err != nil {
			t.Fatalf("awaitWrite: %d, %v", n, err)
		}
		buf := make([]byte, 5)
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("peer read %q, %v", buf, err)
		}
	})
	t.Run("closed while waiting", func(t *testing.T) {
		s, c, peer := tcpPair(t)
		go func() {
			buf := make([]byte, 5)
			io.ReadFull(peer, buf)
			c.Close() // the watchdog does this to a connection past its limit
		}()
		if n, err := s.awaitWrite([]byte("hello")); n != 5 || err != nil {
			t.Fatalf("awaitWrite: %d, %v", n, err)
		}
		if _, err := s.read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after: %v, want the connection closed", err)
		}
	})
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	errors.As(err, &e)
	return e
}

// TestSockIOAllocations: the steps are bound once; a request's reads and
// writes allocate nothing.
func TestSockIOAllocations(t *testing.T) {
	s, _, peer := tcpPair(t)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := peer.Read(buf)
			if err != nil {
				return
			}
			peer.Write(buf[:n])
		}
	}()
	msg, buf := []byte("ping"), make([]byte, 64)
	allocs := testing.AllocsPerRun(200, func() {
		s.awaitWrite(msg)
		s.read(buf)
		s.write(msg)
		s.read(buf)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per exchange, want 0", allocs)
	}
}
