package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"
	"golang.org/x/net/http/httpproxy"
	xproxy "golang.org/x/net/proxy"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// UpstreamProxyEnv as Config.UpstreamProxy takes the forward proxy from the
// environment: HTTPS_PROXY for https backends, HTTP_PROXY for http ones, and
// NO_PROXY for the backends to reach directly.
const UpstreamProxyEnv = "env"

// tcpDial opens the TCP stream to addr, a backend's host:port, within
// timeout. Through a forward proxy it is a tunnel the proxy opened to addr.
type tcpDial func(addr string, timeout time.Duration) (net.Conn, error)

// CheckUpstreamProxy reports what is wrong with a Config.UpstreamProxy value,
// or nil when New would accept it. The proxy's host follows the rules of a
// backend's (see pool.NewBackend): an IPv4 address in dotted decimal (127.1
// or 0x7f.1 are refused, naming what C's inet_aton reads), no trailing dot
// on an IP address, no empty label.
func CheckUpstreamProxy(s string) error {
	if s == "" || s == UpstreamProxyEnv {
		return nil
	}
	_, err := parseProxyURL(s)
	return err
}

// parseProxyURL checks a forward proxy's URL and returns it with its port
// made explicit (80 for http, 1080 for socks5).
func parseProxyURL(s string) (*url.URL, error) {
	const want = "want http://[user:pass@]host:port, socks5://[user:pass@]host:port or env"
	if !strings.Contains(s, "://") {
		return nil, errors.New("missing scheme (" + want + ")")
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	u.Scheme = strings.ToLower(u.Scheme)
	var defaultPort string
	switch u.Scheme {
	case "http":
		defaultPort = "80"
	case "socks5", "socks5h":
		defaultPort = "1080"
	default:
		return nil, fmt.Errorf("unsupported scheme %q (%s)", u.Scheme, want)
	}
	switch {
	case u.Hostname() == "":
		return nil, errors.New("missing host")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, errors.New("a path, query or fragment is not supported")
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if _, ok := hostname.Port(port); !ok {
		return nil, fmt.Errorf("invalid port %q", port)
	}
	// The rules of a backend's host, the proxy being dialled as a backend
	// is: a name as written (its trailing dot kept), an IP address in its
	// shortest form, and none that Go's resolver would fail on every time.
	host, err := hostname.Canonical(u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("host %q: %w", u.Hostname(), err)
	}
	return &url.URL{Scheme: u.Scheme, User: u.User, Host: net.JoinHostPort(host, port)}, nil
}

// upstreamRoutes decides, once at start, which forward proxy each backend is
// reached through: every one through a fixed proxy, or each as the
// environment says. A nil map entry means direct.
func upstreamRoutes(spec string, backends []*pool.Backend) (map[*pool.Backend]*url.URL, error) {
	routes := make(map[*pool.Backend]*url.URL, len(backends))
	switch spec {
	case "":
		return routes, nil
	case UpstreamProxyEnv:
		// The same rules as net/http's ProxyFromEnvironment: NO_PROXY
		// exempts hosts, and localhost and loopback addresses are never
		// proxied.
		proxyFor := httpproxy.FromEnvironment().ProxyFunc()
		for _, b := range backends {
			u, err := proxyFor(&url.URL{Scheme: b.Scheme(), Host: b.Addr()})
			if err != nil {
				return nil, fmt.Errorf("upstream proxy from the environment for %s: %w", b.URL(), err)
			}
			if u == nil {
				continue
			}
			if routes[b], err = parseProxyURL(u.String()); err != nil {
				return nil, fmt.Errorf("upstream proxy %q from the environment for %s: %w", u.Redacted(), b.URL(), err)
			}
		}
		return routes, nil
	}
	u, err := parseProxyURL(spec)
	if err != nil {
		return nil, fmt.Errorf("upstream proxy %q: %w", redact(spec), err)
	}
	for _, b := range backends {
		routes[b] = u
	}
	return routes, nil
}

// viaProxy returns the TCP step through the forward proxy at u.
//
// HTTP CONNECT is fasthttpproxy's: it dials the proxy and waits for its
// answer each within the dial timeout, and sends the URL's user and
// password as Proxy-Authorization. Its Dialer holds a TCPDialer of its own
// (by value: it cannot be sharedTCP), so the backends reached through one
// forward proxy share one Dialer, rather than each leave a DNS cache
// cleaner running; close flushes it. SOCKS5 is golang.org/x/net/proxy's, the
// dialer fasthttpproxy wraps, called with a deadline: fasthttpproxy runs the
// SOCKS handshake with no deadline at all, so a proxy that accepted and then
// stalled would hang the dial (and every health check) for good.
func (d *dialer) viaProxy(u *url.URL) tcpDial {
	switch u.Scheme {
	case "http":
		d.mu.Lock()
		fd := d.connect[u.String()]
		if fd == nil {
			fd = &fasthttpproxy.Dialer{
				TCPDialer:      fasthttp.TCPDialer{Concurrency: 1000, DNSCacheDuration: time.Minute},
				Config:         httpproxy.Config{HTTPProxy: u.String(), HTTPSProxy: u.String()},
				Timeout:        d.timeout,
				ConnectTimeout: d.timeout,
				DialDualStack:  true,
			}
			if d.connect == nil {
				d.connect = map[string]*fasthttpproxy.Dialer{}
			}
			d.connect[u.String()] = fd
		}
		d.mu.Unlock()
		dial, err := fd.GetDialFunc(false)
		if err != nil { // only for a scheme it does not know; parseProxyURL checked
			return func(string, time.Duration) (net.Conn, error) { return nil, err }
		}
		return func(addr string, _ time.Duration) (net.Conn, error) { return dial(addr) }
	default: // socks5, socks5h: the proxy resolves host names either way
		var auth *xproxy.Auth
		if u.User != nil {
			auth = &xproxy.Auth{User: u.User.Username()}
			auth.Password, _ = u.User.Password()
		}
		sd, err := xproxy.SOCKS5("tcp", u.Host, auth, contextDial(d.direct))
		if err != nil { // never, in x/net as of v0.62
			return func(string, time.Duration) (net.Conn, error) { return nil, err }
		}
		cd := sd.(xproxy.ContextDialer)
		return func(addr string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return cd.DialContext(ctx, "tcp", addr)
		}
	}
}

// contextDial adapts a tcpDial to the dialer interfaces of x/net/proxy, so
// that reaching the SOCKS server is bounded by the context's deadline.
type contextDial tcpDial

func (f contextDial) Dial(_, addr string) (net.Conn, error) { return f(addr, DefaultDialTimeout) }

func (f contextDial) DialContext(ctx context.Context, _, addr string) (net.Conn, error) {
	timeout := DefaultDialTimeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	return f(addr, timeout)
}

// redact hides the password of a proxy URL for logs and errors.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
