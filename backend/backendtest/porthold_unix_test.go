//go:build unix

package backendtest

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// TestHoldPort: a held port refuses connections, and is taken in the
// kernel's table of bound ports until released.
func TestHoldPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	release := HoldPort(addr)
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial a held port: %v, want connection refused", err)
	}
	if err := bindPlain(port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind a held port: %v, want address in use", err)
	}
	release()
	if err := bindPlain(port); err != nil {
		t.Errorf("bind a released port: %v", err)
	}
}

// bindPlain binds a socket to 127.0.0.1:port without SO_REUSEADDR, as the
// kernel's own choice of a free port would judge it, and closes it.
func bindPlain(port int) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	return syscall.Bind(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
}

// TestReservePort: a reserved port is taken for the kernel's own choice of
// a free port, yet a listener that sets SO_REUSEADDR, as a started process's
// does, can listen on it and be reached.
func TestReservePort(t *testing.T) {
	port := ReservePort(t)
	if err := bindPlain(port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("bind a reserved port: %v, want address in use", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on a reserved port: %v", err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "hi" {
		t.Errorf("read %q, %v from the listener on a reserved port", b, err)
	}
}
