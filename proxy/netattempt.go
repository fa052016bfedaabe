package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The net/http path's retry loop: netFront is ReverseProxy's Transport. One
// RoundTrip makes the attempts of one request, each on a backend picked by
// the pool, with the rules of the HTTP/1.1 path (handler.go): a backend
// never tried twice, connect failures retried for any method, others only
// for replayable requests, the try timeout on the response header, passive
// ejection, hedging for GET and HEAD.

// netFailure is the error RoundTrip returns when every attempt failed: the
// error handler answers by its kind.
type netFailure struct {
	f   failure
	err error
}

func (e *netFailure) Error() string {
	if e.err == nil {
		return "no usable backend"
	}
	return e.err.Error()
}

func (e *netFailure) Unwrap() error { return e.err }

// RoundTrip implements http.RoundTripper over the whole pool.
func (f *netFront) RoundTrip(req *http.Request) (*http.Response, error) {
	p := f.p
	st := stateOf(req.Context())
	var tried pool.Tried
	var last failure
	var lastErr error
	var failed *pool.Backend
	for attempt := 0; attempt <= p.retries; attempt++ {
		b := f.acquire(st, tried, &last)
		if b == nil {
			break
		}
		if failed != nil {
			failed.Retried()
			failed = nil
		}
		tried.Add(b)
		if p.debug {
			p.log.Debug("Selected backend: " + b.URL())
		}
		var resp *http.Response
		var fl failure
		var err error
		if st.hedge && attempt == 0 {
			resp, b, fl, err = f.hedged(req, st, b, &tried)
		} else {
			a := f.start(req, st, b, nil)
			resp, fl, err = a.wait()
			if err != nil {
				b.Done(true)
				p.attemptFailed(b, fl, err)
				failed = b
			}
		}
		st.attempts = tried.Len()
		if err == nil {
			st.served = b
			return resp, nil
		}
		last, lastErr = fl, err
		if fl.clients() {
			break
		}
		if !fl.retryable(st.replay) {
			break
		}
	}
	if last == 0 {
		p.traffic.NoBackend()
	}
	return nil, &netFailure{f: last, err: lastErr}
}

// acquire begins an attempt on the pinned backend while it can take one,
// else on the policy's choice; see Proxy.acquire.
func (f *netFront) acquire(st *netState, tried pool.Tried, last *failure) *pool.Backend {
	if st.pinned != nil && st.rt.pool.AcquireBackend(st.pinned, tried) {
		return st.pinned
	}
	b, res := st.rt.pool.Acquire((*netKey)(st), tried)
	if res == pool.AllAtLimit {
		*last = failBusy
	}
	return b
}

// netAttempt is one attempt on one backend, begun by start. Its result
// arrives on done (hedged attempts run in their own goroutines).
type netAttempt struct {
	f     *netFront
	st    *netState
	b     *pool.Backend
	sd    *streamDeadline
	start time.Duration
	// headerWait is armed while the response header is awaited; a
	// deadline that passes then is a try timeout, else a backend timeout.
	headerWait atomic.Bool
	headers    atomic.Bool
	aborted    atomic.Bool

	resp *http.Response
	fl   failure
	err  error
	done chan struct{}
}

// start sends req to b. With done nil it runs in the caller's goroutine
// (wait returns at once); otherwise in its own, closing done at the end.
func (f *netFront) start(req *http.Request, st *netState, b *pool.Backend, done chan *netAttempt) *netAttempt {
	p := f.p
	// The attempt's context is cancelled when the client goes away, the
	// deadline passes or the attempt is abandoned, but not when the
	// request's handler returns after a clean end: net/http decides
	// whether an HTTP/1.1 connection goes back to its pool after the
	// body's end, from another goroutine, and a context cancelled by then
	// makes it close the connection instead.
	ctx, cancel := context.WithCancel(context.WithoutCancel(req.Context()))
	a := &netAttempt{f: f, st: st, b: b, done: make(chan struct{})}
	a.sd = p.wd.trackStream(cancel)
	a.sd.stop = context.AfterFunc(req.Context(), cancel)

	out := req.WithContext(ctx)
	u := *req.URL
	u.Host = b.Addr()
	out.URL = &u
	if out.Host == "" {
		// HTTP/1.0 clients may omit Host; the backend needs one.
		out.Host = b.Addr()
	}
	switch {
	case st.body != nil:
		body := st.body
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		out.ContentLength = int64(len(body))
	case st.upload != nil:
		st.upload.attach(a)
		// Not ReverseProxy's wrapper, whose Close does nothing: when the
		// transport abandons the stream (the backend went away), closing
		// the client's body is what wakes its blocked read, so the
		// transport can let the response body fail too.
		out.Body = st.upload
	}
	if st.upload != nil {
		a.sd.arm(p.cfg.BackendTimeout) // until the body is sent: upload.go
	} else {
		a.armHeaderWait()
	}
	run := func() {
		defer close(a.done)
		a.start = pool.Monotonic()
		resp, err := upstreamOf(b).nt.RoundTrip(out)
		if err != nil {
			a.sd.release()
			a.fl, a.err = a.failed(err)
			return
		}
		a.headers.Store(true)
		b.RecordResponse(resp.StatusCode, pool.Monotonic()-a.start)
		b.ResetFailureStreak()
		a.sd.arm(p.cfg.BackendTimeout)
		resp.Body = &netBody{a: a, src: resp.Body, resp: resp}
		a.resp = resp
		if done != nil {
			done <- a
		}
	}
	if done == nil {
		run()
		return a
	}
	go func() {
		run()
		if a.err != nil {
			done <- a
		}
	}()
	return a
}

// armHeaderWait starts the wait for the response header: the try timeout,
// or for a gRPC call (whose header may come only with its first message,
// long after the call began) the backend timeout.
func (a *netAttempt) armHeaderWait() {
	p := a.f.p
	a.headerWait.Store(true)
	if a.st.grpc {
		a.sd.arm(p.cfg.BackendTimeout)
		return
	}
	a.sd.arm(p.headerTimeout)
}

func (a *netAttempt) wait() (*http.Response, failure, error) {
	<-a.done
	return a.resp, a.fl, a.err
}

// failed says why the attempt's round trip failed.
func (a *netAttempt) failed(err error) (failure, error) {
	p := a.f.p
	switch {
	case a.aborted.Load():
		return failClosed, errAborted
	case a.sd.expired.Load():
		if a.headerWait.Load() {
			if a.st.headerTO == failTryTimeout && !a.st.grpc {
				return failTryTimeout, fmt.Errorf("no response header within %v", p.headerTimeout)
			}
			return failTimeout, fmt.Errorf("no response header within %v", p.cfg.BackendTimeout)
		}
		return failTimeout, fmt.Errorf("request body stalled past %v", p.cfg.BackendTimeout)
	case a.st.upload != nil && a.st.upload.err != nil:
		return a.st.upload.failure(), a.st.upload.err
	case a.st.in.Context().Err() != nil:
		return failClientGone, errClientGone
	}
	return classifyNetError(err), err
}

var errClientGone = errors.New("client went away")

// classifyNetError maps an error of net/http's client to a failure, as
// classifyError does for fasthttp's. The HTTP/2 client's stream and
// connection errors have no exported types: they are told apart by text.
func classifyNetError(err error) failure {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if f := classifyError(err); f != failResponse {
		return f
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return failClosed
	}
	msg := err.Error()
	for _, s := range []string{"connection lost", "server closed", "stream error", "GOAWAY", "connection reset", "broken pipe", "use of closed"} {
		if strings.Contains(msg, s) {
			return failClosed
		}
	}
	return failResponse
}

// hedged runs the first attempt of a GET or HEAD on b, and if no response
// header came after HedgeAfter, a copy on another backend; the first answer
// wins and the other attempt is cancelled (hedge.go has the rules).
func (f *netFront) hedged(req *http.Request, st *netState, b *pool.Backend, tried *pool.Tried) (*http.Response, *pool.Backend, failure, error) {
	p := f.p
	done := make(chan *netAttempt, 2)
	first := f.start(req, st, b, done)
	attempts := []*netAttempt{first}
	timer := time.NewTimer(p.cfg.HedgeAfter)
	defer timer.Stop()
	running := 1
	finish := func(a *netAttempt) {
		// Each attempt's own record, as startAttempt keeps them.
		switch {
		case a.aborted.Load():
			a.b.Done(false)
		default:
			a.b.Done(true)
			p.attemptFailed(a.b, a.fl, a.err)
		}
	}
	for {
		select {
		case <-timer.C:
			hb := p.hedgeTarget(st.rt.pool, (*netKey)(st), b, tried)
			if hb == nil {
				continue
			}
			attempts = append(attempts, f.start(req, st, hb, done))
			running++
		case a := <-done:
			running--
			if a.err == nil {
				for _, o := range attempts {
					if o != a {
						o.aborted.Store(true)
						o.sd.release()
					}
				}
				if a != first {
					a.b.HedgeWon()
				}
				// The losers report later: a late answer is dropped
				// without counting against its backend.
				go func(n int) {
					for ; n > 0; n-- {
						o := <-done
						if o.resp != nil {
							o.resp.Body.Close()
						} else {
							finish(o)
						}
					}
				}(running)
				return a.resp, a.b, 0, nil
			}
			finish(a)
			if running == 0 {
				return nil, nil, a.fl, a.err
			}
		}
	}
}

// netBody is a response body on its way to the client. Each read is
// progress on the attempt's deadline (the backend timeout bounds the gap
// between two, as for a streamed HTTP/1.1 body); Close ends the attempt. A
// gRPC stream whose backend fails midway ends with trailers carrying
// UNAVAILABLE rather than a reset: the client sees a clean gRPC status.
type netBody struct {
	a      *netAttempt
	src    io.ReadCloser
	resp   *http.Response
	eof    bool
	closed bool
}

func (nb *netBody) Read(b []byte) (int, error) {
	a := nb.a
	// The backend timeout runs while this read waits on the backend, not
	// while ReverseProxy's write to a client that stopped reading waits
	// (stream.go). While the request body still flows beside the response
	// (a gRPC stream), the deadline is the two directions' together, as
	// before: progress either way moves it.
	uploading := a.st.upload != nil && !a.st.upload.ended.Load()
	if !uploading {
		a.sd.arm(a.f.p.cfg.BackendTimeout)
	}
	n, err := nb.src.Read(b)
	switch {
	case !uploading:
		a.sd.disarm()
	case n > 0:
		a.sd.arm(a.f.p.cfg.BackendTimeout)
	}
	switch {
	case err == io.EOF:
		nb.eof = true
	case err != nil && a.st.grpc && !a.aborted.Load() && a.st.in.Context().Err() == nil:
		reason := "backend stream failed"
		if a.sd.expired.Load() {
			reason = "backend stream idle past the backend timeout"
		}
		a.f.p.attemptFailedMidway(a.b, err)
		nb.resp.Trailer = http.Header{}
		nb.resp.Trailer.Set("Grpc-Status", grpcUnavailable)
		nb.resp.Trailer.Set("Grpc-Message", reason)
		nb.eof = false
		return n, io.EOF
	}
	return n, err
}

func (nb *netBody) Close() error {
	if nb.closed {
		return nil
	}
	nb.closed = true
	a := nb.a
	if nb.eof {
		a.sd.done()
	} else {
		a.sd.release() // the rest of the body is not wanted
	}
	err := nb.src.Close()
	a.b.Done(!nb.eof && !a.aborted.Load())
	return err
}

// attemptFailedMidway records a response that broke off after its header:
// the backend answered, so it counts as a reset, not toward ejection.
func (p *Proxy) attemptFailedMidway(b *pool.Backend, err error) {
	b.RecordError(err.Error())
	b.RecordFailure(pool.ErrorReset)
	if p.debug {
		p.log.Debug("response broke off", "backend", b.URL(), "error", err.Error())
	}
}

// netUpload streams a request body to the backend of the current attempt:
// it enforces the body size limit, counts the bytes, and keeps the
// attempt's deadline moving while the body flows; once it has all been
// sent, the wait for the response header begins.
type netUpload struct {
	p     *Proxy
	st    *netState
	src   io.ReadCloser
	read  int64
	limit int64
	err   error
	a     atomic.Pointer[netAttempt]
	ended atomic.Bool // the client's body has ended, or failed
}

func (u *netUpload) attach(a *netAttempt) { u.a.Store(a) }

func (u *netUpload) Read(b []byte) (int, error) {
	a := u.a.Load()
	if a != nil && !a.headers.Load() {
		// Waiting on the client, not the backend (stream.go): its pause
		// is not the backend's silence.
		a.sd.disarm()
	}
	n, err := u.src.Read(b)
	if err != nil {
		u.ended.Store(true)
	}
	u.read += int64(n)
	if u.st.h2 {
		// An HTTP/1.1 request's body was read whole before the adaptor
		// (proxyViaNet), and HandleFastHTTP counts it.
		u.p.traffic.AddBytesIn(n)
	}
	if u.limit > 0 && u.read > u.limit {
		u.err = errBodyTooLarge
		u.ended.Store(true)
		return 0, u.err
	}
	if a != nil {
		switch {
		case err == io.EOF && !a.headers.Load():
			a.armHeaderWait()
		case n > 0 || !a.headers.Load():
			a.sd.arm(u.p.cfg.BackendTimeout)
		}
	}
	if err != nil && err != io.EOF {
		u.err = err
	}
	return n, err
}

func (u *netUpload) Close() error { return u.src.Close() }

func (u *netUpload) failure() failure {
	if u.err == errBodyTooLarge {
		return failBodyTooLarge
	}
	return failClientGone
}
