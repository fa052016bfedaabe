package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Expect: 100-continue. A client that sends this waits for permission
// before sending its body, so that a large upload the server would refuse
// is never sent. The proxy passes the question on: it sends the request's
// header to a backend first and answers the client with what the backend
// says. 100 Continue lets the body flow, on the same backend connection; a
// final answer (401, 413, a redirect...) goes to the client at once and the
// body is never read. A backend that says nothing within continueWait is
// taken to accept, as RFC 9110 allows a client to do.

//
// A request that expects 100-continue but announces no body (no
// Content-Length, or 0, and not chunked) has nothing to hold back: no
// backend is asked, and it goes as any other request, without Expect
// (hop-by-hop unless preflighted, headers.go). fasthttp still writes its
// 100 Continue first, which RFC 9110 §10.1.1 allows (nginx writes none);
// not writing it would take a hook on every request's header.
//
// A header name is the same in any letter case (RFC 9110 §5.1), but
// fasthttp's server, keeping names as received (Server:
// DisableHeaderNamesNormalizing), finds the expectation only under the
// name Expect: one spelled "expect" would get no 100, and the client would
// send its body only when tired of waiting (curl: after 1 s).
// spellExpect gives it that name before the server looks.

// continueWait is how long a backend gets to answer an expectation.
const continueWait = time.Second

// preflightKey marks a request whose header a backend has already seen.
type preflightKey struct{}

// preflight is an exchange whose header has been sent and whose body is due.
type preflight struct {
	b     *pool.Backend
	up    *upstream
	cc    any
	bc    *backendConn
	start time.Duration // pool.Monotonic when the header went out
	// cookie is the sticky cookie's Set-Cookie value for b, which every
	// answer of b's sets, as the handler sets it: nil when the route has
	// no sticky cookie or the client's already names b.
	cookie []byte
}

// stick sets the sticky cookie on an answer of the backend's.
func (pf *preflight) stick(h *fasthttp.ResponseHeader) {
	if pf.cookie != nil {
		h.AddBytesKV(headerSetCookie, pf.cookie)
	}
}

// headerReceived is the server's HeaderReceived hook, which runs when a
// request's header has been read and before fasthttp looks for an
// expectation. Only a request with a body has one that matters: a GET
// pays a length check here, nothing more. An expectation spelled
// otherwise without a body goes unanswered (as nginx answers none at all),
// and is stripped as hop-by-hop under any spelling.
func headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if n := h.ContentLength(); n > 0 || n == -1 {
		spellExpect(h)
	}
	return fasthttp.RequestConfig{} // the server's own limits and timeouts
}

// spellExpect renames Expect headers spelled in another letter case to
// Expect, in the parsed header and in the raw header block alike (in
// place: same length, so nothing that reads the block later moves), so
// that fasthttp and the proxy's own reading of the block (stripping,
// line order) agree on it. It looks at the start of each line only: a
// POST pays an IndexByte and a comparison a line.
func spellExpect(h *fasthttp.RequestHeader) {
	for rest := h.RawHeaders(); len(rest) > len(expectName); {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(line) <= len(expectName) || line[0]|0x20 != 'e' {
			continue // most lines, told by their first byte
		}
		key := line[:len(expectName)]
		if string(key) == expectName || !asciiEqualFold(key, expectName) {
			continue
		}
		// The name ends at the colon, after spaces fasthttp trims
		// (inspectRequest refuses them later, as for Expect).
		after := bytes.TrimLeft(line[len(key):], " \t")
		if len(after) == 0 || after[0] != ':' {
			continue // a longer name, such as Expect-CT
		}
		h.DelBytes(key) // every line so spelled; the loop adds each back
		copy(key, expectName)
		h.AddBytesV(expectName, bytes.TrimSpace(after[1:]))
	}
}

// expectName is the spelling of Expect that fasthttp's server looks for.
const expectName = "Expect"

// expectContinue is the server's ExpectHandler: it returns 100 to have the
// body sent, or the final status of an answer already in ctx.Response,
// which it counts and logs, since the handler will not run.
func (p *Proxy) expectContinue(ctx *fasthttp.RequestCtx) int {
	sv := served{http10: !ctx.Request.Header.IsHTTP11()}
	status, header := p.expectation(ctx, &sv)
	if status != fasthttp.StatusContinue {
		// fasthttp closes the connection after a refusal: a client that
		// stopped waiting for the 100 may be sending the body already.
		lingerOnClose(ctx)
		if p.https != nil {
			p.https.addHSTS(ctx)
		}
		p.countRequest(ctx, header)
		if p.alog != nil {
			p.logFastHTTP(ctx, &sv)
		}
	}
	return status
}

// expectation answers an expectation for expectContinue: 100, or the status
// of a final answer, with the size of its header block when a backend gave
// it (0 for the proxy's own); sv says who answered.
func (p *Proxy) expectation(ctx *fasthttp.RequestCtx, sv *served) (status, header int) {
	req := &ctx.Request
	if n := req.Header.ContentLength(); n == 0 || n == -2 {
		return fasthttp.StatusContinue, 0 // no body: nothing to ask a backend
	}
	if p.https != nil && p.https.redirect(ctx) {
		// As the handler would, before any backend is asked: its body is
		// not wanted here.
		return ctx.Response.StatusCode(), 0
	}
	if limit := p.cfg.MaxBodySize; limit > 0 && req.Header.ContentLength() > limit {
		// Whichever path would proxy it: the body is refused unsent.
		writeFailure(ctx, failBodyTooLarge)
		return fasthttp.StatusRequestEntityTooLarge, 0
	}
	if p.table.Load().viaNetFor(req) {
		return fasthttp.StatusContinue, 0 // the net/http path reads the body whole
	}
	_, client, status := p.prepareRequest(ctx)
	if status != 0 {
		refuse(ctx, status)
		return status, 0
	}
	sv.client = client
	// Prepared, whatever comes next: the handler neither prepares it again
	// nor takes another token from the rate limit.
	ctx.SetUserValue(preflightKey{}, (*preflight)(nil))
	if p.limiter != nil && !p.limiter.allow(client, p.wd.now()) {
		writeTooMany(ctx)
		return fasthttp.StatusTooManyRequests, 0
	}
	rt := p.table.Load().match(req)
	if rt == nil {
		writeNoRoute(ctx)
		return fasthttp.StatusNotFound, 0
	}
	// The backend the sticky cookie names, as the handler would pick it
	// (an HTTP/2 one that joined after the route was read is passed over:
	// see Proxy.acquire).
	var pinned *pool.Backend
	if rt.sticky != nil {
		pinned = rt.sticky.backend(&req.Header)
	}
	var last failure
	b := p.acquire(ctx, rt.pool, pinned, pool.Tried{}, &last)
	if b == nil {
		return fasthttp.StatusContinue, 0 // the handler answers 502 or 503
	}
	if len(req.Header.Host()) == 0 {
		req.Header.SetHost(b.Addr())
	}
	up := upstreamOf(b)
	cc, conn, err := up.conns.acquire(p.cfg.BackendTimeout)
	if err != nil {
		b.Done(true)
		return fasthttp.StatusContinue, 0 // the handler retries as usual
	}
	bc := conn.(*backendConn)
	pf := &preflight{b: b, up: up, cc: cc, bc: bc, start: pool.Monotonic()}
	if rt.sticky != nil && b != pinned {
		pf.cookie = rt.sticky.cookie(b, ctx.IsTLS())
	}
	code, err := p.askBackend(pf, req, &ctx.Response)
	switch {
	case err != nil:
		b.Done(true)
		up.conns.close(cc)
		p.attemptFailed(b, classifyError(err), err)
		return fasthttp.StatusContinue, 0 // the handler tries another backend
	case code == fasthttp.StatusContinue:
		ctx.SetUserValue(preflightKey{}, pf)
		return code, 0
	default:
		// The backend answered for good: the client gets that, and its body
		// is never read.
		b.RecordResponse(code, pool.Monotonic()-pf.start)
		b.Done(false)
		sv.backend, sv.attempts = b, 1
		header = cleanResponse(&ctx.Response)
		pf.stick(&ctx.Response.Header)
		return code, header
	}
}

// askBackend sends req's header with the expectation and reads the answer:
// 100 (or silence), or a final response read into resp, after which the
// connection is given back or closed.
func (p *Proxy) askBackend(pf *preflight, req *fasthttp.Request, resp *fasthttp.Response) (int, error) {
	up, bc := pf.up, pf.bc
	if req.Header.ContentLength() == -1 {
		req.Header.SetContentLength(-1) // chunked: the framing header went with the hop-by-hop ones
	}
	req.Header.SetRequestURIBytes(req.URI().RequestURI())
	req.Header.Set("Expect", "100-continue")
	bc.arm(p.headerTimeout)
	bw := up.conns.writer(bc)
	err := req.Header.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	up.conns.releaseWriter(bw)
	req.Header.Del("Expect")
	if err != nil {
		return 0, err
	}

	// Wait for an answer, but only so long: silence means go ahead.
	bc.disarm()
	br := up.conns.reader(bc)
	defer up.conns.releaseReader(br)
	bc.SetReadDeadline(time.Now().Add(min(continueWait, p.headerTimeout))) //nolint:errcheck // closed: the read fails
	_, err = br.Peek(1)
	bc.SetReadDeadline(time.Time{}) //nolint:errcheck // closed: the next use fails
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fasthttp.StatusContinue, nil
	}
	if err != nil {
		return 0, err
	}
	start := bc.arm(p.cfg.BackendTimeout)
	for {
		if err := readHead(bc, br, &resp.Header); err != nil {
			return 0, err
		}
		code := resp.StatusCode()
		if code == fasthttp.StatusContinue {
			resp.Reset()
			return code, nil
		}
		if code >= 200 {
			break
		}
	}
	bc.armAt(start + int64(p.cfg.BackendTimeout))
	if resp.Header.ContentLength() == -2 {
		bc.io.waitWith(nil) // a body that ends with the connection: see receive
	}
	if err := readResponseBody(br, resp, p.cfg.MaxResponseBodySize); err != nil {
		return 0, err
	}
	bc.disarm()
	// The backend did not want the body, and did not get it: the connection
	// cannot carry another request while a body is still announced.
	up.conns.close(pf.cc)
	return resp.StatusCode(), nil
}

// continued finishes a preflight exchange: it sends the body the client has
// now started sending, then reads the response as any exchange does.
// It returns the size of the response's header block, or 0 for an answer of
// the proxy's own.
func (p *Proxy) continued(ctx *fasthttp.RequestCtx, pf *preflight, cc *clientConn, g *guardConn) (header int) {
	b, up, bc := pf.b, pf.up, pf.bc
	req := &ctx.Request
	if src := p.bodyStream(ctx); src != nil {
		if f, err := p.sendBody(pf, src, req.Header.ContentLength(), cc); err != nil {
			up.conns.close(pf.cc)
			b.Done(true)
			writeFailure(ctx, f)
			return 0
		}
	}
	start := bc.arm(p.headerTimeout)
	env := exchangeEnv{client: cc, conn: g}
	if f, err := p.receive(b, up, pf.cc, bc, start, req, &ctx.Response, &env); err != nil {
		b.Done(true)
		p.attemptFailed(b, f, err)
		writeFailure(ctx, f)
		return 0
	}
	b.RecordResponse(ctx.Response.StatusCode(), pool.Monotonic()-pf.start)
	b.ResetFailureStreak()
	header = p.relay(ctx, b, &env)
	pf.stick(&ctx.Response.Header)
	return header
}

// sendBody copies a streamed body to the backend, framed as its header
// announced: size bytes, or chunks when size is -1. A failure says whose
// fault it was: the client's body (too large, broken off, malformed) or the
// backend's connection.
func (p *Proxy) sendBody(pf *preflight, src io.Reader, size int, cc *clientConn) (failure, error) {
	up, bc := pf.up, pf.bc
	u := uploadBody{p: p, src: src, limit: int64(p.cfg.MaxBodySize)}
	u.attach(bc, cc)
	if cc != nil {
		cc.enter(phaseBody, p.wd.now())
		defer cc.enter(phaseHandling, p.wd.now())
	}
	bc.arm(p.cfg.BackendTimeout)
	bw := up.conns.writer(bc)
	defer up.conns.releaseWriter(bw)
	var err error
	if size >= 0 {
		_, err = io.CopyN(bw, &u, int64(size))
	} else {
		err = writeChunked(bw, &u)
	}
	if err == nil {
		err = bw.Flush()
	}
	if u.err != nil {
		return u.failure(cc), u.err
	}
	if err != nil {
		return classifyError(err), err
	}
	return 0, nil
}

// writeChunked copies src to w in the chunked transfer coding.
func writeChunked(w *bufio.Writer, src io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.WriteString(hexSize(n)); werr != nil {
				return werr
			}
			w.Write(buf[:n]) //nolint:errcheck // sticky in bufio; checked below
			if _, werr := w.WriteString("\r\n"); werr != nil {
				return werr
			}
			if werr := w.Flush(); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			_, err = w.WriteString("0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}

func hexSize(n int) string {
	const digits = "0123456789abcdef"
	var b [18]byte
	i := len(b) - 2
	b[i], b[i+1] = '\r', '\n'
	for {
		i--
		b[i] = digits[n&0xF]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
