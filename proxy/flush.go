package proxy

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
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
//
// The same way, a body of unknown length reaches an HTTP/1.0 client, which
// cannot take chunks (RFC 9112 §6.1): fasthttp frames any body stream of
// unknown length as chunks, so the body goes out as a stream of length 0
// whose header carries no Content-Length (unframe), and WriteTo writes the
// body to the connection as it comes; the connection's close ends it, as
// nginx and HAProxy end such a body.

// directBody is a streamedBody that writes itself to the client
// connection. It lives inside the streamedBody: choosing it allocates
// nothing.
type directBody struct {
	s *streamedBody
	// unframed is the client connection once unframe has readied the
	// response for a body that ends with the connection. Until then a body
	// of unknown length is read as any other, and goes out chunked.
	unframed net.Conn
}

// stream returns what the response's body stream should be: the stream
// itself, or its direct form when it has a known length, FlushInterval
// asks for flushing, and the client connection is the proxy's to write; or
// when it has no known length and goes to an HTTP/1.0 client (http10).
func (s *streamedBody) stream(http10 bool) io.Reader {
	switch {
	case s.splice.g != nil:
		return &s.splice
	case s.mode == frameFixed && s.p.cfg.FlushInterval != 0 && s.client != nil:
	case s.mode != frameFixed && http10:
	default:
		return s
	}
	s.direct = directBody{s: s}
	return &s.direct
}

// unframe readies ctx's response, whose body stream is d and of unknown
// length, to go to the client without framing: no Transfer-Encoding, and
// Connection: close, since only the connection's end can end the body.
// Deleting Content-Length leaves fasthttp a length of 0 and nothing to
// write for it: fasthttp writes the header unframed (flushed at once, as
// HandleFastHTTP has every direct body's header) and then a body of 0
// bytes, which WriteTo is, having written the body to the connection
// itself.
func (d *directBody) unframe(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Del(fasthttp.HeaderTransferEncoding)
	h.Del(fasthttp.HeaderContentLength)
	h.SetConnectionClose()
	d.unframed = ctx.Conn()
}

// streamOf returns the streamedBody behind a response's body stream, or nil.
func streamOf(r io.Reader) *streamedBody {
	switch v := r.(type) {
	case *streamedBody:
		return v
	case *directBody:
		return v.s
	case *spliceBody:
		return v.s
	}
	return nil
}

// Read implements io.Reader.
func (d *directBody) Read(p []byte) (int, error) { return d.s.Read(p) }

// Close implements io.Closer.
func (d *directBody) Close() error { return d.s.Close() }

// SupportsBodyWriteTo tells fasthttp to call WriteTo, unless the body is
// one of unknown length that is to go out chunked after all (never
// unframed): then fasthttp chunks what Read returns.
func (d *directBody) SupportsBodyWriteTo() bool {
	return d.s.mode == frameFixed || d.unframed != nil
}

// directBufSize is the most a direct body holds before writing it.
const directBufSize = 32 << 10

var directBufs = sync.Pool{New: func() any { b := make([]byte, directBufSize); return &b }}

// WriteTo writes the body to the client connection, ignoring w (fasthttp's
// writer into its buffer, empty since the header was flushed), and returns
// the bytes written; for an unframed body, whose length fasthttp takes to
// be 0, it returns 0, and writes each piece as it comes, as a chunked body
// would be.
func (d *directBody) WriteTo(io.Writer) (int64, error) {
	s := d.s
	bp := directBufs.Get().(*[]byte)
	defer directBufs.Put(bp)
	buf := *bp
	half := len(buf) / 2
	lw := latencyWriter{pending: buf[:0:half]}
	if d.unframed != nil {
		lw.conn, lw.delay = d.unframed, -1
	} else {
		lw.conn, lw.delay = s.client.conn, s.p.cfg.FlushInterval
	}
	defer lw.stop()
	var err error
	for {
		var n int
		n, err = s.Read(buf[half:])
		if n > 0 {
			if werr := lw.write(buf[half : half+n]); werr != nil {
				err = werr
				break
			}
		}
		if err == io.EOF {
			err = lw.flushNow()
			break
		}
		if err != nil {
			break
		}
	}
	if d.unframed != nil {
		return 0, err // what fasthttp counts: see unframe
	}
	return lw.written(), err
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
