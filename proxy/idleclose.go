package proxy

import (
	"crypto/tls"
	"syscall"
	"time"
	"unsafe"
)

// Kept-alive backend connections the backend has closed.
//
// A backend closes a kept-alive connection when it has been idle for the
// backend's own keep-alive timeout (gunicorn's is 2 s, Node's and Apache's
// 5 s), which may be shorter than -backend-idle-timeout. nginx and HAProxy
// keep idle upstream connections in their event loop and see the end of
// stream come; Go's http.Transport has a goroutine reading each one. A
// request sent on such a connection finds it closed only after it went
// out, when the backend may or may not have seen it: an idempotent one is
// sent again, anything else would get 502 for a request no backend saw.
//
// So a connection that has been idle a while is asked, before it is used,
// whether its peer has closed it: one recv(2) that peeks and does not
// wait. Connections in steady use are never asked (they are seldom idle
// for staleCheckAfter), so the request path under load pays nothing; a
// connection reused after a pause pays one system call.

// staleCheckAfter is how long a backend connection sits idle before its
// next use first checks that the backend has not closed it. Far below any
// backend's keep-alive timeout, far above the gaps between requests under
// load.
const staleCheckAfter = 100 * time.Millisecond

// idleClosed reports whether the connection, idle since its last exchange
// began, has been closed (or written to, or reset) by its peer, when it
// has been idle long enough to be asked. now is the coarse clock.
func (c *backendConn) idleClosed(now int64) bool {
	if now-c.armed < int64(staleCheckAfter) {
		return false
	}
	if c.io.on() {
		return peerClosed(c.io.raw)
	}
	conn := c.Conn
	if t, ok := conn.(*tls.Conn); ok {
		conn = t.NetConn() // a close_notify, or the end of stream, shows beneath
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false // no socket to ask: the exchange finds out
	}
	raw, err := sc.SyscallConn()
	return err != nil || peerClosed(raw)
}

// peerClosed peeks at the socket without waiting: anything but "nothing
// yet" (the end of the stream, bytes, an error) means the connection cannot
// carry a request.
func peerClosed(raw syscall.RawConn) bool {
	closed := false
	err := raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		closed = e != syscall.EAGAIN && e != syscall.EINTR
		return true
	})
	return closed || err != nil
}
