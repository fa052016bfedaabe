// Package backendtest runs the project's test backend on a loopback port for
// tests of anything that talks to backends: it can be killed as a crashed
// process would be, and restarted on the same address.
package backendtest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/backend"
)

// Server is a backend.Handler served on 127.0.0.1. It is safe for
// concurrent use.
type Server struct {
	t       testing.TB
	handler *backend.Handler
	hits    atomic.Int64

	mu    sync.Mutex
	addr  string
	ln    net.Listener
	conns map[net.Conn]struct{}
	// unhold lets a killed server's port go (HoldPort); nil while it
	// listens.
	unhold func()
}

// Start serves a backend named name (its answers say so) on a free loopback
// port until the test ends. An empty name means the port.
func Start(t testing.TB, name string) *Server {
	t.Helper()
	s := &Server{t: t}
	s.listen("127.0.0.1:0", name)
	t.Cleanup(s.end)
	return s
}

// StartAt is Start on the address addr, such as "127.0.0.2:8081" for a
// second loopback address on the port of another backend (DNS records give
// one port for many addresses).
func StartAt(t testing.TB, addr, name string) *Server {
	t.Helper()
	s := &Server{t: t}
	s.listen(addr, name)
	t.Cleanup(s.end)
	return s
}

// URL returns "http://127.0.0.1:port".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Handler returns the backend's handler, to switch its health with
// SetHealthy, say.
func (s *Server) Handler() *backend.Handler { return s.handler }

// Hits returns how many requests it served other than GET /health.
func (s *Server) Hits() int64 { return s.hits.Load() }

func (s *Server) listen(addr, name string) {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatalf("backend: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr, s.ln, s.conns = ln.Addr().String(), ln, map[net.Conn]struct{}{}
	if s.handler == nil {
		if name == "" {
			_, name, _ = net.SplitHostPort(s.addr)
		}
		s.handler = backend.New(name)
	}
	srv := backend.NewServer(s.handler)
	srv.Logger = quiet{} // connections a kill cuts are expected
	srv.Handler = func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/health" {
			s.hits.Add(1)
		}
		s.handler.HandleFastHTTP(ctx)
	}
	srv.ConnState = func(c net.Conn, state fasthttp.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch state {
		case fasthttp.StateNew:
			s.conns[c] = struct{}{}
		case fasthttp.StateClosed, fasthttp.StateHijacked:
			delete(s.conns, c)
		}
	}
	go srv.Serve(ln) //nolint:errcheck // ends when killed
}

// Kill closes the listener and every open connection without a word to the
// clients, as a crashed process would. Killing a dead server does nothing.
// Its port stays refused, and kept from other listeners, until Restart or
// the test's end.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return
	}
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.ln = nil
	s.unhold = HoldPort(s.addr)
}

// end kills the server and lets its port go, at the test's end.
func (s *Server) end() {
	s.Kill()
	s.release()
}

// release lets go of the port a Kill held.
func (s *Server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unhold != nil {
		s.unhold()
		s.unhold = nil
	}
}

// Restart listens again on the address it had, with the same handler.
func (s *Server) Restart() {
	s.t.Helper()
	s.release()
	s.mu.Lock()
	addr := s.addr
	s.mu.Unlock()
	s.listen(addr, "")
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
