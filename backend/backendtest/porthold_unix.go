//go:build unix

package backendtest

import (
	"net"
	"syscall"
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
