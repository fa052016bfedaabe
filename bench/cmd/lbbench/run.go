package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rishichirchi/Load-Balancee/bench/configs"
)

// run does the whole benchmark: start backends and peers, measure memory
// with idle connections, run every round of every scenario on every peer,
// and return the report. Errors that leave nothing to measure are
// returned; failures of single peers or runs are recorded in the report.
func (h *harness) run(ctx context.Context) (*report, error) {
	start := time.Now()
	scs, err := selectScenarios(h.opts.scenarios)
	if err != nil {
		return nil, err
	}
	if h.opts.backend != "go" {
		// Only backend-server has the /ws echo.
		scs = slices.DeleteFunc(scs, func(sc scenario) bool {
			if sc.WebSocket {
				h.warnf("scenario %s skipped: -backend=%s has no WebSocket echo", sc.Name, h.opts.backend)
			}
			return sc.WebSocket
		})
	}
	if p := lookTool("h2load"); p != "" {
		h.h2load = &h2load{path: p, pin: h.loadPin, version: h2loadVersion(p)}
	} else {
		scs = slices.DeleteFunc(scs, func(sc scenario) bool {
			if sc.HTTP2 {
				h.warnf("scenario %s skipped: h2load is not installed (nghttp2-client; make bench installs it as root)", sc.Name)
			}
			return sc.HTTP2
		})
	}
	peers, err := selectPeers(h.opts.peers)
	if err != nil {
		return nil, err
	}
	h.noFile = raiseNoFile()
	h.machine = readMachine(h.noFile)
	h.ticks = clockTicks()
	if h.dir, err = os.MkdirTemp("", "lbbench-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(h.dir, 0o755); err != nil { // nginx workers run unprivileged
		return nil, err
	}
	defer func() {
		if h.opts.keepTemp || len(h.failures) > 0 {
			h.progress("logs and configs kept in %s", h.dir)
			return
		}
		os.RemoveAll(h.dir)
	}()
	h.setupPinning()
	if slices.ContainsFunc(scs, scenario.secure) {
		if h.cert, err = writeCertFiles(h.dir); err != nil {
			return nil, err
		}
		for _, p := range peers {
			if p.Name == peerNetHTTP || p.Name == peerDirect {
				h.progress("%s: no HTTPS listener; not measured in the TLS and HTTP/2 scenarios", p.Name)
			}
		}
	}
	if slices.ContainsFunc(scs, func(sc scenario) bool { return sc.HTTP2 }) {
		h2 := h.h2load.(*h2load)
		h2.dir, h2.pin = h.dir, h.loadPin
	}
	h.probeGOMAXPROCS()
	if err := h.chooseLoadGenerator(); err != nil {
		return nil, err
	}
	defer h.stopAll(peers)

	var sizes []int
	for _, sc := range scs {
		sizes = append(sizes, sc.RespSize)
		if sc.MixEvery > 0 {
			sizes = append(sizes, sc.MixSize)
		}
	}
	if err := h.startBackends(sizes); err != nil {
		return nil, fmt.Errorf("backends: %v", err)
	}
	h.progress("backends: %s on %v (%s)", h.backendKind, h.backends, h.pinning)
	// Every peer is started and checked once up front: what is missing or
	// broken shows before any load.
	h.startPeers(peers, scs, true)
	live := measuredPeers(peers)
	if len(live) == 0 {
		return nil, fmt.Errorf("no peer could be measured")
	}

	rep := &report{Generated: time.Now().UTC().Truncate(time.Second), Machine: h.machine}
	if n := h.idleTarget(); n > 0 && ctx.Err() == nil {
		rep.Idle = h.measureIdle(ctx, live, idleLevels(n))
	}
	h.stopPeers(peers)

	h.progress("load: %d scenario(s) x %d peer(s) x %d round(s), about %v", len(scs), len(live), h.opts.rounds,
		estimate(h.opts, len(scs), len(live)).Round(time.Second))
	runs := make([][]runRecord, len(scs))
	for round := 1; round <= h.opts.rounds && ctx.Err() == nil; round++ {
		for i, sc := range scs {
			// Fresh processes for every scenario of every round: each run's
			// RSS is its own, and no run inherits another's heap, buffers
			// or pools.
			h.startPeers(peers, []scenario{sc}, false)
			var these []*peer
			for _, p := range rotate(measuredPeers(peers), round-1) {
				if !p.measured() {
					continue // failed to start for this scenario
				}
				if sc.secure() && p.tlsAddr == "" {
					continue // no HTTPS listener (net/http baseline, direct)
				}
				if h.opts.together && p.Name == peerDirect {
					continue // its load would share the backends with the proxies'
				}
				these = append(these, p)
			}
			var records []runRecord
			if h.opts.together && ctx.Err() == nil {
				records = h.measureTogether(ctx, round, sc, these)
			}
			for j, p := range these {
				if ctx.Err() != nil || !p.measured() {
					continue
				}
				var r runRecord
				if records != nil {
					r = records[j]
				} else {
					r = h.measureRetrying(ctx, round, sc, p)
				}
				if r.Error != "" && ctx.Err() == nil {
					h.failf("round %d %s %s: %s", round, sc.Name, p.Name, r.Error)
				} else if r.Error == "" {
					h.progress("round %d/%d %-9s %-8s %s", round, h.opts.rounds, sc.Name, p.Name, formatRun(r))
				}
				runs[i] = append(runs[i], r)
			}
			h.stopPeers(peers)
		}
	}

	rep.Settings = settings{
		Duration: h.opts.duration.String(), Warmup: h.opts.warmup.String(), Rounds: h.opts.rounds,
		LoadGenerator: h.loadVersions(scs), Non2xx: h.load.Non2xxMeaning(),
		Backend: h.backendKind + " x2", Pinning: h.pinning, GOMAXPROCS: h.maxprocs, ClockTicks: h.ticks,
		Together: h.opts.together,
	}
	for _, p := range peers {
		rep.Peers = append(rep.Peers, newPeerInfo(p))
	}
	for i, sc := range scs {
		rep.Scenarios = append(rep.Scenarios, scenarioReport{
			Name: sc.Name, Description: sc.Description, Method: sc.Method, Path: sc.Path(),
			BodyBytes: sc.BodySize, Conns: sc.Conns, KeepAlive: sc.KeepAlive,
			Summary: summarize(peerOrder, runs[i]), Runs: runs[i],
		})
	}
	rep.Failures, rep.Warnings = h.failures, h.warnings
	rep.Elapsed = time.Since(start).Round(time.Second).String()
	return rep, nil
}

// measureRetrying measures one run. A run in which no request completed
// is measured once more if the peer still answers right: a shared machine
// can starve a run, while a proxy that hangs stalls again or fails the
// check.
func (h *harness) measureRetrying(ctx context.Context, round int, sc scenario, p *peer) runRecord {
	r := h.measureOnce(ctx, round, sc, p)
	if !r.stalled || ctx.Err() != nil {
		return r
	}
	h.warnf("round %d %s %s: %s; checking the peer and measuring again", round, sc.Name, p.Name, r.Error)
	if err := h.verifyPeer(p, []scenario{sc}); err != nil {
		r.Error += "; then answers wrong: " + err.Error()
		return r
	}
	return h.measureOnce(ctx, round, sc, p)
}

// measureOnce measures one run and notes a proxy that died during it.
func (h *harness) measureOnce(ctx context.Context, round int, sc scenario, p *peer) runRecord {
	r := h.measure(ctx, round, sc, p)
	if r.Error == "" && p.proc != nil {
		if gone, err := p.proc.exited(); gone {
			r.Error = fmt.Sprintf("exited during the run (%v); its log %s says: %s", err, p.proc.log, tail(p.proc.log))
			p.Err = r.Error
		}
	}
	return r
}

// idleTarget is how many idle connections to hold: what was asked for,
// within what the open-file limit lets both ends keep.
func (h *harness) idleTarget() int {
	n := h.opts.idleConns
	if limit := configs.MaxConns(h.noFile) - 64; n > limit {
		h.progress("idle connections: %d asked, %d fit the open-file limit of %d", n, limit, h.noFile)
		n = limit
	}
	return n
}

// startPeers starts and checks every peer that is not skipped or failed,
// saying so when verbose.
func (h *harness) startPeers(peers []*peer, scs []scenario, verbose bool) {
	for _, p := range peers {
		if !p.measured() {
			continue
		}
		if err := h.startPeer(p); err != nil {
			p.Err = err.Error()
			h.failf("%s: %v", p.Name, err)
			continue
		}
		if p.Skip != "" {
			if verbose {
				h.progress("%s: skipped: %s", p.Name, p.Skip)
			}
			continue
		}
		if err := h.verifyPeer(p, scs); err != nil {
			p.Err = "answers wrong: " + err.Error()
			h.failf("%s: %s", p.Name, p.Err)
			continue
		}
		if verbose {
			h.progress("%s: %s on %s (CPUs %s)", p.Name, p.Version, p.addr, orDash(p.Pinning))
		}
	}
}

func measuredPeers(peers []*peer) []*peer {
	var live []*peer
	for _, p := range peers {
		if p.measured() {
			live = append(live, p)
		}
	}
	return live
}

// stopPeers stops every peer's server.
func (h *harness) stopPeers(peers []*peer) {
	for _, p := range peers {
		if p.proc != nil {
			p.proc.stop(5 * time.Second)
			p.proc = nil
		}
	}
}

func (h *harness) stopAll(peers []*peer) {
	h.stopPeers(peers)
	for _, b := range h.backendProcs {
		b.stop(5 * time.Second)
	}
}

func newPeerInfo(p *peer) peerInfo {
	pi := peerInfo{Name: p.Name, Version: p.Version, Status: "measured", CPUs: p.Pinning}
	switch {
	case p.Skip != "":
		pi.Status, pi.Reason = "skipped", p.Skip
	case p.Err != "":
		pi.Status, pi.Reason = "failed", p.Err
	}
	return pi
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// loadVersions names the load generators the scenarios used.
func (h *harness) loadVersions(scs []scenario) string {
	v := h.load.Version()
	if h.h2load != nil && slices.ContainsFunc(scs, func(sc scenario) bool { return sc.HTTP2 }) {
		v += "; HTTP/2: " + h.h2load.Version()
	}
	return v
}
