// Package alert posts a pool's health changes to webhooks: every backend
// going down or coming back, the last backend going down, and the recovery.
// Delivery runs on goroutines of its own, so it never holds up a request or
// a health check round.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultRetryFor  = time.Minute
	DefaultBackoff   = 500 * time.Millisecond
	DefaultQueueSize = 128
)

// Config says where alerts go and how hard to try.
type Config struct {
	// URLs are the webhooks, http or https. Each gets every alert, in order,
	// from a queue of its own, so a slow one does not delay the others.
	URLs []string
	// Format is the body's shape: FormatJSON (the zero value) or FormatSlack.
	Format Format
	// Timeout bounds one POST. Zero means DefaultTimeout (5s).
	Timeout time.Duration
	// RetryFor is how long one alert is retried, with exponential backoff,
	// on a network error, a 429 or a 5xx, before it is given up and logged.
	// Zero means DefaultRetryFor (1m).
	RetryFor time.Duration
	// Backoff is the wait before the first retry; it doubles after each,
	// up to 30s. Zero means DefaultBackoff (500ms).
	Backoff time.Duration
	// QueueSize is how many alerts may wait for each webhook. One that finds
	// its queue full is dropped with a warning. Zero means DefaultQueueSize
	// (128).
	QueueSize int
	// Client sends the POSTs; nil means one of the Notifier's own, with
	// proxies taken from the environment as usual.
	Client *http.Client
	// UserAgent is sent with every POST; empty means "load-balancer".
	UserAgent string
	// Logger receives delivery failures and drops; nil means slog.Default().
	Logger *slog.Logger
}

// Notifier turns state changes into alerts and delivers them. It is safe for
// concurrent use. Create one with New, attach it to pools with Watch, and
// stop it with Close.
type Notifier struct {
	cfg   Config
	log   *slog.Logger
	sinks []*sink

	mu     sync.RWMutex // closed and sending on the queues
	closed bool

	ctx    context.Context // ends when Close gives up on pending alerts
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// sink is one webhook and the alerts waiting for it.
type sink struct {
	url   string
	shown string // the URL safe to log: webhook paths are often secrets
	queue chan Event
}

// New validates cfg and starts one delivery goroutine per webhook.
func New(cfg Config) (*Notifier, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("no alert webhooks configured")
	}
	if cfg.Format != FormatJSON && cfg.Format != FormatSlack {
		return nil, fmt.Errorf("alert format %d: unknown", cfg.Format)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"timeout", &cfg.Timeout, DefaultTimeout},
		{"retry time", &cfg.RetryFor, DefaultRetryFor},
		{"backoff", &cfg.Backoff, DefaultBackoff},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("alert %s %v: must not be negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.QueueSize < 0 {
		return nil, fmt.Errorf("alert queue size %d: must not be negative", cfg.QueueSize)
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "load-balancer"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger}
	seen := map[string]bool{}
	for _, raw := range cfg.URLs {
		shown, err := ParseURL(raw)
		if err != nil {
			return nil, err
		}
		if seen[raw] {
			return nil, fmt.Errorf("alert webhook %q: listed twice", raw)
		}
		seen[raw] = true
		n.sinks = append(n.sinks, &sink{url: raw, shown: shown, queue: make(chan Event, cfg.QueueSize)})
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, s := range n.sinks {
		n.wg.Add(1)
		go n.deliverAll(s)
	}
	return n, nil
}

// URLError is a webhook address that cannot be used.
type URLError struct {
	URL string // as given
	Err error  // why not
}

// Error names the address and the reason.
func (e *URLError) Error() string { return fmt.Sprintf("alert webhook %q: %v", e.URL, e.Err) }

// Unwrap returns the reason.
func (e *URLError) Unwrap() error { return e.Err }

// ParseURL checks that raw is a usable webhook address (http or https, with
// a host) and returns it in a form that is safe to log: scheme and host
// only, since a webhook's path is often its secret, as Slack's are. The host
// follows the rules of a backend's (see pool.NewBackend): an IP address
// (IPv6 in brackets) or a name, a host of numbers only being an IPv4 address
// in dotted decimal (127.1 or 0x7f.1 are refused, naming what C's inet_aton
// reads), an IP address without a trailing dot, a name without an empty
// label; a port, if given, is 1-65535. A bad address gets a *URLError.
func ParseURL(raw string) (shown string, err error) {
	fail := func(format string, args ...any) (string, error) {
		return "", &URLError{URL: raw, Err: fmt.Errorf(format, args...)}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fail("%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fail("unsupported scheme %q (want http or https)", u.Scheme)
	case u.Hostname() == "":
		return fail("missing host")
	}
	if port := u.Port(); port != "" {
		if _, ok := hostname.Port(port); !ok {
			return fail("invalid port %q: want 1-65535", port)
		}
	}
	if _, err := hostname.Canonical(u.Hostname()); err != nil {
		return fail("host %q: %w", u.Hostname(), err)
	}
	shown = u.Scheme + "://" + u.Host
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		shown += "/…"
	}
	return shown, nil
}

// Watch sends an alert for every state change of p's backends from now on.
func (n *Notifier) Watch(p *pool.Pool) { p.Watch(n.StateChanged) }

// StateChanged queues the alerts for one change: the backend's, and the
// pool's when it ran out of backends or got its first one back. It never
// blocks; an alert that finds its queue full is dropped with a warning.
func (n *Notifier) StateChanged(c pool.StateChange) {
	ev := backendEvent(c)
	n.send(ev)
	if pe, ok := poolEvent(c); ok {
		n.send(pe)
	}
}

// Send queues ev for every webhook without blocking, as StateChanged does.
func (n *Notifier) Send(ev Event) { n.send(ev) }

func (n *Notifier) send(ev Event) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		return
	}
	for _, s := range n.sinks {
		select {
		case s.queue <- ev:
		default:
			n.log.Warn("alert queue full; dropping alert", "webhook", s.shown,
				"event", ev.Event, "backend", ev.Backend, "state", ev.State)
		}
	}
}

// Close stops taking alerts and waits until those queued are delivered or
// given up, or ctx ends; then it abandons the rest and returns ctx's error.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, s := range n.sinks {
			close(s.queue)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}
