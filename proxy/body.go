package proxy

import (
	"io"
	"sync"

	"github.com/valyala/fasthttp"
)

// Request bodies arrive as streams (the server runs with StreamRequestBody,
// so a body of any size can pass without being held). One of known length
// up to maxBufferedRequest is read whole before it is sent: the request can
// then be retried on another backend, and the fast path stays the fast
// path. A longer body, or one of unknown length, streams to the backend.

// maxBufferedRequest is the largest request body read whole.
const maxBufferedRequest = 1 << 20

// requestBody holds what a request's body needs while it is proxied.
type requestBody struct {
	buf    *bodyBuf   // the whole body, when it was read whole
	upload uploadBody // the stream, when it streams
}

var requestBodyPool = sync.Pool{New: func() any { return new(requestBody) }}

// takeBody prepares the streamed body of ctx's request. It returns nil when
// there is nothing to prepare, and streaming reports whether the body goes
// to the backend as a stream (so the request cannot be replayed once sent).
// A failure means the request must be answered without proxying it.
func (p *Proxy) takeBody(ctx *fasthttp.RequestCtx, cc *clientConn) (rb *requestBody, streaming bool, f failure) {
	req := &ctx.Request
	src := p.bodyStream(ctx)
	if src == nil {
		return nil, false, 0
	}
	size := req.Header.ContentLength()
	limit := int64(p.cfg.MaxBodySize)
	if limit > 0 && int64(size) > limit {
		return nil, false, failBodyTooLarge // answered without reading the rest
	}
	rb = requestBodyPool.Get().(*requestBody)
	if size >= 0 && size <= maxBufferedRequest {
		rb.buf = getBodyBuf(size)
		if cc != nil {
			cc.enter(phaseBody, p.wd.now())
		}
		err := p.readFull(rb.buf.B, src, cc)
		if cc != nil {
			cc.enter(phaseHandling, p.wd.now())
		}
		if err != nil {
			p.releaseBody(rb)
			return nil, false, readFailure(cc)
		}
		req.SetBodyRaw(rb.buf.B)
		return rb, false, 0
	}
	rb.upload = uploadBody{p: p, src: src, limit: limit}
	req.SetBodyStream(&rb.upload, size)
	return rb, true, 0
}

// readFull fills b from src, telling the watchdog of progress.
func (p *Proxy) readFull(b []byte, src io.Reader, cc *clientConn) error {
	n := len(b)
	for off := 0; off < n; {
		m, err := src.Read(b[off:])
		off += m
		if m > 0 && cc != nil {
			cc.since.Store(p.wd.now())
		}
		if err != nil && (err != io.EOF || off < n) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// endBody ends the request's body, of length size (-1: chunked), when the
// request has been answered: it notes in sv whether a streamed one was left
// unread, and releases rb.
func (p *Proxy) endBody(rb *requestBody, sv *served, size int) {
	if rb == nil {
		return
	}
	if u := &rb.upload; u.src != nil && !u.eof && (size < 0 || u.read < int64(size)) {
		sv.bodyLeft = true
	}
	p.releaseBody(rb)
}

func (p *Proxy) releaseBody(rb *requestBody) {
	if rb == nil {
		return
	}
	if rb.buf != nil {
		putBodyBuf(rb.buf)
	}
	*rb = requestBody{}
	requestBodyPool.Put(rb)
}
