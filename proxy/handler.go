package proxy

import (
	"runtime/debug"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// HandleFastHTTP proxies one request: it picks a backend (the one its sticky
// cookie names, if any and usable, else the policy's choice), sends the
// request over that backend's keep-alive connections and relays the
// response. A failed attempt moves on to a backend not yet tried while the
// failure allows it; after the last one the client gets a short 502, 503 or
// 504. When every usable backend is at its max_conns the client gets 503 at
// once.
//
// It is a fasthttp.RequestHandler, so a Proxy can be mounted in any fasthttp
// server. In steady state it allocates nothing.
func (p *Proxy) HandleFastHTTP(ctx *fasthttp.RequestCtx) {
	cc := p.wd.client(ctx.Conn())
	if cc != nil {
		cc.enter(phaseHandling, p.wd.now())
	}
	p.proxy(ctx)
	if cc != nil {
		cc.enter(phaseWriting, p.wd.now())
	}
}

func (p *Proxy) proxy(ctx *fasthttp.RequestCtx) {
	defer p.recoverPanic(ctx)

	req := &ctx.Request
	prepareRequest(ctx)
	noHost := len(req.Header.Host()) == 0
	// Everything is buffered in memory before we get here, so the only
	// question for a resend is the method.
	replayable := isIdempotent(req.Header.Method())

	// A client pinned by the sticky cookie goes to its backend while that
	// backend can take it; otherwise, and for retries, the policy chooses.
	var pinned *pool.Backend
	if p.sticky != nil {
		pinned = p.sticky.backend(&req.Header)
	}

	var tried pool.Tried
	var last failure
	for attempt := 0; attempt <= p.retries; attempt++ {
		var b *pool.Backend
		if pinned != nil && p.pool.AcquireBackend(pinned, tried) {
			b = pinned
		} else {
			var res pool.Result
			b, res = p.pool.Acquire((*requestKey)(ctx), tried)
			if b == nil {
				if res == pool.AllAtLimit {
					last = failBusy // refused at once, not queued
				}
				break
			}
		}
		tried.Add(b)
		if p.debug {
			p.log.Debug("Selected backend: " + b.URL())
		}
		if noHost {
			// HTTP/1.0 clients may omit Host; the backend needs one.
			req.Header.SetHost(b.Addr())
		}
		hc := b.Transport().(*fasthttp.HostClient)
		f, err := p.roundTrip(hc, req, &ctx.Response)
		b.Done(err != nil)
		if err == nil {
			cleanResponse(&ctx.Response)
			if p.sticky != nil && b != pinned {
				p.sticky.set(&ctx.Response.Header, b)
			}
			return
		}
		last = f
		p.attemptFailed(ctx, b, last, err)
		if !last.retryable(replayable) {
			break
		}
	}
	writeFailure(ctx, last)
}

// attemptFailed records a failed attempt. A backend that refused or timed
// out a connection is taken out of rotation at once; active checks bring it
// back.
func (p *Proxy) attemptFailed(ctx *fasthttp.RequestCtx, b *pool.Backend, f failure, err error) {
	if f == failConnect {
		if p.pool.MarkDown(b, err.Error()) {
			p.log.Warn("backend down: " + b.URL() + ": " + err.Error())
		}
		return
	}
	b.RecordError(err.Error())
	if p.debug {
		p.log.Debug("attempt failed", "backend", b.URL(), "method", string(ctx.Method()),
			"uri", string(ctx.RequestURI()), "error", err.Error())
	}
}

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
			if len(key) == len(k.Name) && asciiEqualFold(key, k.Name) {
				return value
			}
		}
	case pool.KeyCookie:
		return requestCookie(&ctx.Request.Header, k.Name)
	}
	return nil
}
