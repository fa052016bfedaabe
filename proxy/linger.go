package proxy

import (
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Lingering close. A connection the proxy closes while its client may still
// be sending (a body refused as too large, a request it could not read, an
// expectation refused) would see its close turned into a TCP reset by the
// bytes that arrive after it, and the reset can destroy the answer before
// the client has read it: a client that sends its whole body before reading
// gets "connection reset by peer" instead of 413. As nginx does
// (lingering_close), the proxy then half-closes the connection once its
// answer is out, and reads and discards what still comes until the client
// closes too, lingerTimeout passes without a byte, or lingerTime in all.
// The connection keeps its place under the connection limits meanwhile.

const (
	lingerTime    = 30 * time.Second // nginx's lingering_time
	lingerTimeout = 5 * time.Second  // nginx's lingering_timeout
)

// lingerers holds the connections lingering before their close, so that
// Shutdown can cut them short.
type lingerers struct {
	mu      sync.Mutex
	conns   map[*guardConn]struct{}
	stopped bool
	wg      sync.WaitGroup
}

// lingerBufs hold what lingering connections read, only to drop it.
var lingerBufs = sync.Pool{New: func() any { return new([4096]byte) }}

// lingerOnClose marks ctx's connection for a lingering close, when it is
// one the proxy accepted: the caller has decided to close it while the
// client may still be sending.
func lingerOnClose(ctx *fasthttp.RequestCtx) {
	if g := clientOf(ctx.Conn()); g != nil && g.lingerers != nil {
		g.linger.Store(true)
	}
}

// start begins c's lingering close in a goroutine of its own, unless the
// proxy is shutting down: it reports whether it did.
func (s *lingerers) start(c *guardConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	if s.conns == nil {
		s.conns = map[*guardConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go s.run(c)
	return true
}

// run half-closes c, drains it and closes it.
func (s *lingerers) run(c *guardConn) {
	defer s.wg.Done()
	raw := c.sockConn.Conn // beneath TLS, whose close_notify is already out
	if closeWrite(raw) == nil {
		buf := lingerBufs.Get().(*[4096]byte)
		end := time.Now().Add(lingerTime)
		for now := time.Now(); now.Before(end); now = time.Now() {
			d := now.Add(lingerTimeout)
			if d.After(end) {
				d = end
			}
			if raw.SetReadDeadline(d) != nil {
				break
			}
			if _, err := raw.Read(buf[:]); err != nil {
				break // the client's close, the timeout, or stop's close
			}
		}
		lingerBufs.Put(buf)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.closeConn()
}

// stop ends every lingering close at once, and those asked for later
// before they begin, and waits until the connections are closed.
func (s *lingerers) stop() {
	s.mu.Lock()
	s.stopped = true
	for c := range s.conns {
		c.closeConn() // its read fails at once; the lingerer's close is then a no-op
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// lingerIfAsked begins c's lingering close when one was asked for: it
// reports whether it did, and the close is then the lingerer's.
func (c *guardConn) lingerIfAsked() bool {
	return c.linger.Load() && c.linger.Swap(false) && c.lingerers.start(c)
}
