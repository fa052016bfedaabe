package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Trusted proxies. By default the client is the peer of the connection, and
// whatever X-Forwarded-For it sent is replaced: a client cannot forge its
// address. When the balancer sits behind proxies of its own (a CDN, an L4
// balancer that speaks HTTP), their addresses go in TrustedProxies: for a
// peer among them, the client is the nearest address in X-Forwarded-For
// that is not a trusted proxy, and the chain is extended rather than
// replaced; every line of the header counts (see clientAddr). Hashing on
// the client address, rate limiting and the access log use that client.

// trustedNets is a set of address ranges.
type trustedNets []netip.Prefix

// ParseTrustedProxies parses a comma-separated list of CIDR ranges or
// single addresses ("10.0.0.0/8,192.0.2.7").
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("invalid trusted proxy %q: want an address or CIDR range", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("invalid trusted proxy %q: want an address or CIDR range", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (t trustedNets) contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr returns the connection's peer address, or the zero Addr for a
// connection that is not IP. A connection the proxy accepted found it once.
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	if g := clientOf(ctx.Conn()); g != nil {
		return g.peer
	}
	return addrOf(ctx.RemoteAddr())
}

// addrOf returns the IP address of a, or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return netip.Addr{}
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// clientAddr returns the client's address: the peer, or for a trusted peer
// the nearest untrusted address its X-Forwarded-For names. chain is that
// header when the chain is to be extended, the zero chain when it is
// replaced.
//
// Every X-Forwarded-For line counts: several lines of one name are one
// list, their values joined with commas in order (RFC 9110, section 5.3).
// HAProxy's option forwardfor adds a line of its own after any the client
// sent, so reading the first line alone would take the client's word for
// its address; nginx's realip module walks every line too. Lines are
// walked as they come, each from the right as one joined list would be
// (see walkLine), so nothing is copied to find the client and a header in
// one line costs what it did (BenchmarkClientAddr); the chain is joined
// only when it is forwarded (forwardedChain.appendTo).
func (p *Proxy) clientAddr(ctx *fasthttp.RequestCtx) (client netip.Addr, chain forwardedChain) {
	peer := peerAddr(ctx)
	if !p.trusts(peer) {
		return peer, forwardedChain{}
	}
	raw := ctx.Request.Header.RawHeaders()
	for rest := raw; ; {
		line, next, ok := nextLine(rest, headerXForwardedFor)
		if !ok {
			break
		}
		rest = next
		client = p.walkLine(client, line)
		if chain.first == nil {
			chain.first = line
		} else {
			chain.raw = raw
		}
	}
	if !client.IsValid() {
		client = peer
	}
	return client, chain
}

// forwardedChain is a trusted peer's X-Forwarded-For, to be extended.
type forwardedChain struct {
	first []byte // the first line's value; nil when there is no chain
	raw   []byte // the header block, when the header has further lines
}

// extends reports whether there is a chain to extend.
func (c forwardedChain) extends() bool { return c.first != nil }

// appendTo appends the chain to dst: the value of its one line, or of all
// its lines joined with ", ".
func (c forwardedChain) appendTo(dst []byte) []byte {
	if c.raw == nil {
		return append(dst, c.first...)
	}
	for rest, n := c.raw, 0; ; n++ {
		line, next, ok := nextLine(rest, headerXForwardedFor)
		if !ok {
			return dst
		}
		rest = next
		if n > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, line...)
	}
}

// trusts reports whether peer is one of the trusted proxies.
func (p *Proxy) trusts(peer netip.Addr) bool {
	return len(p.trusted) != 0 && peer.IsValid() && p.trusted.contains(peer)
}

// clientBehind returns the client that a trusted peer's X-Forwarded-For
// names, given in its lines as net/http keeps them (the HTTP/2 front end),
// and the chain to extend: the lines joined with ", ", or "" when there are
// none.
func (p *Proxy) clientBehind(peer netip.Addr, lines []string) (client netip.Addr, chain string) {
	var b strings.Builder
	for _, line := range lines {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		client = p.walkLine(client, []byte(line))
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(line)
	}
	if !client.IsValid() {
		client = peer
	}
	return client, b.String()
}

// walkLine takes the next X-Forwarded-For line and returns the client that
// the lines so far name: left is what the lines before it named (the zero
// Addr when none, or when the walk found nothing there), and the result is
// what a walk from the right over all of them joined would find. Entries
// are walked right to left, since the rightmost were added by the proxies
// nearest to us: the first that is not a trusted proxy is the client, and
// one that is not an address stops the walk at the entry to its right.
// Only a line of trusted proxies throughout lets the walk go on into the
// lines before it.
//
// The walk takes as long as the chain, whose length the header block's
// limit (-max-header-size) bounds, as nginx's realip module and HAProxy
// walk a chain as long as their header buffers hold.
func (p *Proxy) walkLine(left netip.Addr, line []byte) netip.Addr {
	var client netip.Addr
	for rest := line; len(rest) > 0; {
		i := bytes.LastIndexByte(rest, ',')
		item := bytes.TrimSpace(rest[i+1:])
		if i < 0 {
			rest = nil
		} else {
			rest = rest[:i]
		}
		a, ok := parseAddr(item)
		if !ok {
			return client // garbage: trust nothing further left
		}
		client = a.Unmap()
		if !p.trusted.contains(client) {
			return client
		}
	}
	if left.IsValid() {
		return left
	}
	return client
}

// parseAddr parses b as netip.ParseAddr does, without copying it to a
// string: ParseAddr keeps its input only in an error, dropped here, and
// an IPv6 zone it keeps is cloned (unique.Make clones the strings it
// holds).
func parseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(unsafe.String(&b[0], len(b)))
	return a, err == nil
}

// nextLine returns the value of the next line of the header named name in
// the raw header block b, in any letter case, and the lines after it. A line
// whose value is empty is passed over: it adds no entry to a list (RFC 9110,
// section 5.6.1). It finds what headerScanner would, but compares no more
// of any other line than the name's length: the scan of a trusted peer's
// request goes to the end of the block, to find every line.
func nextLine(b []byte, name string) (value, rest []byte, ok bool) {
	n := len(name)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > n && line[n] == ':' && asciiEqualFold(line[:n], name) {
			if v := bytes.TrimSpace(line[n+1:]); len(v) > 0 {
				return v, b, true
			}
		}
	}
	return nil, nil, false
}
