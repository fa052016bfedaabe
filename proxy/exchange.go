package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// exchangeEnv is what an exchange needs beyond the request and response.
type exchangeEnv struct {
	// client is the client connection's watchdog record, or nil: a streamed
	// body reports progress on it.
	client *clientConn
	// hooks is set only for the concurrent attempts of a hedged request.
	hooks *attemptHooks
	// conn is the client connection the response goes to, when it is the
	// proxy's own: it holds a body read whole until it is written
	// (respbody.go).
	conn *guardConn
	// upgrade says the request asks to switch protocols (WebSocket).
	upgrade bool
	// http10 says the client spoke HTTP/1.0 (the backend is sent HTTP/1.1):
	// a body of unknown length cannot go to it chunked (flush.go: unframe).
	http10 bool
	// tunnel is set by exchange when the backend switched protocols: the
	// caller hijacks the client connection and runs it.
	tunnel *tunnel
}

// exchange sends req to b over one of its pooled connections and reads the
// response into resp. It does what HostClient.Do would, minus the work the
// proxy does not need per request (a retry loop of its own, runtime timers
// for deadlines: the watchdog times the exchange), and with these additions.
//
// It reads the answer as soon as the request is out. (Yielding to the
// other goroutines first, so that the read more often finds the answer
// there, saves about half a read(2) per request under load but was measured
// to cost p99 latency for no CPU gained: a yielded goroutine waits in the
// global run queue behind every other connection.)
//
// The response header must arrive within the try timeout; only then does the
// backend timeout govern the rest. A frozen backend (one that accepts and
// never answers) costs a request the try timeout, not the backend timeout.
//
// Bodies of known, moderate size are read whole (the fast path). A larger
// body, one of unknown length, or a streamed request body flows through
// instead, with the backend timeout applying between chunks rather than to
// the whole: resp then carries a body stream that gives the connection back
// when the server has relayed it.
func (p *Proxy) exchange(b *pool.Backend, req *fasthttp.Request, resp *fasthttp.Response, env *exchangeEnv) (failure, error) {
	up := upstreamOf(b)
	resp.Reset()
	cc, conn, err := up.conns.acquire(p.cfg.BackendTimeout)
	if err != nil {
		return classifyError(err), err
	}
	bc := conn.(*backendConn)
	if bc.uses > 0 && bc.idleClosed(p.wd.now()) {
		// The backend closed it while it sat idle (its keep-alive timeout
		// is shorter than ours): nothing was sent, so any request may go
		// on a fresh connection. Its other idle connections are as old.
		up.conns.close(cc)
		up.hc.CloseIdleConnections()
		if cc, conn, err = up.conns.acquire(p.cfg.BackendTimeout); err != nil {
			return classifyError(err), err
		}
		bc = conn.(*backendConn)
	}
	if env.hooks != nil && env.hooks.attach(bc) {
		up.conns.release(cc)
		return failClosed, errAborted
	}
	if bc.uses++; bc.uses == 1 {
		// Its reads wait without reading first (sockio.go): the exchanges
		// here know each answer's framing, and turn the waits off for a
		// body that ends with the connection. (Connections of the net/http
		// path and the health checks read as any net.Conn.)
		bc.io.waitWith(&p.wd.clock)
	}
	upload, _ := req.BodyStream().(*uploadBody)
	var start int64
	if upload != nil {
		// The body streams in from the client: time the gaps between its
		// chunks on both sides, then the wait for the header from when the
		// body is sent.
		upload.attach(bc, env.client)
		if env.client != nil {
			env.client.enter(phaseBody, p.wd.now())
		}
		bc.arm(p.cfg.BackendTimeout)
	} else {
		start = bc.arm(p.headerTimeout)
	}
	bw := up.conns.writer(conn)
	if err = req.Write(bw); err == nil {
		err = bw.Flush()
	}
	up.conns.releaseWriter(bw)
	if upload != nil {
		upload.attach(nil, nil)
		if env.client != nil {
			env.client.enter(phaseHandling, p.wd.now())
		}
		if err == nil {
			start = bc.arm(p.headerTimeout)
		} else if upload.err != nil {
			err = upload.err // the client's side failed, or the body was too large
		}
	}
	if err != nil {
		up.conns.close(cc)
		if upload != nil && upload.err != nil {
			return upload.failure(env.client), err
		}
		f, err := p.exchangeFailed(bc, err, p.headerTimeoutFailure)
		if f == failClosed && bc.uses > 1 {
			f = failStale
		}
		return f, err
	}

	// Wait for the answer here rather than at the bottom of the header
	// read, eight calls deeper, where the read would wait: woken, the
	// goroutine has fewer frames of its stack to reload from memory on the
	// way back up (about 2% of the CPU per request over 512 connections,
	// measured). Not while the reader holds bytes the backend sent ahead:
	// those are read first, as before.
	if bc.br == nil || bc.br.Buffered() == 0 {
		bc.io.waitIfDrained()
	}
	return p.receive(b, up, cc, bc, start, req, resp, env)
}

// receive reads the response to a request sent on bc: the header within the
// try timeout, then the body, whole or as a stream. start is when the
// exchange's clock started, for the backend timeout.
func (p *Proxy) receive(b *pool.Backend, up *upstream, cc any, bc *backendConn, start int64,
	req *fasthttp.Request, resp *fasthttp.Response, env *exchangeEnv,
) (failure, error) {
	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	resp.Header.DisableNormalizing()
	// Reset cleared the server's NoDefaultContentType: an answer without a
	// Content-Type must stay without one.
	resp.Header.SetNoDefaultContentType(true)
	br := up.conns.reader(bc)
	if err := readResponseHeader(bc, br, resp); err != nil {
		up.conns.releaseReader(br)
		up.conns.close(cc)
		if err == io.EOF && bc.uses > 1 && !bc.expired.Load() {
			// Not a byte back on a reused connection: the backend closed
			// it while idle, most likely before our request arrived.
			return failStale, errStaleConn
		}
		return p.exchangeFailed(bc, err, p.headerTimeoutFailure)
	}
	if env.hooks != nil {
		env.hooks.header.Store(true)
	}

	if resp.StatusCode() == fasthttp.StatusSwitchingProtocols {
		if !env.upgrade {
			up.conns.releaseReader(br)
			up.conns.close(cc)
			return failResponse, errors.New("101 Switching Protocols to a request that asked for none")
		}
		bc.disarm()
		env.tunnel = &tunnel{up: up, cc: cc, backend: bc, br: br}
		return 0, nil
	}

	mode, size := p.bodyFraming(resp, br)
	var spliceTo *guardConn
	if p.cfg.Splice && (mode == frameNone || mode == frameFixed) && p.spliceable(resp, br.Buffered(), bc, env.conn) {
		mode, size, spliceTo = frameFixed, resp.Header.ContentLength(), env.conn
	}
	if mode != frameNone {
		if mode == frameUntilClose {
			// Its end of stream comes right behind the last data: read
			// for it rather than wait for the watchdog (sockio.go).
			bc.io.waitWith(nil)
		}
		// Streamed: the body stream owns the connection from here on.
		s := acquireStreamedBody()
		s.init(p, b, up, cc, br, bc, env.client, mode, size)
		// A backend that said it closes the connection (Connection:
		// close, an HTTP/1.0 answer without keep-alive) has it closed
		// after the body, as one read whole has: the next request sent
		// on it would find it closed, or never answered.
		s.closeConn = s.closeConn || resp.ConnectionClose()
		if spliceTo != nil {
			s.splice = spliceBody{s: s, g: spliceTo}
		}
		resp.SetBodyStream(s.stream(env.http10), size)
		return 0, nil
	}

	bc.armAt(start + int64(p.cfg.BackendTimeout))
	var g *guardConn
	if env.hooks == nil {
		g = env.conn // the response is the client's own, not a hedged attempt's
	}
	err := p.readBody(br, resp, g)
	up.conns.releaseReader(br)
	if err != nil {
		up.conns.close(cc)
		return p.exchangeFailed(bc, err, failTimeout)
	}
	bc.disarm()
	// Bytes past the response are a backend's mistake: the connection
	// cannot be trusted to frame the next one.
	if resp.ConnectionClose() || br.Buffered() > 0 || (env.hooks != nil && env.hooks.detach()) {
		up.conns.close(cc)
	} else {
		up.conns.release(cc)
	}
	return 0, nil
}

// maxBufferedResponse is the largest response body of known length read
// whole before relaying; larger ones stream.
const maxBufferedResponse = 1 << 20

// lastChunk ends a chunked body that has no trailer.
var lastChunk = []byte("\r\n0\r\n\r\n")

// bodyFraming decides whether resp's body streams, and how it is framed on
// the wire: frameNone means read it whole. A chunked body whose end has
// already arrived, as a small one's usually has, is read whole too.
func (p *Proxy) bodyFraming(resp *fasthttp.Response, br *bufio.Reader) (mode framing, size int) {
	code := resp.StatusCode()
	if resp.SkipBody || code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		return frameNone, 0
	}
	switch cl := resp.Header.ContentLength(); {
	case cl > maxBufferedResponse:
		return frameFixed, cl
	case cl > 0 && p.cfg.FlushInterval != 0 && br.Buffered() < cl:
		return frameFixed, cl // still arriving: streamed, to be flushed as it comes
	case cl >= 0:
		return frameNone, 0
	case cl == -1:
		if n := br.Buffered(); n >= len(lastChunk) {
			if b, _ := br.Peek(n); bytes.HasSuffix(b, lastChunk) {
				return frameNone, 0
			}
		}
		return frameChunked, -1
	default: // -2: the body ends when the backend closes the connection
		return frameUntilClose, -1
	}
}

// maxInterimResponses bounds the 1xx responses skipped before the real one,
// as fasthttp does.
const maxInterimResponses = 100

var (
	errTooManyInterim = errors.New("too many 1xx responses")
	errStaleConn      = errors.New("kept-alive connection closed by the backend")
)

// readResponseHeader reads the final response header from br, bc's reader,
// skipping interim 1xx responses other than 101 Switching Protocols.
func readResponseHeader(bc *backendConn, br *bufio.Reader, resp *fasthttp.Response) error {
	for n := 0; ; n++ {
		if err := readHead(bc, br, &resp.Header); err != nil {
			return err
		}
		code := resp.Header.StatusCode()
		if code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if code < 100 {
			// Not a status (fasthttp reads any three digits): without
			// this it would pass for an interim answer, and the wait for
			// the real one would end only at the try timeout.
			return fmt.Errorf("status %03d", code)
		}
		if n == maxInterimResponses {
			return errTooManyInterim
		}
	}
}

// readResponseBody reads the body that the header announces, and the
// trailer of a chunked one.
func readResponseBody(br *bufio.Reader, resp *fasthttp.Response, limit int) error {
	if !hasBody(resp) {
		return nil
	}
	if resp.Header.ContentLength() == -1 {
		return readChunkedBody(br, resp, limit)
	}
	return resp.ReadBody(br, limit)
}

// readChunkedBody reads a chunked body whole into resp, and its trailer,
// with the chunk parser a streamed body uses (readChunkSize): fasthttp's
// takes no LF alone for a line's end, and a small body read whole would be
// refused where a larger one streamed passes.
func readChunkedBody(br *bufio.Reader, resp *fasthttp.Response, limit int) error {
	resp.ResetBody()
	for {
		size, err := readChunkSize(br)
		if err != nil {
			return unexpectedEOF(err)
		}
		if size == 0 {
			return unexpectedEOF(skipTrailer(br))
		}
		if limit > 0 && int64(len(resp.Body()))+size > int64(limit) {
			return fasthttp.ErrBodyTooLarge
		}
		for size > 0 {
			b, err := br.Peek(int(min(size, int64(br.Size()))))
			if len(b) == 0 {
				return unexpectedEOF(err)
			}
			resp.AppendBody(b)
			br.Discard(len(b)) //nolint:errcheck // peeked
			size -= int64(len(b))
		}
		if err := readLineEnd(br); err != nil {
			return unexpectedEOF(err)
		}
	}
}

// exchangeFailed says why an exchange failed. One whose connection the
// watchdog closed failed by timing out: onExpiry says which timeout was
// running.
func (p *Proxy) exchangeFailed(bc *backendConn, err error, onExpiry failure) (failure, error) {
	if bc.expired.Load() {
		if onExpiry == failTryTimeout {
			return failTryTimeout, fmt.Errorf("no response header within %v", p.headerTimeout)
		}
		return failTimeout, fmt.Errorf("no complete response within %v", p.cfg.BackendTimeout)
	}
	return classifyError(err), err
}
