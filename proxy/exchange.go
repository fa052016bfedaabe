package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"runtime"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// exchange sends req to b over one of its pooled connections and reads the
// response into resp. It does what HostClient.Do would, minus the work the
// proxy does not need per request (a retry loop of its own, runtime timers
// for deadlines: the watchdog times the exchange), and with two additions.
//
// Between sending and reading it yields to the other connections'
// goroutines. By the time it is scheduled again the backend has usually
// answered, so the read finds data at once instead of failing with EAGAIN,
// parking, and reading again after the wake-up: one syscall and one park
// fewer for every request under load, at the cost of a scheduler pass when
// idle.
//
// The response header must arrive within the try timeout; only then does the
// backend timeout govern the rest. A frozen backend (one that accepts and
// never answers) costs a request the try timeout, not the backend timeout.
//
// hooks is nil except for the concurrent attempts of a hedged request.
func (p *Proxy) exchange(b *pool.Backend, req *fasthttp.Request, resp *fasthttp.Response, hooks *attemptHooks) (failure, error) {
	hc := b.Transport().(*fasthttp.HostClient)
	resp.Reset()
	cc, err := hc.AcquireConn(p.cfg.BackendTimeout, false)
	if err != nil {
		return classifyError(err), err
	}
	conn := cc.Conn()
	bc := conn.(*backendConn)
	if hooks != nil && hooks.attach(bc) {
		hc.ReleaseConn(cc)
		return failClosed, errAborted
	}
	start := bc.arm(p.headerTimeout)
	bw := hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		return p.exchangeFailed(bc, err, p.headerTimeoutFailure)
	}

	runtime.Gosched()

	if req.Header.IsHead() {
		resp.SkipBody = true
	}
	resp.Header.DisableNormalizing()
	br := hc.AcquireReader(conn)
	if err = readResponseHeader(br, resp); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		return p.exchangeFailed(bc, err, p.headerTimeoutFailure)
	}
	if hooks != nil {
		hooks.header.Store(true)
	}
	bc.armAt(start + int64(p.cfg.BackendTimeout))
	err = readResponseBody(br, resp, p.cfg.MaxResponseBodySize)
	hc.ReleaseReader(br)
	if err != nil {
		hc.CloseConn(cc)
		return p.exchangeFailed(bc, err, failTimeout)
	}
	bc.disarm()
	if resp.ConnectionClose() || (hooks != nil && hooks.detach()) {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return 0, nil
}

// maxInterimResponses bounds the 1xx responses skipped before the real one,
// as fasthttp does.
const maxInterimResponses = 100

var errTooManyInterim = errors.New("too many 1xx responses")

// readResponseHeader reads the final response header, skipping interim 1xx
// responses other than 101 Switching Protocols.
func readResponseHeader(br *bufio.Reader, resp *fasthttp.Response) error {
	for n := 0; ; n++ {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		code := resp.Header.StatusCode()
		if code >= 200 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
		if n == maxInterimResponses {
			return errTooManyInterim
		}
	}
}

// readResponseBody reads the body that the header announces, and the
// trailer of a chunked one.
func readResponseBody(br *bufio.Reader, resp *fasthttp.Response, limit int) error {
	code := resp.StatusCode()
	if resp.SkipBody || code < 200 || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified {
		return nil
	}
	if err := resp.ReadBody(br, limit); err != nil {
		return err
	}
	if resp.Header.ContentLength() == -1 {
		return resp.Header.ReadTrailer(br)
	}
	return nil
}

// exchangeFailed says why an exchange failed. One whose connection the
// watchdog closed failed by timing out: onExpiry says which timeout was
// running.
func (p *Proxy) exchangeFailed(bc *backendConn, err error, onExpiry failure) (failure, error) {
	if bc.expired.Load() {
		if onExpiry == failTryTimeout {
			return failTryTimeout, fmt.Errorf("no response header within %v", p.headerTimeout)
		}
		return failTimeout, fmt.Errorf("no complete response within %v", p.cfg.BackendTimeout)
	}
	return classifyError(err), err
}
