package proxy

import (
	"bytes"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Header names the proxy sets on every forwarded request. Whatever the client
// sent under these names, in any letter case, is removed first: the client
// must not be able to forge its address.
const (
	headerXForwardedFor   = "X-Forwarded-For"
	headerXForwardedHost  = "X-Forwarded-Host"
	headerXForwardedProto = "X-Forwarded-Proto"
	headerXRealIP         = "X-Real-IP"
)

// headerClass says why a header does not travel through the proxy as is.
type headerClass uint8

const (
	keep      headerClass = iota
	hopByHop              // RFC 9110 §7.6.1: meaningful for one connection only
	forwarded             // set by the proxy from what it saw itself
)

// classify reports whether key, in any letter case, is hop-by-hop or one of
// the forwarding headers the proxy owns. Switching on length first keeps the
// common case, a header that is neither, to one or two comparisons.
func classify(key []byte) headerClass {
	switch len(key) {
	case 2:
		if equalFold(key, "TE") {
			return hopByHop
		}
	case 6:
		// Expect: the body is already read, so the backend must not be
		// asked to send 100 Continue.
		if equalFold(key, "Expect") {
			return hopByHop
		}
	case 7:
		if equalFold(key, "Trailer") || equalFold(key, "Upgrade") {
			return hopByHop
		}
	case 9:
		if equalFold(key, headerXRealIP) {
			return forwarded
		}
	case 10:
		if equalFold(key, "Connection") || equalFold(key, "Keep-Alive") {
			return hopByHop
		}
	case 15:
		if equalFold(key, headerXForwardedFor) {
			return forwarded
		}
	case 16:
		if equalFold(key, "Proxy-Connection") {
			return hopByHop
		}
		if equalFold(key, headerXForwardedHost) {
			return forwarded
		}
	case 17:
		if equalFold(key, "Transfer-Encoding") {
			return hopByHop
		}
		if equalFold(key, headerXForwardedProto) {
			return forwarded
		}
	case 18:
		if equalFold(key, "Proxy-Authenticate") {
			return hopByHop
		}
	case 19:
		if equalFold(key, "Proxy-Authorization") {
			return hopByHop
		}
	}
	return keep
}

// equalFold reports whether b is s, ignoring ASCII case: the test for a
// header name or token known in advance.
func equalFold(b []byte, s string) bool { return len(b) == len(s) && asciiEqualFold(b, s) }

// asciiEqualFold compares b with s, which has the same length, ignoring ASCII
// case. It is bytes.EqualFold without the Unicode path or a conversion.
func asciiEqualFold(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// headerScanner walks a raw header block ("Name: value\r\n" lines) without
// allocating. Continuation lines of obsolete line folding are skipped.
type headerScanner struct {
	b []byte
}

// next returns the next header's name and value; ok is false at the end.
func (s *headerScanner) next() (key, value []byte, ok bool) {
	for len(s.b) > 0 {
		line := s.b
		if i := bytes.IndexByte(s.b, '\n'); i >= 0 {
			line, s.b = s.b[:i], s.b[i+1:]
		} else {
			s.b = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		return line[:colon], bytes.TrimSpace(line[colon+1:]), true
	}
	return nil, nil, false
}

// listsToken reports whether the comma-separated list holds tok, ignoring
// case, as the Connection header lists the headers it makes hop-by-hop.
func listsToken(list, tok []byte) bool {
	for len(list) > 0 {
		var item []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			item, list = list[:i], list[i+1:]
		} else {
			item, list = list, nil
		}
		item = bytes.TrimSpace(item)
		if len(item) == len(tok) && bytes.EqualFold(item, tok) {
			return true
		}
	}
	return false
}

// prepareRequest turns the client's request into the one sent to backends,
// in place: hop-by-hop headers go, and the X-Forwarded-* headers are set
// from the connection itself. The server parses with header names left as
// received, so names are matched here in any case. It reports whether the
// request asks to switch protocols (a WebSocket handshake): then Upgrade and
// Connection: Upgrade are kept for the backend. A request that fails
// inspection (see strict.go) is not prepared: status says how to refuse it.
func (p *Proxy) prepareRequest(ctx *fasthttp.RequestCtx) (upgrade bool, client netip.Addr, status int) {
	h := &ctx.Request.Header
	status, strip := inspectRequest(ctx)
	if status != 0 {
		return false, client, status
	}
	if strip {
		upgrade = stripRequestHeaders(h, h.RawHeaders())
	}
	// The server noted Connection: close for the client connection before
	// calling us; the backend connection is ours to keep alive.
	h.ResetConnectionClose()
	// A body without a Content-Type goes without one, as nginx and HAProxy
	// send it: fasthttp would name it application/octet-stream.
	h.SetNoDefaultContentType(true)
	// Send the Host header as received, not as the parsed URI spells it,
	// and the path exactly as received.
	ctx.Request.UseHostHeader = true
	ctx.Request.URI().DisablePathNormalizing = true
	if !h.IsHTTP11() {
		h.SetProtocol("HTTP/1.1")
	}

	client, chain := p.clientAddr(ctx)
	if client.IsValid() {
		var buf [128]byte
		ip := client.AppendTo(buf[:0])
		h.AddBytesV(headerXRealIP, ip)
		if chain.extends() {
			// A trusted proxy's chain, all its lines in one, extended with
			// that proxy. A chain too long for buf is joined on the heap:
			// it is no longer than the header block, which
			// -max-header-size bounds, as nginx (large_client_header_buffers)
			// and HAProxy (tune.bufsize) bound a chain by their buffers
			// alone.
			xff := chain.appendTo(buf[len(ip):len(ip)])
			xff = peerAddr(ctx).AppendTo(append(xff, ", "...))
			h.AddBytesV(headerXForwardedFor, xff)
		} else {
			h.AddBytesV(headerXForwardedFor, ip)
		}
	}
	if host := h.Host(); len(host) > 0 {
		h.AddBytesV(headerXForwardedHost, host)
	}
	if ctx.IsTLS() {
		h.Add(headerXForwardedProto, "https")
	} else {
		h.Add(headerXForwardedProto, "http")
	}
	return upgrade, client, 0
}

// stripRequestHeaders removes hop-by-hop and forwarding headers, and the
// headers the Connection header names (every Connection line of them, as one
// list: RFC 9110 §5.3), under the exact names the client used. The framing
// and the target are not the client's to drop that way (see mayBeListed).
// For a protocol switch (Connection lists upgrade, and one Upgrade header is
// present, not asking for h2c) it then sets Upgrade and Connection: Upgrade
// again, and reports true.
func stripRequestHeaders(h *fasthttp.RequestHeader, raw []byte) (upgrade bool) {
	var conn connLines
	var upgradeTo []byte
	upgrades := 0
	sc := headerScanner{b: raw}
	for {
		key, value, ok := sc.next()
		if !ok {
			break
		}
		switch {
		case equalFold(key, "Connection"):
			conn.add(value)
		case equalFold(key, "Upgrade"):
			upgradeTo = value
			upgrades++
		}
	}
	if conn.over {
		conn.raw = raw // more lines than it holds: it walks them all
	}
	// The names kept after the first line deleted: two lines of one may
	// be out of order (see lineorder.go).
	moved := sameNames{apart: requestHeldApart}
	cut := -1 // where in raw the first line deleted starts
	sc = headerScanner{b: raw}
	for {
		key, _, ok := sc.next()
		if !ok {
			break
		}
		if classify(key) != keep || (conn.n > 0 && mayBeListed(key) && conn.lists(key)) {
			h.DelBytes(key)
			if cut < 0 {
				cut = cap(raw) - cap(key) // key is a subslice of raw
			}
		} else if cut >= 0 {
			moved.add(key)
		}
	}
	// Framing headers are stored under their canonical names whatever the
	// client wrote; Write sets the framing from the body.
	h.Del("Transfer-Encoding")
	h.Del("Trailer")
	if moved.any() {
		requestInOrder(h, raw, cut, &moved, &conn)
	}
	// h2c by Upgrade is not passed on: behind it the backend would speak
	// HTTP/2 through a tunnel the proxy no longer reads, past its routes,
	// limits and X-Forwarded-For (an old smuggling vector; the proxy offers
	// h2c by prior knowledge itself). The request goes on as plain HTTP/1.1.
	if upgrades == 1 && len(upgradeTo) > 0 && conn.lists([]byte("upgrade")) && !listsToken(upgradeTo, []byte("h2c")) {
		h.SetBytesV("Upgrade", upgradeTo)
		h.Set("Connection", "Upgrade")
		return true
	}
	return false
}

// mayBeListed reports whether a Connection header may make key hop-by-hop:
// not the framing, which the proxy sets from the body it relays, nor Host,
// the request's target. (Dropped, a Content-Length would send the backend a
// request without its body; nginx ignores such tokens altogether.)
func mayBeListed(key []byte) bool {
	switch len(key) {
	case len("Host"):
		return !asciiEqualFold(key, "Host")
	case len("Content-Length"):
		return !asciiEqualFold(key, "Content-Length")
	}
	return true
}

// connLines holds the values of a request's Connection header lines, which
// stay in the raw header block they point into.
type connLines struct {
	v    [4][]byte
	n    int
	over bool   // more lines than v holds
	raw  []byte // when over: the raw header block, whose lines lists walks
}

func (c *connLines) add(value []byte) {
	if c.n < len(c.v) {
		c.v[c.n] = value
	} else {
		c.over = true
	}
	c.n++
}

// lists reports whether any Connection line lists tok.
func (c *connLines) lists(tok []byte) bool {
	if c.over {
		sc := headerScanner{b: c.raw}
		for {
			key, value, ok := sc.next()
			if !ok {
				return false
			}
			if equalFold(key, "Connection") && listsToken(value, tok) {
				return true
			}
		}
	}
	for _, v := range c.v[:c.n] {
		if listsToken(v, tok) {
			return true
		}
	}
	return false
}

var protoHTTP11 = []byte("HTTP/1.1")

// cleanResponse removes hop-by-hop headers from a backend's response before
// it is relayed, and gives it the proxy's own HTTP version. It returns the
// size of the header block as received, less the status line, for the
// bytes-sent count: the headers are walked here anyway, so the count is
// free.
func cleanResponse(resp *fasthttp.Response) (size int) {
	h := &resp.Header
	if !h.IsHTTP11() {
		// An HTTP/1.0 backend's: the status line is the proxy's to write,
		// with its own version (RFC 9110 §6.2), and the body's framing
		// (a close-delimited one goes out chunked) is the proxy's too.
		h.SetProtocol(protoHTTP11)
	}
	h.ResetConnectionClose()
	found := false
	for key, value := range h.All() {
		size += len(key) + len(value) + len(": \r\n")
		if classify(key) == hopByHop {
			found = true
		}
	}
	if !found {
		return size
	}
	stripResponseHeaders(h)
	h.ResetConnectionClose()
	return size
}

// stripResponseHeaders removes a response's hop-by-hop headers and those its
// Connection header lines name, however many (the framing excepted, as for
// requests: see mayBeListed), keeping the order of the lines of each name
// that stays.
func stripResponseHeaders(h *fasthttp.ResponseHeader) {
	// Deleting while iterating is not allowed, and deletion moves the
	// header storage: the Connection lines and the names to delete are
	// copied out first, a round at a time.
	var conn [256]byte
	n, over := 0, false
	for key, value := range h.All() {
		if equalFold(key, "Connection") {
			if n+1+len(value) > len(conn) {
				over = true
				break
			}
			n += copy(conn[n:], ",")
			n += copy(conn[n:], value)
		}
	}
	if over {
		// Over 256 bytes of Connection tokens: no backend sends that by
		// mistake. Its hop-by-hop headers go, the names it lists stay.
		n = 0
	}
	moved := sameNames{apart: responseHeldApart}
	deleteResponseHeaders(h, conn[:n], &moved)
}

// deleteResponseHeaders removes the hop-by-hop headers, those the Connection
// tokens in conn name and the framing headers. With moved, its first walk
// notes the names that stay after the first to go, and if one has two
// lines, which a deletion may swap, responseInOrder goes on from there.
func deleteResponseHeaders(h *fasthttp.ResponseHeader, conn []byte, moved *sameNames) {
	var names [256]byte
	cut := -1 // the place in h.All() of the first header to go
	for {
		var at [8]int // ends of the names in names
		k, more := 0, false
		i := 0
		for key := range h.All() {
			i++
			if classify(key) != hopByHop && !(mayBeListed(key) && listsToken(conn, key)) {
				if cut >= 0 && moved != nil {
					moved.add(key)
				}
				continue
			}
			if cut < 0 {
				cut = i - 1
			}
			start := 0
			if k > 0 {
				start = at[k-1]
			}
			if k == len(at) || start+len(key) > len(names) {
				more = true
				continue
			}
			at[k] = start + copy(names[start:], key)
			k++
		}
		if moved != nil {
			if moved.any() {
				responseInOrder(h, conn, names[:], at[:k], more, cut, moved)
				return
			}
			moved = nil // every name was noted
		}
		deleteNames(h, names[:], at[:k])
		if !more || k == 0 {
			break // done, or a name longer than names: it stays
		}
	}
	h.Del("Transfer-Encoding")
	h.Del("Trailer")
}

// deleteNames deletes the headers named in names, each ending where at says.
func deleteNames(h *fasthttp.ResponseHeader, names []byte, at []int) {
	start := 0
	for _, end := range at {
		h.DelBytes(names[start:end])
		start = end
	}
}
