package proxy

import (
	"io"
	"os"
	"syscall"

	"github.com/valyala/fasthttp"
)

// Response bodies relayed with splice(2).
//
// A body relayed through memory is copied twice by the kernel: out of the
// backend's socket into the proxy's buffer, and out of that buffer into
// the client's socket. For a 64 KiB body those two copies were a third of
// the proxy's CPU per request (profiled: _copy_from_iter 24%, _copy_to_iter
// 8%). splice(2) moves the body from the backend's socket into a pipe and
// from the pipe into the client's socket by reference to the pages the
// kernel already holds, as HAProxy's `option splice-response` does: the
// bytes never reach user space.
//
// It is off unless Config.Splice asks for it, as in HAProxy: measured on
// loopback (this project's benchmark host, December 2026), the copies it
// saves (15% of the CPU profile for 64 KiB bodies, down to 5%) came back
// as more work in the TCP stack for the fragmented buffers a pipe hands
// it, 4-10% more CPU per request in all for bodies of 64 KiB to 1 MiB.
//
// A body is spliced when it is of known length, at least spliceMin bytes
// not yet read, and both connections are plain TCP sockets the proxy reads
// and writes itself (not TLS, not a hedged attempt's, which must not touch
// the client until it wins). It then streams as a larger body does
// (stream.go): the header goes out first, and a backend that fails in the
// middle of the body cuts the response rather than have it retried, as
// with nginx, which sends the header as soon as it has it. Bytes that came
// with the header, in the backend connection's read buffer, are written
// from there first.
//
// Each backend connection has its own pipe, made the first time one of
// its responses is spliced and closed with it: no pool, no lock, and the
// pipe is only ever used by the goroutine holding the connection. A pipe
// left with bytes in it by a failed relay is closed with its connection,
// which a relay that did not reach the body's end always closes.

// spliceMin is the smallest rest of a body, past what came with the
// header, that is spliced: below it the two system calls a splice adds
// cost more than the copies they save.
const spliceMin = 16 << 10

// spliceChunk bounds one splice into the pipe: a pipe holds 16 pages by
// default.
const spliceChunk = 64 << 10

// pipeFDs is a backend connection's pipe: its read and write ends, once
// made (the zero value: not made).
type pipeFDs struct {
	r, w int
	made bool
}

// ready makes the pipe if it is not made yet, and reports whether it is.
func (p *pipeFDs) ready() bool {
	if p.made {
		return true
	}
	var fds [2]int
	if syscall.Pipe2(fds[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC) != nil {
		return false // out of descriptors: the body is copied instead
	}
	p.r, p.w, p.made = fds[0], fds[1], true
	return true
}

// close closes the pipe, if made.
func (p *pipeFDs) close() {
	if p.made {
		syscall.Close(p.r) //nolint:errcheck // nothing to do about it
		syscall.Close(p.w) //nolint:errcheck // nothing to do about it
		*p = pipeFDs{}
	}
}

// spliceable reports whether resp's body, of known length, can be spliced
// from bc to the client connection g, and readies bc's pipe if so. A
// hedged attempt has no client connection (g is nil): it must not touch
// the client until it wins. The caller checks Config.Splice first, so
// that with splicing off no call is made.
func (p *Proxy) spliceable(resp *fasthttp.Response, buffered int, bc *backendConn, g *guardConn) bool {
	if g == nil || !g.plain || !g.io.on() || !bc.io.on() || !hasBody(resp) {
		return false
	}
	n := resp.Header.ContentLength()
	if n-buffered < spliceMin || (p.cfg.MaxResponseBodySize > 0 && n > p.cfg.MaxResponseBodySize) {
		return false
	}
	return bc.pipe.ready()
}

// spliceBody is a streamedBody of known length that writes itself to the
// client connection with splice(2). It lives inside the streamedBody, as
// directBody does: choosing it allocates nothing.
type spliceBody struct {
	s *streamedBody
	g *guardConn // the client connection

	// The splice in progress (its steps are the streamedBody's: steps).
	n, moved int
	errno    syscall.Errno
}

// spliceSteps are a streamedBody's splice steps, bound to it once and kept
// across its uses (the pool keeps them with it).
type spliceSteps struct {
	in, out func(fd uintptr) bool
}

// steps returns s's bound splice steps.
func (s *streamedBody) steps() *spliceSteps {
	if s.spliceFns.in == nil {
		s.spliceFns.in, s.spliceFns.out = s.splice.stepIn, s.splice.stepOut
	}
	return &s.spliceFns
}

// Read implements io.Reader, for a caller that does not use WriteTo.
func (d *spliceBody) Read(p []byte) (int, error) { return d.s.Read(p) }

// Close implements io.Closer.
func (d *spliceBody) Close() error { return d.s.Close() }

// SupportsBodyWriteTo tells fasthttp to call WriteTo: the body is sent as
// Read returns it, with its rest spliced.
func (d *spliceBody) SupportsBodyWriteTo() bool { return true }

// WriteTo writes the body to w, fasthttp's writer of the response into
// the client connection's write buffer, which holds the header: through
// w's ReadFrom, which fills the buffer from Read and flushes it, header and
// first bytes of the body in one write, and then hands the rest to the
// client connection's ReadFrom (guardConn.ReadFrom), which splices it.
func (d *spliceBody) WriteTo(w io.Writer) (int64, error) {
	if rf, ok := w.(io.ReaderFrom); ok {
		return rf.ReadFrom(d)
	}
	return copyStream(w, d) // not fasthttp's writer: never here
}

// ReadFrom implements io.ReaderFrom: the server's write buffer, flushed,
// hands it the rest of a response body. A spliced body's rest is spliced;
// anything else (a streamed body not spliced) is copied (copyStream).
func (c *guardConn) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if d, ok := lr.R.(*spliceBody); ok && d.g == c {
			n, err := d.relay(lr.N)
			lr.N -= n
			return n, err
		}
	}
	return copyStream(c, r)
}

// copyStream copies r to w, as io.Copy would, through a pooled buffer and
// without io.Copy's wrapping of w (which would allocate per response).
func copyStream(w io.Writer, r io.Reader) (int64, error) {
	bp := directBufs.Get().(*[]byte)
	defer directBufs.Put(bp)
	buf := *bp
	var n int64
	for empty := 0; ; {
		nr, err := r.Read(buf)
		if nr > 0 {
			empty = 0
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		} else if err == nil {
			if empty++; empty == 100 { // as bufio.Writer.ReadFrom gives up
				return n, io.ErrNoProgress
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// relay sends the client up to limit bytes of the body: those in the
// backend connection's read buffer, written, then the rest, spliced.
func (d *spliceBody) relay(limit int64) (int64, error) {
	s, g := d.s, d.g
	var written int64
	if n := int(min(int64(s.br.Buffered()), s.left, limit)); n > 0 {
		b, _ := s.br.Peek(n)
		m, err := g.Write(b)
		s.br.Discard(m) //nolint:errcheck // peeked
		s.left -= int64(m)
		written += int64(m)
		s.relayed(m)
		if err != nil {
			return written, err // the client's failure, not the backend's: s.err stays nil
		}
	}
	steps := s.steps()
	for s.left > 0 && written < limit {
		// Into the pipe, with the backend timeout running while it waits
		// on the backend. The body's last piece asks for a byte more: a
		// byte past the Content-Length that came with the body's end (as
		// bytes read through the reader show in br.Buffered) means the
		// connection cannot be trusted to frame the next answer. That
		// byte stays in the pipe, which is closed with the connection.
		want := int(min(s.left, limit-written, spliceChunk))
		ask := want
		if int64(want) == s.left {
			ask++
		}
		d.n, d.moved, d.errno = ask, 0, 0
		s.bc.armAt(s.p.wd.now() + int64(s.p.cfg.BackendTimeout))
		err := s.bc.io.raw.Read(steps.in)
		s.bc.disarm()
		switch {
		case err == nil && d.errno != 0:
			err = os.NewSyscallError("splice", d.errno)
		case err == nil && d.moved == 0:
			err = io.ErrUnexpectedEOF // the backend closed early
		}
		if err != nil {
			if s.bc.expired.Load() {
				err = errStreamTimedOut
			}
			s.err = err
			return written, err
		}
		if d.moved > want {
			d.moved = want
			s.closeConn = true
		}
		// Out of the pipe, all of it (but a byte past the body).
		d.n, d.moved = d.moved, 0
		err = g.io.raw.Write(steps.out)
		if err == nil && d.errno != 0 {
			err = os.NewSyscallError("splice", d.errno)
		}
		s.left -= int64(d.moved)
		written += int64(d.moved)
		s.relayed(d.moved)
		s.p.spliced.Add(int64(d.moved))
		if err != nil {
			return written, err // the client's, as above
		}
	}
	return written, nil
}

// relayed counts n bytes of the body sent to the client.
func (s *streamedBody) relayed(n int) {
	if n > 0 {
		s.progress(s.p.wd.now())
		s.p.traffic.AddBytesOut(n)
		s.sent += int64(n)
	}
}

// stepIn splices what the backend socket fd holds, up to d.n bytes, into
// the pipe: d.moved bytes, 0 at the end of its stream, or d.errno.
func (d *spliceBody) stepIn(fd uintptr) bool {
	n, e := spliceOnce(int(fd), d.s.bc.pipe.w, d.n)
	switch e {
	case 0:
		d.moved = n
	case syscall.EAGAIN:
		return false // wait until readable
	default:
		d.errno = e
	}
	return true
}

// stepOut splices the pipe's bytes into the client socket fd, until d.n
// have gone, or d.errno.
func (d *spliceBody) stepOut(fd uintptr) bool {
	for d.moved < d.n {
		n, e := spliceOnce(d.s.bc.pipe.r, int(fd), d.n-d.moved)
		switch e {
		case 0:
			if n == 0 {
				d.errno = syscall.EPIPE // cannot be: the pipe holds them
				return true
			}
			d.moved += n
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			d.errno = e
			return true
		}
	}
	return true
}

// spliceOnce moves up to n bytes from descriptor in to descriptor out, one
// of them a pipe, without blocking. An interrupted call is made again.
func spliceOnce(in, out, n int) (int, syscall.Errno) {
	for {
		m, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
		if e != syscall.EINTR {
			return int(m), e
		}
	}
}

// spliceFlags: never block on the pipe (the sockets are non-blocking), and
// move pages rather than copy them where the kernel can.
const spliceFlags = 0x1 | 0x2 // SPLICE_F_MOVE | SPLICE_F_NONBLOCK
