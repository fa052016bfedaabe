package proxy

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Config.MaxConnsPerIP is kept by the proxy's own listeners, not by
// fasthttp's per-IP wrapper: that wrapper would hide each connection from
// everything that finds the guard beneath (the watchdog's record, the
// chunk and head guards, half-closing tunnels, the HTTP/2 dispatch after
// ALPN). A connection over the limit is refused as it is accepted, before a
// worker or a TLS handshake is spent on it: a plain one gets a 429 answer,
// written whole into the empty send buffer of a new socket, and is closed; a
// TLS one is closed (no answer can be written before a handshake), as
// fasthttp and HAProxy do.

// ipLimit counts the connections open from each client address. It is
// shared by the proxy's listeners, so the limit holds across the plain and
// the TLS port.
type ipLimit struct {
	max     int
	traffic *pool.Traffic // counts the refusals
	log     *slog.Logger
	logged  atomic.Int64 // unix nanoseconds of the last refusal logged

	mu   sync.Mutex
	open map[netip.Addr]int
}

func newIPLimit(max int, t *pool.Traffic, log *slog.Logger) *ipLimit {
	return &ipLimit{max: max, traffic: t, log: log, open: make(map[netip.Addr]int)}
}

// take counts a new connection from a, unless a has max open already.
func (l *ipLimit) take(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.open[a]
	if n >= l.max {
		return false
	}
	l.open[a] = n + 1
	return true
}

// put uncounts a connection from a that take counted.
func (l *ipLimit) put(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.open[a]; n > 1 {
		l.open[a] = n - 1
	} else {
		delete(l.open, a)
	}
}

// refusedAnswer is what a plain-text connection over the limit is told.
var refusedAnswer = []byte("HTTP/1.1 429 Too Many Requests\r\n" +
	"Connection: close\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: " + strconv.Itoa(len(reasonTooManyConns)) + "\r\n" +
	"\r\n" + reasonTooManyConns)

const reasonTooManyConns = "429 Too Many Requests: too many connections from your address\n"

// refuse answers and closes c, a connection from a over the limit. A write
// to a socket just accepted goes into its empty send buffer: it does not
// wait for the client.
func (l *ipLimit) refuse(c net.Conn, a netip.Addr, tls bool) {
	l.traffic.ConnRefused()
	if !tls {
		c.Write(refusedAnswer) //nolint:errcheck // the client may be gone
	}
	c.Close()
	// Logged at most once a minute: a client flooding connections must
	// not flood the log too.
	now := time.Now().UnixNano()
	if last := l.logged.Load(); now-last >= int64(time.Minute) && l.logged.CompareAndSwap(last, now) {
		l.log.Warn("connection refused: too many from one address (logged at most once a minute)",
			"client", a.String(), "max_conns_per_ip", l.max)
	}
}
