package proxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Config.FlushInterval for streamed bodies of known length. fasthttp writes
// such a body through its write buffer and flushes only when the buffer
// fills, with no hook to flush sooner; chunked bodies it flushes chunk by
// chunk. So a body that must reach the client as it arrives writes itself:
// the stream offers fasthttp a WriteTo (fasthttp.BodyWriterTo), the header
// is flushed first (Response.ImmediateHeaderFlush, set by HandleFastHTTP),
// and WriteTo writes to the client connection directly, each piece at once
// or within the interval, and reports the bytes written, which fasthttp
// checks against the Content-Length as it would its own.

// directBody is a streamedBody that writes itself to the client
// connection. It lives inside the streamedBody: choosing it allocates
// nothing.
type directBody struct {
	s *streamedBody
}

// stream returns what the response's body stream should be: the stream
// itself, or its direct form when it has a known length, FlushInterval
// asks for flushing, and the client connection is the proxy's to write.
func (s *streamedBody) stream() io.Reader {
	if s.mode != frameFixed || s.p.cfg.FlushInterval == 0 || s.client == nil {
		return s
	}
	s.direct = directBody{s: s}
	return &s.direct
}

// streamOf returns the streamedBody behind a response's body stream, or nil.
func streamOf(r io.Reader) *streamedBody {
	switch v := r.(type) {
	case *streamedBody:
		return v
	case *directBody:
		return v.s
	}
	return nil
}

// Read implements io.Reader.
func (d *directBody) Read(p []byte) (int, error) { return d.s.Read(p) }

// Close implements io.Closer.
func (d *directBody) Close() error { return d.s.Close() }

// SupportsBodyWriteTo tells fasthttp to call WriteTo.
func (d *directBody) SupportsBodyWriteTo() bool { return true }

// directBufSize is the most a direct body holds before writing it.
const directBufSize = 32 << 10

var directBufs = sync.Pool{New: func() any { b := make([]byte, directBufSize); return &b }}

// WriteTo writes the body to the client connection, ignoring w (fasthttp's
// writer into its buffer, empty since the header was flushed), and returns
// the bytes written.
func (d *directBody) WriteTo(io.Writer) (int64, error) {
	s := d.s
	bp := directBufs.Get().(*[]byte)
	defer directBufs.Put(bp)
	buf := *bp
	half := len(buf) / 2
	lw := latencyWriter{conn: s.client.conn, pending: buf[:0:half], delay: s.p.cfg.FlushInterval}
	defer lw.stop()
	for {
		n, err := s.Read(buf[half:])
		if n > 0 {
			if werr := lw.write(buf[half : half+n]); werr != nil {
				return lw.written(), werr
			}
		}
		if err == io.EOF {
			err = lw.flushNow()
			return lw.written(), err
		}
		if err != nil {
			return lw.written(), err
		}
	}
}

// latencyWriter holds what is written to conn for at most delay (not at
// all when delay is negative), and writes it out then, or as soon as its
// buffer is full: the first half of the direct buffer, the reads going to
// the second.
type latencyWriter struct {
	conn  net.Conn
	delay time.Duration

	mu      sync.Mutex
	pending []byte
	timer   *time.Timer
	armed   bool
	done    bool
	n       int64
	err     error
}

func (lw *latencyWriter) write(p []byte) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	if len(lw.pending)+len(p) > cap(lw.pending) {
		if err := lw.flushLocked(); err != nil {
			return err
		}
	}
	lw.pending = append(lw.pending, p...) // fits: p is at most half the buffer
	if lw.delay < 0 || len(lw.pending) == cap(lw.pending) {
		return lw.flushLocked()
	}
	if !lw.armed {
		lw.armed = true
		if lw.timer == nil {
			lw.timer = time.AfterFunc(lw.delay, lw.onTimer)
		} else {
			lw.timer.Reset(lw.delay)
		}
	}
	return nil
}

func (lw *latencyWriter) onTimer() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.armed = false
	if !lw.done {
		lw.flushLocked() //nolint:errcheck // kept in lw.err for the next write
	}
}

// flushNow writes out what is pending.
func (lw *latencyWriter) flushNow() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.flushLocked()
}

func (lw *latencyWriter) flushLocked() error {
	if lw.err != nil || len(lw.pending) == 0 {
		return lw.err
	}
	m, err := lw.conn.Write(lw.pending)
	lw.n += int64(m)
	lw.pending = lw.pending[:0]
	lw.err = err
	return err
}

func (lw *latencyWriter) written() int64 {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.n
}

// stop ends the timer: after it, lw never writes to conn again, which the
// server may then be writing the next response to.
func (lw *latencyWriter) stop() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.done = true
	if lw.timer != nil {
		lw.timer.Stop()
	}
}
