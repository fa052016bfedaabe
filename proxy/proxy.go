// Package proxy is an HTTP/1.1 reverse proxy and load balancer on fasthttp.
// A Proxy spreads requests over a pool of backends, retries failed attempts
// on other backends, and checks backend health in the background. It can run
// its own server (Serve, ListenAndServe) or be mounted as a handler
// (HandleFastHTTP) in a fasthttp server of the caller's.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/health"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultRetries            = 2
	DefaultDialTimeout        = 3 * time.Second
	DefaultBackendTimeout     = 30 * time.Second
	DefaultBackendIdleTimeout = 4 * time.Second
	DefaultClientIdleTimeout  = 60 * time.Second
	DefaultMaxHeaderSize      = 16 << 10
	DefaultMaxBodySize        = 16 << 20
	DefaultMaxConnsPerBackend = 1024
	DefaultHealthPath         = "/"
)

// Config says what a Proxy balances and how. The zero value of every field
// but Backends selects the default named in its comment.
type Config struct {
	// Backends are the servers to balance over, as "http://host:port",
	// each optionally followed by balancing options in nginx style:
	// "http://10.0.0.1:8081 weight=3 max_conns=200", "http://10.0.0.9:8081
	// backup", "http://10.0.0.5:8081 down" (see pool.Options). At least one
	// is required, and no two may share an address.
	Backends []string

	// Policy spreads requests over the usable backends: pool.NewRoundRobin,
	// NewLeastConn, NewP2C, NewRandom, NewMaglev, or pool.NewPolicy by name.
	// Every policy honours the backends' weights and max_conns. Nil means
	// weighted round-robin.
	Policy pool.Policy

	// StickyCookie, when set, names a cookie that pins each client to a
	// backend: the first response sets it to an opaque id of the backend
	// that served it, and later requests carrying it go to that backend
	// while it is usable, whatever the Policy; when it is not, the request
	// is balanced as usual and the cookie set anew. Empty means no affinity.
	StickyCookie string

	// Retries is how many more attempts a request may make, each on a
	// backend it has not tried. Zero means DefaultRetries (2); a negative
	// value disables retries. At most pool.MaxTries-1.
	Retries int

	// DialTimeout bounds connecting to a backend. Zero means
	// DefaultDialTimeout (3s).
	DialTimeout time.Duration
	// BackendTimeout bounds one attempt, from sending the request to the
	// end of the response; a backend slower than this gets the client a 504.
	// Zero means DefaultBackendTimeout (30s).
	BackendTimeout time.Duration
	// BackendIdleTimeout is how long an idle keep-alive connection to a
	// backend is kept. It should stay below the backends' own keep-alive
	// timeout (5s in Apache and Node.js), or a request may race a connection
	// the backend is closing. Zero means DefaultBackendIdleTimeout (4s).
	BackendIdleTimeout time.Duration
	// MaxConnsPerBackend caps the connections to each backend. A request
	// finding all of them busy waits up to DialTimeout for one, then moves on
	// to another backend. Zero means DefaultMaxConnsPerBackend (1024).
	MaxConnsPerBackend int

	// ClientIdleTimeout is how long a client's keep-alive connection may sit
	// between requests, and bounds reading one request and writing its
	// response. Zero means DefaultClientIdleTimeout (60s).
	ClientIdleTimeout time.Duration
	// MaxHeaderSize caps a request's header block (larger gets 431) and a
	// response's. Zero means DefaultMaxHeaderSize (16 KiB).
	MaxHeaderSize int
	// MaxBodySize caps a request body (larger gets 413). Zero means
	// DefaultMaxBodySize (16 MiB).
	MaxBodySize int
	// MaxResponseBodySize caps a response body read from a backend (larger
	// gets the client a 502). Zero means no limit.
	MaxResponseBodySize int

	// Dial connects to a backend's host:port within timeout. Nil means TCP,
	// IPv4 and IPv6, with DNS answers cached for a minute.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)

	// Health configures active health checks.
	Health HealthConfig

	// Logger receives start-up, health and error records; nil means
	// slog.Default(). Per-request records are written only at debug level.
	Logger *slog.Logger
}

// HealthConfig configures active health checks. Zero values select the
// defaults of package health, and DefaultHealthPath for Path.
type HealthConfig struct {
	// Path is requested with GET; a 2xx or 3xx answer is healthy.
	Path string
	// Interval is the time between rounds of checks (5s). Negative disables
	// active checks: backends then stay up unless live traffic fails to
	// connect to them, and nothing brings them back.
	Interval time.Duration
	// Timeout bounds one check (2s).
	Timeout time.Duration
	// Rise is how many consecutive successes bring a backend back (2).
	Rise int
	// Fall is how many consecutive failures take a backend down (2).
	Fall int
}

// Proxy is a load-balancing reverse proxy. It is safe for concurrent use.
// Create one with New; stop it with Shutdown or Close.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	debug   bool // debug records enabled: checked once, not per request
	retries int
	pool    *pool.Pool
	sticky  *sticky // nil without StickyCookie
	wd      *watchdog
	dialer  *dialer
	checker *health.Checker

	serverOnce sync.Once
	server     *fasthttp.Server

	stopHealth context.CancelFunc
	healthDone chan struct{}
	closeOnce  sync.Once
}

// New validates cfg, builds the backend pool and starts health checks.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	backends := make([]*pool.Backend, 0, len(cfg.Backends))
	for _, raw := range cfg.Backends {
		b, err := pool.NewBackend(raw)
		if err != nil {
			return nil, err
		}
		backends = append(backends, b)
	}
	pl, err := pool.New(backends, cfg.Policy)
	if err != nil {
		return nil, err
	}
	var st *sticky
	if cfg.StickyCookie != "" {
		if st, err = newSticky(cfg.StickyCookie, backends); err != nil {
			return nil, err
		}
	}
	wd := newWatchdog(clientLimits{
		read:  cfg.ClientIdleTimeout,
		write: cfg.ClientIdleTimeout,
		idle:  cfg.ClientIdleTimeout,
	})
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger,
		debug:   cfg.Logger.Enabled(context.Background(), slog.LevelDebug),
		retries: max(cfg.Retries, 0),
		pool:    pl,
		sticky:  st,
		wd:      wd,
		dialer:  newDialer(cfg, wd),
	}
	for _, b := range backends {
		b.SetTransport(p.newHostClient(b))
	}
	p.startHealth()
	return p, nil
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Backends) == 0 {
		return c, errors.New("no backends configured")
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	case c.Retries >= pool.MaxTries:
		return c, fmt.Errorf("retries %d: at most %d", c.Retries, pool.MaxTries-1)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"dial timeout", &c.DialTimeout, DefaultDialTimeout},
		{"backend timeout", &c.BackendTimeout, DefaultBackendTimeout},
		{"backend idle timeout", &c.BackendIdleTimeout, DefaultBackendIdleTimeout},
		{"client idle timeout", &c.ClientIdleTimeout, DefaultClientIdleTimeout},
		{"health timeout", &c.Health.Timeout, health.DefaultTimeout},
	} {
		if *d.v < 0 {
			return c, fmt.Errorf("%s %v: must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Health.Interval == 0 {
		c.Health.Interval = health.DefaultInterval
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{
		{"max header size", &c.MaxHeaderSize, DefaultMaxHeaderSize},
		{"max body size", &c.MaxBodySize, DefaultMaxBodySize},
		{"max conns per backend", &c.MaxConnsPerBackend, DefaultMaxConnsPerBackend},
		{"health rise", &c.Health.Rise, health.DefaultRise},
		{"health fall", &c.Health.Fall, health.DefaultFall},
	} {
		if *n.v < 0 {
			return c, fmt.Errorf("%s %d: must not be negative", n.name, *n.v)
		}
		if *n.v == 0 {
			*n.v = n.def
		}
	}
	if c.MaxHeaderSize < 1024 {
		return c, fmt.Errorf("max header size %d: at least 1024 bytes", c.MaxHeaderSize)
	}
	if c.MaxResponseBodySize < 0 {
		return c, fmt.Errorf("max response body size %d: must not be negative", c.MaxResponseBodySize)
	}
	if c.Health.Path == "" {
		c.Health.Path = DefaultHealthPath
	}
	if c.Health.Path[0] != '/' {
		return c, fmt.Errorf("health path %q: must start with /", c.Health.Path)
	}
	if c.StickyCookie != "" {
		if err := pool.CheckToken(c.StickyCookie); err != nil {
			return c, fmt.Errorf("sticky cookie %q: %v", c.StickyCookie, err)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Pool returns the proxy's backends and their state.
func (p *Proxy) Pool() *pool.Pool { return p.pool }

func (p *Proxy) startHealth() {
	p.healthDone = make(chan struct{})
	if p.cfg.Health.Interval < 0 {
		close(p.healthDone)
		p.stopHealth = func() {}
		return
	}
	p.checker = &health.Checker{
		Pool:     p.pool,
		Prober:   p.newProber(),
		Interval: p.cfg.Health.Interval,
		Timeout:  p.cfg.Health.Timeout,
		Rise:     p.cfg.Health.Rise,
		Fall:     p.cfg.Health.Fall,
		Logger:   p.log,
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopHealth = cancel
	go func() {
		defer close(p.healthDone)
		p.checker.Run(ctx)
	}()
}

// Close stops health checks and closes idle backend connections at once. It
// does not stop a server started by Serve; use Shutdown for a graceful stop.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.stopHealth()
		<-p.healthDone
		for _, b := range p.pool.Backends() {
			b.Transport().(*fasthttp.HostClient).CloseIdleConnections()
		}
		p.wd.close()
	})
	return nil
}
