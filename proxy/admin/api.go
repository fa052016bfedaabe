package admin

import (
	"encoding/json"
	"runtime"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The JSON API: /api/backends lists the backends, /api/health says whether
// the balancer can serve at all, /api/status is both plus the front end's
// counters and the recent rates and history the dashboard draws.

// backendJSON is one backend as the API shows it.
type backendJSON struct {
	URL string `json:"url"`
	// State is "up", "down", "backup" (healthy, serving only while no
	// primary is up) or "disabled" (configured down).
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// InRotation says whether requests go to it now.
	InRotation bool `json:"in_rotation"`
	// Weight is its share of traffic (1 unless configured); MaxConns caps
	// its attempts in flight (0: no cap).
	Weight        int               `json:"weight"`
	MaxConns      int               `json:"max_conns"`
	InFlight      int64             `json:"in_flight"`
	Requests      uint64            `json:"requests"`
	Failures      uint64            `json:"failures"`
	Responses     map[string]uint64 `json:"responses"`
	Errors        map[string]uint64 `json:"errors"`
	Retries       uint64            `json:"retries"`
	StateChanges  uint64            `json:"state_changes"`
	Ejections     uint64            `json:"ejections"`
	TryTimeouts   uint64            `json:"try_timeouts"`
	HedgesCaused  uint64            `json:"hedges"`
	HedgesWon     uint64            `json:"hedges_won"`
	Checks        uint64            `json:"health_checks"`
	CheckFailures uint64            `json:"health_check_failures"`
	LastCheck     *checkJSON        `json:"last_check"`
	LastError     string            `json:"last_error,omitempty"`
	// Rates are over the last few seconds; nil until the second sample.
	Rates   *rates   `json:"rates"`
	History *history `json:"history,omitempty"`
}

// checkJSON is the last active health check.
type checkJSON struct {
	OK        bool      `json:"ok"`
	At        time.Time `json:"at"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
}

// statusJSON is /api/status.
type statusJSON struct {
	Version       string         `json:"version"`
	GoVersion     string         `json:"go_version"`
	Started       time.Time      `json:"started"`
	Now           time.Time      `json:"now"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	SampleSeconds float64        `json:"sample_interval_seconds"`
	BackendsUp    int            `json:"backends_up"` // in rotation
	BackendsTotal int            `json:"backends_total"`
	Traffic       trafficJSON    `json:"traffic"`
	Backends      []*backendJSON `json:"backends"`
}

// trafficJSON is the front end's counters.
type trafficJSON struct {
	Requests         map[string]uint64 `json:"requests"`
	NoBackend        uint64            `json:"no_backend"`
	Connections      int64             `json:"connections"`
	ConnectionsTotal uint64            `json:"connections_total"`
	BytesIn          uint64            `json:"received_bytes"`
	BytesOut         uint64            `json:"sent_bytes"`
	HTTP2Requests    uint64            `json:"http2_requests"`    // of the requests, those over HTTP/2
	HTTP2Conns       int64             `json:"http2_connections"` // of the connections, those speaking HTTP/2
	Rates            *trafficRates     `json:"rates"`
}

// healthJSON is /api/health.
type healthJSON struct {
	Status        string `json:"status"`      // "ok" or "unavailable"
	BackendsUp    int    `json:"backends_up"` // in rotation
	BackendsTotal int    `json:"backends_total"`
}

// backends describes every backend; with history, each carries its
// per-second rates for charts.
func (s *Server) backends(v view, withHistory bool) []*backendJSON {
	bs := s.pool.Backends()
	inRotation := make(map[*pool.Backend]bool, len(bs))
	for _, b := range s.pool.Up() {
		inRotation[b] = true
	}
	out := make([]*backendJSON, len(bs))
	for i, b := range bs {
		st := b.Stats()
		opts := b.Options()
		j := &backendJSON{
			URL:           b.URL(),
			State:         stateOf(b, st.State),
			Since:         st.Since.UTC(),
			InRotation:    inRotation[b],
			Weight:        opts.Weight,
			MaxConns:      opts.MaxConns,
			InFlight:      st.InFlight,
			Requests:      st.Requests,
			Failures:      st.Failures,
			Responses:     make(map[string]uint64, pool.StatusClasses),
			Errors:        make(map[string]uint64, pool.NumErrorKinds),
			Retries:       st.Retries,
			StateChanges:  st.StateChanges,
			Ejections:     st.Ejections,
			TryTimeouts:   st.TryTimeouts,
			HedgesCaused:  st.HedgesCaused,
			HedgesWon:     st.HedgesWon,
			Checks:        st.Checks,
			CheckFailures: st.CheckFailures,
			LastError:     st.LastError,
		}
		for c, n := range st.Responses {
			j.Responses[pool.StatusClassName(c)] = n
		}
		for k, n := range st.Errors {
			j.Errors[pool.ErrorKind(k).String()] = n
		}
		if c := st.LastCheck; c != nil {
			j.LastCheck = &checkJSON{OK: c.OK(), At: c.At.UTC(), LatencyMS: round(float64(c.Latency)/1e6, 3), Error: c.Err}
		}
		if i < len(v.backends) {
			j.Rates = v.backends[i]
		}
		if withHistory && i < len(v.history) {
			j.History = &v.history[i]
		}
		out[i] = j
	}
	return out
}

// stateOf names b's state: "disabled" when configured down (it takes no
// traffic and is not checked), "down" when failing, "backup" for a healthy
// backup (in rotation only while no primary is up), else "up".
func stateOf(b *pool.Backend, s pool.State) string {
	switch {
	case b.Disabled():
		return "disabled"
	case s != pool.StateUp:
		return s.String()
	case b.Backup():
		return "backup"
	}
	return "up"
}

func (s *Server) serveBackends(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, s.backends(s.window.view(), false))
}

func (s *Server) serveHealth(ctx *fasthttp.RequestCtx) {
	h := healthJSON{Status: "ok", BackendsUp: len(s.pool.Up()), BackendsTotal: len(s.pool.Backends())}
	status := fasthttp.StatusOK
	if h.BackendsUp == 0 {
		h.Status, status = "unavailable", fasthttp.StatusServiceUnavailable
	}
	writeJSON(ctx, status, h)
}

func (s *Server) serveStatus(ctx *fasthttp.RequestCtx) {
	v := s.window.view()
	now := time.Now()
	t := s.pool.Traffic().Snapshot()
	st := statusJSON{
		Version:       s.cfg.Version,
		GoVersion:     runtime.Version(),
		Started:       s.started.UTC(),
		Now:           now.UTC(),
		UptimeSeconds: round(now.Sub(s.started).Seconds(), 3),
		SampleSeconds: sampleInterval.Seconds(),
		BackendsUp:    len(s.pool.Up()),
		BackendsTotal: len(s.pool.Backends()),
		Traffic: trafficJSON{
			Requests:         make(map[string]uint64, pool.StatusClasses),
			NoBackend:        t.NoBackend,
			Connections:      t.Conns,
			ConnectionsTotal: t.ConnsTotal,
			BytesIn:          t.BytesIn,
			BytesOut:         t.BytesOut,
			HTTP2Requests:    t.HTTP2Requests,
			HTTP2Conns:       t.HTTP2Conns,
			Rates:            v.traffic,
		},
		Backends: s.backends(v, true),
	}
	for c, n := range t.Requests {
		st.Traffic.Requests[pool.StatusClassName(c)] = n
	}
	writeJSON(ctx, fasthttp.StatusOK, st)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		plain(ctx, fasthttp.StatusInternalServerError, "500 Internal Server Error\n")
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(body, '\n'))
}
