package proxy

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Idle keep-alive connections without a goroutine.
//
// fasthttp serves each connection on a goroutine of its own, which keeps
// its stack (grown by the proxy's call path to 8 or 16 KiB), a request
// context and a read buffer for as long as the connection stays open, idle
// or not: 21 KiB of memory per idle connection, measured, against 0.6 for
// nginx and 1.3 for HAProxy, which free their buffers as a connection goes
// idle and keep only an entry in epoll.
//
// The parker does the same for a connection idle for parkAfter. The
// watchdog's sweep asks its idle read to end (askPark: the read deadline
// is put in the past); the read returns errParked, which fasthttp takes as
// a kept-alive connection ending quietly, so its goroutine, context and
// buffers go back to their pools; the Close that follows is held back, and
// at StateClosed the connection goes into an epoll instance of the
// parker's own instead (hold). When it becomes readable (a request, an end
// of stream, a reset), the parker takes it out and serves it again with
// fasthttp's ServeConn on a new goroutine. Nothing else notices: the
// connection stays counted as open and under the connection limits
// (connlimit.go), and the watchdog keeps timing it as idle, closing it at
// the client idle timeout as before (a Close of a held connection takes it
// out of the parker first). Measured: 5.5 KiB of RSS per idle connection
// against 21.4 (`make bench`), heap and stacks 5-6 KiB against 31.8
// (BenchmarkIdleConnectionMemory).
//
// Only plain connections the proxy accepted itself are parked: not TLS
// ones, whose state lives in tls.Conn, whose Close would send the client a
// close_notify; not those of the h2c sniffer.

// parkAfter is how long a client connection stays idle with its goroutine
// before it is parked. A connection that comes back sooner never pays the
// few microseconds of being served anew.
const parkAfter = time.Second

// errParked ends the idle read of a connection being parked.
var errParked = errors.New("idle connection parked")

// Park states of a guardConn (guardConn.park).
const (
	parkNone    int32 = iota // served by fasthttp
	parkAsked                // the sweep has put its idle read's deadline in the past
	parkLeaving              // that read ended: fasthttp is letting the connection go
	parkHeld                 // in the parker, without a goroutine
)

// parker holds idle client connections in an epoll instance of its own,
// which the runtime's poller watches as it watches a socket.
type parker struct {
	p    *Proxy
	srv  *fasthttp.Server
	ep   *os.File // the epoll instance, for its waits and its Close
	epr  syscall.RawConn
	epfd int // its descriptor, for epoll_ctl (os.File.Fd would make it blocking)

	mu      sync.Mutex
	held    map[int32]*guardConn    // by file descriptor
	serving map[*guardConn]struct{} // handed back to fasthttp (serve), until its ServeConn returns
	closed  bool
	done    chan struct{} // closed when run returns

	release memRelease // gives back what parking freed (memrelease.go)
}

// newParker starts a parker that serves the connections it takes back on
// srv; it returns nil where epoll cannot be had.
func newParker(p *Proxy, srv *fasthttp.Server) *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil
	}
	ep := os.NewFile(uintptr(fd), "parker-epoll") // non-blocking: watched by the poller
	epr, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil
	}
	pk := &parker{p: p, srv: srv, ep: ep, epr: epr, epfd: fd, held: make(map[int32]*guardConn),
		serving: make(map[*guardConn]struct{}), done: make(chan struct{}), release: newMemRelease(&p.cfg)}
	go pk.run()
	return pk
}

// run takes back the connections that become readable.
func (pk *parker) run() {
	defer close(pk.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := pk.epr.Read(func(fd uintptr) bool {
			var e error
			for {
				n, e = syscall.EpollWait(int(fd), events, 0)
				if e != syscall.EINTR {
					break
				}
			}
			return n > 0 || e != nil // nothing ready: wait for the poller
		})
		if err != nil {
			return // closed
		}
		for _, ev := range events[:max(n, 0)] {
			if g := pk.take(ev.Fd); g != nil {
				go pk.serve(g)
			}
		}
	}
}

// take removes the connection on descriptor fd from the parker, or returns
// nil when it is gone already (closed meanwhile, or the event was for a
// descriptor since reused).
func (pk *parker) take(fd int32) *guardConn {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	g := pk.held[fd]
	if g == nil || pk.closed {
		return nil
	}
	pk.forgetLocked(fd)
	if g.cc != nil {
		// No longer idle: the sweep must not ask it to park before its
		// request is read (ServeConn reports no StateNew, and StateActive
		// only once the first byte is in).
		g.cc.enter(phaseNew, pk.p.wd.now())
	}
	g.park.Store(parkNone)
	g.leaveCloses = 0
	return g
}

// forgetLocked takes descriptor fd, which it holds, out of the parker's
// map and epoll, and out of the count of those parked.
func (pk *parker) forgetLocked(fd int32) {
	pk.p.traffic.ConnUnparked()
	delete(pk.held, fd)
	pk.release.parked(len(pk.held), pk.p.wd.now())
	syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) //nolint:errcheck // not registered: nothing to undo
}

// serve hands a connection that became readable back to fasthttp, or
// closes it when what it has to read is its end.
func (pk *parker) serve(g *guardConn) {
	var n int
	var e syscall.Errno
	var b [1]byte
	g.io.raw.Control(func(fd uintptr) { //nolint:errcheck // closed: the peek fails
		n, e = peekOnce(fd, b[:])
	})
	switch {
	case e == syscall.EAGAIN:
		// Nothing after all (an event for a reused descriptor): back in,
		// as if fasthttp had let it go (no Close of fasthttp's will come).
		pk.mu.Lock()
		g.park.Store(parkLeaving)
		g.leaveCloses = 1
		pk.mu.Unlock()
		if !pk.hold(g) {
			pk.p.closedParked(g)
		}
		return
	case n == 0 || e != 0:
		pk.drop(g) // an end of stream or a reset: nothing to serve
		return
	}
	pk.mu.Lock()
	closed := pk.closed
	if !closed {
		pk.serving[g] = struct{}{}
	}
	pk.mu.Unlock()
	if closed {
		pk.drop(g)
		return
	}
	g.unpark()
	if err := pk.srv.ServeConn(g); errors.Is(err, fasthttp.ErrConcurrencyLimit) {
		// Refused (a 503, and closed) without the StateClosed that
		// accounts for the end of any connection it serves.
		pk.p.closedParked(g)
	}
	pk.mu.Lock()
	delete(pk.serving, g)
	pk.mu.Unlock()
}

// closeServing closes the connections still being handed back to fasthttp
// once its shutdown is over: one that left the parker just as the shutdown
// began could otherwise be served after it.
func (pk *parker) closeServing() {
	pk.mu.Lock()
	left := make([]*guardConn, 0, len(pk.serving))
	for g := range pk.serving {
		left = append(left, g)
	}
	pk.mu.Unlock()
	for _, g := range left {
		g.Close() // a Close of one leaving takes the mutex (closeParked)
	}
}

// hold puts g, whose idle read ended for parking, in the parker, and
// reports whether it did. When it did not (the parker has closed, someone
// besides fasthttp closed the connection meanwhile, epoll refused it), the
// connection is closed. fasthttp calls it, through the StateClosed hook,
// after its own Close.
func (pk *parker) hold(g *guardConn) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	// Not when someone closed it beside fasthttp's own Close.
	ok := !pk.closed && g.leaveCloses <= 1 && !g.closed
	var fd int32
	if ok {
		fd, ok = pk.watchLocked(g)
	}
	if !ok {
		g.park.Store(parkNone)
		g.closeConn()
		return false
	}
	pk.held[fd] = g
	pk.release.parked(len(pk.held), pk.p.wd.now())
	pk.p.traffic.ConnParked()
	g.parkFD = fd
	g.park.Store(parkHeld)
	return true
}

// watchLocked adds g's descriptor to the parker's epoll, once: it returns
// the descriptor, or false when the connection is closed or epoll refuses.
func (pk *parker) watchLocked(g *guardConn) (int32, bool) {
	var fd int32
	var err error
	cerr := g.io.raw.Control(func(sfd uintptr) {
		fd = int32(sfd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
		err = syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_ADD, int(sfd), &ev)
	})
	return fd, cerr == nil && err == nil
}

// closeParked is a Close of a connection the parker may hold: one leaving
// fasthttp is closed by hold, as it would have been held; a held one is
// taken out and closed here. It reports false for any other, marked
// closed for hold first, for the caller to close it as usual.
func (pk *parker) closeParked(g *guardConn) bool {
	pk.mu.Lock()
	switch g.park.Load() {
	case parkLeaving:
		// fasthttp's own Close comes before it reports the end; any
		// other means the connection is to close (see hold).
		g.leaveCloses++
		pk.mu.Unlock()
		return true
	case parkHeld:
		if pk.held[g.parkFD] == g {
			pk.forgetLocked(g.parkFD)
		}
		g.park.Store(parkNone)
		pk.mu.Unlock()
		pk.drop(g)
		return true
	}
	// Before the descriptor closes: a hold after it must not register a
	// descriptor being closed (its number may then go to another socket).
	g.closed = true
	pk.mu.Unlock()
	return false
}

// close stops parking: the connections held are closed, those leaving
// fasthttp are closed instead of held, and none is served again.
func (pk *parker) close() {
	pk.mu.Lock()
	if pk.closed {
		pk.mu.Unlock()
		return
	}
	pk.closed = true
	held := make([]*guardConn, 0, len(pk.held))
	for fd, g := range pk.held {
		held = append(held, g)
		pk.forgetLocked(fd)
		g.park.Store(parkNone)
	}
	pk.mu.Unlock()
	for _, g := range held {
		pk.drop(g)
	}
	pk.ep.Close()
	<-pk.done
}

// Len returns how many connections are held.
func (pk *parker) Len() int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.held)
}

// drop closes a connection outside fasthttp: one taken out of the parker
// (or never handed back), which no StateClosed will account for.
func (pk *parker) drop(g *guardConn) {
	g.closeConn()
	pk.p.closedParked(g)
}

// closedParked does for a connection closed outside fasthttp what the end
// of its serving (StateClosed) would have: it is no longer counted, nor
// timed.
func (p *Proxy) closedParked(g *guardConn) {
	p.traffic.ConnClosed()
	if g.cc != nil {
		p.wd.clients.remove(g.cc)
	}
}

// askPark ends the idle read of g, for parking: its deadline is put in the
// past, unless a wake of the watchdog's has the deadline now (the next
// sweep asks again). The sweep calls it.
func (g *guardConn) askPark() {
	if st := g.park.Load(); st != parkNone && st != parkAsked {
		return
	}
	s := &g.io
	s.dlMu.Lock()
	defer s.dlMu.Unlock()
	if w := s.waiting.Load(); w == waking || w == woken {
		return
	}
	if g.park.CompareAndSwap(parkNone, parkAsked) || g.park.Load() == parkAsked {
		s.conn.SetReadDeadline(aLongTimeAgo) //nolint:errcheck // closed: nothing to end
	}
}

// parkRead finishes a read made while parking was asked. The idle read
// (waiting for the next request), ended by the past deadline, becomes
// errParked. Any other withdraws the request and puts the caller's
// deadline back: one that got something (a request arrived as the sweep
// asked), and one of a request that had just begun (the sweep saw the
// connection idle a moment before), which the past deadline ended for
// nothing and which is to be made again (again).
func (g *guardConn) parkRead(n int, err error) (int, bool, error) {
	timedOut := n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
	idle := g.cc != nil && g.cc.phase.Load() == phaseIdle
	if timedOut && idle && g.park.CompareAndSwap(parkAsked, parkLeaving) {
		return 0, false, errParked
	}
	s := &g.io
	s.dlMu.Lock()
	if g.park.CompareAndSwap(parkAsked, parkNone) {
		s.conn.SetReadDeadline(s.rdl) //nolint:errcheck // closed: the next read says so
	}
	s.dlMu.Unlock()
	return n, timedOut, err
}

// unpark readies a connection taken out of the parker to be served: the
// caller's read deadline is back, and the first read reads.
func (g *guardConn) unpark() {
	s := &g.io
	s.dlMu.Lock()
	s.conn.SetReadDeadline(s.rdl) //nolint:errcheck // closed: the first read says so
	s.dlMu.Unlock()
	s.drained = false
}

// peekOnce looks at what the socket fd holds without taking it: n bytes,
// 0 at the end of the stream, or an errno (EAGAIN: nothing).
func peekOnce(fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// parkerOf returns the proxy's parker, started the first time; nil where
// epoll cannot be had, or once Shutdown has begun or Close been called
// (nothing would stop it then).
func (p *Proxy) parkerOf() *parker {
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	if p.parker == nil && !p.shut && !p.closed.Load() {
		p.parker = newParker(p, p.Server())
	}
	return p.parker
}
