package proxy

import (
	"bufio"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Streaming. A response body too large to hold, or of unknown length (a
// chunked download, server-sent events), is relayed as it arrives: the
// fasthttp server reads it from a streamedBody while writing to the client,
// flushing after each chunk of a chunked body. A request body too large to
// hold goes to the backend the same way through an uploadBody. Either way
// the backend timeout bounds the gap between two chunks, not the whole
// transfer, so a live stream is never cut while it keeps sending, and the
// client connection's watchdog record sees the progress too. It runs only
// while the proxy waits on the backend, as nginx's proxy_read_timeout and
// proxy_send_timeout do: not while a write to a client that has stopped
// reading waits (the client idle timeout bounds that), nor while a slow
// upload's next piece is awaited from the client (the client body timeout
// does), or a healthy backend would be cut, and blamed, for the client's
// pause.

// framing says how a streamed response body ends on the wire.
type framing uint8

const (
	frameNone       framing = iota // read whole, not streamed
	frameFixed                     // Content-Length bytes
	frameChunked                   // chunked transfer coding
	frameUntilClose                // until the backend closes the connection
)

// streamedBody relays a backend's response body. It owns the backend
// connection until Close, which the fasthttp server calls once the body is
// relayed (or the client is gone) and which gives the connection back for
// reuse only if the body was read to its end.
type streamedBody struct {
	p      *Proxy
	b      *pool.Backend
	up     *upstream
	cc     any // the pooled connection's handle
	br     *bufio.Reader
	bc     *backendConn
	client *clientConn

	mode      framing
	left      int64 // bytes left: of the body (fixed) or of the chunk (chunked)
	done      bool  // the body ended where its framing says
	err       error
	closeConn bool

	// The access log line, written at Close with the bytes relayed
	// (accesslog.go: logAtEnd). keep holds its fields' bytes, and is kept
	// across uses.
	sent   int64
	logged bool
	entry  accessEntry[[]byte]
	keep   []byte

	direct directBody // the stream when it writes itself to the client (flush.go)

	// The stream when its body is spliced to the client (splice.go; its
	// g is nil otherwise), and the splice steps, bound once and kept
	// across uses, as keep is.
	splice    spliceBody
	spliceFns spliceSteps
}

var streamedBodyPool = sync.Pool{New: func() any { return new(streamedBody) }}

func acquireStreamedBody() *streamedBody { return streamedBodyPool.Get().(*streamedBody) }

func (s *streamedBody) init(p *Proxy, b *pool.Backend, up *upstream, cc any, br *bufio.Reader, bc *backendConn,
	client *clientConn, mode framing, size int,
) {
	*s = streamedBody{p: p, b: b, up: up, cc: cc, br: br, bc: bc, client: client, mode: mode, keep: s.keep[:0], spliceFns: s.spliceFns}
	if mode == frameFixed {
		s.left = int64(size)
	}
	s.closeConn = mode == frameUntilClose
	// Unarmed until the first Read: the server writes the header to the
	// client first.
	s.bc.disarm()
	s.progress(s.p.wd.now())
}

// progress restarts the client connection's idle clock.
func (s *streamedBody) progress(now int64) {
	if s.client != nil {
		s.client.since.Store(now)
	}
}

var (
	errChunkSize      = errors.New("invalid chunk size in backend response")
	errTrailerLine    = errors.New("trailer line in backend response longer than the read buffer")
	errStreamTimedOut = errors.New("backend stream idle past the backend timeout")
)

// Read implements io.Reader.
func (s *streamedBody) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	// The backend timeout runs while this read waits on the backend only;
	// between reads the server is writing to the client.
	s.bc.armAt(s.p.wd.now() + int64(s.p.cfg.BackendTimeout))
	n, err := s.read(p)
	s.bc.disarm()
	s.relayed(n)
	if err != nil {
		if err == io.EOF {
			s.done = true
		} else if s.bc.expired.Load() {
			err = errStreamTimedOut
		} else if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		s.err = err
	}
	return n, err
}

func (s *streamedBody) read(p []byte) (int, error) {
	switch s.mode {
	case frameFixed:
		if s.left == 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		if int64(len(p)) == s.left && len(p) >= s.br.Size() && s.br.Buffered() == 0 {
			// The reader would read this, the body's end, straight
			// from the socket, up to its end and not a byte more: its
			// last byte is read through the reader's buffer instead, so
			// that bytes the backend sent past the body with it show in
			// br.Buffered, and the connection is not reused (Close).
			p = p[:len(p)-1]
		}
		n, err := s.br.Read(p)
		s.left -= int64(n)
		return n, unexpectedEOF(err) // the backend closed early
	case frameChunked:
		if s.left == 0 {
			// Only the last chunk and the trailer's end end the body: an
			// end of stream before them (between chunks, inside a
			// chunk-size line or the trailer) cuts it, and must not pass
			// for its end, or the client would get a last chunk of ours.
			size, err := readChunkSize(s.br)
			if err != nil {
				return 0, unexpectedEOF(err)
			}
			if size == 0 {
				if err := skipTrailer(s.br); err != nil {
					return 0, unexpectedEOF(err)
				}
				return 0, io.EOF
			}
			s.left = size
		}
		if int64(len(p)) > s.left {
			p = p[:s.left]
		}
		n, err := s.br.Read(p)
		s.left -= int64(n)
		if err == nil && s.left == 0 {
			err = readLineEnd(s.br)
		}
		return n, unexpectedEOF(err)
	default: // frameUntilClose
		return s.br.Read(p)
	}
}

// unexpectedEOF turns an end of stream met inside a body's framing into
// io.ErrUnexpectedEOF, which Read reports as the body cut.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readChunkSize reads a chunk-size line ("1a2b;ext=1\r\n"). Its end may be
// an LF alone, as at the end of the chunk (readLineEnd): RFC 9112 §2.2 lets
// a recipient take LF for a line's end, and nginx, whose backends include
// those that send it, reads chunked framing so.
func readChunkSize(br *bufio.Reader) (int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, errChunkSize
		}
		return 0, err
	}
	var size int64
	digits := 0
	for i, c := range line {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case digits == 0:
			return 0, errChunkSize
		case c == ';', c == ' ', c == '\t', c == '\n', c == '\r' && i+2 == len(line):
			return size, nil
		default:
			return 0, errChunkSize
		}
		if digits == 15 { // beyond any body worth having
			return 0, errChunkSize
		}
		size = size<<4 | int64(v)
		digits++
	}
	return 0, errChunkSize
}

// skipTrailer reads a chunked body's trailer and drops it, up to the empty
// line that ends it (CRLF, or LF alone: see readChunkSize). A response over
// HTTP/1.1 goes on without its trailer, whether read whole (with a
// Content-Length) or streamed: relaying one would need it announced before
// the body, which is already going.
func skipTrailer(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return errTrailerLine
			}
			return err
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
}

// readLineEnd reads the line end that follows a chunk's data: CRLF, or LF
// alone (see readChunkSize).
func readLineEnd(br *bufio.Reader) error {
	b, err := br.Peek(1)
	if err != nil {
		return err
	}
	if b[0] == '\r' {
		if b, err = br.Peek(2); err != nil {
			return err
		}
		if b[1] != '\n' {
			return errChunkSize
		}
	} else if b[0] != '\n' {
		return errChunkSize
	}
	br.Discard(len(b)) //nolint:errcheck // peeked
	return nil
}

// Close implements io.Closer: it gives the backend connection back if the
// body ended cleanly, and closes it otherwise.
func (s *streamedBody) Close() error {
	s.bc.disarm()
	s.up.conns.releaseReader(s.br)
	if s.done && !s.closeConn && s.br.Buffered() == 0 {
		s.up.conns.release(s.cc)
	} else {
		s.up.conns.close(s.cc)
	}
	// Only the backend's failure counts against it: a client that went
	// away in the middle (its write failed, and fasthttp stopped reading)
	// leaves err nil.
	s.b.Done(!s.done && s.err != nil)
	if s.logged {
		s.entry.bytes = s.sent
		logEntry(s.p.alog, &s.entry, time.Now())
	}
	*s = streamedBody{keep: s.keep[:0], spliceFns: s.spliceFns}
	streamedBodyPool.Put(s)
	return nil
}

// uploadBody streams a request body from the client to a backend. It
// enforces the body size limit on bodies whose length was not announced,
// and reports progress on both connections while attached to an exchange.
type uploadBody struct {
	p      *Proxy
	src    io.Reader
	read   int64
	limit  int64 // zero: no limit
	err    error
	eof    bool // src has ended
	bc     *backendConn
	client *clientConn
}

var errBodyTooLarge = errors.New("request body larger than the limit")

func (u *uploadBody) attach(bc *backendConn, client *clientConn) {
	u.bc, u.client = bc, client
}

// Read implements io.Reader.
func (u *uploadBody) Read(p []byte) (int, error) {
	if u.bc != nil {
		// Waiting on the client, not the backend: see the top of the file.
		u.bc.disarm()
	}
	n, err := u.src.Read(p)
	u.read += int64(n)
	u.p.traffic.AddBytesIn(n)
	if u.limit > 0 && u.read > u.limit {
		u.err = errBodyTooLarge
		return 0, u.err
	}
	if u.bc != nil || n > 0 {
		now := u.p.wd.now()
		if u.bc != nil {
			// For the write to the backend that follows.
			u.bc.armAt(now + int64(u.p.cfg.BackendTimeout))
		}
		if n > 0 && u.client != nil {
			u.client.since.Store(now)
		}
	}
	if err == io.EOF {
		u.eof = true
	} else if err != nil {
		u.err = err
	}
	return n, err
}

// failure says how the upload from the client connection cc ended the
// exchange.
func (u *uploadBody) failure(cc *clientConn) failure {
	if u.err == errBodyTooLarge {
		return failBodyTooLarge
	}
	return readFailure(cc)
}
