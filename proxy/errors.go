package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// failure is what went wrong with one attempt, as far as retrying and the
// client's answer are concerned. Mapping errors to it happens only here.
type failure uint8

const (
	// failConnect: no connection could be made; the backend never saw the
	// request. Any method may be retried, and the backend is marked down.
	failConnect failure = iota + 1
	// failBusy: every connection to the backend was busy; the request was
	// never sent. Any method may be retried.
	failBusy
	// failClosed: the connection closed or reset before a response. The
	// backend may have seen the request: only idempotent ones are retried.
	failClosed
	// failStale: a kept-alive connection turned out closed by the backend
	// (its idle timeout raced our reuse) before a byte of response. An
	// idempotent request is retried on a fresh connection to the same
	// backend before moving on.
	failStale
	// failTryTimeout: no response header within the try timeout. The
	// attempt is abandoned; like failClosed, only idempotent requests move
	// to another backend.
	failTryTimeout
	// failTimeout: the backend did not answer within the backend timeout.
	failTimeout
	// failResponse: the backend's answer was malformed or too large.
	failResponse
	// failBodyTooLarge: the request body is over the limit; it is refused
	// without reading the rest, and the connection closed.
	failBodyTooLarge
	// failClientGone: the client stopped sending the body it announced.
	failClientGone
	// failReadTimeout: the client's body did not come within the body
	// timeout, and the watchdog ended its read (endRead): 408.
	failReadTimeout
)

// clients reports whether f is the client's doing: the request is answered
// at once, no other backend tried, and its connection closed, since the rest
// of its body may still be on its way.
func (f failure) clients() bool {
	return f == failBodyTooLarge || f == failClientGone || f == failReadTimeout
}

// readFailure is what a failed read of the request body on the client
// connection cc (nil: one the watchdog does not time) comes to: a 408 when
// the watchdog ended it at the body timeout, else a client gone.
func readFailure(cc *clientConn) failure {
	if cc.readEnded() {
		return failReadTimeout
	}
	return failClientGone
}

// classifyError maps an error from a backend attempt to a failure.
func classifyError(err error) failure {
	var de *dialError
	switch {
	case errors.As(err, &de):
		return failConnect
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return failBusy
	case errors.Is(err, fasthttp.ErrTimeout):
		return failTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return failClosed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return failTimeout
	}
	return failResponse
}

// kind is f as the error kind counted against the backend; ok is false for
// failures that are the client's doing (a body too large, a client gone).
func (f failure) kind() (k pool.ErrorKind, ok bool) {
	switch f {
	case failConnect:
		return pool.ErrorDial, true
	case failBusy:
		return pool.ErrorBusy, true
	case failClosed, failStale:
		return pool.ErrorReset, true
	case failTimeout, failTryTimeout:
		return pool.ErrorTimeout, true
	case failResponse:
		return pool.ErrorResponse, true
	}
	return 0, false
}

// retryable reports whether another backend may be tried after f. A request
// that may have reached a backend is resent only when resending cannot do
// harm twice: its method is idempotent and its body is wholly in memory.
func (f failure) retryable(replayable bool) bool {
	switch f {
	case failConnect, failBusy:
		return true
	case failClosed, failStale, failTryTimeout:
		return replayable
	}
	return false
}

// countsTowardEjection reports whether f is the kind of failure that, repeated
// -eject-after times in a row, takes a backend out of rotation: it could not
// be reached, or it did not answer at all.
func (f failure) countsTowardEjection() bool {
	return f == failConnect || f == failTryTimeout
}

// Answers the proxy gives in place of a backend response. The reason is short
// and fixed: a client never sees an internal error's text.
var (
	reasonNoBackend   = []byte("502 Bad Gateway: no healthy backend\n")
	reasonUnreachable = []byte("502 Bad Gateway: backend unavailable\n")
	reasonBadResponse = []byte("502 Bad Gateway: invalid response from backend\n")
	reasonBusy        = []byte("503 Service Unavailable: backends at connection limit\n")
	reasonTimeout     = []byte("504 Gateway Timeout: backend did not answer in time\n")
)

// writeFailure answers the client after the last attempt failed with f, or
// with no attempt at all when f is zero.
func writeFailure(ctx *fasthttp.RequestCtx, f failure) {
	status, body := f.answer()
	writePlain(ctx, status, body)
	if f.clients() {
		// The rest of the body may still be on its way: the connection
		// cannot carry another request, and closes lingering.
		ctx.SetConnectionClose()
		lingerOnClose(ctx)
	}
}

// answer is the status and body the client gets after the last attempt
// failed with f, or with no attempt at all when f is zero. Both front ends
// answer from here.
func (f failure) answer() (status int, body []byte) {
	status, body = fasthttp.StatusBadGateway, reasonNoBackend
	switch f {
	case failConnect, failClosed, failStale:
		body = reasonUnreachable
	case failResponse:
		body = reasonBadResponse
	case failBusy:
		status, body = fasthttp.StatusServiceUnavailable, reasonBusy
	case failTimeout, failTryTimeout:
		status, body = fasthttp.StatusGatewayTimeout, reasonTimeout
	case failBodyTooLarge:
		status, body = fasthttp.StatusRequestEntityTooLarge, reasonBodyTooLarge
	case failClientGone:
		status, body = fasthttp.StatusBadRequest, reasonBodyIncomplete
	case failReadTimeout:
		status, body = fasthttp.StatusRequestTimeout, reasonReadTimeout
	}
	return status, body
}

func writePlain(ctx *fasthttp.RequestCtx, status int, body []byte) {
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(status)
	resp.Header.SetContentType("text/plain; charset=utf-8")
	resp.SetBodyRaw(body)
}

var (
	reasonTooMany = []byte("429 Too Many Requests\n")
	reasonNoRoute = []byte("404 Not Found: no route for this host and path\n")
)

// writeNoRoute answers a request that no route takes, with no default pool.
func writeNoRoute(ctx *fasthttp.RequestCtx) {
	writePlain(ctx, fasthttp.StatusNotFound, reasonNoRoute)
}

// writeTooMany answers a client over its rate limit.
func writeTooMany(ctx *fasthttp.RequestCtx) {
	writePlain(ctx, fasthttp.StatusTooManyRequests, reasonTooMany)
	ctx.Response.Header.Set("Retry-After", "1")
}

// Answers to requests the server could not read.
var (
	reasonHeaderTooLarge = []byte("431 Request Header Fields Too Large\n")
	reasonURITooLong     = []byte("414 URI Too Long\n")
	reasonBodyTooLarge   = []byte("413 Content Too Large\n")
	reasonReadTimeout    = []byte("408 Request Timeout\n")
	reasonBadRequest     = []byte("400 Bad Request\n")
	reasonBodyIncomplete = []byte("400 Bad Request: request body incomplete\n")
)

// handleReadError answers a request that failed to parse or arrive, and
// counts and logs the answer as the handler does its own. The server closes
// the connection afterwards.
func (p *Proxy) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	cc := p.wd.client(ctx.Conn())
	if cc != nil && cc.phase.Load() == phaseNew {
		// Not a byte of a request came (StateActive marks the first): a
		// client that reset its connection, or whose TLS handshake
		// failed. There is no request to answer, count or log, as nginx
		// has none; the close makes sure nothing is written.
		abortConn(ctx.Conn())
		return
	}
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case cc.readEnded():
		// The header limit passed (endRead), whatever error the read
		// failed with (a chunked body's first bytes come wrapped).
		writePlain(ctx, fasthttp.StatusRequestTimeout, reasonReadTimeout)
	case errors.As(err, &small) && requestLineTooLong(ctx):
		writePlain(ctx, fasthttp.StatusRequestURITooLong, reasonURITooLong)
	case errors.As(err, &small):
		writePlain(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, reasonHeaderTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writePlain(ctx, fasthttp.StatusRequestEntityTooLarge, reasonBodyTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		writePlain(ctx, fasthttp.StatusRequestTimeout, reasonReadTimeout)
	default:
		writePlain(ctx, fasthttp.StatusBadRequest, reasonBadRequest)
	}
	if p.https != nil {
		p.https.addHSTS(ctx) // over TLS, as every answer there
	}
	if p.debug {
		p.log.Debug("bad request", "client", ctx.RemoteAddr().String(), "error", err.Error())
	}
	gone := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	if gone {
		// The client reset the connection: the answer cannot reach it,
		// and counts and logs with no body sent.
		ctx.Response.ResetBody()
	} else {
		// The rest of what the client sends is not read: its answer
		// must not be lost to a reset.
		lingerOnClose(ctx)
	}
	p.countRequest(ctx, 0)
	if p.alog != nil {
		p.logReadError(ctx, cc.readStart())
	}
}

// requestLineTooLong reports whether a head too large for the read buffer
// was so already in its request line, as the head scan of a plain-text
// connection saw it (headscan.go): the target is too long, 414 as nginx
// answers, rather than the header fields, 431. Over TLS the scan sees
// nothing, and such a head gets 431.
func requestLineTooLong(ctx *fasthttp.RequestCtx) bool {
	g := clientOf(ctx.Conn())
	return g != nil && g.head.on && !g.head.started && g.head.sinceLF > 0
}
