package admin

import (
	"runtime"

	"github.com/valyala/fasthttp"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Metric names. Every one starts with namespace; per-backend ones carry the
// labels pool="<name>",backend="<url>", per-pool ones pool="<name>".
const namespace = "lb_"

// latencyBounds are pool.LatencyBuckets in seconds, the unit Prometheus
// expects.
var latencyBounds = func() []float64 {
	b := make([]float64, len(pool.LatencyBuckets))
	for i, d := range pool.LatencyBuckets {
		b[i] = d.Seconds()
	}
	return b
}()

// serveMetrics answers GET /metrics with the Prometheus text exposition of
// every counter, read from the pool's atomics at this moment.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx) {
	var e exposition
	_, total := s.counts()
	e.b = make([]byte, 0, 4096+2048*total)
	s.writeGlobal(&e)
	s.writeBackends(&e)
	writeProcess(&e, s.started)
	ctx.SetContentType(expositionContentType)
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(e.b)
}

func (s *Server) writeGlobal(e *exposition) {
	n := namespace
	e.family(n+"build_info", "gauge", "Build of the load balancer: always 1, with the version in labels.")
	bi := label("version", s.cfg.Version).with("goversion", runtime.Version())
	if s.revision != "" {
		bi = bi.with("revision", s.revision)
	}
	e.uint(n+"build_info", bi, 1)

	t := s.src.Traffic().Snapshot()
	e.family(n+"start_time_seconds", "gauge", "When the load balancer started counting, in Unix seconds.")
	e.int(n+"start_time_seconds", "", t.StartedUnix)

	e.family(n+"requests_total", "counter", "Client requests answered, by the class of the status sent (the proxy's own 502, 503 and 504 included).")
	for i, c := range t.Requests {
		e.uint(n+"requests_total", label("code", pool.StatusClassName(i)), c)
	}
	e.family(n+"requests_no_backend_total", "counter", "Client requests that found no backend in rotation and got a 502 without any attempt.")
	e.uint(n+"requests_no_backend_total", "", t.NoBackend)

	var all uint64
	for _, c := range t.Requests {
		all += c
	}
	e.family(n+"requests_by_protocol_total", "counter", "Client requests answered, by the protocol the client spoke (HTTP/1.1 or h2).")
	e.uint(n+"requests_by_protocol_total", label("protocol", "http/1.1"), all-min(all, t.HTTP2Requests))
	e.uint(n+"requests_by_protocol_total", label("protocol", "h2"), t.HTTP2Requests)
	e.family(n+"requests_net_path_total", "counter", "HTTP/1.1 client requests proxied by the net/http path, because the pool has HTTP/2 backends (the others take the fasthttp path).")
	e.uint(n+"requests_net_path_total", "", t.HTTP1ViaNet)
	e.family(n+"http2_connections", "gauge", "Client connections speaking HTTP/2 now (included in client_connections).")
	e.int(n+"http2_connections", "", t.HTTP2Conns)
	e.family(n+"http2_connections_total", "counter", "Client connections that spoke HTTP/2.")
	e.uint(n+"http2_connections_total", "", t.HTTP2ConnsTotal)

	e.family(n+"client_connections", "gauge", "Client connections open now.")
	e.int(n+"client_connections", "", t.Conns)
	e.family(n+"client_connections_total", "counter", "Client connections accepted.")
	e.uint(n+"client_connections_total", "", t.ConnsTotal)
	e.family(n+"client_connections_parked", "gauge", "Idle client connections held without a goroutine now (included in client_connections).")
	e.int(n+"client_connections_parked", "", t.ConnsParked)
	e.family(n+"client_connections_refused_total", "counter", "Client connections refused as they were accepted: too many open in all (-max-conns) or from their address (-max-conns-per-ip).")
	e.uint(n+"client_connections_refused_total", "", t.ConnsRefused)
	e.family(n+"tunnels_timed_out_total", "counter", "Tunnels (WebSockets, other switched protocols) closed for carrying nothing either way, or for a stalled write, past -tunnel-idle-timeout.")
	e.uint(n+"tunnels_timed_out_total", "", t.TunnelsTimedOut)

	e.family(n+"received_bytes_total", "counter", "Bytes received from clients: request lines, header blocks and bodies, estimated from the parsed request.")
	e.uint(n+"received_bytes_total", "", t.BytesIn)
	e.family(n+"sent_bytes_total", "counter", "Bytes sent to clients: status lines, header blocks and bodies, estimated from the response.")
	e.uint(n+"sent_bytes_total", "", t.BytesOut)

	up, total := s.counts()
	e.family(n+"backends", "gauge", "Backends configured, in every pool.")
	e.uint(n+"backends", "", uint64(total))
	e.family(n+"backends_up", "gauge", "Backends in rotation now, in every pool (backups only while no primary is up); 0 means every request gets a 502.")
	e.uint(n+"backends_up", "", uint64(up))

	pools := s.src.Pools()
	e.family(n+"pool_backends", "gauge", "Backends in the pool: configured, discovered and added at run time.")
	for _, pl := range pools {
		e.uint(n+"pool_backends", label("pool", pl.Name()), uint64(len(pl.Backends())))
	}
	e.family(n+"pool_backends_up", "gauge", "Backends of the pool in rotation now; 0 means the pool's requests get a 502.")
	for _, pl := range pools {
		e.uint(n+"pool_backends_up", label("pool", pl.Name()), uint64(len(pl.Up())))
	}

	if al, ok := s.src.(AccessLogSource); ok {
		e.family(n+"access_log_dropped_total", "counter", "Access log lines dropped because the destination did not keep up (4 MiB pending).")
		e.uint(n+"access_log_dropped_total", "", al.AccessLogDropped())
	}

	if r := s.cfg.Reloader; r != nil {
		rs := r.ReloadStats()
		e.family(n+"config_reloads_total", "counter", "Configuration reloads (SIGHUP, POST /api/reload), by result; a failed one changed nothing.")
		e.uint(n+"config_reloads_total", label("result", "success"), rs.Successes)
		e.uint(n+"config_reloads_total", label("result", "failure"), rs.Failures)
		e.family(n+"config_last_reload_successful", "gauge", "Whether the last configuration reload succeeded (1 before any).")
		e.bool(n+"config_last_reload_successful", "", rs.LastError == "")
		e.family(n+"config_last_reload_success_timestamp_seconds", "gauge", "When the configuration was last reloaded, in Unix seconds (0 before any).")
		var at float64
		if !rs.LastSuccess.IsZero() {
			at = float64(rs.LastSuccess.UnixMilli()) / 1e3
		}
		e.float(n+"config_last_reload_success_timestamp_seconds", "", at)
	}
}

// backendFamily is one per-backend metric: how to write it for one backend.
type backendFamily struct {
	name, typ, help string
	write           func(e *exposition, name string, l labels, st *pool.BackendStats)
}

// counter is a per-backend counter read from one field.
func counter(name, help string, v func(*pool.BackendStats) uint64) backendFamily {
	return backendFamily{name, "counter", help, func(e *exposition, name string, l labels, st *pool.BackendStats) {
		e.uint(name, l, v(st))
	}}
}

var backendFamilies = []backendFamily{
	{"backend_up", "gauge", "Whether the backend is healthy and enabled (1), a backup on standby included, or down or disabled (0).",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.bool(name, l, st.State == pool.StateUp && !st.Disabled)
		}},
	{"backend_draining", "gauge", "Whether an operator drains the backend (1): it takes no new requests; see lb_backend_in_flight for those left.",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.bool(name, l, st.Draining)
		}},
	{"backend_weight", "gauge", "The backend's weight (1 unless set).",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.int(name, l, int64(st.Weight))
		}},
	{"backend_state_changed_timestamp_seconds", "gauge", "When the backend last changed state (or the balancer started), in Unix seconds.",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.float(name, l, float64(st.Since.UnixMilli())/1e3)
		}},
	counter("backend_state_changes_total", "Times the backend went down or came back up.",
		func(st *pool.BackendStats) uint64 { return st.StateChanges }),
	{"backend_in_flight", "gauge", "Attempts running on the backend now.",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.int(name, l, st.InFlight)
		}},
	counter("backend_requests_total", "Attempts sent to the backend, retries included.",
		func(st *pool.BackendStats) uint64 { return st.Requests }),
	{"backend_responses_total", "counter", "Responses received from the backend, by status class.",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			for i, c := range st.Responses {
				e.uint(name, l.with("code", pool.StatusClassName(i)), c)
			}
		}},
	{"backend_errors_total", "counter", "Attempts that failed before a response, by kind: dial (no connection), timeout, reset (connection closed or reset), response (malformed or too large), busy (connection limit reached).",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			for k, c := range st.Errors {
				e.uint(name, l.with("kind", pool.ErrorKind(k).String()), c)
			}
		}},
	counter("backend_retries_total", "Failed attempts on the backend that were retried on another backend.",
		func(st *pool.BackendStats) uint64 { return st.Retries }),
	counter("backend_ejections_total", "Times live traffic took the backend out of rotation (consecutive connect failures or try timeouts).",
		func(st *pool.BackendStats) uint64 { return st.Ejections }),
	counter("backend_try_timeouts_total", "Attempts abandoned for want of a response header within the try timeout.",
		func(st *pool.BackendStats) uint64 { return st.TryTimeouts }),
	counter("backend_hedges_total", "Hedged requests sent elsewhere because this backend had not answered in time.",
		func(st *pool.BackendStats) uint64 { return st.HedgesCaused }),
	counter("backend_hedges_won_total", "Hedged requests sent to this backend that answered first.",
		func(st *pool.BackendStats) uint64 { return st.HedgesWon }),
	counter("backend_health_checks_total", "Active health checks run against the backend.",
		func(st *pool.BackendStats) uint64 { return st.Checks }),
	counter("backend_health_check_failures_total", "Active health checks the backend failed.",
		func(st *pool.BackendStats) uint64 { return st.CheckFailures }),
	{"backend_health_check_duration_seconds", "gauge", "How long the last active health check took (0 before the first).",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			var d float64
			if st.LastCheck != nil {
				d = st.LastCheck.Latency.Seconds()
			}
			e.float(name, l, d)
		}},
	{"backend_response_duration_seconds", "histogram", "Time from sending a request to the backend to the end of its response (to its header for a streamed body), for attempts that got one.",
		func(e *exposition, name string, l labels, st *pool.BackendStats) {
			e.histogram(name, l, latencyBounds, st.Latency.Counts[:], st.Latency.Sum.Seconds())
		}},
}

func (s *Server) writeBackends(e *exposition) {
	var stats []pool.BackendStats
	var names []labels
	for _, pl := range s.src.Pools() {
		for _, b := range pl.Backends() {
			stats = append(stats, b.Stats())
			names = append(names, label("pool", pl.Name()).with("backend", b.URL()))
		}
	}
	for _, f := range backendFamilies {
		name := namespace + f.name
		e.family(name, f.typ, f.help)
		for i := range stats {
			f.write(e, name, names[i], &stats[i])
		}
	}
}
