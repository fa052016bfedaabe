package admin

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The JSON API: /api/backends lists the backends of every pool,
// /api/pools the pools with their backends, /api/health says whether the
// balancer can serve at all, /api/status is all of it plus the front end's
// counters and the recent rates and history the dashboard draws.

// backendJSON is one backend as the API shows it.
type backendJSON struct {
	URL  string `json:"url"`
	Pool string `json:"pool"`
	// State is "up", "down", "backup" (healthy, serving only while no
	// primary is up), "disabled" (configured down), "draining" (an
	// operator drains it: no new requests, some still in flight) or
	// "drained" (draining, and none left in flight).
	State string `json:"state"`
	// Health is what checks and live traffic say, whatever the state:
	// "up" or "down".
	Health string    `json:"health"`
	Since  time.Time `json:"since"`
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

// poolJSON is one pool as /api/pools and /api/status show it.
type poolJSON struct {
	Name string `json:"name"`
	// Policy is how the pool balances: "round-robin", "hash header:X-User"...
	Policy        string         `json:"policy"`
	BackendsUp    int            `json:"backends_up"` // in rotation
	BackendsTotal int            `json:"backends_total"`
	Backends      []*backendJSON `json:"backends,omitempty"`
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
	Pools         []*poolJSON    `json:"pools"`
	Backends      []*backendJSON `json:"backends"`
	// Controls says whether the API takes changes (drain, enable...), so
	// the dashboard offers them.
	Controls bool        `json:"controls"`
	Reloads  *reloadJSON `json:"reloads,omitempty"`
}

// reloadJSON is how reloads went, when the admin interface can reload.
type reloadJSON struct {
	Successes   uint64     `json:"successes"`
	Failures    uint64     `json:"failures"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// trafficJSON is the front end's counters.
type trafficJSON struct {
	Requests         map[string]uint64 `json:"requests"`
	NoBackend        uint64            `json:"no_backend"`
	Connections      int64             `json:"connections"`
	ConnectionsTotal uint64            `json:"connections_total"`
	ConnsRefused     uint64            `json:"connections_refused"` // too many from one address
	ConnsParked      int64             `json:"connections_parked"`  // of the connections, idle ones held without a goroutine
	TunnelsTimedOut  uint64            `json:"tunnels_timed_out"`   // closed by the tunnel idle timeout
	BytesIn          uint64            `json:"received_bytes"`
	BytesOut         uint64            `json:"sent_bytes"`
	HTTP2Requests    uint64            `json:"http2_requests"`    // of the requests, those over HTTP/2
	HTTP2Conns       int64             `json:"http2_connections"` // of the connections, those speaking HTTP/2
	Rates            *trafficRates     `json:"rates"`
}

// healthJSON is /api/health.
type healthJSON struct {
	// Status is "ok" (every pool has a backend in rotation), "degraded"
	// (some pool has none), "unavailable" (no pool has one: 503) or
	// "shutting_down" (a graceful shutdown has begun, or the proxy is
	// closed: 503, whatever the pools; see ShutdownSource).
	Status        string           `json:"status"`
	BackendsUp    int              `json:"backends_up"` // in rotation
	BackendsTotal int              `json:"backends_total"`
	Pools         []poolHealthJSON `json:"pools"`
}

type poolHealthJSON struct {
	Name          string `json:"name"`
	BackendsUp    int    `json:"backends_up"`
	BackendsTotal int    `json:"backends_total"`
}

// pools describes every pool; with backends, each lists its own (with
// history: their per-second rates for charts).
func (s *Server) pools(v view, withBackends, withHistory bool) []*poolJSON {
	pls := s.src.Pools()
	out := make([]*poolJSON, len(pls))
	for i, pl := range pls {
		j := &poolJSON{
			Name:          pl.Name(),
			Policy:        policyName(pl.Policy()),
			BackendsUp:    len(pl.Up()),
			BackendsTotal: len(pl.Backends()),
		}
		if withBackends {
			j.Backends = s.poolBackends(pl, v, withHistory)
		}
		out[i] = j
	}
	return out
}

// policyName names a policy as its String method does, or by its type.
func policyName(p pool.Policy) string {
	if s, ok := p.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", p)
}

// backends describes every backend of every pool; with history, each
// carries its per-second rates for charts.
func (s *Server) backends(v view, withHistory bool) []*backendJSON {
	var out []*backendJSON
	for _, pl := range s.src.Pools() {
		out = append(out, s.poolBackends(pl, v, withHistory)...)
	}
	if out == nil {
		out = []*backendJSON{}
	}
	return out
}

func (s *Server) poolBackends(pl *pool.Pool, v view, withHistory bool) []*backendJSON {
	bs := pl.Backends()
	inRotation := make(map[*pool.Backend]bool, len(bs))
	for _, b := range pl.Up() {
		inRotation[b] = true
	}
	out := make([]*backendJSON, len(bs))
	for i, b := range bs {
		out[i] = describe(pl, b, inRotation[b], v, withHistory)
	}
	return out
}

// describe is b, a member of pl, as the API shows it.
func describe(pl *pool.Pool, b *pool.Backend, inRotation bool, v view, withHistory bool) *backendJSON {
	st := b.Stats()
	opts := b.Options()
	j := &backendJSON{
		URL:           b.URL(),
		Pool:          pl.Name(),
		State:         stateOf(b, &st),
		Health:        st.State.String(),
		Since:         st.Since.UTC(),
		InRotation:    inRotation,
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
	j.Rates = v.backends[b]
	if withHistory {
		j.History = v.history[b]
	}
	return j
}

// stateOf names b's state: "disabled" when configured down (it takes no
// traffic and is not checked), "draining" or "drained" while an operator
// drains it, "down" when failing, "backup" for a healthy backup (in
// rotation only while no primary is up), else "up".
func stateOf(b *pool.Backend, st *pool.BackendStats) string {
	switch {
	case st.Disabled:
		return "disabled"
	case st.Draining && st.InFlight > 0:
		return "draining"
	case st.Draining:
		return "drained"
	case st.State != pool.StateUp:
		return st.State.String()
	case b.Backup():
		return "backup"
	}
	return "up"
}

func (s *Server) serveBackends(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, s.backends(s.window.view(), false))
}

func (s *Server) servePools(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, s.pools(s.window.view(), true, false))
}

// counts returns the backends in rotation and in all, across pools.
func (s *Server) counts() (up, total int) {
	for _, pl := range s.src.Pools() {
		up += len(pl.Up())
		total += len(pl.Backends())
	}
	return up, total
}

func (s *Server) serveHealth(ctx *fasthttp.RequestCtx) {
	h := healthJSON{Status: "ok", Pools: []poolHealthJSON{}}
	empty := 0
	for _, pl := range s.src.Pools() {
		ph := poolHealthJSON{Name: pl.Name(), BackendsUp: len(pl.Up()), BackendsTotal: len(pl.Backends())}
		h.Pools = append(h.Pools, ph)
		h.BackendsUp += ph.BackendsUp
		h.BackendsTotal += ph.BackendsTotal
		if ph.BackendsUp == 0 {
			empty++
		}
	}
	status := fasthttp.StatusOK
	sd, _ := s.src.(ShutdownSource)
	switch {
	case sd != nil && sd.ShuttingDown():
		h.Status, status = "shutting_down", fasthttp.StatusServiceUnavailable
	case h.BackendsUp == 0:
		h.Status, status = "unavailable", fasthttp.StatusServiceUnavailable
	case empty > 0:
		h.Status = "degraded"
	}
	writeJSON(ctx, status, h)
}

func (s *Server) serveStatus(ctx *fasthttp.RequestCtx) {
	v := s.window.view()
	now := time.Now()
	t := s.src.Traffic().Snapshot()
	up, total := s.counts()
	st := statusJSON{
		Version:       s.cfg.Version,
		GoVersion:     runtime.Version(),
		Started:       s.started.UTC(),
		Now:           now.UTC(),
		UptimeSeconds: round(now.Sub(s.started).Seconds(), 3),
		SampleSeconds: sampleInterval.Seconds(),
		BackendsUp:    up,
		BackendsTotal: total,
		Traffic: trafficJSON{
			Requests:         make(map[string]uint64, pool.StatusClasses),
			NoBackend:        t.NoBackend,
			Connections:      t.Conns,
			ConnectionsTotal: t.ConnsTotal,
			ConnsRefused:     t.ConnsRefused,
			ConnsParked:      t.ConnsParked,
			TunnelsTimedOut:  t.TunnelsTimedOut,
			BytesIn:          t.BytesIn,
			BytesOut:         t.BytesOut,
			HTTP2Requests:    t.HTTP2Requests,
			HTTP2Conns:       t.HTTP2Conns,
			Rates:            v.traffic,
		},
		Pools:    s.pools(v, false, false),
		Backends: s.backends(v, true),
		Controls: s.cfg.Control != nil,
	}
	if r := s.cfg.Reloader; r != nil {
		rs := r.ReloadStats()
		st.Reloads = &reloadJSON{Successes: rs.Successes, Failures: rs.Failures, LastError: rs.LastError}
		if !rs.LastSuccess.IsZero() {
			at := rs.LastSuccess.UTC()
			st.Reloads.LastSuccess = &at
		}
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
