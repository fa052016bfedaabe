//go:build unix

package backendtest

import (
	"net"
	"syscall"
	"testing"
)

// HoldPort keeps addr's TCP port (IPv4) from being handed to another
// listener while nothing listens on it, and returns what lets it go. The
// socket is bound but never listens, so a connection to the port is still
// refused at once, as a crashed backend's would be. Without it a killed
// backend's port goes back to the kernel, and a listener of a test running
// beside (in this process or another package's) may be given it: the proxy
// under test then reaches that listener instead of a refusal. Kill holds
// its port so; a test that closes a listener of its own to have a dead
// address can do the same.
//
// SO_REUSEADDR lets the bind succeed over the connections the killed
// backend left in TIME_WAIT; the kernel still passes over a port so held
// when it picks one for a listener on port 0.
func HoldPort(addr string) (release func()) {
	nop := func() {}
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil || ta.IP.To4() == nil {
		return nop
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nop
	}
	sa := &syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) != nil || syscall.Bind(fd, sa) != nil {
		syscall.Close(fd)
		return nop
	}
	return func() { syscall.Close(fd) }
}

// ReservePort returns a loopback TCP port for a process the test starts to
// listen on, held as HoldPort holds one until the test ends. A port found
// free by listening on port 0 and closing is free only until someone binds
// it, and a listener of a test running beside may be given it before the
// process binds it; a held port is passed over by the kernel when it
// chooses one, while the process, whose listener sets SO_REUSEADDR as Go's,
// nginx's and HAProxy's do, may still bind it and listen.
func ReservePort(t testing.TB) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("reserve a port: %v", err)
	}
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		syscall.Close(fd)
		t.Fatalf("reserve a port: SO_REUSEADDR: %v", err)
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		t.Fatalf("reserve a port: bind: %v", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		t.Fatalf("reserve a port: getsockname: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return got.(*syscall.SockaddrInet4).Port
}
