package proxy

import "github.com/valyala/fasthttp"

// What the front end measures for monitoring, beyond the per-attempt counts
// in handler.go. Byte counts are estimated from what the request path has at
// hand rather than counted on the sockets, which would cost an atomic add
// per read and write: they are exact for the bodies (a streamed one counts
// chunk by chunk as it flows, in stream.go) and within a few bytes for the
// header blocks (whitespace as sent, and headers fasthttp adds when writing,
// such as Date, are not seen). Bytes through a WebSocket tunnel, spliced by
// the kernel, are not counted.

// Fixed parts of the HTTP/1.1 framing: " HTTP/1.1\r\n" after a request line's
// method and URI, the "\r\n" closing a header block, a status line
// ("HTTP/1.1 200 OK\r\n") and the headers of the proxy's own answers
// (Content-Type and Content-Length).
const (
	requestLineFraming = len("  HTTP/1.1\r\n") + len("\r\n")
	statusLineSize     = len("HTTP/1.1 200 OK\r\n") + len("\r\n")
	plainHeaderSize    = len("Content-Type: text/plain; charset=utf-8\r\nContent-Length: 40\r\n")
)

// countRequest records a request answered: its status class and the bytes
// each way, as far as they are known when the handler returns. header is the
// size of a relayed response's header block, 0 for an answer of the proxy's
// own. Streamed bodies count as they flow (stream.go).
func (p *Proxy) countRequest(ctx *fasthttp.RequestCtx, header int) {
	resp := &ctx.Response
	p.traffic.Request(resp.StatusCode(), requestSize(&ctx.Request), responseSize(resp, header))
}

// requestSize estimates the bytes a request took on the wire: request line,
// header block as received, and a body held in memory. A streamed body is
// not touched here (reading Body would drain it): it counts as it streams.
func requestSize(req *fasthttp.Request) int {
	h := &req.Header
	n := len(h.Method()) + len(h.RequestURI()) + requestLineFraming + len(h.RawHeaders())
	if !req.IsBodyStream() {
		n += len(req.Body())
	}
	return n
}

// responseSize estimates the bytes of the response sent: header is the size
// of a relayed header block, or 0 for one of the proxy's own answers. A
// streamed body counts as it streams.
func responseSize(resp *fasthttp.Response, header int) int {
	if header == 0 {
		header = plainHeaderSize
	}
	n := statusLineSize + header
	if !resp.IsBodyStream() {
		n += len(resp.Body())
	}
	return n
}

// responseHeaderSize sums a response's header lines, for the paths that do
// not pass through cleanResponse (a hedge's winner, a 101).
func responseHeaderSize(resp *fasthttp.Response) int {
	n := 0
	for k, v := range resp.Header.All() {
		n += len(k) + len(v) + len(": \r\n")
	}
	return n
}
