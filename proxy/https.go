package proxy

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

const headerHSTS = "Strict-Transport-Security"

// httpsPolicy steers clients to HTTPS: plain-HTTP requests are redirected
// to the TLS port, on HTTP/1.1 and h2c alike, and every response over TLS,
// relayed or the proxy's own, tells the browser (HSTS) never to use plain
// HTTP again. A Proxy has one only when either is on, so the request path
// pays one nil check otherwise.
type httpsPolicy struct {
	redirectHTTP bool
	portSuffix   []byte // ":3443", or nothing for 443
	healthPath   []byte // never redirected
	hsts         []byte // the header's value; nil when off
	hstsValue    string // the same, for net/http headers
}

func newHTTPSPolicy(c *TLSConfig, healthPath string) *httpsPolicy {
	if c == nil || (!c.RedirectHTTP && c.HSTS == 0) {
		return nil
	}
	h := &httpsPolicy{redirectHTTP: c.RedirectHTTP}
	if healthPath != "/" {
		// The root is the site's home page, not a path apart for checks
		// (and the default health path): it is redirected like the rest.
		h.healthPath = []byte(healthPath)
	}
	if c.RedirectPort != 443 {
		h.portSuffix = []byte(":" + strconv.Itoa(c.RedirectPort))
	}
	if c.HSTS > 0 {
		h.hstsValue = "max-age=" + strconv.FormatInt(int64(c.HSTS/time.Second), 10)
		h.hsts = []byte(h.hstsValue)
	}
	return h
}

// redirect answers a request that came over plain HTTP with 308 to the same
// host, path and query over https, and reports whether it did. Health checks
// and requests over TLS pass, and so do the two that name no resource a
// redirect could point at: CONNECT (it gets 405, as over TLS) and OPTIONS *,
// a question about the server (proxied, as over TLS; redirected, it became
// an OPTIONS of a resource named "*", https://host/%2A). Caddy, on net/http,
// answers OPTIONS * on its HTTP port without redirecting it too; nginx
// refuses it (400) on any port.
func (h *httpsPolicy) redirect(ctx *fasthttp.RequestCtx) bool {
	if !h.redirectHTTP || ctx.IsTLS() || ctx.IsConnect() {
		return false
	}
	uri := ctx.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		if isAsterisk(uri) && ctx.IsOptions() {
			return false
		}
		// Absolute form ("http://host/path") or "*": use the parsed URI.
		uri = ctx.URI().RequestURI()
	}
	if h.exempt(uri) {
		return false
	}
	loc := h.location(ctx.Request.Header.Host(), uri, ctx.LocalAddr())
	if loc == nil {
		writePlain(ctx, fasthttp.StatusBadRequest, reasonBadRequest)
		return true
	}
	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusPermanentRedirect)
	resp.Header.SetBytesV("Location", loc)
	resp.Header.SetContentType("text/plain; charset=utf-8")
	resp.SetBodyRaw(reasonRedirect)
	return true
}

// redirectNet is redirect for an HTTP/2 request that came over plain HTTP
// (h2c, on the net/http front end): the same answer by the same rules. A
// gRPC call gets it the gRPC way, as every answer of the proxy's
// (netWriter.answer), the Location included.
func (h *httpsPolicy) redirectNet(w *netWriter, st *netState) bool {
	r := st.in
	if !h.redirectHTTP || r.TLS != nil || r.Method == http.MethodConnect {
		return false
	}
	uri := []byte(r.RequestURI) // the :path, in origin form, or "*"
	if len(uri) == 0 || uri[0] != '/' {
		if isAsterisk(uri) && r.Method == http.MethodOptions {
			return false
		}
		u := fasthttp.AcquireURI()
		defer fasthttp.ReleaseURI(u)
		u.Parse([]byte(r.Host), uri) //nolint:errcheck // as fasthttp parses it for redirect
		uri = u.RequestURI()
	}
	if h.exempt(uri) {
		return false
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	loc := h.location([]byte(r.Host), uri, local)
	if loc == nil {
		w.answer(st, http.StatusBadRequest, reasonBadRequest)
		return true
	}
	w.Header()["Location"] = []string{string(loc)}
	w.answer(st, http.StatusPermanentRedirect, reasonRedirect)
	return true
}

// isAsterisk reports whether a request target is the asterisk form, which
// OPTIONS uses to ask about the server as a whole (RFC 9112 §3.2.4).
func isAsterisk(target []byte) bool { return len(target) == 1 && target[0] == '*' }

// exempt reports whether a request for uri (its path and query) is for the
// health path, which is never redirected.
func (h *httpsPolicy) exempt(uri []byte) bool {
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return bytes.Equal(path, h.healthPath)
}

// location returns the https URL a redirect sends a request for uri (its
// path and query) with Host header host to, or nil when host could change
// the URL's meaning. Without a host (HTTP/1.0 without Host, HTTP/2 without
// :authority) it is the IP address of local, the address the client
// reached us at.
func (h *httpsPolicy) location(host, uri []byte, local net.Addr) []byte {
	host = hostOnly(host)
	if len(host) == 0 {
		ip := net.IPv4zero // as fasthttp's LocalIP says of an address not TCP's
		if a, ok := local.(*net.TCPAddr); ok {
			ip = a.IP
		}
		host = []byte(ip.String())
		if bytes.IndexByte(host, ':') >= 0 {
			host = append(append([]byte("["), host...), ']')
		}
	}
	if !validHost(host) {
		return nil
	}
	loc := make([]byte, 0, len("https://")+len(host)+len(h.portSuffix)+len(uri))
	loc = append(loc, "https://"...)
	loc = append(loc, host...)
	loc = append(loc, h.portSuffix...)
	loc = append(loc, uri...)
	return loc
}

var reasonRedirect = []byte("308 Permanent Redirect: use HTTPS\n")

// addHSTS adds the Strict-Transport-Security header to a response over TLS
// unless the backend sent its own, which then stands. The proxy's own
// answers get it the same way: those of the handler, of handleReadError
// and of expectContinue (netWriter.answer on the net/http front end).
func (h *httpsPolicy) addHSTS(ctx *fasthttp.RequestCtx) {
	if h.hsts == nil || !ctx.IsTLS() {
		return
	}
	for key := range ctx.Response.Header.All() {
		if equalFold(key, headerHSTS) {
			return
		}
	}
	ctx.Response.Header.SetBytesV(headerHSTS, h.hsts)
}

// hostOnly strips the port from a Host header: "example.com:3030" gives
// "example.com" and "[::1]:3030" gives "[::1]".
func hostOnly(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		if i := bytes.IndexByte(host, ']'); i > 0 {
			return host[:i+1]
		}
		return nil
	}
	if i := bytes.LastIndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// validHost reports whether host may be put in a Location header: a DNS
// name, an IPv4 address or a bracketed IPv6 address, nothing that could
// change the URL's meaning.
func validHost(host []byte) bool {
	if len(host) == 0 || len(host) > 255 {
		return false
	}
	for i, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case c == '[' && i == 0, c == ']' && i == len(host)-1, c == ':' && host[0] == '[':
		default:
			return false
		}
	}
	return true
}
