package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
)

// ErrServerClosed is what Serve, ServeTLS, ListenAndServe and
// ListenAndServeTLS return once Shutdown has begun, whether it ended them or
// they were called afterwards, and when they are called after Close. It is
// net/http's own, so errors.Is(err, http.ErrServerClosed) (or ==) tells a
// stop asked for from a listener that failed, as for an http.Server.
var ErrServerClosed = http.ErrServerClosed

// Server returns the fasthttp server that Serve runs, configured for
// proxying: header names and paths pass through untouched (Expect, which
// never passes, excepted: see continue.go), nothing is added to responses,
// and limits follow the Config. It is created once.
// Its ConnState hook must stay: it enforces the client timeouts.
func (p *Proxy) Server() *fasthttp.Server {
	p.serverOnce.Do(func() {
		c := p.cfg
		p.server = &fasthttp.Server{
			Handler:       p.HandleFastHTTP,
			ErrorHandler:  p.handleReadError,
			ExpectHandler: p.expectContinue,
			// Expect in any letter case: see continue.go.
			HeaderReceived: headerReceived,
			Logger:         fasthttpLogger{p.log},

			// The proxy's listeners keep MaxConns and MaxConnsPerIP
			// (connlimit.go), counting every connection open, parked and
			// tunnelled ones too. Concurrency, which counts only those
			// fasthttp is serving, stays for this server run on listeners
			// of someone else's; on the proxy's it never refuses first.
			Concurrency:    c.MaxConns,
			ReadBufferSize: c.MaxHeaderSize,
			// fasthttp reads the first min(this, length, 8 KiB) bytes of
			// a body before calling the handler, under the header
			// timeout: a small body sent slowly would be cut by it, and
			// a length over MaxBodySize would get its 413 only once 8 KiB
			// had come. One byte keeps both to the handler, which reads
			// the body as a stream and enforces MaxBodySize itself.
			MaxRequestBodySize: 1,
			// A worker whose connection was parked (park.go) or closed
			// waits for the next one in fasthttp's pool, its stack with
			// it: 4 KiB a connection kept for fasthttp's default 10 s
			// after a crowd of connections went idle. Under load a
			// worker is taken again within moments, so a second costs
			// nothing there.
			MaxIdleWorkerDuration: parkAfter,
			// Client timeouts are the watchdog's; see watchdog.go.
			ConnState:       p.connState,
			LazyRequestTime: true,

			// Bodies arrive as streams: see body.go.
			StreamRequestBody:             true,
			NoDefaultServerHeader:         true,
			NoDefaultContentType:          true,
			DisableHeaderNamesNormalizing: true,
			DisablePreParseMultipartForm:  true,
			CloseOnShutdown:               true,
		}
		if p.h2 != nil && p.tlsConfig != nil {
			// TLS connections that negotiated h2 go to the HTTP/2 server.
			// (fasthttp also adds h2 to its own TLS configuration, which
			// the proxy does not use: ServeTLS brings its own.)
			p.server.NextProto("h2", p.h2.serveConn)
		}
	})
	return p.server
}

// Serve proxies the requests of connections accepted on ln. It returns when
// ln fails, or ErrServerClosed when Shutdown is called; called after
// Shutdown or Close, it closes ln and returns ErrServerClosed at once.
// With HTTP2Config.H2C, connections that open with the HTTP/2 preface are
// served as HTTP/2.
func (p *Proxy) Serve(ln net.Listener) error {
	if p.serveRefused() {
		ln.Close()
		return ErrServerClosed
	}
	gl := p.guardListener(ln, false)
	if p.cfg.HTTP2.H2C && p.h2 != nil {
		return p.serve(&h2cListener{Listener: gl, s: p.h2})
	}
	if gl.acc != nil {
		gl.parker = p.parkerOf() // idle connections are parked (park.go)
	}
	return p.serve(gl)
}

// serve runs the fasthttp server on ln unless Shutdown has begun or Close
// has been called. fasthttp learns of a listener only once its Serve runs,
// and a Shutdown before that would miss it and leave it serving for good;
// so the proxy keeps the listeners it is given and closes them itself on
// Shutdown.
func (p *Proxy) serve(ln net.Listener) error {
	p.lnMu.Lock()
	if p.shut || p.closed.Load() {
		p.lnMu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	p.listeners = append(p.listeners, ln)
	p.lnMu.Unlock()
	err := p.Server().Serve(ln)
	if p.shutdownBegun() {
		// Closed by Shutdown, possibly before fasthttp knew of it, which
		// then returns nil or the listener's net.ErrClosed: either way a
		// stop asked for, as net/http reports it.
		return ErrServerClosed
	}
	return err
}

// serveRefused reports whether Serve must refuse a listener: Shutdown has
// begun, or Close has been called (the watchdog, health checks and backend
// connections are gone; a server started now would run without them).
func (p *Proxy) serveRefused() bool {
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	return p.shut || p.closed.Load()
}

// ShuttingDown reports whether Shutdown has begun or Close has been called:
// from then on the proxy is done serving (a Serve running when Close alone
// was called goes on, without health checks, until it is stopped), and the
// admin interface's /api/health answers 503, so that a readiness probe
// stops sending to it.
func (p *Proxy) ShuttingDown() bool {
	return p.serveRefused()
}

// shutdownBegun reports whether Shutdown has begun: a Serve that ends then
// was stopped on purpose. Close alone does not stop one, so a Serve that
// ends after it has failed.
func (p *Proxy) shutdownBegun() bool {
	p.lnMu.Lock()
	defer p.lnMu.Unlock()
	return p.shut
}

// ListenAndServe listens on the TCP address addr and calls Serve. After
// Shutdown or Close it returns ErrServerClosed without listening.
func (p *Proxy) ListenAndServe(addr string) error {
	if p.serveRefused() {
		return ErrServerClosed
	}
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return p.Serve(ln)
}

// Listen returns a TCP listener on addr set up for the proxy: accepted
// connections get no TCP keep-alive probes (the watchdog's idle timeout ends
// idle connections, as nginx's keepalive_timeout does, without the four
// setsockopt calls per connection that Go's default costs), and when the
// proxy serves it (Serve, ServeTLS) it accepts them itself, cheaper than
// net does (fdaccept.go). Accept from it only through the proxy: an Accept
// of its own alongside would compete for the same wait. A listener from
// elsewhere is served through its own Accept.
//
// The host follows the rules of every host in the configuration: an IPv4
// address in dotted decimal (127.1 or 0x7f.1, which C's inet_aton reads as
// 127.0.0.1, are refused, naming what it reads), no trailing dot on an IP
// address, no empty label; a name's trailing dot is dropped (the same
// name, which Go's resolver finds in /etc/hosts only without it).
func Listen(addr string) (net.Listener, error) {
	a, err := hostname.ListenAddr(addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", a)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	ownAcceptor(ln)
	return ln, nil
}

// Shutdown stops accepting connections, lets in-flight requests finish until
// ctx ends (HTTP/2 connections get a GOAWAY and finish their streams),
// closes idle client connections, then stops health checks and
// closes backend connections (it calls Close). It returns ctx's error if
// requests were still running when ctx ended. The Serve calls it ends, and
// any made afterwards, return ErrServerClosed. ctx must not be nil, as for
// net/http's Server.Shutdown.
func (p *Proxy) Shutdown(ctx context.Context) error {
	// HTTP/2 connections live inside fasthttp's workers, so its shutdown
	// waits for them: tell them to go away (GOAWAY) at the same time.
	var h2done chan error
	if p.h2 != nil {
		h2done = make(chan error, 1)
		go func() { h2done <- p.h2.shutdown(ctx) }()
	}
	p.lnMu.Lock()
	p.shut = true
	for _, ln := range p.listeners {
		ln.Close() // fasthttp closes those it knows of again: harmless
	}
	pk := p.parker
	p.lnMu.Unlock()
	if pk != nil {
		pk.close() // parked connections are idle ones: closed, as fasthttp closes its own
	}
	err := p.Server().ShutdownWithContext(ctx)
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listeners closed above
	}
	if pk != nil {
		pk.closeServing()
	}
	if h2done != nil {
		if herr := <-h2done; err == nil {
			err = herr
		}
	}
	// The server does not wait for hijacked connections: tunnels.
	if terr := p.wd.tunnels.drain(ctx); err == nil {
		err = terr
	}
	p.Close()
	return err
}

// connState counts client connections, then hands the change to the
// watchdog.
func (p *Proxy) connState(c net.Conn, state fasthttp.ConnState) {
	switch state {
	case fasthttp.StateNew:
		p.traffic.ConnOpened()
	case fasthttp.StateClosed:
		if g := clientOf(c); g != nil && g.park.Load() == parkLeaving {
			// Its idle read ended for parking: it stays open, counted
			// and timed, in the parker.
			g.releaseBody()
			if g.parker.hold(g) {
				return
			}
		}
		p.traffic.ConnClosed()
		// A hijacked connection is a tunnel's now, and stays open and
		// counted until the tunnel ends (runTunnel).
	}
	p.wd.connState(c, state)
}

// fasthttpLogger routes fasthttp's own messages (mostly broken client
// connections) to slog at debug level, so they cost nothing by default.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}
