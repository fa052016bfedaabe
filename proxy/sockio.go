package proxy

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Socket I/O for plain TCP connections, with two costs of net.Conn removed.
//
// A proxied request needs four system calls that move data: read the
// request, write it to the backend, read the answer, write it to the
// client. Through net.Conn it takes six, because Go reads a socket before
// asking the poller whether it is ready, and in an exchange of request and
// answer the read after a write comes too early (the backend has not
// answered yet; the client sends its next request only once it has this
// answer): it returns EAGAIN and only then does the goroutine park. nginx
// asks epoll first and never makes that call.
//
// sockIO does as nginx does: a read that returned less than it asked for
// emptied the socket of data, so the next read first waits for the poller
// to see something arrive (pollwait.go), then reads once. Whatever arrived
// after the short read (a pipelined request, an answer, an end of stream,
// a reset) is there to be read or wakes the wait. One thing can be missed:
// an end of stream that was already there behind the data the short read
// took (nginx learns of it from EPOLLRDHUP, which Go's poller keeps to
// itself). So the watchdog ends a wait that has gone on a while (wake):
// the read after it finds the end of stream, or parks as any read does.
// A backend connection's wait is ended after backendWaitLimit, so that a
// kept-alive connection the backend closed with a lingering close (no
// reset for the next request) costs a retry tens of milliseconds later, not
// the try timeout; a client connection's after clientWaitLimit. Where the
// end of stream is expected behind the data, reads read first: a backend's
// body that ends with its connection, a client connection until it comes
// back for a second request (a client that sends its request and closes its
// side at once, as `nc -N` does, sees its connection end at once), and
// connections whose framing the proxy does not follow itself (the net/http
// path's, health checks', HTTP/2 clients'). A tunnel's reads wait, under
// the same limits (see runTunnel). The first read of a
// client connection waits, though (waitFirst): nothing has been read that
// an end of stream could hide behind, and the request is seldom there yet
// when the connection is accepted.
//
// Every read and write goes through the RawConn, with syscall.RawSyscall:
// the socket is non-blocking, so the call cannot block, and the scheduler's
// bookkeeping around a system call that might (entersyscall, exitsyscall:
// about 45 ns each time here) is not needed. They are recvfrom(2) and
// sendto(2), as nginx's are, rather than read(2) and write(2), which pass
// through the file layer first (about 0.25 µs a call here, profiled).
// Deadlines, Close and the poller work as for any net.Conn: the RawConn is
// the same file descriptor, under the same locks.

// maxRW bounds one read or write, as internal/poll does.
const maxRW = 1 << 30

// sockIO does the reads and writes of one TCP connection, for one reader
// and one writer at a time (a read in progress is kept in its fields).
type sockIO struct {
	raw  syscall.RawConn // nil: not a plain TCP connection
	conn net.Conn        // for the addresses in errors

	// The steps handed to raw, bound once so that no call allocates.
	readStep, writeStep func(fd uintptr) bool
	waitStep            func(fd uintptr)

	// Waiting for readability without a read first (pollwait.go).
	pd      uintptr       // the runtime's poll descriptor of the socket; 0: unknown
	drained bool          // the last read returned less than it asked: the socket was empty
	clock   *atomic.Int64 // the coarse clock of the watchdog that wakes waits; nil: no waits
	waiting atomic.Int64  // coarse time the wait began; 0: none; waking, woken
	dlMu    sync.Mutex    // orders the caller's read deadlines and wake's
	rdl     time.Time     // the read deadline the caller set, under dlMu

	// The read in progress.
	rb   []byte
	rn   int
	rerr syscall.Errno

	// empty counts the reads that found nothing (EAGAIN) and had to wait,
	// for tests, which read it while the connection serves.
	empty atomic.Int32

	// The write in progress.
	wb   []byte
	wn   int
	werr syscall.Errno
}

// sockConn is a connection that reads and writes through sockIO when it is
// a TCP socket, and as itself otherwise: client and backend connections
// both embed it.
type sockConn struct {
	net.Conn
	io sockIO
}

// init makes c the connection conn, read and written through sockIO when
// it is a TCP socket.
func (c *sockConn) init(conn net.Conn) {
	c.Conn = conn
	c.io.init(conn)
}

// Read implements net.Conn.
func (c *sockConn) Read(b []byte) (int, error) {
	if c.io.on() {
		return c.io.read(b)
	}
	return c.Conn.Read(b)
}

// Write implements net.Conn.
func (c *sockConn) Write(b []byte) (int, error) {
	if c.io.on() {
		return c.io.write(b)
	}
	return c.Conn.Write(b)
}

// SetReadDeadline implements net.Conn (see sockIO.setReadDeadline).
func (c *sockConn) SetReadDeadline(t time.Time) error {
	if c.io.on() {
		return c.io.setReadDeadline(t)
	}
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline implements net.Conn.
func (c *sockConn) SetDeadline(t time.Time) error {
	if c.io.on() {
		c.io.setReadDeadline(t) //nolint:errcheck // the write deadline's error is the same
		return c.Conn.SetWriteDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

// init prepares s for c when c is a TCP connection (an fdConn the proxy
// accepted, or a net.TCPConn); for any other, s stays unused (see on).
func (s *sockIO) init(c net.Conn) {
	switch tc := c.(type) {
	case *fdConn:
		s.raw, s.pd = tc.raw(), tc.pd
	case *net.TCPConn:
		raw, err := tc.SyscallConn()
		if err != nil {
			return
		}
		s.raw = raw
		raw.Control(func(fd uintptr) { s.pd = pollCtxOf(tc, fd) }) //nolint:errcheck // closed already: pd stays 0
	default:
		return
	}
	s.conn = c
	s.readStep, s.writeStep, s.waitStep = s.doRead, s.doWrite, s.doWait
}

// waitWith lets reads wait without reading first, under the watchdog whose
// coarse clock is given, which must call wake; nil reads first always.
// Only the reading goroutine calls it, between reads.
func (s *sockIO) waitWith(clock *atomic.Int64) {
	if s.pd == 0 {
		clock = nil
	}
	s.clock, s.drained = clock, false
}

// waitFirst makes the first read wait for the poller before it reads, as
// nginx waits for the first event of a connection it accepted: a client's
// request arrives a moment after the connection is accepted, so reading at
// once finds nothing. No end of stream can hide behind data nobody has
// read, so this wait needs no watchdog. Call it before the first read.
func (s *sockIO) waitFirst() {
	s.drained = s.pd != 0
}

// on reports whether s serves its connection.
func (s *sockIO) on() bool { return s.raw != nil }

// read is net.Conn's Read.
func (s *sockIO) read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.waitIfDrained()
	s.rb, s.rn, s.rerr = b[:min(len(b), maxRW)], 0, 0
	err := s.raw.Read(s.readStep)
	s.drained = s.clock != nil && s.rn > 0 && s.rn < len(s.rb)
	s.rb = nil
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case s.rerr != 0:
		return 0, s.opError("read", os.NewSyscallError("read", s.rerr))
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

// waitIfDrained does the wait a read begins with after a short read (see
// wait), and nothing otherwise. A caller that knows no reader holds
// buffered data calls it before the read, higher up its stack: see
// exchange.
func (s *sockIO) waitIfDrained() {
	if s.drained {
		s.drained = false
		s.wait()
	}
}

// States of a wait past its start (sockIO.waiting).
const (
	waking = -1 // wake is ending the wait
	woken  = -2 // it has: the read deadline is in the past
)

// Waits are ended after these (see the top of this file).
const (
	backendWaitLimit = 20 * time.Millisecond
	clientWaitLimit  = clientTick
)

// wait waits, instead of a read that would find nothing yet, for what comes
// after the short read that emptied the socket, or for wake; or, before
// the first read (waitFirst), for what comes first.
func (s *sockIO) wait() {
	if s.clock == nil {
		s.raw.Control(s.waitStep) //nolint:errcheck // closed: the read says so
		return
	}
	start := s.clock.Load()
	s.waiting.Store(start)
	s.raw.Control(s.waitStep) //nolint:errcheck // closed: the read says so
	if !s.waiting.CompareAndSwap(start, 0) {
		// Woken by the watchdog: once its deadline is set, put the
		// caller's back.
		for s.waiting.Load() != woken {
			runtime.Gosched()
		}
		s.dlMu.Lock()
		s.conn.SetReadDeadline(s.rdl) //nolint:errcheck // closed: the read says so
		s.waiting.Store(0)
		s.dlMu.Unlock()
	}
}

// doWait parks until the socket is readable, has an error or is closed, or
// the read deadline passes, unless it became so since the last read: see
// pollwait.go.
func (s *sockIO) doWait(uintptr) { pollWait(s.pd, 'r') }

// wake ends a wait that began before the coarse time before, with a read
// deadline in the past. The watchdog calls it.
func (s *sockIO) wake(before int64) {
	if w := s.waiting.Load(); w > 0 && w < before && s.waiting.CompareAndSwap(w, waking) {
		s.dlMu.Lock()
		s.conn.SetReadDeadline(aLongTimeAgo) //nolint:errcheck // closed: nothing to wake
		s.dlMu.Unlock()
		s.waiting.Store(woken)
	}
}

// aLongTimeAgo is a deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)

// setReadDeadline is net.Conn's SetReadDeadline: while wake has the read
// deadline, the caller's is kept for when the wait ends.
func (s *sockIO) setReadDeadline(t time.Time) error {
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	s.rdl = t
	if w := s.waiting.Load(); w == waking || w == woken {
		return nil
	}
	return s.conn.SetReadDeadline(t)
}

func (s *sockIO) doRead(fd uintptr) bool {
	n, e := recvOnce(fd, s.rb)
	switch e {
	case 0:
		s.rn = n
	case syscall.EAGAIN:
		s.empty.Add(1)
		return false // wait until readable
	default:
		s.rerr = e
	}
	return true
}

// recvOnce reads what the socket fd holds into b, up to len(b): n bytes, 0
// at the end of the stream, or an errno (EAGAIN: nothing yet). An
// interrupted call is made again.
func recvOnce(fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(min(len(b), maxRW)), 0, 0, 0)
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// sendOnce writes to the socket fd as much of b as it takes: n bytes, or
// an errno (EAGAIN: no room yet). An interrupted call is made again.
func sendOnce(fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(min(len(b), maxRW)), syscall.MSG_NOSIGNAL, 0, 0)
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// write is net.Conn's Write: all of b, or an error.
func (s *sockIO) write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.wb, s.wn, s.werr = b, 0, 0
	err := s.raw.Write(s.writeStep)
	n := s.wn
	s.wb = nil
	switch {
	case err != nil:
		return n, s.opError("write", err)
	case s.werr != 0:
		return n, s.opError("write", os.NewSyscallError("write", s.werr))
	}
	return n, nil
}

func (s *sockIO) doWrite(fd uintptr) bool {
	for s.wn < len(s.wb) {
		n, e := sendOnce(fd, s.wb[s.wn:])
		switch e {
		case 0:
			s.wn += n
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// opError gives err the form net.Conn's errors have (the RawConn names its
// operations "raw-read" and "raw-write").
func (s *sockIO) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.conn.LocalAddr(), Addr: s.conn.RemoteAddr(), Err: err}
}
