// Package admin is the load balancer's admin interface: Prometheus metrics,
// a JSON status API and a live dashboard, served on a listener of its own so
// that none of it is reachable through the port that serves traffic.
//
// It reads a pool's counters and health (package pool) and never touches the
// request path: any front end that shares the pool shows up here.
//
//	p, _ := proxy.New(cfg)
//	a := admin.New(p.Pool(), admin.Config{Token: os.Getenv("ADMIN_TOKEN")})
//	go a.ListenAndServe("127.0.0.1:9030")
//	defer a.Shutdown(context.Background())
package admin

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// DefaultAddr is where the load-balancer binary serves the admin interface
// unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:9030"

// Config configures the admin interface. The zero value serves everything
// without authentication.
type Config struct {
	// Token, when set, is required on every request as
	// "Authorization: Bearer <token>" (or as the password of HTTP Basic, for
	// browsers). Empty means no authentication: keep the listener on
	// loopback or a private network then.
	Token string
	// Version is shown on the dashboard and in lb_build_info; empty means
	// the module version from the build info, or "dev".
	Version string
	// Logger receives the server's errors; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the admin interface for one pool. It is safe for concurrent
// use. Create it with New and stop it with Shutdown.
type Server struct {
	pool     *pool.Pool
	cfg      Config
	log      *slog.Logger
	tokenSum []byte // SHA-256 of the token; nil without one
	revision string // VCS revision from the build info, if any
	started  time.Time
	window   *window
	metrics  fasthttp.RequestHandler // serveMetrics, compressed when asked

	serverOnce sync.Once
	server     *fasthttp.Server

	stopOnce sync.Once
	stop     chan struct{}
	stopped  chan struct{}
}

// New returns the admin interface for p and starts sampling its counters
// once a second for the rates the status API reports.
func New(p *pool.Pool, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		pool:    p,
		cfg:     cfg,
		log:     cfg.Logger,
		started: time.Now(),
		window:  newWindow(p),
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
	return s
}

// Handler returns the admin interface as a fasthttp handler, for mounting
// in a server of the caller's (on a private listener: it is the whole admin
// interface, authentication included).
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// route returns the handler for path.
func (s *Server) route(path string) (fasthttp.RequestHandler, bool) {
	switch path {
	case "/metrics":
		return s.metrics, true
	case "/api/backends":
		return s.serveBackends, true
	case "/api/health":
		return s.serveHealth, true
	case "/api/status":
		return s.serveStatus, true
	}
	return s.serveDashboard(path)
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	if !s.authorized(ctx) {
		unauthorized(ctx)
		return
	}
	h, ok := s.route(string(ctx.Path()))
	if !ok {
		plain(ctx, fasthttp.StatusNotFound, "404 Not Found\n")
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		plain(ctx, fasthttp.StatusMethodNotAllowed, "405 Method Not Allowed\n")
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

// Serve answers admin requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.Server().Serve(ln)
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listener on %s: %w", addr, err)
	}
	return s.Serve(ln)
}

// Shutdown stops the server, waiting for requests in progress until ctx
// ends, and stops sampling.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.Server().ShutdownWithContext(ctx)
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
