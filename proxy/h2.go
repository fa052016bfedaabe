package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// HTTP/2 to clients. fasthttp speaks only HTTP/1.1, so the fasthttp server
// stays the listener and hands each connection that chose HTTP/2 over to
// golang.org/x/net/http2's server, whose handler proxies with
// httputil.ReverseProxy (netproxy.go) over the same pool, policies, health
// and counters. Over TLS the choice is ALPN: the listener offers h2 and
// http/1.1, and fasthttp.Server.NextProto("h2") passes h2 connections on.
// On a plain listener with H2C on, a connection whose first bytes are the
// HTTP/2 preface is served as HTTP/2 with prior knowledge (h2c.go).
//
// An HTTP/2 connection is served inside the fasthttp worker that accepted
// it, so fasthttp's connection limit counts it and its Shutdown waits for
// it; fasthttp clears its own deadlines when handing over, and the HTTP/2
// server times the connection itself (the limits below).

// Defaults for HTTP2Config.
const (
	DefaultHTTP2MaxConcurrentStreams = 250
	DefaultHTTP2ReadIdleTimeout      = 30 * time.Second
	DefaultHTTP2PingTimeout          = 15 * time.Second
)

// HTTP2Config configures HTTP/2 towards clients. The zero value serves
// HTTP/2 over TLS (when Config.TLS is set) and not on plain listeners.
type HTTP2Config struct {
	// Disable turns HTTP/2 off: the TLS listener offers http/1.1 alone,
	// as before HTTP/2 support.
	Disable bool
	// H2C serves HTTP/2 with prior knowledge (h2c) on the plain listeners
	// too: a connection that opens with the HTTP/2 preface is served as
	// HTTP/2, anything else as HTTP/1.1. False answers the preface with 400,
	// as an HTTP/1.1 server does. (h2c by Upgrade: h2c is not offered; no
	// browser uses it and it is an old smuggling vector.)
	H2C bool
	// MaxConcurrentStreams caps the requests one connection may have in
	// flight (SETTINGS_MAX_CONCURRENT_STREAMS); a client opening more gets
	// them refused. Zero means DefaultHTTP2MaxConcurrentStreams (250).
	MaxConcurrentStreams uint32
	// ReadIdleTimeout is how long a connection may send nothing before the
	// server pings it; a ping unanswered within PingTimeout closes it. Zero
	// means DefaultHTTP2ReadIdleTimeout (30s) and DefaultHTTP2PingTimeout
	// (15s).
	ReadIdleTimeout time.Duration
	PingTimeout     time.Duration
}

func (c HTTP2Config) withDefaults() (HTTP2Config, error) {
	if c.ReadIdleTimeout < 0 || c.PingTimeout < 0 {
		return c, fmt.Errorf("HTTP/2 read idle timeout %v, ping timeout %v: must not be negative", c.ReadIdleTimeout, c.PingTimeout)
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = DefaultHTTP2MaxConcurrentStreams
	}
	if c.ReadIdleTimeout == 0 {
		c.ReadIdleTimeout = DefaultHTTP2ReadIdleTimeout
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = DefaultHTTP2PingTimeout
	}
	return c, nil
}

// h2Server serves HTTP/2 client connections and tracks them, so a graceful
// shutdown can send each a GOAWAY and wait for its streams.
type h2Server struct {
	p  *Proxy
	h2 *http2.Server
	// hs is the http.Server the HTTP/2 server takes its base settings from
	// (handler, header size limit, error log); its Shutdown makes every
	// connection send GOAWAY. It never listens itself.
	hs *http.Server

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	drained chan struct{} // closed when conns empties while closing
}

func newH2Server(p *Proxy, handler http.Handler) (*h2Server, error) {
	c, hc := p.cfg, p.cfg.HTTP2
	hs := &http.Server{
		Handler: handler,
		// SETTINGS_MAX_HEADER_LIST_SIZE: a larger header block gets 431,
		// as on HTTP/1.1. CONTINUATION floods are cut by the same limit.
		MaxHeaderBytes: c.MaxHeaderSize,
		IdleTimeout:    c.ClientIdleTimeout,
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	h2s := &http2.Server{
		MaxConcurrentStreams: hc.MaxConcurrentStreams,
		// A connection without streams is closed after this, as an idle
		// HTTP/1.1 keep-alive connection is.
		IdleTimeout:     c.ClientIdleTimeout,
		ReadIdleTimeout: hc.ReadIdleTimeout,
		PingTimeout:     hc.PingTimeout,
		// A client that stops reading stalls writes: drop it after this,
		// as the HTTP/1.1 side does.
		WriteByteTimeout: c.ClientIdleTimeout,
	}
	if p.debug {
		h2s.CountError = func(kind string) { p.log.Debug("http2 client error", "kind", kind) }
	}
	if err := http2.ConfigureServer(hs, h2s); err != nil {
		return nil, fmt.Errorf("HTTP/2 server: %w", err)
	}
	return &h2Server{p: p, h2: h2s, hs: hs, conns: make(map[net.Conn]struct{})}, nil
}

// serveConn is fasthttp's NextProto handler for h2: it serves c, a TLS
// connection that negotiated h2, until the client or a shutdown ends it.
func (s *h2Server) serveConn(c net.Conn) error {
	s.serve(c, c)
	return nil
}

// serve serves HTTP/2 on c. tracked is the connection the fasthttp server
// and the watchdog know (c itself, or the wrapper c came through).
func (s *h2Server) serve(c, tracked net.Conn) {
	// The HTTP/2 server times the connection from here on.
	s.p.wd.forget(tracked)
	if !s.add(c) {
		abortConn(c) // accepted as the server shut down
		return
	}
	defer s.remove(c)
	t := s.p.traffic
	t.HTTP2ConnOpened()
	defer t.HTTP2ConnClosed()
	s.h2.ServeConn(c, &http2.ServeConnOpts{BaseConfig: s.hs})
}

func (s *h2Server) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *h2Server) remove(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.closing.Load() && len(s.conns) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}

// drainPoll is how often a shutdown asks connections to go away again: one
// that was being set up when the first GOAWAY went out gets it then.
const drainPoll = 50 * time.Millisecond

// shutdown sends GOAWAY on every HTTP/2 connection and waits until their
// streams have finished and they closed, or ctx ends; then it closes what
// is left and returns ctx's error.
func (s *h2Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	drained := make(chan struct{})
	if len(s.conns) == 0 {
		close(drained)
	} else {
		s.drained = drained
	}
	s.mu.Unlock()

	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		// The HTTP/2 server's shutdown hook sends GOAWAY (once per
		// connection); the http.Server serves nothing else, so this
		// returns at once.
		s.hs.Shutdown(context.Background()) //nolint:errcheck // no listener of its own
		select {
		case <-drained:
			return nil
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				abortConn(c)
			}
			s.mu.Unlock()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// errH2Disabled is returned when a Proxy asked to serve h2c has HTTP/2 off.
var errH2Disabled = errors.New("proxy: HTTP/2 is disabled (HTTP2Config.Disable) but H2C asks for it")
