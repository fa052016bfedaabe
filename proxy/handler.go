package proxy

import (
	"net"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// HandleFastHTTP proxies one request: it finds the request's pool by its
// route (with one pool and no routes, without a lookup; a request no route
// takes gets 404), picks a backend there (the one its sticky cookie names,
// if any and usable, else the policy's choice), sends the request over that
// backend's keep-alive connections and relays the response. A failed attempt moves on to a backend not yet tried while the
// failure allows it; after the last one the client gets a short 502, 503 or
// 504. When every usable backend is at its max_conns the client gets 503 at
// once.
//
// It is a fasthttp.RequestHandler, so a Proxy can be mounted in any fasthttp
// server. In steady state it allocates nothing.
func (p *Proxy) HandleFastHTTP(ctx *fasthttp.RequestCtx) {
	// The connection as the proxy accepted it, or nil (one that came
	// through someone else's listener, or fasthttp's per-IP wrapper).
	g := clientOf(ctx.Conn())
	var cc *clientConn
	if g != nil {
		cc = g.cc
		if g.head.on {
			// The head is whole, and the scan missed its end: it
			// cannot follow this connection's heads any more.
			g.head.stop()
		}
	} else {
		cc = p.wd.client(ctx.Conn())
	}
	if cc != nil {
		cc.enter(phaseHandling, p.wd.now())
	}
	header := 0
	chunked := ctx.Request.Header.ContentLength() == -1
	// Read before prepareRequest makes the request HTTP/1.1 for the
	// backend.
	sv := served{http10: !ctx.Request.Header.IsHTTP11()}
	if p.alog != nil {
		ctx.Time() // the request's start, for the access log
	}
	if p.https == nil || !p.https.redirect(ctx) {
		header = p.proxy(ctx, cc, g, &sv)
	} else {
		sv.bodyLeft = ctx.Request.Header.ContentLength() > 0
	}
	if p.https != nil {
		p.https.addHSTS(ctx)
	}
	if chunked {
		p.endChunked(ctx)
	} else if sv.bodyLeft {
		// fasthttp drains a short rest and keeps the connection, or
		// closes it: then lingering.
		lingerOnClose(ctx)
	}
	if p.cfg.FlushInterval != 0 || sv.http10 {
		switch d := ctx.Response.BodyStream().(type) {
		case *directBody:
			// The body goes to the connection itself (flush.go), after
			// the header: which must not wait in the write buffer.
			ctx.Response.ImmediateHeaderFlush = true
			if d.s.mode != frameFixed {
				// Of unknown length, to an HTTP/1.0 client: no chunks.
				d.unframe(ctx)
			}
		case *spliceBody:
			// Spliced (splice.go), the body goes out as it comes; the
			// header and what came with it must not wait in the write
			// buffer for more of the body to fill it first.
			if p.cfg.FlushInterval != 0 {
				ctx.Response.ImmediateHeaderFlush = true
			}
		}
	}
	p.countRequest(ctx, header)
	if p.alog != nil {
		p.logFastHTTP(ctx, &sv)
	}
	if cc != nil {
		cc.enter(phaseWriting, p.wd.now())
	}
}

// proxy answers the request from a backend, or with an error of its own. It
// returns the size of a relayed response's header block, or 0 for an answer
// of the proxy's own, and says in sv which backend answered after how many
// attempts.
func (p *Proxy) proxy(ctx *fasthttp.RequestCtx, cc *clientConn, g *guardConn, sv *served) (header int) {
	defer p.recoverPanic(ctx)
	req := &ctx.Request
	t := p.table.Load()
	v := ctx.UserValue(preflightKey{})
	if t.viaNet && v == nil {
		if rt := t.match(req); rt != nil && rt.viaNet {
			// HTTP/2 backends: only the net/http clients reach them.
			p.proxyViaNet(ctx, cc, rt)
			return 0
		}
	}
	var upgrade bool
	if v != nil {
		// The request expected 100-continue and was prepared then.
		if pf := v.(*preflight); pf != nil {
			sv.backend, sv.attempts = pf.b, 1
			header = p.continued(ctx, pf, cc, g)
			// A failed attempt may have stopped reading the body.
			sv.bodyLeft = header == 0 && req.Header.ContentLength() > 0
			return header
		}
	} else {
		var status int
		var client netip.Addr
		if upgrade, client, status = p.prepareRequest(ctx); status != 0 {
			refuse(ctx, status)
			return
		}
		sv.client = client
		if p.limiter != nil && !p.limiter.allow(client, p.wd.now()) {
			writeTooMany(ctx)
			sv.bodyLeft = req.Header.ContentLength() > 0
			return
		}
	}
	rt := t.match(req)
	if rt == nil {
		writeNoRoute(ctx)
		sv.bodyLeft = req.Header.ContentLength() > 0
		return
	}
	noHost := len(req.Header.Host()) == 0
	method := req.Header.Method()
	replayable := isIdempotent(method)
	rb, streaming, f := p.takeBody(ctx, cc)
	if f != 0 {
		writeFailure(ctx, f)
		return
	}
	defer p.endBody(rb, sv, req.Header.ContentLength())
	if streaming {
		// A body that streams is gone once sent: only a backend that was
		// never reached may be tried again.
		replayable = false
	}
	hedge := p.cfg.HedgeAfter > 0 && !streaming && !upgrade &&
		(string(method) == fasthttp.MethodGet || string(method) == fasthttp.MethodHead)
	if hedge {
		p.hedgeBudget.earn()
	}

	// A client pinned by the sticky cookie goes to its backend while that
	// backend can take it; otherwise, and for retries, the policy chooses.
	var pinned *pool.Backend
	if rt.sticky != nil {
		pinned = rt.sticky.backend(&req.Header)
	}

	env := exchangeEnv{client: cc, conn: g, upgrade: upgrade, http10: sv.http10}
	var tried pool.Tried
	var last failure
	var b *pool.Backend
	var failed *pool.Backend // where the last attempt failed, if it did
	freshRetry := false
	for attempt := 0; attempt <= p.retries; attempt++ {
		if freshRetry {
			// Same backend, fresh connection: see failStale. It does not
			// count as another attempt.
			attempt--
			freshRetry = false
			if !rt.pool.AcquireBackend(b, pool.Tried{}) {
				continue // no longer usable: on to another backend
			}
		} else if b = p.acquire(ctx, rt.pool, pinned, tried, &last); b == nil {
			break
		} else {
			if failed != nil {
				failed.Retried() // its request goes on elsewhere
				failed = nil
			}
			tried.Add(b)
			if p.debug {
				p.log.Debug("Selected backend: " + b.URL())
			}
		}
		var err error
		hedged := hedge && attempt == 0 // the hedged attempts record their own failures
		if hedged {
			var winner *pool.Backend
			if winner, f, err = p.hedged(ctx, rt.pool, b, &tried, &env); err == nil {
				b = winner
				header = responseHeaderSize(&ctx.Response)
			}
		} else {
			if noHost {
				// HTTP/1.0 clients may omit Host; the backend needs one.
				req.Header.SetHost(b.Addr())
			}
			// The attempt's two clock reads, for the latency histogram:
			// the only ones on the request path (no wall clock either).
			start := pool.Monotonic()
			f, err = p.exchange(b, req, &ctx.Response, &env)
			if err == nil {
				b.RecordResponse(ctx.Response.StatusCode(), pool.Monotonic()-start)
				b.ResetFailureStreak()
				header = p.relay(ctx, b, &env)
			} else {
				b.Done(true)
			}
		}
		if err == nil {
			if rt.sticky != nil && b != pinned {
				rt.sticky.set(&ctx.Response.Header, b, ctx.IsTLS())
			}
			sv.backend, sv.attempts = b, tried.Len()
			return header
		}
		last = f
		if f.clients() {
			break // the client's fault, not the backend's
		}
		if f == failStale && replayable && !hedged {
			// Its other idle connections are likely as stale.
			upstreamOf(b).hc.CloseIdleConnections()
			freshRetry = true
			continue
		}
		if !hedged {
			p.attemptFailed(b, last, err)
			failed = b
		}
		if !last.retryable(replayable) {
			break
		}
	}
	if last == 0 {
		p.traffic.NoBackend()
	}
	sv.attempts = tried.Len()
	writeFailure(ctx, last)
	return 0
}

// acquire begins an attempt on the backend for this request: the pinned
// one while it can take it, else the policy's choice among those not tried.
// When there is none because every usable one is at its max_conns, last
// becomes failBusy: the client gets 503 at once, it is not queued.
func (p *Proxy) acquire(ctx *fasthttp.RequestCtx, pl *pool.Pool, pinned *pool.Backend, tried pool.Tried, last *failure) *pool.Backend {
	if pinned != nil && pl.AcquireBackend(pinned, tried) {
		if !pinned.Protocol().HTTP2() {
			return pinned
		}
		pinned.Done(false)
		tried.Add(pinned)
	}
	for range pool.MaxTries {
		b, res := pl.Acquire((*requestKey)(ctx), tried)
		if res == pool.AllAtLimit {
			*last = failBusy
		}
		if b == nil || !b.Protocol().HTTP2() {
			return b
		}
		// An HTTP/2 backend that joined the pool after this request was
		// routed: only the net/http path reaches it (route.viaNet, in the
		// table published with it), so it is left to the requests routed
		// since.
		b.Done(false)
		tried.Add(b)
	}
	return nil
}

// relay readies a backend's response for the client. A streamed body ends
// the attempt when the server has relayed it; a protocol switch hands the
// connection to a tunnel once the 101 is out. It returns the size of the
// response's header block.
func (p *Proxy) relay(ctx *fasthttp.RequestCtx, b *pool.Backend, env *exchangeEnv) (header int) {
	resp := &ctx.Response
	if t := env.tunnel; t != nil {
		b.Done(false)
		resp.Header.ResetConnectionClose() // Connection: Upgrade stays
		if g := clientOf(ctx.Conn()); g != nil {
			// The watchdog keeps its record for the tunnel's waits
			// (runTunnel).
			g.tunnel = t
		}
		ctx.Hijack(func(c net.Conn) { p.runTunnel(t, c) })
		return responseHeaderSize(resp)
	}
	header = cleanResponse(resp)
	if !resp.IsBodyStream() {
		b.Done(false)
	}
	return header
}

// attemptFailed records a failed attempt. A backend that could not be
// reached or did not answer EjectAfter times in a row is taken out of
// rotation at once, unless too many already are; active checks bring it
// back, or readmitLater without them.
func (p *Proxy) attemptFailed(b *pool.Backend, f failure, err error) {
	b.RecordError(err.Error())
	if k, ok := f.kind(); ok {
		b.RecordFailure(k)
	}
	if f == failTryTimeout {
		b.TryTimedOut()
	}
	if f.countsTowardEjection() && p.ejectAfter > 0 && b.AddFailureStreak() >= p.ejectAfter {
		// Its own pool: nil once a reload has taken it out.
		if pl := b.Pool(); pl != nil && pl.Eject(b, err.Error(), p.cfg.MaxEjectedPercent) {
			// Named as the health checker names it (its logger's pool).
			p.log.Warn("backend down: "+b.URL()+": "+err.Error(), "pool", pl.Name())
			if p.checksOff.Load() {
				p.readmitLater(pl, b)
			}
			return
		}
	}
	if f == failConnect && b.ShouldReport(p.wd.now(), int64(failureReportInterval)) {
		// Not logged per request, but not hidden either: a backend that
		// cannot be reached (a wrong CA, a closed port) is an operator's
		// business even while it stays in rotation.
		var attrs []any
		if pl := b.Pool(); pl != nil {
			attrs = append(attrs, "pool", pl.Name())
		}
		p.log.Warn("backend connect failed: "+b.URL()+": "+err.Error(), attrs...)
		return
	}
	if p.debug {
		p.log.Debug("attempt failed", "backend", b.URL(), "error", err.Error())
	}
}

// failureReportInterval is the least time between two reports of a
// backend's connect failures.
const failureReportInterval = 10 * time.Second

func (p *Proxy) recoverPanic(ctx *fasthttp.RequestCtx) {
	if v := recover(); v != nil {
		p.log.Error("panic while proxying a request", "panic", v, "uri", string(ctx.RequestURI()),
			"stack", string(debug.Stack()))
		writePlain(ctx, fasthttp.StatusInternalServerError, []byte("500 Internal Server Error\n"))
		ctx.SetConnectionClose()
	}
}

// isIdempotent reports whether resending method cannot do harm twice (RFC
// 9110 §9.2.2). POST and PATCH are not; neither is an unknown method.
func isIdempotent(method []byte) bool {
	switch string(method) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions,
		fasthttp.MethodPut, fasthttp.MethodDelete, fasthttp.MethodTrace:
		return true
	}
	return false
}

// requestKey gives policies the request attributes they hash on, read from
// the fasthttp request in place.
type requestKey fasthttp.RequestCtx

// Key implements pool.Request.
func (r *requestKey) Key(k pool.Key) []byte {
	ctx := (*fasthttp.RequestCtx)(r)
	switch k.Kind {
	case pool.KeyClientIP:
		// prepareRequest put the client's address there, trusted proxies
		// taken into account.
		if v := ctx.Request.Header.Peek(headerXRealIP); len(v) > 0 {
			return v
		}
		return ctx.RemoteIP()
	case pool.KeyURI:
		return ctx.Request.Header.RequestURI()
	case pool.KeyHeader:
		sc := headerScanner{b: ctx.Request.Header.RawHeaders()}
		for {
			key, value, ok := sc.next()
			if !ok {
				return nil
			}
			if equalFold(key, k.Name) {
				return value
			}
		}
	case pool.KeyCookie:
		return requestCookie(&ctx.Request.Header, k.Name)
	}
	return nil
}
