package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Client connections accepted without net.TCPListener.Accept.
//
// Accepting through net costs, per connection, six allocations and a
// finalizer (the netFD, the TCPConn, two sockaddrs and two TCPAddrs), a
// getsockname(2) for the local address, and system calls through
// entersyscall/exitsyscall. The last is dearer than it looks: when the
// process has been idle, the first such call wakes the runtime's sysmon
// thread, which then polls every 20 µs for a millisecond or more, and on
// one core each of those wake-ups is a context switch away from serving.
// With a new connection per request that was 0.17 nanosleep(2) calls per
// request, and about 4 µs of its CPU, profiled.
//
// fdConn is what accept4(2) returned, registered with the runtime's
// poller the way internal/poll registers a socket (runtime_pollOpen and
// the rest, which the runtime keeps linkable for packages outside the
// standard library: go.dev/issue/67401), read and written with raw system
// calls, and closed the way internal/poll closes: a reference count keeps
// the descriptor open while any call uses it, Close wakes every waiter,
// and the last reference out closes the descriptor, so that a descriptor
// number is never used after the kernel may have given it to another
// socket. Reads are serialized among themselves and writes among
// themselves, as internal/poll serializes them. The local address is
// asked for only when wanted; the remote one comes with accept4. No
// finalizer backs up a forgotten Close: every path that takes a client
// connection closes it (fasthttp's server, tunnels, the HTTP/2 server).
// Measured side by side with a new connection per request: 15% less CPU
// per request (0.85 of the net.TCPConn path), 9.85 system calls per
// request against 10.73 (nginx: 10.16), and nanosleep(2) from 0.17 to
// 0.02 per request; kept-alive connections cost the same as before.

// The runtime's poller, as internal/poll uses it.
//
//go:linkname pollOpen internal/poll.runtime_pollOpen
func pollOpen(fd uintptr) (uintptr, int)

//go:linkname pollClose internal/poll.runtime_pollClose
func pollClose(ctx uintptr)

//go:linkname pollReset internal/poll.runtime_pollReset
func pollReset(ctx uintptr, mode int) int

//go:linkname pollSetDeadline internal/poll.runtime_pollSetDeadline
func pollSetDeadline(ctx uintptr, d int64, mode int)

//go:linkname pollUnblock internal/poll.runtime_pollUnblock
func pollUnblock(ctx uintptr)

// Results of the poller's calls (internal/poll's pollErr* values).
const (
	pollErrClosing     = 1
	pollErrTimeout     = 2
	pollErrNotPollable = 3
)

// pollError is the error a poller result stands for, as internal/poll
// reports it.
func pollError(res int) error {
	switch res {
	case 0:
		return nil
	case pollErrClosing:
		return net.ErrClosed
	case pollErrTimeout:
		return os.ErrDeadlineExceeded
	}
	return errNotPollable
}

// errNotPollable is internal/poll's ErrNotPollable.
var errNotPollable = errors.New("not pollable")

// fdClosing is the bit of fdConn.state that Close sets; the bits below it
// count references.
const fdClosing = 1 << 62

// fdConn is a TCP connection the proxy accepted itself (see above). It is a
// net.Conn; its RawConn is the same value seen as fdRaw.
type fdConn struct {
	fd    int
	pd    uintptr      // the runtime's poll descriptor
	state atomic.Int64 // fdClosing | references (the connection's own is one)

	rmu, wmu sync.Mutex // one read at a time, one write at a time

	peer  netip.AddrPort
	ln    net.Addr // the listener's address: the local address if getsockname fails
	laddr atomic.Pointer[net.TCPAddr]
	raddr atomic.Pointer[net.TCPAddr]
}

// incref takes a reference unless the connection is closing.
func (c *fdConn) incref() bool {
	for {
		s := c.state.Load()
		if s&fdClosing != 0 {
			return false
		}
		if c.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// decref drops a reference; the last one out of a closing connection
// closes the descriptor.
func (c *fdConn) decref() {
	if c.state.Add(-1) == fdClosing {
		pollClose(c.pd)
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(c.fd), 0, 0) //nolint:errcheck // nothing to report to: as internal/poll's destroy
	}
}

// Close implements net.Conn: it wakes whatever waits on the connection,
// and the descriptor closes as the last call using it returns.
func (c *fdConn) Close() error {
	for {
		s := c.state.Load()
		if s&fdClosing != 0 {
			return c.opError("close", net.ErrClosed)
		}
		if c.state.CompareAndSwap(s, s|fdClosing) {
			break
		}
	}
	pollUnblock(c.pd)
	c.decref() // the connection's own reference
	return nil
}

// Read implements net.Conn.
func (c *fdConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.raw().Read(func(fd uintptr) bool {
		n, errno = recvOnce(fd, b)
		if errno == syscall.EAGAIN {
			n, errno = 0, 0
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write implements net.Conn: all of b, or an error.
func (c *fdConn) Write(b []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := c.raw().Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := sendOnce(fd, b[n:])
			switch e {
			case 0:
				n += m
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// CloseWrite shuts down the sending side, as net.TCPConn's does.
func (c *fdConn) CloseWrite() error {
	if !c.incref() {
		return c.opError("close", net.ErrClosed)
	}
	defer c.decref()
	if _, _, e := syscall.RawSyscall(syscall.SYS_SHUTDOWN, uintptr(c.fd), syscall.SHUT_WR, 0); e != 0 {
		return c.opError("close", os.NewSyscallError("shutdown", e))
	}
	return nil
}

// SetDeadline implements net.Conn.
func (c *fdConn) SetDeadline(t time.Time) error { return c.setDeadline(t, 'r'+'w') }

// SetReadDeadline implements net.Conn.
func (c *fdConn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, 'r') }

// SetWriteDeadline implements net.Conn.
func (c *fdConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, 'w') }

func (c *fdConn) setDeadline(t time.Time, mode int) error {
	var d int64
	if !t.IsZero() {
		if d = int64(time.Until(t)); d == 0 {
			d = -1 // past, not "none"
		}
	}
	if !c.incref() {
		return &net.OpError{Op: "set", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: net.ErrClosed}
	}
	pollSetDeadline(c.pd, d, mode)
	c.decref()
	return nil
}

// RemoteAddr implements net.Conn.
func (c *fdConn) RemoteAddr() net.Addr {
	if a := c.raddr.Load(); a != nil {
		return a
	}
	a := net.TCPAddrFromAddrPort(c.peer)
	if c.raddr.CompareAndSwap(nil, a) {
		return a
	}
	return c.raddr.Load()
}

// LocalAddr implements net.Conn; it asks the kernel the first time.
func (c *fdConn) LocalAddr() net.Addr {
	if a := c.laddr.Load(); a != nil {
		return a
	}
	var a *net.TCPAddr
	if c.incref() {
		var rsa syscall.RawSockaddrAny
		l := uint32(syscall.SizeofSockaddrAny)
		_, _, e := syscall.RawSyscall(syscall.SYS_GETSOCKNAME, uintptr(c.fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&l)))
		c.decref()
		if e == 0 {
			if ap, ok := addrPortOf(&rsa); ok {
				a = net.TCPAddrFromAddrPort(ap)
			}
		}
	}
	if a == nil {
		ta, _ := c.ln.(*net.TCPAddr)
		if ta == nil {
			ta = &net.TCPAddr{}
		}
		return ta // not kept: the kernel may still tell next time
	}
	if c.laddr.CompareAndSwap(nil, a) {
		return a
	}
	return c.laddr.Load()
}

// SyscallConn returns the connection's RawConn, as net.TCPConn's does.
func (c *fdConn) SyscallConn() (syscall.RawConn, error) { return c.raw(), nil }

func (c *fdConn) raw() *fdRaw { return (*fdRaw)(c) }

func (c *fdConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		return oe
	}
	var src net.Addr
	if op != "close" {
		src = c.LocalAddr()
	}
	return &net.OpError{Op: op, Net: "tcp", Source: src, Addr: c.RemoteAddr(), Err: err}
}

// fdRaw is an fdConn as a syscall.RawConn: what sockIO reads and writes
// through, as it does a net.TCPConn's.
type fdRaw fdConn

// Control implements syscall.RawConn: f runs while the descriptor is held
// open.
func (r *fdRaw) Control(f func(fd uintptr)) error {
	c := (*fdConn)(r)
	if !c.incref() {
		return net.ErrClosed
	}
	f(uintptr(c.fd))
	c.decref()
	return nil
}

// Read implements syscall.RawConn as internal/poll's RawRead: f is called
// until it reports done, with a wait for readability each time it does not.
func (r *fdRaw) Read(f func(fd uintptr) bool) error {
	c := (*fdConn)(r)
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.await(f, 'r')
}

// Write implements syscall.RawConn as internal/poll's RawWrite.
func (r *fdRaw) Write(f func(fd uintptr) bool) error {
	c := (*fdConn)(r)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.await(f, 'w')
}

// await runs f until it reports done, waiting in mode ('r' or 'w') between
// tries, under a reference.
func (c *fdConn) await(f func(fd uintptr) bool, mode int) error {
	if !c.incref() {
		return net.ErrClosed
	}
	defer c.decref()
	if res := pollReset(c.pd, mode); res != 0 {
		return pollError(res)
	}
	for !f(uintptr(c.fd)) {
		if res := pollWait(c.pd, mode); res != 0 {
			return pollError(res)
		}
	}
	return nil
}

// addrPortOf reads an IPv4 or IPv6 socket address as the kernel gives it.
func addrPortOf(rsa *syscall.RawSockaddrAny) (netip.AddrPort, bool) {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		ip := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			ip = ip.WithZone(zoneName(int(sa.Scope_id)))
		}
		return netip.AddrPortFrom(ip, uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}

// zoneName names the interface of an IPv6 scope, or gives its number;
// names found are kept, as net keeps them.
func zoneName(index int) string {
	if name, ok := zoneNames.Load(index); ok {
		return name.(string)
	}
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return strconv.Itoa(index)
	}
	zoneNames.Store(index, ifi.Name)
	return ifi.Name
}

var zoneNames sync.Map // scope index -> interface name
