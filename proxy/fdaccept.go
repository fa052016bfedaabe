package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// acceptor accepts connections from a net.TCPListener as fdConns (see
// fdconn.go). A listener's RawConn can only Control, so the acceptor waits
// for it as sockIO waits for a connection: on its poll descriptor, inside
// Control (pollwait.go), which holds the listener open meanwhile; a Close
// of the listener ends the wait. An edge that comes between a try that
// found nothing and the wait marks the descriptor ready, and the wait
// returns at once: nothing is missed.
type acceptor struct {
	ln       *net.TCPListener
	raw      syscall.RawConn
	pd       uintptr          // the listener's poll descriptor
	step     func(fd uintptr) // doAccept, bound once
	waitStep func(fd uintptr) // doWait, bound once
	mu       sync.Mutex       // one accept at a time; guards the fields below
	rsa      syscall.RawSockaddrAny
	rlen     uint32
	nfd      int
	errno    syscall.Errno
	waitRes  int

	// noDelay says how accepted sockets get TCP_NODELAY: the listener has
	// it, and Linux copies a listener's options to the sockets it accepts,
	// which saves a setsockopt(2) per connection; the first accepted
	// socket is asked, and if it had not inherited it, every one is set.
	noDelay atomic.Int32
}

// States of acceptor.noDelay.
const (
	noDelayPerConn   = iota // each accepted socket is set
	noDelayUnchecked        // the listener has it: ask the next accepted socket
	noDelayInherited        // accepted sockets have it
)

// acceptors holds the acceptor of each listener Listen made, so that every
// guardListener over one listener shares one acceptor, whose mutex keeps
// its accepts one at a time: the poller allows one waiter.
var acceptors sync.Map // *net.TCPListener -> *acceptor

// ownAcceptor gives ln, made by Listen, its acceptor.
func ownAcceptor(ln net.Listener) {
	if a := newAcceptor(ln); a != nil {
		acceptors.Store(ln, a)
	}
}

// acceptorFor returns the acceptor of a listener Listen made, or nil for
// any other listener, whose own Accept is used: its keep-alive settings are
// the caller's, and only the proxy must accept from ours.
func acceptorFor(ln net.Listener) *acceptor {
	if !rawAccept {
		return nil
	}
	if a, ok := acceptors.Load(ln); ok {
		return a.(*acceptor)
	}
	return nil
}

// newAcceptor returns an acceptor for ln, or nil when ln is not a TCP
// listener whose connections can be taken over (then net accepts them).
func newAcceptor(ln net.Listener) *acceptor {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	raw, err := tl.SyscallConn()
	if err != nil {
		return nil
	}
	a := &acceptor{ln: tl, raw: raw}
	if raw.Control(func(fd uintptr) {
		a.pd = listenerPollCtx(tl, fd)
		if setNoDelay(fd) == 0 {
			a.noDelay.Store(noDelayUnchecked)
		}
	}) != nil || a.pd == 0 {
		return nil
	}
	a.step, a.waitStep = a.doAccept, a.doWait
	return a
}

// rawAccept lets the proxy accept fdConns from its listeners; tests turn
// it off to run the net.TCPConn path.
var rawAccept = true

// accept returns the next connection, as net.TCPListener.Accept would,
// errors included (a closed listener's is net.ErrClosed's).
func (a *acceptor) accept() (net.Conn, error) {
	a.mu.Lock()
	var err error
	for {
		a.nfd, a.errno = -1, 0
		if err = a.raw.Control(a.step); err != nil || a.nfd >= 0 || a.errno != 0 {
			break
		}
		// Nothing to accept yet.
		if err = a.raw.Control(a.waitStep); err != nil {
			break
		}
		if a.waitRes != 0 {
			err = pollError(a.waitRes)
			break
		}
	}
	nfd, errno, rsa := a.nfd, a.errno, a.rsa
	a.mu.Unlock()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			acceptors.CompareAndDelete(a.ln, a) // served no more
		}
		if oe, ok := err.(*net.OpError); ok {
			oe.Op = "accept"
			return nil, oe
		}
		return nil, a.opError(err)
	}
	if errno != 0 {
		return nil, a.opError(os.NewSyscallError("accept4", errno))
	}
	peer, ok := addrPortOf(&rsa)
	if !ok { // not IP, which a TCP listener cannot give: dropped, as an aborted connection
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(nfd), 0, 0) //nolint:errcheck // never handed out
		return a.accept()
	}
	pd, e := pollOpen(uintptr(nfd))
	if e != 0 {
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(nfd), 0, 0) //nolint:errcheck // never handed out
		return nil, a.opError(os.NewSyscallError("epollctl", syscall.Errno(e)))
	}
	// As net does for every TCP connection: no Nagle delay on a response's
	// last partial segment.
	switch a.noDelay.Load() {
	case noDelayUnchecked:
		if hasNoDelay(uintptr(nfd)) {
			a.noDelay.Store(noDelayInherited)
			break
		}
		a.noDelay.Store(noDelayPerConn)
		setNoDelay(uintptr(nfd)) //nolint:errcheck // as net: best effort
	case noDelayPerConn:
		setNoDelay(uintptr(nfd)) //nolint:errcheck // as net: best effort
	}
	c := &fdConn{fd: nfd, pd: pd, peer: peer, ln: a.ln.Addr()}
	c.state.Store(1)
	return c, nil
}

// doAccept takes the next connection off the listener's queue into nfd,
// or an error into errno; neither when the queue is empty.
func (a *acceptor) doAccept(fd uintptr) {
	for {
		a.rlen = syscall.SizeofSockaddrAny
		n, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&a.rsa)), uintptr(unsafe.Pointer(&a.rlen)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			a.nfd = int(n)
			return
		case syscall.EINTR, syscall.ECONNABORTED: // the next one, as net does
		case syscall.EAGAIN:
			return
		default:
			a.errno = e
			return
		}
	}
}

// doWait parks until the listener is readable or closed.
func (a *acceptor) doWait(uintptr) { a.waitRes = pollWait(a.pd, 'r') }

func (a *acceptor) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: a.ln.Addr(), Err: err}
}

// rawListener is an acceptor as a net.Listener, for acceptWaiting.
type rawListener struct{ a *acceptor }

func (l rawListener) Accept() (net.Conn, error) { return l.a.accept() }
func (l rawListener) Close() error              { return l.a.ln.Close() }
func (l rawListener) Addr() net.Addr            { return l.a.ln.Addr() }

// setNoDelay sets TCP_NODELAY on the socket fd.
func setNoDelay(fd uintptr) syscall.Errno {
	one := int32(1)
	_, _, e := syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&one)), 4, 0)
	return e
}

// hasNoDelay reports whether the socket fd has TCP_NODELAY.
func hasNoDelay(fd uintptr) bool {
	var v int32
	n := uint32(4)
	_, _, e := syscall.RawSyscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	return e == 0 && v != 0
}
