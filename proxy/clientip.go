package proxy

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/valyala/fasthttp"
)

// Trusted proxies. By default the client is the peer of the connection, and
// whatever X-Forwarded-For it sent is replaced: a client cannot forge its
// address. When the balancer sits behind proxies of its own (a CDN, an L4
// balancer that speaks HTTP), their addresses go in TrustedProxies: for a
// peer among them, the client is the nearest address in X-Forwarded-For
// that is not a trusted proxy, and the chain is extended rather than
// replaced. Hashing on the client address and rate limiting use that
// client.

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
// the nearest untrusted address its X-Forwarded-For names. forwarded is that
// header's value when the chain is to be extended, nil when it is replaced.
func (p *Proxy) clientAddr(ctx *fasthttp.RequestCtx) (client netip.Addr, forwarded []byte) {
	peer := peerAddr(ctx)
	if !p.trusts(peer) {
		return peer, nil
	}
	return p.clientBehind(peer, headerValue(ctx.Request.Header.RawHeaders(), headerXForwardedFor))
}

// trusts reports whether peer is one of the trusted proxies.
func (p *Proxy) trusts(peer netip.Addr) bool {
	return len(p.trusted) != 0 && peer.IsValid() && p.trusted.contains(peer)
}

// clientBehind returns the client that a trusted peer's X-Forwarded-For
// names, and that header's value to extend; both front ends share it.
func (p *Proxy) clientBehind(peer netip.Addr, xff []byte) (client netip.Addr, forwarded []byte) {
	if len(xff) == 0 {
		return peer, nil
	}
	client = peer
	rest := xff
	for len(rest) > 0 {
		// Walk right to left: the rightmost entries were added by the
		// proxies nearest to us.
		i := bytes.LastIndexByte(rest, ',')
		item := bytes.TrimSpace(rest[i+1:])
		if i < 0 {
			rest = nil
		} else {
			rest = rest[:i]
		}
		a, err := netip.ParseAddr(string(item))
		if err != nil {
			break // garbage: trust nothing further left
		}
		client = a.Unmap()
		if !p.trusted.contains(client) {
			break
		}
	}
	return client, xff
}

// headerValue returns the first value of the header named name in a raw
// header block, in any letter case, or nil.
func headerValue(raw []byte, name string) []byte {
	sc := headerScanner{b: raw}
	for {
		key, value, ok := sc.next()
		if !ok {
			return nil
		}
		if len(key) == len(name) && asciiEqualFold(key, name) {
			return value
		}
	}
}
