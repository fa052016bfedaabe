package proxy

import (
	"errors"
	"io"

	"github.com/valyala/fasthttp"
)

// A chunked request body is decoded by fasthttp, which skips a chunk's
// extensions ("5;name=value") byte by byte with no limit: bytes that
// -max-body-size never counts, arriving for as long as the client cares to
// send them. Node, hyper and Bun cap them at 16 KiB; fasthttp offers no
// hook, so the limit is kept one layer down, on the connection: while the
// proxy reads a chunked body, one read of it may take at most
// len(p) + chunkLineBudget bytes from the socket. A read returns after one
// chunk's header and at most len(p) bytes of its data, so only a chunk
// header (size, extensions, or the trailer after the last chunk) longer
// than the budget can exceed it, and that read then fails: the client gets
// 400 and the connection is closed, as for any broken chunked body.

// chunkLineSlack is what one read of a chunked body may take from the socket
// beyond the bytes it returns, in read buffers: the chunk header and the
// CRLFs around the data can each need a fill of the server's read buffer
// (whose read-ahead counts too, TLS records adding their overhead), but no
// legitimate read needs four.
const chunkLineSlack = 4

// minChunkLineBudget is the smallest budget whatever the read buffer size.
const minChunkLineBudget = 64 << 10

var errChunkLineTooLong = errors.New("chunk header longer than the limit (extensions too long)")

// guardedBody reads a chunked request body with its connection's guard armed.
type guardedBody struct {
	c      *guardConn
	src    io.Reader
	budget int
	eof    bool // read to its end
}

// Read implements io.Reader.
func (g *guardedBody) Read(p []byte) (int, error) {
	g.c.armed, g.c.left = true, len(p)+g.budget
	n, err := g.src.Read(p)
	g.c.armed = false
	if err == io.EOF {
		g.eof = true
	}
	return n, err
}

// endChunked ends a request whose body is chunked. A body the proxy did not
// read to its end (answered without a backend, or an upload cut short)
// would be drained by fasthttp before the next request, with no guard
// armed: the connection closes instead, as nginx closes one whose body it
// will not read.
func (p *Proxy) endChunked(ctx *fasthttp.RequestCtx) {
	g := clientOf(ctx.Conn())
	if g == nil {
		return
	}
	if !g.body.eof {
		ctx.SetConnectionClose()
		lingerOnClose(ctx)
	}
	g.body = guardedBody{}
}

// bodyStream returns the stream of ctx's request body, or nil when it has
// none. A chunked body on a connection the proxy accepted itself is read
// through the connection's guard; on a connection accepted by someone
// else's server (the proxy's Handler mounted elsewhere) it is read as it is.
func (p *Proxy) bodyStream(ctx *fasthttp.RequestCtx) io.Reader {
	src := ctx.Request.BodyStream()
	if src == nil || ctx.Request.Header.ContentLength() != -1 {
		return src
	}
	g := clientOf(ctx.Conn())
	if g == nil {
		return src
	}
	g.body = guardedBody{c: g, src: src, budget: max(chunkLineSlack*p.cfg.MaxHeaderSize, minChunkLineBudget)}
	return &g.body
}
