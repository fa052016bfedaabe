package proxy

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failingListener fails its first accepts with err, then accepts from the
// listener beneath.
type failingListener struct {
	net.Listener
	fails int
	err   error
	tries int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.tries++
	if l.tries <= l.fails {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// TestAcceptWaitsOutResourceShortage: an accept that fails for want of file
// descriptors or memory is tried again until it succeeds; any other error
// ends the accept at once, as the listener's end.
func TestAcceptWaitsOutResourceShortage(t *testing.T) {
	syscallErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	for _, tc := range []struct {
		err   error
		waits bool
	}{
		{syscallErr(syscall.EMFILE), true},
		{syscallErr(syscall.ENFILE), true},
		{syscallErr(syscall.ENOBUFS), true},
		{syscallErr(syscall.ENOMEM), true},
		{syscallErr(syscall.EINVAL), false},
		{&net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}, false},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			fl := &failingListener{Listener: ln, fails: 3, err: tc.err}
			c, err := acceptWaiting(fl, nil, nil)
			if !tc.waits {
				if !errors.Is(err, tc.err) || c != nil || fl.tries != 1 {
					t.Fatalf("got %v, %v after %d tries; want the error at once", c, err, fl.tries)
				}
				return
			}
			if err != nil {
				t.Fatalf("accept: %v after %d tries; want the connection", err, fl.tries)
			}
			defer c.Close()
			if fl.tries != 4 || c.RemoteAddr().String() != client.LocalAddr().String() {
				t.Fatalf("accepted %v after %d tries; want %v after 4", c.RemoteAddr(), fl.tries, client.LocalAddr())
			}
		})
	}
}

// TestAcceptWaitEndsAtClose: closing the proxy's listener (as Shutdown
// does) ends an accept that is waiting out a shortage of descriptors at
// once, not after its back-off.
func TestAcceptWaitEndsAtClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fl := &failingListener{Listener: ln, fails: 1 << 30, err: emfile}
	p := &Proxy{log: discardLogger()}
	gl := p.guardListener(fl, false)
	done := make(chan error, 1)
	go func() {
		_, err := gl.Accept()
		done <- err
	}()
	gl.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("accept still waiting after the listener closed")
	}
}

// TestListenHost: Listen's host follows the rules of every host in the
// configuration. The forms Go's resolver cannot read (127.1, 0x7f.1,
// 2130706433, 0177.0.0.1, an IP address with a trailing dot, a name with
// an empty label) are refused naming the host and what is wrong; the
// others listen, a name with its trailing dot as the same name.
func TestListenHost(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ip   string // the address listened on; "" for one refused
		err  string // in the error of one refused
	}{
		{addr: "127.0.0.1:0", ip: "127.0.0.1"},
		{addr: "localhost:0", ip: "127.0.0.1"},
		{addr: "localhost.:0", ip: "127.0.0.1"},
		{addr: "LOCALHOST:0", ip: "127.0.0.1"},
		{addr: "[::1]:0", ip: "::1"},
		{addr: "[::ffff:127.0.0.1]:0", ip: "127.0.0.1"},
		{addr: "127.1:0", err: `listen on 127.1:0: host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{addr: "0x7f.1:0", err: `host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{addr: "2130706433:0", err: `host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{addr: "0177.0.0.1:0", err: `host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{addr: "127.0.0.1.:0", err: `host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{addr: "a..b:0", err: `host "a..b": an empty label`},
	} {
		ln, err := Listen(tc.addr)
		if tc.ip == "" {
			if err == nil {
				ln.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Listen(%q): %v, want an error with %q", tc.addr, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Listen(%q): %v", tc.addr, err)
			continue
		}
		got := ln.Addr().(*net.TCPAddr)
		c, err := net.Dial("tcp", got.String())
		if err == nil {
			c.Close()
		}
		ln.Close()
		if got.IP.String() != tc.ip || err != nil {
			t.Errorf("Listen(%q): listening on %v (dial: %v), want %s", tc.addr, got, err, tc.ip)
		}
	}
}
