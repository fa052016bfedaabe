//go:build unix

package backendtest

import (
	"errors"
	"net"
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
