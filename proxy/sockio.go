package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
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
// awaitWrite makes the write and the wait for the answer one step: inside
// one RawConn.Read, which resets the poller's readiness for the connection
// before calling back, the callback writes and reports "not ready", so the
// goroutine parks until the answer arrives, and the next read finds it.
// The poller is edge-triggered: what arrives after the reset wakes the
// wait, what was in the socket before it does not. So the caller must know
// that nothing can be there yet. A backend answers a request only once it
// has it (backendConn.mayAwait says when a kept-alive connection may
// surprise); a client may send its next request, or close its side, while
// its answer is being made, so client connections do not wait this way.
//
// Every read and write goes through the RawConn, with syscall.RawSyscall:
// the socket is non-blocking, so the call cannot block, and the scheduler's
// bookkeeping around a system call that might (entersyscall, exitsyscall:
// about 45 ns each time here) is not needed. Deadlines, Close and the poller
// work as for any net.Conn: the RawConn is the same file descriptor, under
// the same locks.

// maxRW bounds one read or write, as internal/poll does.
const maxRW = 1 << 30

// sockIO does the reads and writes of one TCP connection. Reads are
// serialized by the poller's read lock and writes by its write lock;
// awaitWrite takes the read lock, so it must not race another write.
type sockIO struct {
	raw  syscall.RawConn // nil: not a plain TCP connection
	conn net.Conn        // for the addresses in errors

	// The steps handed to raw, bound once so that no call allocates.
	readStep, writeStep, awaitStep func(fd uintptr) bool

	// The read in progress.
	rb   []byte
	rn   int
	rerr syscall.Errno

	// The write in progress.
	wb   []byte
	wn   int
	werr syscall.Errno
	sent bool // awaitStep: wb is out, and the next call is the wake-up
}

// init prepares s for c when c is a TCP connection; for any other, s stays
// unused (see on).
func (s *sockIO) init(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	s.raw, s.conn = raw, c
	s.readStep, s.writeStep, s.awaitStep = s.doRead, s.doWrite, s.doAwait
}

// on reports whether s serves its connection.
func (s *sockIO) on() bool { return s.raw != nil }

// read is net.Conn's Read.
func (s *sockIO) read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.rb, s.rn, s.rerr = b[:min(len(b), maxRW)], 0, 0
	err := s.raw.Read(s.readStep)
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

func (s *sockIO) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rb[0])), uintptr(len(s.rb)))
		switch e {
		case 0:
			s.rn = int(n)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until readable
		default:
			s.rerr = e
			return true
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
		p := s.wb[s.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(min(len(p), maxRW)))
		switch e {
		case 0:
			s.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// awaitWrite writes b, which completes a message the peer answers, and
// returns once something arrives after the write began (the answer, an end
// of stream, a reset). If the wait ends otherwise (the connection closed, a
// read deadline passed), it returns as well: b is out, and the read that
// follows reports why. When the socket cannot take all of b at once, the
// rest is written as by write, and the wait is left to the read.
func (s *sockIO) awaitWrite(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	s.wb, s.wn, s.werr, s.sent = b, 0, 0, false
	s.raw.Read(s.awaitStep) //nolint:errcheck // b is out or not: see below
	n, sent, errno := s.wn, s.sent, s.werr
	s.wb = nil
	switch {
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	case sent:
		return len(b), nil
	}
	// Not all of it went (a full socket buffer, a read deadline already
	// past, a connection closing): the rest as any write.
	m, err := s.write(b[n:])
	return n + m, err
}

func (s *sockIO) doAwait(fd uintptr) bool {
	if s.sent {
		return true // woken: the answer is readable
	}
	if !s.doWrite(fd) || s.werr != 0 {
		return true
	}
	s.sent = true
	return false // out: park until the answer is readable
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
