// Package proxy is an HTTP/1.1 and HTTP/2 reverse proxy and load balancer
// on fasthttp. A Proxy spreads requests over a pool of backends, retries
// failed attempts on other backends, and checks backend health in the
// background. It can run its own server (Serve, ListenAndServe, ServeTLS,
// which also serve HTTP/2 and gRPC) or be mounted as a handler
// (HandleFastHTTP, HTTP/1.1) in a fasthttp server of the caller's.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/health"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultRetries             = 2
	DefaultDialTimeout         = 3 * time.Second
	DefaultBackendTimeout      = 30 * time.Second
	DefaultBackendIdleTimeout  = 4 * time.Second
	DefaultClientIdleTimeout   = 60 * time.Second
	DefaultClientHeaderTimeout = 10 * time.Second
	DefaultClientBodyTimeout   = 60 * time.Second
	DefaultMaxHeaderSize       = 16 << 10
	DefaultMaxBodySize         = 16 << 20
	DefaultMaxConnsPerBackend  = 1024
	DefaultHealthPath          = "/"
	DefaultTryTimeout          = time.Second
	DefaultTunnelIdleTimeout   = time.Hour
	DefaultEjectAfter          = 2
	DefaultMaxEjectedPercent   = 50
	DefaultHedgeBudget         = 10
)

// Config says what a Proxy balances and how. The zero value of every field
// but Backends (or Pools) selects the default named in its comment.
type Config struct {
	// Backends are the servers to balance over, as "http://host:port" or
	// "https://host:port" (reached over TLS; see BackendTLS), each
	// optionally followed by balancing options in nginx style:
	// "http://10.0.0.1:8081 weight=3 max_conns=200", "http://10.0.0.9:8081
	// backup", "http://10.0.0.5:8081 down" (see pool.Options). No two may
	// share an address. They make the pool called DefaultPool; Backends or
	// Pools is required.
	Backends []string

	// Pools are pools of backends besides Backends', each with its own
	// policy, sticky cookie, health path and service discovery.
	Pools []PoolConfig
	// Routes send requests to pools by host and path prefix. A request no
	// route takes goes to the default pool (Backends', the pool called
	// DefaultPool, or the only pool), or gets 404 without one. With one pool
	// and no routes, requests go to it without any lookup.
	Routes []Route

	// Policy spreads requests over the usable backends of the default pool
	// (Backends'): pool.NewRoundRobin, NewLeastConn, NewP2C, NewRandom,
	// NewMaglev, or pool.NewPolicy by name. Every policy honours the
	// backends' weights and max_conns. Nil means weighted round-robin.
	Policy pool.Policy

	// StickyCookie, when set, names a cookie that pins each client to a
	// backend of the default pool (see PoolConfig for the others): the first response sets it to an opaque id of the backend
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
	// TryTimeout bounds the wait for a response header. An attempt without
	// one by then is abandoned: an idempotent request moves to another
	// backend, any other gets a 504. Once the header has arrived,
	// BackendTimeout governs the rest. Zero means DefaultTryTimeout (1s); a
	// negative value disables it.
	TryTimeout time.Duration
	// EjectAfter is how many consecutive connect failures or try timeouts
	// take a backend out of rotation at once, as a failed health check
	// would; active checks bring it back, or, with them disabled, 10s go by
	// (as nginx's fail_timeout). Zero means DefaultEjectAfter (2); a
	// negative value disables passive ejection.
	EjectAfter int
	// MaxEjectedPercent caps the share of backends that live traffic may
	// take out of rotation: past it, failing backends stay in rotation
	// rather than leave none (Envoy's panic threshold). Zero means
	// DefaultMaxEjectedPercent (50); 100 allows ejecting all.
	MaxEjectedPercent int
	// HedgeAfter, when positive, hedges GET and HEAD requests: with no
	// response header after this long, a copy goes to another backend and
	// the first complete answer wins. Zero disables hedging.
	HedgeAfter time.Duration
	// FlushInterval is how a response body of known length that streams
	// reaches the client, as httputil.ReverseProxy's field of that name:
	// zero, as fasthttp's write buffer fills (bodies up to 1 MiB are read
	// whole first); negative, each piece as soon as it arrives from the
	// backend; positive, no later than this after it arrived. With a
	// non-zero interval a body of known length that has not fully arrived
	// with its header streams whatever its size. Chunked bodies and event
	// streams are flushed as each chunk arrives whatever it says; HTTP/2
	// clients get every piece at once.
	FlushInterval time.Duration
	// Splice moves a response body of known length with at least 16 KiB
	// still to come after its header from the backend's socket to the
	// client's with splice(2), through a pipe per backend connection,
	// without a copy into the proxy (HAProxy's option splice-response),
	// between plain TCP connections. Such a body then streams, so a
	// backend failing in its middle cuts the response rather than have it
	// retried. Off by default: on loopback it cost 4-10% more CPU per
	// request than the copies it saves (see the README's performance
	// section).
	Splice bool
	// HedgeBudget caps hedges at this percentage of eligible requests.
	// Zero means DefaultHedgeBudget (10).
	HedgeBudget int
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
	// between requests, and how long writing a response to it may stall.
	// Zero means DefaultClientIdleTimeout (60s).
	ClientIdleTimeout time.Duration
	// ClientHeaderTimeout bounds receiving a request header, from the
	// connection's start or the request's first byte: a client dribbling
	// its header (slowloris) gets 408 and is dropped; one that sent
	// nothing is dropped unanswered. Zero means
	// DefaultClientHeaderTimeout (10s).
	ClientHeaderTimeout time.Duration
	// ClientBodyTimeout bounds the gap between two reads of a request body;
	// past it the client gets 408 and is dropped. Zero means
	// DefaultClientBodyTimeout (60s).
	ClientBodyTimeout time.Duration
	// TunnelIdleTimeout closes a tunnel (a WebSocket, or any connection
	// that switched protocols) that has carried nothing either way for
	// this long, or whose write to one side has stalled for this long, as
	// HAProxy's timeout tunnel does. Zero means DefaultTunnelIdleTimeout
	// (1h); a negative value disables it.
	TunnelIdleTimeout time.Duration
	// KeepIdleMemory stops the proxy from handing memory back to the
	// system when a crowd of client connections has gone idle (it calls
	// debug.FreeOSMemory, which acts on the whole process, at most every
	// 2 s: see memrelease.go). A program embedding the proxy that tunes
	// its own memory may set it; the Go runtime then returns memory at its
	// own pace.
	KeepIdleMemory bool
	// MaxHeaderSize caps a request's header block (larger gets 431) and a
	// response's. Zero means DefaultMaxHeaderSize (16 KiB).
	MaxHeaderSize int
	// MaxBodySize caps a request body (larger gets 413, without reading the
	// rest when its length is announced). Zero means DefaultMaxBodySize
	// (16 MiB); a negative value means no limit. Bodies of any size stream
	// through without being held in memory.
	MaxBodySize int
	// MaxResponseBodySize caps a response body read from a backend (larger
	// gets the client a 502). Zero means no limit.
	MaxResponseBodySize int

	// Dial connects to a backend's host:port within timeout. Nil means TCP,
	// IPv4 and IPv6, through one dialer that every proxy of the process
	// shares: DNS answers cached for a minute, at most 1000 dials in flight
	// at once (see sharedTCP in transport.go). For an https
	// backend the proxy does the TLS handshake on the connection Dial
	// returns. It may not be set together with UpstreamProxy.
	Dial func(addr string, timeout time.Duration) (net.Conn, error)

	// MaxConns caps the client connections open at once, across the
	// listeners the proxy serves (Serve, ServeTLS), idle and tunnelled ones
	// included; beyond it a new one is refused as it is accepted: a plain
	// one with a 503 answer, a TLS one by closing it. Zero means no limit
	// of ours (fasthttp's 262,144 connections served at once). A proxy
	// mounted in someone else's server gets fasthttp's count instead,
	// through Server's Concurrency.
	MaxConns int
	// MaxConnsPerIP caps the connections open at once from one client
	// address, across the listeners the proxy serves (Serve, ServeTLS);
	// beyond it a new one is refused as it is accepted: a plain one with a
	// 429 answer, a TLS one by closing it. Zero means no limit.
	MaxConnsPerIP int
	// RateLimit, when positive, is how many requests per second each
	// client address may make on average; more get a 429. RateBurst is how
	// many it may make at once (zero means the same as RateLimit, at least
	// one).
	RateLimit float64
	RateBurst int
	// TrustedProxies are the proxies in front of the balancer whose
	// X-Forwarded-For is believed: for a peer among them the client is the
	// nearest untrusted address in that header (all its lines as one
	// list), and the chain is extended.
	// Empty means none: the peer is the client and the header is replaced.
	TrustedProxies []netip.Prefix

	// BackendTLS configures the TLS client for https backends: trusted
	// roots, client certificates, verification. Nil means verification
	// against the system's roots. Each backend gets its own copy, with
	// ServerName (when empty) set to the backend's host for SNI and
	// verification, NextProtos (when empty) to http/1.1 and, when nil, a
	// session cache so reconnections resume.
	BackendTLS *tls.Config

	// UpstreamProxy sends every connection to backends, traffic and health
	// checks alike, through a forward proxy: "http://[user:pass@]host:port"
	// tunnels with HTTP CONNECT, "socks5://[user:pass@]host:port" with
	// SOCKS5, and UpstreamProxyEnv ("env") follows HTTP_PROXY, HTTPS_PROXY
	// and NO_PROXY as net/http does (loopback backends go direct). TLS to an
	// https backend runs inside the tunnel. Empty means direct connections.
	// The proxy's host follows the rules of a backend's (see
	// CheckUpstreamProxy); New and Reload refuse one that does not.
	UpstreamProxy string

	// TLS configures serving HTTPS (ServeTLS, ListenAndServeTLS), the
	// redirect of plain HTTP to it and HSTS. Nil means plain HTTP only.
	TLS *TLSConfig

	// HTTP2 configures HTTP/2 towards clients: on by default over TLS,
	// and with prior knowledge on plain listeners when H2C is set.
	HTTP2 HTTP2Config

	// Health configures active health checks, for every pool (a pool may
	// have a path of its own: PoolConfig.HealthPath).
	Health HealthConfig

	// OnStateChange, when set, is called after every backend state change,
	// from live traffic or a health check, exactly once per change (see
	// pool.Pool.Watch: it must return quickly and never block). It is set up
	// before health checks start, so no change is missed; alert.Notifier's
	// StateChanged fits here. Nil means nobody is told beyond the log.
	OnStateChange func(pool.StateChange)

	// Logger receives start-up, health and error records; nil means
	// slog.Default(). Per-request records are written only at debug level.
	Logger *slog.Logger

	// AccessLog, when set, receives a line per request answered, the
	// proxy's own answers included (see AccessLogFormat), as nginx's
	// access_log writes. Lines are buffered in memory and written from a
	// goroutine of the proxy's every 200ms, or sooner once 64 KiB are
	// pending, never from a request; while AccessLog blocks, lines beyond
	// 4 MiB pending are dropped and counted (AccessLogDropped). Writes are
	// never concurrent. Shutdown and Close write out what is pending; the
	// proxy does not close AccessLog. Nil means no access log, at no cost.
	// Reload does not change it.
	AccessLog io.Writer
	// AccessLogFormat is the layout of the access log's lines: empty means
	// AccessLogCombined.
	AccessLogFormat AccessLogFormat
}

// HealthConfig configures active health checks. Zero values select the
// defaults of package health, and DefaultHealthPath for Path.
type HealthConfig struct {
	// Path is requested with GET; a 2xx or 3xx answer is healthy.
	Path string
	// Interval is the time between rounds of checks (5s). Negative disables
	// active checks: backends then stay up unless live traffic ejects them
	// (Config.EjectAfter), and an ejected one takes traffic again 10s later
	// (nginx's fail_timeout), to be ejected again if it still fails.
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

	// table routes requests to pools. Requests load it once; Reload,
	// discovery and the admin API publish new ones (reload.go).
	table   atomic.Pointer[table]
	traffic *pool.Traffic

	// headerTimeout is how long an attempt waits for the response header:
	// the try timeout, or the backend timeout when that is shorter or the
	// try timeout is off. headerTimeoutFailure names which one it is.
	headerTimeout        time.Duration
	headerTimeoutFailure failure
	ejectAfter           int32
	hedgeBudget          hedgeBudget
	trusted              trustedNets
	limiter              *rateLimiter // nil: no rate limit
	wd                   *watchdog
	dialer               *dialer
	alog                 *accessLog // nil: no access log

	// spliced counts the response body bytes moved with splice(2)
	// (splice.go), for tests.
	spliced atomic.Int64

	// The net/http path (netproxy.go) and the HTTP/2 server (h2.go). net
	// is always there; h2 is nil when HTTP/2 is off.
	net *netFront
	h2  *h2Server

	certs     *certStore   // nil without TLS
	tlsConfig *tls.Config  // the TLS listener's; nil without TLS
	https     *httpsPolicy // nil unless redirecting or sending HSTS

	serverOnce sync.Once
	server     *fasthttp.Server

	// The listeners Serve and ServeTLS were given, and whether Shutdown
	// has begun (server.go: serve).
	lnMu      sync.Mutex
	listeners []net.Listener
	parker    *parker // holds idle connections of the plain listeners (park.go), once one is served; under lnMu
	shut      bool

	connLimit *connLimit // nil: no connection limit (connlimit.go)
	lingerers lingerers  // client connections closing slowly (linger.go)

	// The live configuration (reload.go), changed under mu.
	mu          sync.Mutex
	pools       map[string]*livePool
	order       []string // pool names in configuration order
	routes      []Route
	defaultPool string
	health      HealthConfig
	started     bool // New has returned: changes are logged
	// checksOff is set while active checks are disabled (Health.Interval
	// negative): an ejected backend then returns on a timer (readmitLater).
	checksOff atomic.Bool

	// bg is the context of everything running in the background: health
	// checks, discovery, retiring backends. Close cancels it and waits.
	bg        context.Context
	stopBG    context.CancelFunc
	bgWG      sync.WaitGroup
	closeOnce sync.Once
	// closed is set by Close, under mu (so that a Reload is either over
	// before it or sees it): from then on Serve, Reload and AddBackend
	// refuse.
	closed atomic.Bool
}

// New validates cfg, builds the pools and the routing table, and starts
// health checks and service discovery.
func New(cfg Config) (*Proxy, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var certs *certStore
	if cfg.TLS != nil {
		if certs, err = newCertStore(cfg.TLS.Certificates, cfg.Logger); err != nil {
			return nil, err
		}
	}
	wd := newWatchdog(clientLimits{
		header: cfg.ClientHeaderTimeout,
		body:   cfg.ClientBodyTimeout,
		write:  cfg.ClientIdleTimeout,
		idle:   cfg.ClientIdleTimeout,
		tunnel: max(cfg.TunnelIdleTimeout, 0),
	})
	p := &Proxy{
		cfg:       cfg,
		log:       cfg.Logger,
		debug:     cfg.Logger.Enabled(context.Background(), slog.LevelDebug),
		retries:   max(cfg.Retries, 0),
		traffic:   pool.NewTraffic(),
		wd:        wd,
		dialer:    newDialer(cfg, wd),
		certs:     certs,
		tlsConfig: serverTLSConfig(cfg.TLS, certs, !cfg.HTTP2.Disable),
		https:     newHTTPSPolicy(cfg.TLS, cfg.Health.Path),
		pools:     map[string]*livePool{},

		headerTimeout:        cfg.BackendTimeout,
		headerTimeoutFailure: failTimeout,
		ejectAfter:           int32(max(cfg.EjectAfter, 0)),
	}
	wd.tunnels.traffic = p.traffic
	p.bg, p.stopBG = context.WithCancel(context.Background())
	p.hedgeBudget.percent = int64(cfg.HedgeBudget)
	p.trusted = trustedNets(cfg.TrustedProxies)
	if cfg.RateLimit > 0 {
		p.limiter = newRateLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	if cfg.MaxConns > 0 || cfg.MaxConnsPerIP > 0 {
		p.connLimit = newConnLimit(cfg.MaxConns, cfg.MaxConnsPerIP, p.traffic, p.log)
	}
	if cfg.TryTimeout > 0 && cfg.TryTimeout < cfg.BackendTimeout {
		p.headerTimeout, p.headerTimeoutFailure = cfg.TryTimeout, failTryTimeout
	}
	// The net/http path serves HTTP/2 clients, and HTTP/1.1 clients of the
	// pools that have HTTP/2 backends (route.viaNet).
	p.net = newNetFront(p)
	p.net.h1 = p.net.newH1Adaptor()
	if !cfg.HTTP2.Disable {
		if p.h2, err = newH2Server(p, p.net); err != nil {
			p.stopBG()
			wd.close()
			if certs != nil {
				certs.close()
			}
			return nil, err
		}
	}
	p.mu.Lock()
	pl, err := p.plan(cfg)
	if err == nil {
		p.commit(pl)
		p.started = true
	}
	p.mu.Unlock()
	if err != nil {
		p.stopBG()
		wd.close()
		if certs != nil {
			certs.close()
		}
		return nil, err
	}
	p.warnInsecureBackends()
	if cfg.AccessLog != nil {
		p.alog = newAccessLog(cfg.AccessLog, cfg.AccessLogFormat, cfg.Logger)
	}
	if certs != nil && cfg.TLS.ReloadInterval > 0 {
		certs.watch(cfg.TLS.ReloadInterval)
	}
	return p, nil
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	case c.Retries >= pool.MaxTries:
		return c, fmt.Errorf("retries %d: at most %d", c.Retries, pool.MaxTries-1)
	}
	if c.TunnelIdleTimeout == 0 {
		c.TunnelIdleTimeout = DefaultTunnelIdleTimeout
	}
	if c.TryTimeout == 0 {
		c.TryTimeout = DefaultTryTimeout
	}
	if c.EjectAfter == 0 {
		c.EjectAfter = DefaultEjectAfter
	}
	if c.MaxEjectedPercent == 0 {
		c.MaxEjectedPercent = DefaultMaxEjectedPercent
	}
	if c.MaxEjectedPercent < 0 || c.MaxEjectedPercent > 100 {
		return c, fmt.Errorf("max ejected percent %d: want 0-100", c.MaxEjectedPercent)
	}
	if c.MaxConns < 0 || c.MaxConnsPerIP < 0 {
		return c, fmt.Errorf("max conns %d, per IP %d: must not be negative", c.MaxConns, c.MaxConnsPerIP)
	}
	if c.RateLimit < 0 || c.RateBurst < 0 {
		return c, fmt.Errorf("rate limit %v, burst %d: must not be negative", c.RateLimit, c.RateBurst)
	}
	if c.RateLimit > 0 && c.RateBurst == 0 {
		c.RateBurst = max(1, int(c.RateLimit))
	}
	if c.HedgeAfter < 0 {
		return c, fmt.Errorf("hedge after %v: must not be negative", c.HedgeAfter)
	}
	if c.HedgeBudget == 0 {
		c.HedgeBudget = DefaultHedgeBudget
	}
	if c.HedgeBudget < 0 || c.HedgeBudget > 100 {
		return c, fmt.Errorf("hedge budget %d: want 1-100", c.HedgeBudget)
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
		{"client header timeout", &c.ClientHeaderTimeout, DefaultClientHeaderTimeout},
		{"client body timeout", &c.ClientBodyTimeout, DefaultClientBodyTimeout},
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
	switch {
	case c.MaxBodySize == 0:
		c.MaxBodySize = DefaultMaxBodySize
	case c.MaxBodySize < 0:
		c.MaxBodySize = 0 // no limit
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
	if c.AccessLogFormat == "" {
		c.AccessLogFormat = AccessLogCombined
	}
	if _, err := ParseAccessLogFormat(string(c.AccessLogFormat)); err != nil {
		return c, err
	}
	if c.UpstreamProxy != "" && c.Dial != nil {
		return c, errors.New("upstream proxy and a custom Dial are exclusive: the proxy is the dialer")
	}
	if err := CheckUpstreamProxy(c.UpstreamProxy); err != nil {
		return c, fmt.Errorf("upstream proxy %q: %w", redact(c.UpstreamProxy), err)
	}
	tc, err := c.TLS.withDefaults()
	if err != nil {
		return c, err
	}
	c.TLS = tc
	if c.HTTP2.Disable && c.HTTP2.H2C {
		return c, errH2Disabled
	}
	if c.HTTP2, err = c.HTTP2.withDefaults(); err != nil {
		return c, err
	}
	return c, nil
}

// warnInsecureBackends says once, at start, that https backends are reached
// without checking who answers.
func (p *Proxy) warnInsecureBackends() {
	if p.cfg.BackendTLS == nil || !p.cfg.BackendTLS.InsecureSkipVerify {
		return
	}
	for _, pl := range p.Pools() {
		for _, b := range pl.Backends() {
			if b.TLS() {
				p.log.Warn("TLS certificates of https backends are not verified: anyone on the path can impersonate them")
				return
			}
		}
	}
}

// Close stops health checks and service discovery and closes idle backend
// connections at once, and writes out the access log lines pending. It does
// not stop a server started by Serve; use Shutdown for a graceful stop.
// After it, Serve and its kin return ErrServerClosed, and Reload and the
// control methods (AddBackend...) ErrClosed: the proxy cannot be started
// again.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed.Store(true)
		p.mu.Unlock()
		p.lingerers.stop()
		p.stopBG()
		p.bgWG.Wait()
		for _, pl := range p.Pools() {
			for _, b := range pl.Backends() {
				upstreamOf(b).close()
			}
		}
		p.dialer.close()
		if p.certs != nil {
			p.certs.close()
		}
		p.wd.close()
		if p.alog != nil {
			p.alog.close()
		}
	})
	return nil
}
