// Package backend is the project's test backend: a small fasthttp handler
// that names itself in every answer and has the endpoints that tests and
// benchmarks need (health switching, echo, sized bodies, delays, statuses).
package backend

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// MaxDelay caps /delay/D so a typo cannot park a connection for days.
const MaxDelay = 10 * time.Minute

// MaxBytes caps /bytes/N.
const MaxBytes = 1 << 30

// staticSize is how much of /bytes/N is served from one shared buffer
// without copying; larger bodies are streamed from it.
const staticSize = 1 << 20

var static = []byte(strings.Repeat("x", staticSize))

// Handler answers the backend's endpoints:
//
//	GET /            "Backend server is running on port <name>" (so does any other path)
//	GET /health      200 "ok", or 503 "down" after PUT /health "down"
//	PUT /health      body "down" or "up" switches what GET /health answers
//	ANY /echo        JSON: method, uri, host, headers, body length, remote address
//	GET /bytes/N     N bytes of 'x'
//	ANY /delay/D     the greeting after D (a Go duration such as 250ms)
//	ANY /status/N    status N
//	GET /stats       JSON: requests served and in flight (not counting /stats)
//	POST /upload     JSON: the body's length and SHA-256, read as a stream
//	GET /download/N  N bytes streamed; chunked with ?chunked=1
//	GET /sse         server-sent events: ?n=5&every=100ms
//	GET /ws          WebSocket echo
//
// Every response carries "X-Backend: <name>". A Handler is safe for
// concurrent use.
type Handler struct {
	name     string
	greeting []byte
	down     atomic.Bool
	requests atomic.Int64
	inFlight atomic.Int64
}

// New returns a handler that names itself name (usually its port).
func New(name string) *Handler {
	return &Handler{
		name:     name,
		greeting: []byte("Backend server is running on port " + name),
	}
}

// Name returns the name the handler answers with.
func (h *Handler) Name() string { return h.name }

// SetHealthy switches what GET /health answers, as PUT /health does.
func (h *Handler) SetHealthy(up bool) { h.down.Store(!up) }

// HandleFastHTTP serves one request; it is a fasthttp.RequestHandler.
func (h *Handler) HandleFastHTTP(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("X-Backend", h.name)
	// The path stays []byte: converting it would allocate on every request
	// of a benchmark backend.
	path := ctx.Path()
	if string(path) == "/stats" {
		h.stats(ctx)
		return
	}
	h.requests.Add(1)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	switch {
	case string(path) == "/health":
		h.health(ctx)
	case string(path) == "/echo":
		h.echo(ctx)
	case bytes.HasPrefix(path, prefixBytes):
		h.bytes(ctx, path[len(prefixBytes):])
	case bytes.HasPrefix(path, prefixDelay):
		h.delay(ctx, string(path[len(prefixDelay):]))
	case bytes.HasPrefix(path, prefixStatus):
		h.status(ctx, string(path[len(prefixStatus):]))
	case string(path) == "/upload":
		h.upload(ctx)
	case bytes.HasPrefix(path, prefixDownload):
		h.download(ctx, path[len(prefixDownload):])
	case string(path) == "/sse":
		h.sse(ctx)
	case string(path) == "/ws":
		h.websocket(ctx)
	default:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBody(h.greeting)
	}
}

func (h *Handler) health(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; charset=utf-8")
	if ctx.IsPut() || ctx.IsPost() {
		switch strings.TrimSpace(string(readBody(ctx))) {
		case "down":
			h.down.Store(true)
		case "up":
			h.down.Store(false)
		default:
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetBodyString("body must be \"up\" or \"down\"\n")
			return
		}
	}
	if h.down.Load() {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("down")
		return
	}
	ctx.SetBodyString("ok")
}

// Stats is the JSON body /stats answers with.
type Stats struct {
	Backend  string `json:"backend"`
	Requests int64  `json:"requests"`
	InFlight int64  `json:"in_flight"`
}

// Stats returns the handler's counters.
func (h *Handler) Stats() Stats {
	return Stats{Backend: h.name, Requests: h.requests.Load(), InFlight: h.inFlight.Load()}
}

func (h *Handler) stats(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	if err := json.NewEncoder(ctx).Encode(h.Stats()); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
	}
}

// Echo is the JSON body /echo answers with.
type Echo struct {
	Backend    string              `json:"backend"`
	Method     string              `json:"method"`
	URI        string              `json:"uri"`
	Proto      string              `json:"proto"`
	Host       string              `json:"host"`
	Headers    map[string][]string `json:"headers"`
	BodyLength int                 `json:"body_length"`
	RemoteAddr string              `json:"remote_addr"`
}

func (h *Handler) echo(ctx *fasthttp.RequestCtx) {
	e := Echo{
		Backend:    h.name,
		Method:     string(ctx.Method()),
		URI:        string(ctx.RequestURI()),
		Proto:      string(ctx.Request.Header.Protocol()),
		Host:       string(ctx.Request.Header.Host()),
		Headers:    map[string][]string{},
		BodyLength: len(readBody(ctx)),
		RemoteAddr: ctx.RemoteAddr().String(),
	}
	for k, v := range ctx.Request.Header.All() {
		e.Headers[string(k)] = append(e.Headers[string(k)], string(v))
	}
	ctx.SetContentType("application/json")
	if err := json.NewEncoder(ctx).Encode(e); err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
	}
}

var (
	prefixBytes  = []byte("/bytes/")
	prefixDelay  = []byte("/delay/")
	prefixStatus = []byte("/status/")
)

func (h *Handler) bytes(ctx *fasthttp.RequestCtx, arg []byte) {
	n, err := strconv.Atoi(string(arg))
	if err != nil || n < 0 || n > MaxBytes {
		badArg(ctx, "/bytes/N wants 0 <= N <= "+strconv.Itoa(MaxBytes))
		return
	}
	ctx.SetContentType("application/octet-stream")
	if n <= staticSize {
		ctx.Response.SetBodyRaw(static[:n])
		return
	}
	ctx.SetBodyStream(&repeatReader{left: n}, n)
}

// repeatReader yields left bytes of 'x' without holding them in memory.
type repeatReader struct{ left int }

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, static[:min(len(p), r.left)])
	r.left -= n
	return n, nil
}

func (h *Handler) delay(ctx *fasthttp.RequestCtx, arg string) {
	d, err := time.ParseDuration(arg)
	if err != nil || d < 0 || d > MaxDelay {
		badArg(ctx, "/delay/D wants a duration from 0 to "+MaxDelay.String()+", such as 250ms")
		return
	}
	time.Sleep(d)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBody(h.greeting)
}

func (h *Handler) status(ctx *fasthttp.RequestCtx, arg string) {
	code, err := strconv.Atoi(arg)
	if err != nil || code < 200 || code > 599 {
		badArg(ctx, "/status/N wants 200 <= N <= 599")
		return
	}
	ctx.SetStatusCode(code)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("status " + arg + "\n")
}

func badArg(ctx *fasthttp.RequestCtx, msg string) {
	ctx.SetStatusCode(fasthttp.StatusBadRequest)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(msg + "\n")
}

// readBody returns the whole request body, read from its stream when the
// server streams it.
func readBody(ctx *fasthttp.RequestCtx) []byte {
	if s := ctx.RequestBodyStream(); s != nil {
		b, _ := io.ReadAll(s)
		return b
	}
	return ctx.PostBody()
}

// NewServer returns a fasthttp server for h, set up to show tests exactly
// what arrived (header names are kept as received) and to take bodies of
// any size as streams.
func NewServer(h *Handler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h.HandleFastHTTP,
		Name:                          "backend-server",
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		IdleTimeout:                   75 * time.Second,
	}
}
