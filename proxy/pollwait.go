package proxy

import (
	"net"
	"reflect"
	"unsafe"
)

// Waiting for a socket to become readable without reading it first.
//
// Go's poller is edge-triggered and remembers an edge that comes while no
// goroutine waits: the socket's poll descriptor is marked ready, and the
// next wait returns at once. But every read through net.Conn or RawConn
// first clears that mark and then reads, so the first read after a quiet
// spell always returns EAGAIN before the goroutine parks: one system call
// per request that moves nothing. nginx avoids it by remembering that its
// last read emptied the socket (it returned less than it asked for) and
// waiting for the next epoll event before reading again.
//
// sockIO does the same: after a read that returned less than it asked, the
// next read first waits on the poll descriptor without clearing its mark
// (pollWait), then reads. Nothing is lost: the mark was cleared before that
// short read, so whatever arrived after it (data, an end of stream, a
// reset) has marked the descriptor ready or wakes the wait. The wait runs
// inside RawConn.Control, which holds a reference to the descriptor so
// that a Close cannot free it meanwhile; a Close or a passed read deadline
// ends the wait, and the read after it reports either as usual.
//
// The runtime's internal/poll.runtime_pollWait is the wait net.Conn itself
// uses; the runtime keeps it linkable for packages outside the standard
// library (go.dev/issue/67401). The descriptor is a field of the
// connection's internal/poll.FD, found by its name through reflect when the
// package starts; if the standard library ever lays those structures out
// otherwise, pollCtxOf finds nothing and sockIO reads as before. A TCP
// listener's descriptor is found the same way (listenerPollCtx), for the
// acceptor of fdaccept.go; without it, net accepts as before.

//go:linkname pollWait internal/poll.runtime_pollWait
func pollWait(ctx uintptr, mode int) int

// Where the poll descriptor and the file descriptor sit: offset of
// net.TCPConn's *netFD, and within the netFD of poll.FD's Sysfd and of its
// pollDesc's runtimeCtx. pollOK says they were all found.
var (
	pollFDOffset, pollSysfdOffset, pollCtxOffset uintptr
	pollOK                                       bool

	// Offset of net.TCPListener's *netFD (the same netFD as a TCPConn's);
	// listenerOK says it was found too.
	listenerFDOffset uintptr
	listenerOK       bool
)

func init() {
	pollFDOffset, pollSysfdOffset, pollCtxOffset, pollOK = pollLayout()
	if f, ok := reflect.TypeFor[net.TCPListener]().FieldByName("fd"); pollOK && ok && len(f.Index) == 1 &&
		f.Type == fieldType(reflect.TypeFor[net.TCPConn](), "conn", "fd") {
		listenerFDOffset, listenerOK = f.Offset, true
	}
}

// fieldType is the type of t.outer.inner, or nil.
func fieldType(t reflect.Type, outer, inner string) reflect.Type {
	o, ok := t.FieldByName(outer)
	if !ok || o.Type.Kind() != reflect.Struct {
		return nil
	}
	i, ok := o.Type.FieldByName(inner)
	if !ok {
		return nil
	}
	return i.Type
}

// pollLayout finds, by name and kind, net.TCPConn.conn.fd (*netFD),
// netFD.pfd (internal/poll.FD), FD.Sysfd (int) and FD.pd.runtimeCtx
// (uintptr).
func pollLayout() (fdOff, sysfdOff, ctxOff uintptr, ok bool) {
	field := func(t reflect.Type, name string, kind reflect.Kind) (reflect.StructField, bool) {
		if t.Kind() != reflect.Struct {
			return reflect.StructField{}, false
		}
		f, ok := t.FieldByName(name)
		return f, ok && len(f.Index) == 1 && f.Type.Kind() == kind
	}
	conn, ok1 := field(reflect.TypeFor[net.TCPConn](), "conn", reflect.Struct)
	if !ok1 {
		return 0, 0, 0, false
	}
	fd, ok2 := field(conn.Type, "fd", reflect.Pointer)
	if !ok2 {
		return 0, 0, 0, false
	}
	pfd, ok3 := field(fd.Type.Elem(), "pfd", reflect.Struct)
	if !ok3 || pfd.Type.PkgPath() != "internal/poll" || pfd.Type.Name() != "FD" {
		return 0, 0, 0, false
	}
	sysfd, ok4 := field(pfd.Type, "Sysfd", reflect.Int)
	pd, ok5 := field(pfd.Type, "pd", reflect.Struct)
	if !ok4 || !ok5 {
		return 0, 0, 0, false
	}
	ctx, ok6 := field(pd.Type, "runtimeCtx", reflect.Uintptr)
	if !ok6 {
		return 0, 0, 0, false
	}
	return conn.Offset + fd.Offset, pfd.Offset + sysfd.Offset, pfd.Offset + pd.Offset + ctx.Offset, true
}

// pollCtxOf returns the runtime poll descriptor of c, whose file descriptor
// raw reports, or 0 when it cannot be found or does not match.
func pollCtxOf(c *net.TCPConn, fd uintptr) uintptr {
	if !pollOK {
		return 0
	}
	return netFDPollCtx(*(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(c), pollFDOffset)), fd)
}

// listenerPollCtx is pollCtxOf for a listener.
func listenerPollCtx(l *net.TCPListener, fd uintptr) uintptr {
	if !listenerOK {
		return 0
	}
	return netFDPollCtx(*(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(l), listenerFDOffset)), fd)
}

// netFDPollCtx returns the poll descriptor of the netFD at nfd if its file
// descriptor is fd, else 0.
func netFDPollCtx(nfd unsafe.Pointer, fd uintptr) uintptr {
	if nfd == nil || uintptr(*(*int)(unsafe.Add(nfd, pollSysfdOffset))) != fd {
		return 0
	}
	return *(*uintptr)(unsafe.Add(nfd, pollCtxOffset))
}
