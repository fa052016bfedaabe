package main

import (
	"math"
	"time"
)

// report is everything a run measured: what bench/results/latest.json holds.
type report struct {
	Generated time.Time        `json:"generated"`
	Machine   machineInfo      `json:"machine"`
	Settings  settings         `json:"settings"`
	Peers     []peerInfo       `json:"peers"`
	Scenarios []scenarioReport `json:"scenarios"`
	Idle      *idleReport      `json:"idle,omitempty"`
	Failures  []string         `json:"failures,omitempty"`
	Warnings  []string         `json:"warnings,omitempty"`
	Elapsed   string           `json:"elapsed"`
}

// settings are the knobs and conditions of the run.
type settings struct {
	Duration      string `json:"duration"`
	Warmup        string `json:"warmup"`
	Rounds        int    `json:"rounds"`
	LoadGenerator string `json:"load_generator"`
	Non2xx        string `json:"non_2xx_counts"`
	Backend       string `json:"backend"`
	Pinning       string `json:"pinning"`
	GOMAXPROCS    string `json:"gomaxprocs"`
	ClockTicks    int64  `json:"clock_ticks_per_second"`
	// Together says the peers of a round ran at the same moment (-together).
	Together bool `json:"together,omitempty"`
}

// peerInfo is what the report says about each peer.
type peerInfo struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Status  string `json:"status"` // measured, skipped or failed
	Reason  string `json:"reason,omitempty"`
	CPUs    string `json:"cpus,omitempty"`
}

// figures are what one run measured, or the summary of several.
type figures struct {
	RPS    float64  `json:"rps"`
	CPUUs  *float64 `json:"cpu_us_per_request"` // null without a proxy (direct)
	UserUs *float64 `json:"user_us_per_request"`
	SysUs  *float64 `json:"sys_us_per_request"`
	// SoftirqUs is interrupt and softirq time on the proxy's CPU per
	// request: network work the kernel does there that no process is
	// charged for (with IRQ time accounting), so it is not in CPUUs.
	SoftirqUs *float64 `json:"softirq_us_per_request,omitempty"`
	// OthersPct is the share of the proxy's CPU that other processes used
	// during the run, in percent: above a few percent the run was disturbed.
	OthersPct *float64 `json:"others_on_proxy_cpu_pct,omitempty"`
	P50Ms     float64  `json:"p50_ms"`
	P99Ms     float64  `json:"p99_ms"`
	MaxMs     float64  `json:"max_ms"`
	Errors    int64    `json:"errors"`
	Non2xx    int64    `json:"non_2xx"`
	RSSKiB    int64    `json:"rss_kib"`
}

// runRecord is one measured run of one peer in one round.
type runRecord struct {
	Round    int     `json:"round"`
	Peer     string  `json:"peer"`
	Requests int64   `json:"requests"`
	Seconds  float64 `json:"seconds"`
	figures
	Error     string `json:"error,omitempty"`
	succeeded bool
	stalled   bool // no request completed: retried once
}

// newRunRecord turns a load result and the proxy's CPU time over the run
// into per-request figures.
func newRunRecord(round int, peerName string, lr loadResult, cpu *cpuTicks, ticksPerSec int64, rssKiB int64) runRecord {
	r := runRecord{
		Round: round, Peer: peerName, Requests: lr.Requests, Seconds: lr.Seconds,
		figures: figures{
			RPS: lr.RPS, P50Ms: ms(lr.P50), P99Ms: ms(lr.P99), MaxMs: ms(lr.Max),
			Errors: lr.Errors, Non2xx: lr.Non2xx, RSSKiB: rssKiB,
		},
		succeeded: true,
	}
	if cpu != nil && lr.Requests > 0 {
		perTick := 1e6 / float64(ticksPerSec) / float64(lr.Requests) // µs of CPU per tick, per request
		r.UserUs = num(float64(cpu.User) * perTick)
		r.SysUs = num(float64(cpu.Sys) * perTick)
		r.CPUUs = num(float64(cpu.User+cpu.Sys) * perTick)
	}
	return r
}

// addCoreTimes adds what the proxy's CPU did during the run besides the
// proxy: softirq work per request, and other processes' share.
func (r *runRecord) addCoreTimes(core *coreTimes, proxy *cpuTicks, ticksPerSec int64) {
	if core == nil || proxy == nil || core.Total == 0 || r.Requests == 0 {
		return
	}
	r.SoftirqUs = num(float64(core.Softirq) * 1e6 / float64(ticksPerSec) / float64(r.Requests))
	others := float64(core.Busy) - float64(core.Softirq) - float64(proxy.User+proxy.Sys)
	r.OthersPct = num(max(0, others) / float64(core.Total) * 100)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// scenarioReport is one scenario: every run, and the summary per peer.
type scenarioReport struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Method      string        `json:"method"`
	Path        string        `json:"path"`
	BodyBytes   int           `json:"request_body_bytes"`
	Conns       int           `json:"connections"`
	KeepAlive   bool          `json:"keep_alive"`
	Summary     []peerSummary `json:"summary"`
	Runs        []runRecord   `json:"runs"`
}

// peerSummary is a peer's figures over the rounds of one scenario: the
// median of each, the largest max latency and RSS, the sum of errors, and
// ratios taken round by round (the peers of one round share the machine's
// mood) then their median. A ratio below 1 means less CPU than the other.
type peerSummary struct {
	Peer   string `json:"peer"`
	Rounds int    `json:"rounds"`
	figures
	CPUVsNginx  *float64 `json:"cpu_vs_nginx"`
	CPUVsHTTP   *float64 `json:"cpu_vs_net_http"`
	CPUVsHAProx *float64 `json:"cpu_vs_haproxy"`
	RPSVsNginx  *float64 `json:"rps_vs_nginx"`
}

// summarize reduces a scenario's runs to one summary per peer, in the
// order of peers.
func summarize(peers []string, runs []runRecord) []peerSummary {
	byPeerRound := map[string]map[int]runRecord{}
	for _, r := range runs {
		if !r.succeeded {
			continue
		}
		if byPeerRound[r.Peer] == nil {
			byPeerRound[r.Peer] = map[int]runRecord{}
		}
		byPeerRound[r.Peer][r.Round] = r
	}
	perRoundRatio := func(peer, other string, f func(runRecord) float64) *float64 {
		var rs []float64
		for round, r := range byPeerRound[peer] {
			if o, ok := byPeerRound[other][round]; ok {
				rs = append(rs, ratio(f(r), f(o)))
			}
		}
		return num(median(rs))
	}
	cpu := func(r runRecord) float64 { return val(r.CPUUs) }
	rps := func(r runRecord) float64 { return r.RPS }

	var out []peerSummary
	for _, name := range peers {
		rounds := byPeerRound[name]
		if len(rounds) == 0 {
			continue
		}
		var rpsV, cpuV, userV, sysV, softV, othersV, p50, p99, maxV []float64
		s := peerSummary{Peer: name, Rounds: len(rounds)}
		for _, r := range rounds {
			rpsV = append(rpsV, r.RPS)
			cpuV = append(cpuV, val(r.CPUUs))
			userV = append(userV, val(r.UserUs))
			sysV = append(sysV, val(r.SysUs))
			softV = append(softV, val(r.SoftirqUs))
			othersV = append(othersV, val(r.OthersPct))
			p50 = append(p50, r.P50Ms)
			p99 = append(p99, r.P99Ms)
			maxV = append(maxV, r.MaxMs)
			s.Errors += r.Errors
			s.Non2xx += r.Non2xx
			s.RSSKiB = max(s.RSSKiB, r.RSSKiB)
		}
		s.RPS = median(rpsV)
		s.CPUUs, s.UserUs, s.SysUs = num(median(cpuV)), num(median(userV)), num(median(sysV))
		s.SoftirqUs, s.OthersPct = num(median(softV)), num(median(othersV))
		s.P50Ms, s.P99Ms, s.MaxMs = median(p50), median(p99), maxFloat(maxV)
		if name != peerNginx {
			s.CPUVsNginx = perRoundRatio(name, peerNginx, cpu)
			s.RPSVsNginx = perRoundRatio(name, peerNginx, rps)
		}
		if name != peerNetHTTP {
			s.CPUVsHTTP = perRoundRatio(name, peerNetHTTP, cpu)
		}
		if name != peerHAProxy {
			s.CPUVsHAProx = perRoundRatio(name, peerHAProxy, cpu)
		}
		if math.IsNaN(s.RPS) {
			s.RPS = 0
		}
		out = append(out, s)
	}
	return out
}
