package proxy

import (
	"bytes"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

const headerHSTS = "Strict-Transport-Security"

// httpsPolicy steers clients to HTTPS: plain-HTTP requests are redirected
// to the TLS port, and responses over TLS tell the browser (HSTS) never to
// use plain HTTP again. A Proxy has one only when either is on, so the
// request path pays one nil check otherwise.
type httpsPolicy struct {
	redirectHTTP bool
	portSuffix   []byte // ":3443", or nothing for 443
	healthPath   []byte // never redirected
	hsts         []byte // the header's value; nil when off
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
		h.hsts = []byte("max-age=" + strconv.FormatInt(int64(c.HSTS/time.Second), 10))
	}
	return h
}

// redirect answers a request that came over plain HTTP with 308 to the same
// host, path and query over https, and reports whether it did. Health checks
// and requests over TLS pass.
func (h *httpsPolicy) redirect(ctx *fasthttp.RequestCtx) bool {
	if !h.redirectHTTP || ctx.IsTLS() {
		return false
	}
	uri := ctx.Request.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		// Absolute form ("http://host/path") or "*": use the parsed URI.
		uri = ctx.URI().RequestURI()
	}
	path := uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if bytes.Equal(path, h.healthPath) {
		return false
	}

	host := hostOnly(ctx.Request.Header.Host())
	if len(host) == 0 {
		// HTTP/1.0 without Host: the address the client reached us at.
		host = []byte(ctx.LocalIP().String())
		if bytes.IndexByte(host, ':') >= 0 {
			host = append(append([]byte("["), host...), ']')
		}
	}
	if !validHost(host) {
		writePlain(ctx, fasthttp.StatusBadRequest, reasonBadRequest)
		return true
	}
	loc := make([]byte, 0, len("https://")+len(host)+len(h.portSuffix)+len(uri))
	loc = append(loc, "https://"...)
	loc = append(loc, host...)
	loc = append(loc, h.portSuffix...)
	loc = append(loc, uri...)

	resp := &ctx.Response
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusPermanentRedirect)
	resp.Header.SetBytesV("Location", loc)
	resp.Header.SetContentType("text/plain; charset=utf-8")
	resp.SetBodyRaw(reasonRedirect)
	return true
}

var reasonRedirect = []byte("308 Permanent Redirect: use HTTPS\n")

// addHSTS adds the Strict-Transport-Security header to a response over TLS
// unless the backend sent its own, which then stands.
func (h *httpsPolicy) addHSTS(ctx *fasthttp.RequestCtx) {
	if h.hsts == nil || !ctx.IsTLS() {
		return
	}
	for key := range ctx.Response.Header.All() {
		if len(key) == len(headerHSTS) && asciiEqualFold(key, headerHSTS) {
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
