package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Hedged requests: when a GET or HEAD has no response header after
// HedgeAfter, a copy goes to another backend and the first complete answer
// wins; the other attempt's connection is closed. At most one hedge per
// request, and a budget keeps hedges to HedgeBudget percent of requests, so
// a slow fleet is not sent twice the load.
//
// This path is opt-in and pays for its concurrency: each attempt runs in a
// goroutine with its own copy of the request and its own response, so the
// one that loses can be abandoned without waiting for it.

// attemptHooks let an attempt running in its own goroutine be watched and
// stopped: it publishes its connection while it uses it, and when its
// response header came. The mutex keeps abort from closing a connection the
// attempt has already given back to the pool for another request.
type attemptHooks struct {
	header atomic.Bool

	mu      sync.Mutex
	conn    *backendConn
	aborted bool
}

// abort stops the attempt: its connection is closed, or it gives up before
// sending if it has none yet.
func (h *attemptHooks) abort() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.aborted = true
	if h.conn != nil {
		h.conn.Conn.Close()
	}
}

// attach publishes the attempt's connection and reports whether the attempt
// was aborted meanwhile.
func (h *attemptHooks) attach(c *backendConn) (aborted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = c
	return h.aborted
}

// detach withdraws the connection before it goes back to the pool, and
// reports whether an abort may have closed it.
func (h *attemptHooks) detach() (aborted bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conn = nil
	return h.aborted
}

func (h *attemptHooks) wasAborted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.aborted
}

var errAborted = errors.New("attempt abandoned: the other one answered first")

// hedgedAttempt is one of the concurrent attempts of a hedged request.
type hedgedAttempt struct {
	hooks attemptHooks
	b     *pool.Backend
	req   fasthttp.Request
	resp  fasthttp.Response
	f     failure
	err   error
}

// hedgeBudget is a token bucket: every eligible request earns percent
// credits, a hedge costs 100, and credits stop accruing at a small burst.
type hedgeBudget struct {
	credits atomic.Int64
	percent int64
}

const hedgeBurst = 10 // hedges that calm traffic can bank

func (hb *hedgeBudget) earn() {
	if hb.credits.Load() < 100*hedgeBurst {
		hb.credits.Add(hb.percent)
	}
}

func (hb *hedgeBudget) spend() bool {
	for {
		c := hb.credits.Load()
		if c < 100 {
			return false
		}
		if hb.credits.CompareAndSwap(c, c-100) {
			return true
		}
	}
}

// hedged runs the first attempt of a GET or HEAD on b, already acquired, and
// a hedge on another backend if b has not sent a response header after
// HedgeAfter. On success the winning response is in ctx.Response and winner
// is its backend. On failure it returns the failure of the last attempt to
// end (each attempt recorded its own), and the caller's retry loop carries
// on with the backends not yet tried. env is the request's (startAttempt).
func (p *Proxy) hedged(ctx *fasthttp.RequestCtx, pl *pool.Pool, b *pool.Backend, tried *pool.Tried, env *exchangeEnv) (winner *pool.Backend, f failure, err error) {
	done := make(chan *hedgedAttempt, 2)
	first := p.startAttempt(ctx, b, env, done)
	timer := time.NewTimer(p.cfg.HedgeAfter)
	defer timer.Stop()

	attempts := []*hedgedAttempt{first}
	running := 1
	for {
		select {
		case <-timer.C:
			if first.hooks.header.Load() {
				continue
			}
			hb := p.hedgeTarget(pl, (*requestKey)(ctx), b, tried)
			if hb == nil {
				continue
			}
			attempts = append(attempts, p.startAttempt(ctx, hb, env, done))
			running++
		case a := <-done:
			running--
			if a.err == nil {
				for _, o := range attempts {
					if o != a {
						o.hooks.abort()
					}
				}
				if a != first {
					a.b.HedgeWon()
				}
				if s := a.resp.BodyStream(); s != nil {
					// The stream moves to the client's response; the
					// attempt's response is dropped without closing it.
					a.resp.Header.CopyTo(&ctx.Response.Header)
					ctx.Response.SetBodyStream(s, a.resp.Header.ContentLength())
				} else {
					a.resp.CopyTo(&ctx.Response)
				}
				return a.b, 0, nil
			}
			if running == 0 {
				return nil, a.f, a.err
			}
		}
	}
}

// startAttempt sends a copy of the client's request to b, on which an
// attempt has begun, in a goroutine of its own, which reports on done.
// The attempt runs with the client connection and version of the request's
// env.
func (p *Proxy) startAttempt(ctx *fasthttp.RequestCtx, b *pool.Backend, request *exchangeEnv, done chan<- *hedgedAttempt) *hedgedAttempt {
	a := &hedgedAttempt{b: b}
	cc, http10 := request.client, request.http10
	ctx.Request.CopyTo(&a.req)
	a.req.UseHostHeader = true
	a.req.URI().DisablePathNormalizing = true
	if len(a.req.Header.Host()) == 0 {
		a.req.Header.SetHost(b.Addr())
	}
	go func() {
		env := exchangeEnv{client: cc, hooks: &a.hooks, http10: http10}
		start := pool.Monotonic()
		a.f, a.err = p.exchange(b, &a.req, &a.resp, &env)
		if a.err == nil {
			b.RecordResponse(a.resp.StatusCode(), pool.Monotonic()-start)
		}
		aborted := a.hooks.wasAborted()
		if a.err != nil || !a.resp.IsBodyStream() {
			b.Done(a.err != nil && !aborted)
		}
		switch {
		case a.err == nil:
			b.ResetFailureStreak()
			cleanResponse(&a.resp)
		case aborted:
			a.err = errAborted
		default:
			p.attemptFailed(b, a.f, a.err)
		}
		done <- a
	}()
	return a
}

// hedgeTarget picks where to send a hedge of a request whose attempt on b
// is late, within the budget, and begins the attempt there; nil when the
// budget or the pool has none. Both front ends hedge through it.
func (p *Proxy) hedgeTarget(pl *pool.Pool, r pool.Request, b *pool.Backend, tried *pool.Tried) *pool.Backend {
	if !p.hedgeBudget.spend() {
		return nil
	}
	hb, _ := pl.Acquire(r, *tried)
	if hb == nil {
		return nil
	}
	tried.Add(hb)
	b.Hedged()
	return hb
}
