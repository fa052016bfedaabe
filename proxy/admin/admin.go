// Package admin is the load balancer's admin interface: Prometheus metrics,
// a JSON status and control API and a live dashboard, served on a listener
// of its own so that none of it is reachable through the port that serves
// traffic.
//
// It reads the pools' counters and health (package pool) and never touches
// the request path: any front end that shares the pools shows up here.
// Changes (adding, removing, weighing and draining backends, reloading the
// configuration) go through a Control and a Reloader the caller provides.
//
//	p, _ := proxy.New(cfg)
//	a, err := admin.New(p, admin.Config{Token: os.Getenv("ADMIN_TOKEN"), Control: p})
//	if err != nil {
//		log.Fatal(err) // a token with white space around it, or a space inside
//	}
//	go a.ListenAndServe("127.0.0.1:9030")
//	defer a.Shutdown(context.Background())
package admin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// DefaultAddr is where the load-balancer binary serves the admin interface
// unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:9030"

// Source is what the admin interface shows: the pools, each with its name
// and live members, and the front end's counters. *proxy.Proxy is one.
type Source interface {
	// Pools returns the pools in the order to show them. It is called for
	// every request and sample, so a reload shows at once.
	Pools() []*pool.Pool
	// Traffic returns the front end's counters.
	Traffic() *pool.Traffic
}

// AccessLogSource is a Source with an access log: *proxy.Proxy is one.
// /metrics then shows lb_access_log_dropped_total.
type AccessLogSource interface {
	// AccessLogDropped returns how many access log lines were dropped
	// because the destination did not keep up.
	AccessLogDropped() uint64
}

// ShutdownSource is a Source that says when it has begun shutting down:
// *proxy.Proxy is one. From that moment /api/health answers 503
// "shutting_down", so that a load balancer in front stops sending while
// requests in flight finish (Envoy's /ready, HAProxy's monitor fail).
type ShutdownSource interface {
	// ShuttingDown reports whether a graceful shutdown has begun, or the
	// source has been closed without one: either way it is done serving.
	ShuttingDown() bool
}

// Control changes backends at run time; *proxy.Proxy is one. A pool name
// may be empty when there is only one pool. Errors that wrap
// pool.ErrNotFound are answered 404, pool.ErrConflict 409, pool.ErrClosed
// 503, others 400.
type Control interface {
	AddBackend(pool, entry string) (*pool.Backend, error)
	RemoveBackend(pool, url string) error
	SetWeight(pool, url string, weight int) error
	DrainBackend(pool, url string) (*pool.Backend, error)
	EnableBackend(pool, url string) (*pool.Backend, error)
}

// Reloader reloads the configuration from where it came from, such as a
// file, and counts how that went.
type Reloader interface {
	// Reload applies the configuration anew; an error says why it was
	// refused, and then nothing changed. One wrapping pool.ErrClosed is
	// answered 503, any other 400.
	Reload() error
	// ReloadStats reports the reloads so far.
	ReloadStats() ReloadStats
}

// ReloadStats counts reloads, for /metrics and the status API.
type ReloadStats struct {
	Successes   uint64
	Failures    uint64
	LastSuccess time.Time // zero before the first
	LastFailure time.Time
	LastError   string // of the last failure, if the last attempt failed
}

// Config configures the admin interface. The zero value serves everything
// without authentication, and no changes.
type Config struct {
	// Token, when set, is required on every request as
	// "Authorization: Bearer <token>" (or as the password of HTTP Basic, for
	// browsers). Empty means no authentication: keep the listener on
	// loopback or a private network then. It may not begin or end with
	// white space (a newline read from a file with it, say): a request's
	// credentials lose it, so no client could ever send the token, and
	// New refuses one; nor may it contain a control character (a byte
	// below 0x20, or 0x7f), which no client sends in a header.
	Token string
	// Version is shown on the dashboard and in lb_build_info; empty means
	// the module version from the build info, or "dev".
	Version string
	// Logger receives the server's errors and the changes made through it;
	// nil means slog.Default().
	Logger *slog.Logger
	// Control, when set, serves the backend endpoints under /api/backends/
	// (add, remove, weight, drain, enable). Nil leaves the API read-only.
	Control Control
	// Reloader, when set, serves POST /api/reload and the reload metrics;
	// without it, POST /api/reload answers 409: nothing to reload.
	Reloader Reloader
}

// Server serves the admin interface for a Source. It is safe for concurrent
// use. Create it with New and stop it with Shutdown.
type Server struct {
	src      Source
	cfg      Config
	log      *slog.Logger
	tokenSum []byte // SHA-256 of the token; nil without one
	revision string // VCS revision from the build info, if any
	started  time.Time
	window   *window
	metrics  fasthttp.RequestHandler // serveMetrics, compressed when asked

	serverOnce sync.Once
	server     *fasthttp.Server

	// The listeners Serve was given, and whether Shutdown has begun:
	// fasthttp learns of a listener only once its Serve runs, and would
	// miss one that a Shutdown came before, serving it for good.
	lnMu      sync.Mutex
	listeners []net.Listener
	shut      bool

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

// New returns the admin interface for src and starts sampling its counters
// once a second for the rates the status API reports. It refuses a Token
// with white space at its start or end, or a space or a control character
// inside, with an error that says so (and at which byte) without showing
// the token, and then starts nothing.
func New(src Source, cfg Config) (*Server, error) {
	if err := checkToken(cfg.Token); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		src:     src,
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		window:  newWindow(src),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	s.metrics = fasthttp.CompressHandlerLevel(s.serveMetrics, fasthttp.CompressBestSpeed)
	if cfg.Token != "" {
		sum := sha256.Sum256([]byte(cfg.Token))
		s.tokenSum = sum[:]
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if s.cfg.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			s.cfg.Version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				s.revision = kv.Value
			}
		}
	}
	if s.cfg.Version == "" {
		s.cfg.Version = "dev"
	}
	go func() {
		defer close(s.stopped)
		s.window.run(s.stop)
	}()
	return s, nil
}

// Handler returns the admin interface as a fasthttp handler, for mounting
// in a server of the caller's (on a private listener: it is the whole admin
// interface, authentication included).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// route returns the handler for path, and whether it changes things (POST)
// rather than reads them (GET, HEAD).
func (s *Server) route(path string) (h fasthttp.RequestHandler, post, ok bool) {
	switch path {
	case "/metrics":
		return s.metrics, false, true
	case "/api/backends":
		return s.serveBackends, false, true
	case "/api/pools":
		return s.servePools, false, true
	case "/api/health":
		return s.serveHealth, false, true
	case "/api/status":
		return s.serveStatus, false, true
	case "/api/reload":
		return s.serveReload, true, true // without a Reloader, a 409 that says so
	}
	if h, ok := s.controlRoute(path); ok {
		return h, true, true
	}
	h, ok = s.serveDashboard(path)
	return h, false, ok
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	if !s.authorized(ctx) {
		unauthorized(ctx)
		return
	}
	h, post, ok := s.route(string(ctx.Path()))
	switch {
	case !ok:
		plain(ctx, fasthttp.StatusNotFound, "404 Not Found\n")
		return
	case post && !ctx.IsPost():
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "POST")
		plain(ctx, fasthttp.StatusMethodNotAllowed, "405 Method Not Allowed\n")
		return
	case !post && !ctx.IsGet() && !ctx.IsHead():
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		plain(ctx, fasthttp.StatusMethodNotAllowed, "405 Method Not Allowed\n")
		return
	case post && crossSite(ctx):
		plain(ctx, fasthttp.StatusForbidden, "403 Forbidden: cross-site request\n")
		return
	case post && !jsonBody(ctx):
		plain(ctx, fasthttp.StatusUnsupportedMediaType, "415 Unsupported Media Type: send a JSON body with Content-Type: application/json\n")
		return
	}
	h(ctx)
}

// plain answers with status and a short text, keeping the headers set.
func plain(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(body)
}

// Server returns the fasthttp server that Serve runs. It is created once.
func (s *Server) Server() *fasthttp.Server {
	s.serverOnce.Do(func() {
		s.server = &fasthttp.Server{
			Handler:               s.handle,
			Name:                  "load-balancer admin",
			NoDefaultServerHeader: true,
			ReadTimeout:           10 * time.Second,
			WriteTimeout:          10 * time.Second,
			IdleTimeout:           time.Minute,
			Concurrency:           256,
			ReadBufferSize:        8 << 10,
			MaxRequestBodySize:    4 << 10,
			CloseOnShutdown:       true,
			Logger:                fasthttpLogger{s.log},
		}
	})
	return s.server
}

// Serve answers admin requests on ln until Shutdown, and then returns
// http.ErrServerClosed, as net/http's Server does; called after Shutdown,
// it closes ln and returns http.ErrServerClosed at once.
func (s *Server) Serve(ln net.Listener) error {
	s.lnMu.Lock()
	if s.shut {
		s.lnMu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.listeners = append(s.listeners, ln)
	s.lnMu.Unlock()
	err := s.Server().Serve(ln)
	s.lnMu.Lock()
	shut := s.shut
	s.lnMu.Unlock()
	if shut {
		return http.ErrServerClosed // fasthttp says nil, or the closed listener's error
	}
	return err
}

// ListenAndServe listens on the TCP address addr and calls Serve. Its host
// follows the rules proxy.Listen does: an IPv4 address in dotted decimal,
// no trailing dot on an IP address, no empty label, a name's trailing dot
// dropped. After Shutdown it returns http.ErrServerClosed without
// listening.
func (s *Server) ListenAndServe(addr string) error {
	s.lnMu.Lock()
	shut := s.shut
	s.lnMu.Unlock()
	if shut {
		return http.ErrServerClosed
	}
	a, err := hostname.ListenAddr(addr)
	if err != nil {
		return fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", a)
	if err != nil {
		return fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Shutdown stops the server, waiting for requests in progress until ctx
// ends, and stops sampling. The Serve calls it ends, and any made
// afterwards, return http.ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.lnMu.Lock()
	s.shut = true
	for _, ln := range s.listeners {
		ln.Close() // fasthttp closes those it knows of again: harmless
	}
	s.lnMu.Unlock()
	err := s.Server().ShutdownWithContext(ctx)
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listeners closed above
	}
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	return err
}

// fasthttpLogger sends fasthttp's messages (broken connections, mostly) to
// slog at debug level.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}
