package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Request smuggling defence. A proxy and its backends must agree on where
// each request ends; every ambiguity in framing is a way to hide a second
// request inside the first. fasthttp already rejects most malformed shapes
// (see the README's security section for the full list); these checks
// close the rest, in one pass over the header block the server kept as it
// arrived. What reaches a backend is then re-serialised from the parsed
// request, never the client's bytes.

// inspectRequest checks the request line and the raw header block. It
// returns a status to refuse the request with (zero to proceed) and whether
// any header must be stripped before forwarding: a hop-by-hop or forwarding
// header is present, other than a lone Connection: close (see below).
func inspectRequest(ctx *fasthttp.RequestCtx) (status int, strip bool) {
	h := &ctx.Request.Header
	if g := clientOf(ctx.Conn()); g != nil && g.head.bare {
		// A line of the head, the request line included, ended in a
		// bare LF (headscan.go; fasthttp accepts one after the request
		// line, and the raw header block below starts after it).
		return fasthttp.StatusBadRequest, false
	}
	if proto := h.Protocol(); !bytes.HasPrefix(proto, strHTTP1) {
		// HTTP/2.0 or 3.0 in an HTTP/1 request line (HTTP/0.9 and the h2
		// preface fasthttp refuses itself).
		return fasthttp.StatusHTTPVersionNotSupported, false
	}
	switch string(h.Method()) {
	case fasthttp.MethodConnect, fasthttp.MethodTrace:
		// Not for a reverse proxy: CONNECT would open a tunnel anywhere,
		// TRACE echoes credentials back (nginx refuses both too).
		return fasthttp.StatusMethodNotAllowed, false
	}
	if uri := h.RequestURI(); len(uri) > 0 && uri[0] != '/' && uri[0] != '*' {
		// Absolute form: its authority must be the Host header's, or the
		// backend and the proxy would see different targets.
		if !sameAuthority(uri, h.Host()) {
			return fasthttp.StatusBadRequest, false
		}
	}

	hasLength, hasEncoding, closeOnly := false, false, false
	raw := h.RawHeaders()
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			break
		}
		line := raw[:i]
		raw = raw[i+1:]
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return fasthttp.StatusBadRequest, false // a bare LF where CRLF is due
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break // end of the header block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fasthttp.StatusBadRequest, false // obsolete line folding
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return fasthttp.StatusBadRequest, false
		}
		key := line[:colon]
		if bytes.IndexByte(key, ' ') >= 0 {
			// "Content Length", "Transfer-Encoding ": fasthttp refuses
			// every other byte a name may not hold, not a space, and a
			// backend might read such a name as the header it resembles.
			return fasthttp.StatusBadRequest, false
		}
		switch {
		case equalFold(key, "Content-Length"):
			hasLength = true
		case equalFold(key, "Transfer-Encoding"):
			hasEncoding = true
			// Exactly chunked: identity and codings before chunked are
			// refused (fasthttp refuses the others).
			if v := bytes.TrimSpace(line[colon+1:]); !equalFold(v, "chunked") {
				return fasthttp.StatusBadRequest, false
			}
		}
		if !strip && classify(key) != keep {
			if !closeOnly && equalFold(key, "Connection") && onlyClose(line[colon+1:]) {
				// fasthttp took this one in itself (the connection
				// closes after the answer) and keeps it out of the
				// header list sent on: nothing to strip for it, which
				// spares every Connection: close request the strip's
				// two walks and deletions. A second Connection header,
				// or any other to strip, strips as usual.
				closeOnly = true
			} else {
				strip = true
			}
		}
	}
	if hasLength && hasEncoding {
		return fasthttp.StatusBadRequest, false // which one frames the body?
	}
	return 0, strip
}

var strHTTP1 = []byte("HTTP/1.")

// onlyClose reports whether a Connection header's value is the close token
// alone, as fasthttp's parser reads it (spaces and tabs around it, any
// case): the value fasthttp keeps out of the header list it forwards.
func onlyClose(v []byte) bool {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return equalFold(v, "close")
}

// sameAuthority reports whether the absolute-form target uri names host,
// the scheme's default port written or not (http://a:80/ is host a).
func sameAuthority(uri, host []byte) bool {
	i := bytes.Index(uri, []byte("://"))
	if i < 0 {
		return false
	}
	rest := uri[i+3:]
	end := len(rest)
	if j := bytes.IndexAny(rest, "/?#"); j >= 0 {
		end = j
	}
	auth := rest[:end]
	if bytes.EqualFold(auth, host) {
		return true
	}
	port := ":80"
	if i == len("https") && asciiEqualFold(uri[:i], "https") {
		port = ":443"
	}
	return bytes.EqualFold(withoutPort(auth, port), withoutPort(host, port))
}

// withoutPort is authority without its port when that is port (":80").
func withoutPort(authority []byte, port string) []byte {
	if n := len(authority) - len(port); n > 0 && string(authority[n:]) == port {
		return authority[:n]
	}
	return authority
}

// Answers to refused requests.
var (
	reasonVersion   = []byte("505 HTTP Version Not Supported\n")
	reasonNotAllowd = []byte("405 Method Not Allowed\n")
)

// refuse answers a request inspectRequest refused, and closes the
// connection: after a framing error, nothing that follows can be trusted.
func refuse(ctx *fasthttp.RequestCtx, status int) {
	body := reasonBadRequest
	switch status {
	case fasthttp.StatusHTTPVersionNotSupported:
		body = reasonVersion
	case fasthttp.StatusMethodNotAllowed:
		body = reasonNotAllowd
	}
	writePlain(ctx, status, body)
	ctx.SetConnectionClose()
	lingerOnClose(ctx)
}
