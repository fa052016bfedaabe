//go:build !unix

package backendtest

import (
	"net"
	"testing"
)

// HoldPort does nothing here: a closed listener's port is free again at
// once.
func HoldPort(string) (release func()) { return func() {} }

// ReservePort returns a loopback TCP port that is free now; it is not held
// here, so a listener of another test may take it first.
func ReservePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
