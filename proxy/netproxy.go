package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The net/http path. Requests from HTTP/2 clients, and requests from
// HTTP/1.1 clients when the pool has HTTP/2 backends, are proxied by
// httputil.ReverseProxy over each backend's http.Transport
// (nettransport.go): never converted into fasthttp types. What the proxy
// means by balancing is shared with the HTTP/1.1 path rather than
// re-implemented: the pool (policies through pool.Request, Acquire,
// AcquireBackend, Done, health, counters), the sticky cookie's ids, the
// client address rules, the failure kinds and their answers, the retry
// rules, try timeouts, ejection and hedging. ReverseProxy does what it is
// good at: hop-by-hop headers, trailers, 1xx, flushing every write (no
// buffering: FlushInterval -1), so gRPC and other streams pass through
// full-duplex.

// netFront is the net/http handler and the balancing RoundTripper under it.
type netFront struct {
	p  *Proxy
	rp *httputil.ReverseProxy
	// h1 serves HTTP/1.1 requests from the fasthttp server through this
	// path; set only when the pool has HTTP/2 backends.
	h1 fasthttp.RequestHandler
}

func newNetFront(p *Proxy) *netFront {
	f := &netFront{p: p}
	f.rp = &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      f,
		FlushInterval:  -1,
		BufferPool:     copyBuffers{},
		ModifyResponse: f.modifyResponse,
		ErrorHandler:   f.errorHandler,
		ErrorLog:       log.New(debugWriter{p}, "", 0),
	}
	return f
}

// netStateKey finds a request's netState in its context.
type netStateKey struct{}

// netState is what one request carries through ReverseProxy to the
// RoundTripper and back.
type netState struct {
	in       *http.Request
	rt       *route // the pool that serves the request, and its sticky cookie
	h2       bool   // the client speaks HTTP/2
	grpc     bool   // a gRPC call: errors are answered the gRPC way
	client   netip.Addr
	clientIP string // what X-Real-IP says; hashing on "ip" uses it
	chain    string // a trusted proxy's X-Forwarded-For to extend, or ""

	body       []byte     // the whole body, when read whole
	upload     *netUpload // the body, when it streams
	replay     bool       // attempts may be repeated elsewhere
	hedge      bool
	pinned     *pool.Backend
	served     *pool.Backend // the backend whose response is relayed
	attempts   int           // backends tried, hedges included
	headerTO   failure       // the failure a header wait ends in: try or backend timeout
	inBytes    int
	answered   bool // the proxy answered with its own error
	bodyless   bool // the relayed response has no body at all (see netWriter.FlushError)
	keyScratch []byte
}

func stateOf(ctx context.Context) *netState {
	st, _ := ctx.Value(netStateKey{}).(*netState)
	return st
}

// ServeHTTP proxies one request (http.Handler). It is the HTTP/2 server's
// handler and, for pools with HTTP/2 backends, the HTTP/1.1 server's too.
func (f *netFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := f.p
	nw := &netWriter{ResponseWriter: w, p: p}
	st := &netState{in: r, h2: r.ProtoMajor == 2, grpc: isGRPC(r.Header)}
	nw.st = st
	var start time.Time
	if p.alog != nil {
		start = time.Now()
	}
	defer func() {
		if p.alog != nil && nw.status != 0 {
			p.logNet(st, nw, start)
		}
		t := p.traffic
		if st.h2 {
			// HTTP/1.1 requests are counted by HandleFastHTTP, whichever
			// path proxied them.
			t.Request(nw.status, st.inBytes, nw.header+nw.written)
		}
		t.NetPathRequest(st.h2)
	}()
	st.inBytes = len(r.Method) + len(r.RequestURI) + requestLineFraming + headerSize(r.Header)

	peer := remoteAddr(r.RemoteAddr)
	client, chain := peer, ""
	if p.trusts(peer) {
		// Every line: Get would give the first alone (see clientAddr).
		client, chain = p.clientBehind(peer, r.Header.Values(headerXForwardedFor))
	}
	st.client = client

	if h := p.https; h != nil && st.h2 && h.redirectNet(nw, st) {
		// h2c on the plain port, redirected as HTTP/1.1 is there
		// (HandleFastHTTP, which has already judged the HTTP/1.1
		// requests this path gets).
		return
	}

	switch r.Method {
	case http.MethodConnect, http.MethodTrace:
		// As on HTTP/1.1 (strict.go); extended CONNECT (WebSockets over
		// HTTP/2) is not offered.
		nw.answer(st, http.StatusMethodNotAllowed, reasonNotAllowd)
		return
	}

	if client.IsValid() {
		st.clientIP = client.String()
		if chain != "" {
			st.chain = chain + ", " + peer.String()
		}
	}
	if p.limiter != nil && !p.limiter.allow(client, p.wd.now()) {
		nw.Header().Set("Retry-After", "1")
		nw.answer(st, http.StatusTooManyRequests, reasonTooMany)
		return
	}

	if rt, ok := r.Context().Value(viaNetRouteKey{}).(*route); ok && !st.h2 {
		// An HTTP/1.1 request goes where the fast path's lookup sent it
		// (proxyViaNet), on the URI as fasthttp parsed it.
		st.rt = rt
	} else if st.rt = p.netRoute(r); st.rt == nil {
		nw.answer(st, http.StatusNotFound, reasonNoRoute)
		return
	}

	if f := p.netBody(st, r); f != 0 {
		nw.fail(st, f)
		return
	}
	st.replay = isIdempotent([]byte(r.Method)) && st.upload == nil
	st.hedge = p.cfg.HedgeAfter > 0 && st.upload == nil && (r.Method == http.MethodGet || r.Method == http.MethodHead)
	if st.hedge {
		p.hedgeBudget.earn()
	}
	st.headerTO = p.headerTimeoutFailure
	if sk := st.rt.sticky; sk != nil {
		st.pinned = sk.lookup(cookieValue(r.Header, sk.name))
	}
	base := r.Context()
	if !st.h2 {
		// fasthttpadaptor's request context is fasthttp's RequestCtx,
		// reused for the next request once the handler returns: nothing
		// derived from it may outlive the request, and the attempts'
		// contexts may (see start). It says nothing about the client
		// anyway.
		base = context.Background()
	}
	st.in = r.WithContext(context.WithValue(base, netStateKey{}, st))
	f.rp.ServeHTTP(nw, st.in)
}

// netRoute returns the route of a net/http request, or nil when no route
// takes it: the lookup the HTTP/1.1 path does (table.match), on the host
// lowercased and the path normalised as fasthttp does for its requests.
func (p *Proxy) netRoute(r *http.Request) *route {
	t := p.table.Load()
	if t.single != nil {
		return t.single
	}
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	u.SetHost(r.Host)
	u.SetPath(r.URL.EscapedPath())
	return t.matchURI(u)
}

// netBody prepares the request body as the HTTP/1.1 path does (body.go):
// one of known, moderate length is read whole, so that the request can be
// retried; any other streams to the backend. A gRPC call always streams:
// its messages may depend on the answers. It returns a failure when the
// request must be answered without proxying.
func (p *Proxy) netBody(st *netState, r *http.Request) failure {
	limit := int64(p.cfg.MaxBodySize)
	if limit > 0 && r.ContentLength > limit {
		return failBodyTooLarge
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		r.Body = http.NoBody
		return 0
	}
	if r.ContentLength > 0 && r.ContentLength <= maxBufferedRequest && !st.grpc {
		// Allocated, not pooled: the transport may go on reading an
		// attempt's body after the response is relayed (a backend that
		// answered before taking it all, a hedge that lost), so no point
		// is known where the bytes are free for another request.
		st.body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, st.body); err != nil {
			return failClientGone
		}
		st.inBytes += len(st.body)
		r.Body = http.NoBody // each attempt reads st.body afresh
		return 0
	}
	st.upload = &netUpload{p: p, st: st, src: r.Body, limit: limit}
	r.Body = st.upload
	return 0
}

// rewrite makes the outgoing request (ReverseProxy.Rewrite). ReverseProxy
// has removed the hop-by-hop headers (TE: trailers stays, as gRPC needs)
// and X-Forwarded-*; the proxy sets its own from the connection, as the
// HTTP/1.1 path does. The backend's address goes in per attempt.
func (f *netFront) rewrite(pr *httputil.ProxyRequest) {
	st := stateOf(pr.In.Context())
	in, out := pr.In, pr.Out
	out.URL.Scheme = "http" // the dialer does TLS: see nettransport.go
	// The query exactly as sent (ReverseProxy would drop parts it cannot
	// parse), and Forwarded, which the HTTP/1.1 path passes too.
	out.URL.RawQuery = in.URL.RawQuery
	if v := in.Header["Forwarded"]; v != nil {
		out.Header["Forwarded"] = v
	}
	h := out.Header
	h.Del("X-Real-Ip")
	// The body is read by the proxy, so the backend is not asked for 100
	// Continue.
	h.Del("Expect")
	if st.clientIP != "" {
		h[headerXRealIP] = []string{st.clientIP}
		if st.chain != "" {
			h[headerXForwardedFor] = []string{st.chain}
		} else {
			h[headerXForwardedFor] = []string{st.clientIP}
		}
	}
	if in.Host != "" {
		h[headerXForwardedHost] = []string{in.Host}
	}
	if in.TLS != nil {
		h[headerXForwardedProto] = []string{"https"}
	} else {
		h[headerXForwardedProto] = []string{"http"}
	}
}

// modifyResponse adds what the proxy adds to a backend's answer: the sticky
// cookie and HSTS.
func (f *netFront) modifyResponse(resp *http.Response) error {
	p := f.p
	st := stateOf(resp.Request.Context())
	// A response whose HEADERS frame ended the stream (a gRPC error sent
	// as trailers only) comes with a length of 0, as one that says so.
	st.bodyless = resp.ContentLength == 0
	if sk := st.rt.sticky; sk != nil && st.served != nil && st.served != st.pinned {
		if c := sk.cookie(st.served, st.in.TLS != nil); c != nil {
			resp.Header.Add("Set-Cookie", string(c))
		}
	}
	if h := p.https; h != nil && h.hsts != nil && st.in.TLS != nil && resp.Header.Get(headerHSTS) == "" {
		resp.Header[headerHSTS] = []string{h.hstsValue}
	}
	return nil
}

// errorHandler answers a request whose attempts all failed.
func (f *netFront) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateOf(r.Context())
	var nf *netFailure
	fl := failResponse
	if errors.As(err, &nf) {
		fl = nf.f
	}
	if fl == failClientGone && r.Context().Err() != nil {
		return // nobody to answer
	}
	if nw, ok := w.(*netWriter); ok {
		nw.fail(st, fl)
		return
	}
	status, body := fl.answer()
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone
}

// netWriter is the ResponseWriter ReverseProxy writes to: it keeps the
// answer as the backend gave it, and counts what is sent.
type netWriter struct {
	http.ResponseWriter
	p       *Proxy
	st      *netState
	status  int
	header  int // size of the header block, estimated
	written int
	length  int64 // the response's Content-Length, -1 when it streams
}

// WriteHeader implements http.ResponseWriter.
func (w *netWriter) WriteHeader(code int) {
	if code >= 200 && w.status == 0 {
		w.status = code
		h := w.Header()
		// No Content-Type sniffing: an answer without one stays without
		// one, as on HTTP/1.1.
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil
		}
		w.length = -1
		if v := h["Content-Length"]; len(v) == 1 && !w.st.grpc {
			if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
				w.length = n
			}
		}
		w.header = statusLineSize + headerSize(h)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *netWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.written += n
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *netWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// FlushError is what ReverseProxy's flush after every write (FlushInterval
// -1) reaches. A stream (no Content-Length: gRPC, server-sent events,
// chunked) is flushed each time: nothing waits in the proxy. A body of
// known length is not: the HTTP/2 server sends what it holds as its buffer
// fills and the rest, with the header, when the handler returns, so a small
// answer leaves in one write instead of three (header, data, end of
// stream), and a large one in full frames.
//
// Nor is a response without a body: ReverseProxy also flushes the header at
// once from a timer of its own, racing the handler's return, and a header
// flushed before it goes out without the end of the stream, which follows
// in an empty DATA frame. A gRPC error sent as trailers only (its status in
// the one HEADERS frame, which ends the stream) then reaches the client as
// a header block and a stream without trailers: "server closed the stream
// without sending trailers" instead of the backend's status.
func (w *netWriter) FlushError() error {
	if w.length >= 0 || w.st.bodyless {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// answer sends one of the proxy's own answers. Over TLS it carries HSTS,
// as a relayed response does (modifyResponse).
func (w *netWriter) answer(st *netState, status int, body []byte) {
	st.answered = true
	if h := w.p.https; h != nil && h.hsts != nil && st.in.TLS != nil {
		w.Header()[headerHSTS] = []string{h.hstsValue}
	}
	if st.grpc {
		writeGRPCError(w, status, body)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write(body) //nolint:errcheck // the client may be gone
}

// fail answers after the last attempt failed with f (zero: none was made).
func (w *netWriter) fail(st *netState, f failure) {
	if f.clients() && !st.h2 {
		// As on HTTP/1.1: the rest of the body may be on its way.
		w.Header().Set("Connection", "close")
	}
	status, body := f.answer()
	w.answer(st, status, body)
}

// headerSize estimates a header block's size on the HTTP/1.1 wire.
func headerSize(h http.Header) int {
	n := 0
	for k, vv := range h {
		for _, v := range vv {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// remoteAddr parses a request's RemoteAddr ("ip:port").
func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// cookieValue finds a cookie in the request's Cookie headers, as
// requestCookie does on the HTTP/1.1 path, with the same parsing.
func cookieValue(h http.Header, name string) []byte {
	for _, line := range h["Cookie"] {
		if v := cookieIn([]byte(line), name); v != nil {
			return v
		}
	}
	return nil
}

// netKey gives policies the request attributes they hash on (pool.Request).
type netKey netState

// Key implements pool.Request.
func (k *netKey) Key(key pool.Key) []byte {
	st := (*netState)(k)
	switch key.Kind {
	case pool.KeyClientIP:
		return []byte(st.clientIP)
	case pool.KeyURI:
		return []byte(st.in.RequestURI)
	case pool.KeyHeader:
		if v := st.in.Header.Values(key.Name); len(v) > 0 {
			return []byte(v[0])
		}
		return nil
	case pool.KeyCookie:
		return cookieValue(st.in.Header, key.Name)
	}
	return nil
}

// copyBuffers lends ReverseProxy its copy buffers from a pool.
type copyBuffers struct{}

var copyBufferPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (copyBuffers) Get() []byte  { return *copyBufferPool.Get().(*[]byte) }
func (copyBuffers) Put(b []byte) { copyBufferPool.Put(&b) }

// debugWriter sends ReverseProxy's own log lines to the debug level.
type debugWriter struct{ p *Proxy }

func (d debugWriter) Write(b []byte) (int, error) {
	if d.p.debug {
		d.p.log.Debug(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

// viaNetRouteKey holds, in an HTTP/1.1 request's user values, the route
// proxyViaNet sends it by.
type viaNetRouteKey struct{}

// proxyViaNet proxies an HTTP/1.1 request through the net/http path: its
// route rt is to a pool with HTTP/2 backends, which only the net/http
// clients reach. The request line and framing were checked as on the fast
// path first. The route goes with the request: the net/http request that
// fasthttpadaptor makes does not always look up the same way (a
// "//host/path" target without Host, which fasthttp reads as authority and
// net/http as path).
func (p *Proxy) proxyViaNet(ctx *fasthttp.RequestCtx, cc *clientConn, rt *route) {
	if status, _ := inspectRequest(ctx); status != 0 {
		refuse(ctx, status)
		return
	}
	if _, err := url.ParseRequestURI(string(ctx.RequestURI())); err != nil {
		// fasthttpadaptor would fail to convert it (500): the target is
		// malformed, such as a bad percent-escape. A backend behind the
		// fast path would have had to judge it; net/http cannot carry it.
		refuse(ctx, fasthttp.StatusBadRequest)
		return
	}
	if limit := p.cfg.MaxBodySize; limit > 0 && ctx.Request.Header.ContentLength() > limit {
		writeFailure(ctx, failBodyTooLarge)
		return
	}
	if f := p.readBodyViaNet(ctx, cc); f != 0 {
		writeFailure(ctx, f)
		return
	}
	ctx.SetUserValue(viaNetRouteKey{}, rt)
	p.net.h1(ctx)
}

// readBodyViaNet reads a streamed request body whole before fasthttpadaptor
// converts the request: the adaptor reads it too, but takes a body that
// broke off (the client went away, or it passed MaxBodySize) for one whose
// content is the error's text, and would send that to the backend as a
// complete request. Here such a body is answered as on the fast path, and
// the read is timed by the watchdog like one there. The bytes are
// allocated, not pooled: the net/http handler may still read them after
// the adaptor returns, while the response streams.
func (p *Proxy) readBodyViaNet(ctx *fasthttp.RequestCtx, cc *clientConn) failure {
	req := &ctx.Request
	src := p.bodyStream(ctx)
	size := req.Header.ContentLength() // -1: chunked
	if src == nil || size == 0 {
		return 0
	}
	if cc != nil {
		cc.enter(phaseBody, p.wd.now())
		defer cc.enter(phaseHandling, p.wd.now())
	}
	limit := int64(p.cfg.MaxBodySize)
	var body []byte
	if size > 0 {
		body = make([]byte, 0, size)
	}
	for size < 0 || len(body) < size {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := src.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if n > 0 && cc != nil {
			cc.since.Store(p.wd.now())
		}
		if limit > 0 && int64(len(body)) > limit {
			return failBodyTooLarge
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				return failBodyTooLarge
			}
			return readFailure(cc)
		}
	}
	if size >= 0 && len(body) != size {
		return failClientGone
	}
	req.SetBodyRaw(body)
	return 0
}

// newH1Adaptor returns the fasthttp handler that runs the net/http path for
// HTTP/1.1 requests: fasthttpadaptor converts the request (reading its
// body whole) and relays the answer as it streams, trailers included.
func (f *netFront) newH1Adaptor() fasthttp.RequestHandler {
	return fasthttpadaptor.NewFastHTTPHandler(f)
}
