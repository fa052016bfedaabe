package proxy

import (
	"bufio"
	"io"

	"github.com/valyala/fasthttp"
)

// Response bodies read whole (those of known length up to
// maxBufferedResponse) go into a buffer from bodyBufs that the client
// connection holds until the response is written, rather than into the
// fasthttp response's own body buffer. fasthttp keeps that buffer with the
// connection for its life, as large as the largest body it has carried: 512
// connections relaying 64 KiB bodies each keep 32 MiB, every body read into
// and written out of memory gone cold since that connection's last request.
// Given back as each response goes out, a few buffers serve every
// connection, and stay in the CPU's cache.

// readBody reads the body of the response whose header is in resp. A body
// of known length relayed to g, the proxy's own client connection, goes into
// a buffer g gives back once the response is written (see
// guardConn.releaseBody); without g (a handler mounted in another server, a
// hedged attempt's own response) the body goes where fasthttp puts it.
func (p *Proxy) readBody(br *bufio.Reader, resp *fasthttp.Response, g *guardConn) error {
	n := resp.Header.ContentLength()
	if limit := p.cfg.MaxResponseBodySize; g == nil || n <= 0 || (limit > 0 && n > limit) || !hasBody(resp) {
		return readResponseBody(br, resp, p.cfg.MaxResponseBodySize)
	}
	bb := getBodyBuf(n)
	if _, err := io.ReadFull(br, bb.B); err != nil {
		putBodyBuf(bb)
		return err
	}
	g.holdBody(bb)
	resp.SetBodyRaw(bb.B)
	return nil
}

// hasBody reports whether a response with resp's status, to resp's request,
// carries a body.
func hasBody(resp *fasthttp.Response) bool {
	code := resp.StatusCode()
	return !resp.SkipBody && code >= 200 && code != fasthttp.StatusNoContent && code != fasthttp.StatusNotModified
}

// holdBody keeps bb, the body of the response being relayed, until the
// response is written.
func (c *guardConn) holdBody(bb *bodyBuf) {
	c.releaseBody()
	c.heldBody = bb
}

// releaseBody gives back the body held for the last response: the server
// has written it (the connection is idle again, or closed).
func (c *guardConn) releaseBody() {
	if c.heldBody != nil {
		putBodyBuf(c.heldBody)
		c.heldBody = nil
	}
}
