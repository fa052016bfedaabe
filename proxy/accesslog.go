package proxy

import (
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The access log: a line per request answered, in nginx's combined format
// or as JSON (accesslog_format.go). Requests never write it themselves: a
// line is formatted into a pooled buffer, then copied under a mutex onto
// the pending buffer, and a background goroutine swaps the pending buffer
// for its spare and writes it out every accessLogInterval, or as soon as it
// passes accessLogFlushSize. A destination that blocks costs requests
// nothing: past accessLogLimit pending bytes, lines are dropped and counted
// (Proxy.AccessLogDropped, lb_access_log_dropped_total on the admin
// interface).

// AccessLogFormat is the layout of access log lines.
type AccessLogFormat string

const (
	// AccessLogCombined is nginx's combined format followed by the request
	// time in seconds and the backend that answered, quoted ("-" for none):
	//
	//	203.0.113.9 - - [02/Jan/2006:15:04:05 -0700] "GET /a HTTP/1.1" 200 512 "-" "curl/8.5.0" 0.003 "http://10.0.0.1:8081"
	AccessLogCombined AccessLogFormat = "combined"
	// AccessLogJSON is one JSON object per line, with the keys time,
	// client, method, uri, proto, host, status, bytes, duration_ms,
	// backend, attempts, referer and user_agent.
	AccessLogJSON AccessLogFormat = "json"
)

// ParseAccessLogFormat checks a format's name: "combined" or "json".
func ParseAccessLogFormat(s string) (AccessLogFormat, error) {
	switch f := AccessLogFormat(s); f {
	case AccessLogCombined, AccessLogJSON:
		return f, nil
	}
	return "", fmt.Errorf("access log format %q: want combined or json", s)
}

// Access log buffering.
const (
	accessLogInterval  = 200 * time.Millisecond
	accessLogFlushSize = 64 << 10
	accessLogLimit     = 4 << 20
)

// accessLog buffers access log lines and writes them out in the
// background. It is safe for concurrent use.
type accessLog struct {
	json bool
	log  *slog.Logger

	lines sync.Pool // *logLine: where a line is formatted

	mu      sync.Mutex
	pending []byte // lines not yet handed to the writer
	limit   int    // most pending bytes; beyond, lines are dropped
	closed  bool   // close has begun: lines go straight to the writer

	dropped atomic.Uint64
	kick    chan struct{} // pending passed accessLogFlushSize
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	// wmu serialises writes to w: the flusher's, and those after close.
	wmu    sync.Mutex
	w      io.Writer
	spare  []byte // the flusher's: the buffer the last write came from
	failed bool   // the last write failed: logged once until one succeeds
}

// newAccessLog starts writing lines to w in the background.
func newAccessLog(w io.Writer, format AccessLogFormat, log *slog.Logger) *accessLog {
	l := &accessLog{
		json:    format == AccessLogJSON,
		log:     log,
		w:       w,
		pending: make([]byte, 0, 2*accessLogFlushSize),
		spare:   make([]byte, 0, 2*accessLogFlushSize),
		limit:   accessLogLimit,
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	l.lines.New = func() any { return &logLine{b: make([]byte, 0, 512)} }
	go l.run()
	return l
}

// add queues one line (with its newline). It never blocks on the writer,
// except once close has begun.
func (l *accessLog) add(line []byte) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.write(line)
		return
	}
	if len(l.pending)+len(line) > l.limit {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	l.pending = append(l.pending, line...)
	full := len(l.pending) >= accessLogFlushSize
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

func (l *accessLog) run() {
	defer close(l.stopped)
	t := time.NewTicker(accessLogInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.kick:
		case <-l.stop:
			l.flush()
			return
		}
		l.flush()
	}
}

// flush writes the pending lines out, swapping in the spare buffer so
// requests can go on appending meanwhile. The two buffers keep the size the
// load has grown them to (at most accessLogLimit each), so a busy proxy
// stops allocating for them.
func (l *accessLog) flush() {
	l.mu.Lock()
	out := l.pending
	l.pending = l.spare[:0]
	l.mu.Unlock()
	if len(out) > 0 {
		l.write(out)
	}
	l.spare = out[:0]
}

// write hands b to the writer, saying once when writing fails.
func (l *accessLog) write(b []byte) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.w.Write(b)
	switch {
	case err != nil && !l.failed:
		l.failed = true
		l.log.Error("access log write failed: lines are lost until it works again", "error", err.Error())
	case err == nil && l.failed:
		l.failed = false
		l.log.Info("access log writes work again")
	}
}

// close writes out every pending line and stops the flusher. Lines that
// arrive later (a stream ending after Shutdown) are written at once.
func (l *accessLog) close() {
	l.once.Do(func() {
		close(l.stop)
		<-l.stopped
		l.mu.Lock()
		l.closed = true
		rest := l.pending
		l.pending = nil
		l.mu.Unlock()
		if len(rest) > 0 {
			l.write(rest)
		}
	})
}

// AccessLogDropped returns how many access log lines were dropped because
// the destination did not keep up (zero without an access log).
func (p *Proxy) AccessLogDropped() uint64 {
	if p.alog == nil {
		return 0
	}
	return p.alog.dropped.Load()
}

// served is what proxying a request on the fasthttp path came to, for the
// access log.
type served struct {
	backend  *pool.Backend // whose answer was relayed; nil for the proxy's own
	attempts int           // backends tried, hedges included
	http10   bool          // the client spoke HTTP/1.0 (the backend is sent HTTP/1.1)
	client   netip.Addr    // the client as prepareRequest found it, if it ran
	// bodyLeft: part of a request body of known length may be unread
	// on the connection when the answer goes out (linger.go).
	bodyLeft bool
}

// logFastHTTP logs a request that HandleFastHTTP answered. A streamed body
// is logged when it has been relayed (streamedBody.Close), with the bytes
// relayed; a protocol switch (WebSocket) when the 101 is sent. Requests
// handed to the net/http path are logged there.
func (p *Proxy) logFastHTTP(ctx *fasthttp.RequestCtx, sv *served) {
	if ctx.UserValue(viaNetRouteKey{}) != nil {
		return
	}
	e := p.fastEntry(ctx, sv.client)
	if sv.http10 {
		e.proto = protoHTTP10
	}
	if sv.backend != nil {
		e.backend = sv.backend.URL()
	}
	e.attempts = sv.attempts
	resp := &ctx.Response
	if resp.IsBodyStream() {
		if s := streamOf(resp.BodyStream()); s != nil {
			s.logAtEnd(&e)
			return
		}
		e.bytes = int64(max(resp.Header.ContentLength(), 0))
	} else if !ctx.Request.Header.IsHead() {
		e.bytes = int64(len(resp.Body()))
	}
	logEntry(p.alog, &e, time.Now())
}

// logReadError logs a request the server could not read (handleReadError).
// fasthttp keeps nothing of a header it could not read, not even its request
// line, and answers for what it lacks with defaults ("GET", "/",
// "HTTP/1.1"): the line then says nothing of the request in either format
// ("-" in combined, empty strings in JSON), rather than what was never read.
// Its time runs from began, the coarse unix nanoseconds its first byte
// came (clientConn.readStart), when known: no handler ran to start it, and
// ctx.Time() would read the clock only now.
func (p *Proxy) logReadError(ctx *fasthttp.RequestCtx, began int64) {
	e := p.fastEntry(ctx, netip.Addr{})
	if began != 0 {
		e.start = time.Unix(0, began)
	}
	if len(ctx.Request.Header.RawHeaders()) == 0 {
		e.method, e.uri, e.proto, e.host, e.referer, e.agent = nil, nil, nil, nil, nil, nil
	}
	e.bytes = int64(len(ctx.Response.Body()))
	logEntry(p.alog, &e, time.Now())
}

var protoHTTP10 = []byte("HTTP/1.0")

// fastEntry reads a fasthttp request's line fields in place. client is the
// client's address when the request path has found it already.
func (p *Proxy) fastEntry(ctx *fasthttp.RequestCtx, client netip.Addr) accessEntry[[]byte] {
	h := &ctx.Request.Header
	if !client.IsValid() {
		client, _ = p.clientAddr(ctx)
	}
	return accessEntry[[]byte]{
		start:   ctx.Time(),
		client:  client,
		method:  h.Method(),
		uri:     h.RequestURI(),
		proto:   h.Protocol(),
		host:    h.Host(),
		referer: h.Referer(),
		agent:   h.UserAgent(),
		status:  ctx.Response.StatusCode(),
	}
}

// logAtEnd has the stream log e at Close. The request's bytes are the
// server's again once the handler returns, so e's fields are copied.
func (s *streamedBody) logAtEnd(e *accessEntry[[]byte]) {
	n := len(e.method) + len(e.uri) + len(e.proto) + len(e.host) + len(e.referer) + len(e.agent)
	if cap(s.keep) < n {
		s.keep = make([]byte, 0, n)
	}
	k := s.keep[:0]
	for _, f := range []*[]byte{&e.method, &e.uri, &e.proto, &e.host, &e.referer, &e.agent} {
		i := len(k)
		k = append(k, *f...)
		*f = k[i:len(k):len(k)]
	}
	s.keep = k
	s.entry, s.logged = *e, true
}

// logNet logs a request that the net/http path answered, once its answer
// has been written.
func (p *Proxy) logNet(st *netState, nw *netWriter, start time.Time) {
	r := st.in
	e := accessEntry[string]{
		start:    start,
		client:   st.client,
		method:   r.Method,
		uri:      r.RequestURI,
		proto:    r.Proto,
		host:     r.Host,
		referer:  r.Header.Get("Referer"),
		agent:    r.Header.Get("User-Agent"),
		status:   nw.status,
		bytes:    int64(nw.written),
		attempts: st.attempts,
	}
	if st.served != nil {
		e.backend = st.served.URL()
	}
	logEntry(p.alog, &e, time.Now())
}
