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

// Config.MaxConns and Config.MaxConnsPerIP are kept by the proxy's own
// listeners. Not by fasthttp's per-IP wrapper: that wrapper would hide
// each connection from everything that finds the guard beneath (the
// watchdog's record, the chunk and head guards, half-closing tunnels, the
// HTTP/2 dispatch after ALPN). And not by fasthttp's Concurrency alone,
// which counts only the connections it is serving: not a parked idle one
// (park.go), nor a tunnel. A connection over a limit is refused as it is
// accepted, before a worker or a TLS handshake is spent on it: a plain one
// gets an answer (503 over the limit in all, 429 over its address's),
// written whole into the empty send buffer of a new socket, and is closed;
// a TLS one is closed (no answer can be written before a handshake), as
// fasthttp and HAProxy do.

// connLimit counts the connections open in all and from each client
// address. It is shared by the proxy's listeners, so the limits hold across
// the plain and the TLS port.
type connLimit struct {
	max, perIP int // zero: no limit of that kind
	traffic    *pool.Traffic
	log        *slog.Logger
	logged     atomic.Int64 // unix nanoseconds of the last refusal logged

	mu   sync.Mutex
	all  int
	open map[netip.Addr]int // by address, when perIP is set
}

func newConnLimit(max, perIP int, t *pool.Traffic, log *slog.Logger) *connLimit {
	return &connLimit{max: max, perIP: perIP, traffic: t, log: log, open: make(map[netip.Addr]int)}
}

// Why a connection was refused (connLimit.take).
const (
	admitted = iota
	tooManyInAll
	tooManyFromAddr
)

// take counts a new connection from a, unless a limit is reached: it
// returns admitted, or which limit.
func (l *connLimit) take(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.all >= l.max {
		return tooManyInAll
	}
	if l.perIP > 0 {
		n := l.open[a]
		if n >= l.perIP {
			return tooManyFromAddr
		}
		l.open[a] = n + 1
	}
	l.all++
	return admitted
}

// put uncounts a connection from a that take counted.
func (l *connLimit) put(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all--
	if l.perIP == 0 {
		return
	}
	if n := l.open[a]; n > 1 {
		l.open[a] = n - 1
	} else {
		delete(l.open, a)
	}
}

// What a plain-text connection over a limit is told.
var (
	refusedAll  = refusal("503 Service Unavailable", reasonTooManyInAll)
	refusedAddr = refusal("429 Too Many Requests", reasonTooManyFromAddr)
)

const (
	reasonTooManyInAll    = "503 Service Unavailable: too many connections\n"
	reasonTooManyFromAddr = "429 Too Many Requests: too many connections from your address\n"
)

func refusal(status, reason string) []byte {
	return []byte("HTTP/1.1 " + status + "\r\n" +
		"Connection: close\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Length: " + strconv.Itoa(len(reason)) + "\r\n" +
		"\r\n" + reason)
}

// refuse answers and closes c, a connection from a over the limit why. A
// write to a socket just accepted goes into its empty send buffer: it does
// not wait for the client.
func (l *connLimit) refuse(c net.Conn, a netip.Addr, tls bool, why int) {
	l.traffic.ConnRefused()
	answer, msg, limit, value := refusedAddr, "connection refused: too many from one address", "max_conns_per_ip", l.perIP
	if why == tooManyInAll {
		answer, msg, limit, value = refusedAll, "connection refused: too many open", "max_conns", l.max
	}
	if !tls {
		c.Write(answer) //nolint:errcheck // the client may be gone
	}
	c.Close()
	// Logged at most once a minute: a client flooding connections must
	// not flood the log too.
	now := time.Now().UnixNano()
	if last := l.logged.Load(); now-last >= int64(time.Minute) && l.logged.CompareAndSwap(last, now) {
		l.log.Warn(msg+" (logged at most once a minute)", "client", a.String(), limit, value)
	}
}
