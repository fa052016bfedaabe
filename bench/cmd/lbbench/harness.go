package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// harness runs one benchmark: it owns the backends, the peers, the load
// generator and what they measured.
type harness struct {
	opts    options
	stdout  io.Writer
	stderr  io.Writer
	dir     string // temporary files: configs, logs, scripts
	fs      procFS
	ticks   int64 // clock ticks per second
	noFile  int
	machine machineInfo

	proxyPin  []string // command prefix pinning a proxy, such as taskset -c 1
	proxyCPUs []int    // the CPUs it is pinned to; nil when it is not
	loadPin   []string // the same for the load generator and the backends
	pinning   string   // what the report says about pinning
	maxprocs  string   // what the report says about GOMAXPROCS

	load         loadGenerator
	h2load       loadGenerator // for HTTP/2 scenarios; nil when h2load is missing
	cert         *certFiles    // the peers' TLS certificate, made when TLS or HTTP/2 scenarios run
	backends     []string      // host:port
	backendKind  string
	backendProcs []*process

	failures []string
	warnings []string
}

// progress prints a line about the run's progress on stderr.
func (h *harness) progress(format string, args ...any) {
	fmt.Fprintf(h.stderr, "lbbench: "+format+"\n", args...)
}

// failf records a failure of the harness (a peer that would not start, a
// run without results), which makes the run exit non-zero. Slowness is
// never a failure.
func (h *harness) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.failures = append(h.failures, msg)
	h.progress("FAILED: %s", msg)
}

// warnf records something odd that did not spoil the run's figures.
func (h *harness) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.warnings = append(h.warnings, msg)
	h.progress("warning: %s", msg)
}

// raiseNoFile lifts the harness's open-file limit to the hard limit. The
// servers it starts inherit it: Go restores the original limit for child
// processes only when the program has not set one itself.
func raiseNoFile() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	return int(min(lim.Cur, 1<<30))
}

// setupPinning decides the CPU prefixes: with taskset and at least two
// CPUs, proxies run alone on one CPU and everything else on another.
func (h *harness) setupPinning() {
	taskset := lookTool("taskset")
	switch {
	case h.opts.proxyCPU == "" || h.opts.loadCPU == "":
		h.pinning = "off (not asked for)"
	case taskset == "":
		h.pinning = "off: taskset is not installed (util-linux)"
	case h.machine.Cores < 2:
		h.pinning = "off: one CPU"
	default:
		h.proxyPin = []string{taskset, "-c", h.opts.proxyCPU}
		h.proxyCPUs = parseCPUList(h.opts.proxyCPU)
		h.loadPin = []string{taskset, "-c", h.opts.loadCPU}
		h.pinning = fmt.Sprintf("proxy on CPU %s; load generator and backends on CPU %s", h.opts.proxyCPU, h.opts.loadCPU)
	}
	if h.pinning != "" && len(h.proxyPin) == 0 {
		h.progress("pinning %s; figures are less comparable", h.pinning)
	}
}

// probeGOMAXPROCS runs this program pinned as a proxy is and reports the
// GOMAXPROCS the Go runtime chose there: it should be the number of CPUs
// in the affinity mask (1), as for the Go proxies.
func (h *harness) probeGOMAXPROCS() {
	self, err := os.Executable()
	if err != nil {
		h.maxprocs = "not checked: " + err.Error()
		return
	}
	argv := append(append([]string{}, h.proxyPin...), self, "-probe-gomaxprocs")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		h.maxprocs = "not checked: " + err.Error()
		return
	}
	got := strings.TrimSpace(string(out))
	want := strconv.Itoa(h.machine.Cores)
	if len(h.proxyPin) > 0 {
		want = strconv.Itoa(cpuCount(h.opts.proxyCPU))
	}
	if got == want {
		h.maxprocs = got + " for the Go proxies (follows their CPU affinity; checked)"
	} else {
		h.maxprocs = fmt.Sprintf("%s for a Go program pinned like the proxies, want %s", got, want)
		h.progress("GOMAXPROCS under the proxy's pinning is %s, want %s", got, want)
	}
}

// parseCPUList returns the CPUs of a taskset list such as "1", "0-3" or
// "1,3"; parts that are not numbers or ranges are passed over.
func parseCPUList(list string) []int {
	var cpus []int
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		if err1 != nil {
			continue
		}
		b := a
		if isRange {
			var err2 error
			if b, err2 = strconv.Atoi(hi); err2 != nil || b < a {
				continue
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// cpuCount counts the CPUs in a taskset list.
func cpuCount(list string) int { return len(parseCPUList(list)) }

// chooseLoadGenerator picks wrk, or hey when wrk is missing.
func (h *harness) chooseLoadGenerator() error {
	want := h.opts.loadgen
	if want == "auto" || want == "wrk" {
		if p := lookTool("wrk"); p != "" {
			h.load = &wrk{path: p, pin: h.loadPin, dir: h.dir, version: wrkVersion(p)}
			return nil
		}
		if want == "wrk" {
			return fmt.Errorf("-loadgen=wrk: wrk is not installed")
		}
	}
	if want == "auto" || want == "hey" {
		if p := lookTool("hey"); p != "" {
			h.load = &hey{path: p, pin: h.loadPin, dir: h.dir}
			return nil
		}
		return fmt.Errorf("-loadgen=%s: neither wrk nor hey is installed (make bench installs them as root)", want)
	}
	return fmt.Errorf("invalid -loadgen %q: want auto, wrk or hey", want)
}

// measure runs one peer's load for one scenario and round and measures it.
func (h *harness) measure(ctx context.Context, round int, sc scenario, p *peer) runRecord {
	t := h.newTrial(round, sc, p)
	if t.warm(ctx); t.err == nil {
		t.begin()
	}
	if t.err == nil {
		t.run(ctx)
	}
	return t.end()
}

// measureTogether measures the peers' runs of one scenario and round at the
// same moment (-together): each peer has its own load generator, every
// warm-up starts together and so does every measured run, so that the
// peers share the machine's mood, which moves a run alone by ±20% here.
// The proxy CPU's softirq and others figures are not taken: the CPU is
// shared by the peers.
func (h *harness) measureTogether(ctx context.Context, round int, sc scenario, peers []*peer) []runRecord {
	trials := make([]*trial, len(peers))
	for i, p := range peers {
		trials[i] = h.newTrial(round, sc, p)
	}
	all := func(step func(t *trial)) {
		var wg sync.WaitGroup
		for _, t := range trials {
			if t.err == nil {
				wg.Go(func() { step(t) })
			}
		}
		wg.Wait()
	}
	all(func(t *trial) { t.warm(ctx) })
	for _, t := range trials {
		if t.err == nil {
			t.begin()
		}
	}
	all(func(t *trial) { t.run(ctx) })
	records := make([]runRecord, len(trials))
	for i, t := range trials {
		records[i] = t.end()
	}
	return records
}

// trial is one peer's run of one scenario in one round, in the steps that
// measureTogether runs side by side with other peers'.
type trial struct {
	h     *harness
	round int
	p     *peer
	spec  loadSpec
	load  loadGenerator
	// core says the proxy CPU's softirq and others figures are taken:
	// not when the peers share it (-together).
	core bool

	before     treeSample
	coreBefore coreTimes
	lr         loadResult
	err        error
}

// newTrial prepares p's run of sc: the load and the tool that puts it.
func (h *harness) newTrial(round int, sc scenario, p *peer) *trial {
	t := &trial{h: h, round: round, p: p, load: h.load, core: !h.opts.together, spec: loadSpec{
		URL: "http://" + p.addr + sc.Path(), Method: sc.Method,
		Body: make([]byte, sc.BodySize), Conns: sc.Conns, KeepAlive: sc.KeepAlive,
	}}
	if sc.MixEvery > 0 {
		t.spec.MixPath, t.spec.MixEvery = sc.MixPath(), sc.MixEvery
	}
	if sc.TLS {
		t.spec.URL = "https://" + p.tlsAddr + sc.Path()
	}
	if sc.HTTP2 {
		t.spec.URL = "https://" + p.tlsAddr + sc.Path()
		t.spec.Streams = sc.Streams
		t.load = h.h2load
	}
	if sc.WebSocket {
		t.spec.URL = "ws://" + p.addr + sc.Path()
		t.spec.Body = make([]byte, sc.RespSize)
		t.load = &wsLoad{self: wsSelf(), pin: h.loadPin}
	}
	return t
}

// warm puts the unmeasured load of the warm-up on the peer.
func (t *trial) warm(ctx context.Context) {
	if d := t.h.opts.warmup; d > 0 {
		spec := t.spec
		spec.Duration = d
		if _, err := t.load.Run(ctx, spec); err != nil {
			t.err = fmt.Errorf("warm-up: %v", err)
		}
	}
}

// begin samples the peer's CPU time before the measured run, and the proxy
// CPU's when t.core is set.
func (t *trial) begin() {
	if t.p.proc == nil {
		return
	}
	fs := t.h.fs
	if t.before, t.err = fs.sampleCPU(t.p.proc.PID()); t.err == nil && t.core {
		t.coreBefore, t.err = fs.coreTimes(t.h.proxyCPUs)
	}
}

// run puts the measured load on the peer.
func (t *trial) run(ctx context.Context) {
	spec := t.spec
	spec.Duration = t.h.opts.duration
	t.lr, t.err = t.load.Run(ctx, spec)
}

// end samples the peer again and returns the run's record (the proxy CPU's
// figures too when t.core is set), or the failure of any step.
func (t *trial) end() runRecord {
	h, p := t.h, t.p
	fail := func(err error) runRecord {
		return runRecord{Round: t.round, Peer: p.Name, Error: err.Error()}
	}
	if t.err != nil {
		return fail(t.err)
	}
	if t.lr.Requests == 0 {
		r := fail(fmt.Errorf("no request completed in %v (%d errors)", h.opts.duration, t.lr.Errors))
		r.stalled = true
		return r
	}
	var cpu *cpuTicks
	var coreRun *coreTimes
	var rss int64
	if p.proc != nil {
		after, err := h.fs.sampleCPU(p.proc.PID())
		if err != nil {
			return fail(err)
		}
		d := after.since(t.before)
		cpu = &d
		if t.core && len(h.proxyCPUs) > 0 {
			coreAfter, err := h.fs.coreTimes(h.proxyCPUs)
			if err != nil {
				return fail(err)
			}
			c := coreAfter.since(t.coreBefore)
			coreRun = &c
		}
		if rss, err = h.fs.rss(p.proc.PID()); err != nil {
			return fail(err)
		}
	}
	r := newRunRecord(t.round, p.Name, t.lr, cpu, h.ticks, rss)
	r.addCoreTimes(coreRun, cpu, h.ticks)
	return r
}

// rotate returns peers starting at the round's offset, so no peer always
// runs first (on a cold cache) or last.
func rotate(peers []*peer, round int) []*peer {
	if len(peers) == 0 {
		return nil
	}
	k := round % len(peers)
	return append(append([]*peer{}, peers[k:]...), peers[:k]...)
}

// estimate is how long the load phase takes, for the start-up message:
// the runs, and about a second per scenario and round to restart the peers.
func estimate(o options, nScenarios, nPeers int) time.Duration {
	if o.together {
		nPeers = 1
	}
	return time.Duration(o.rounds*nScenarios) * (time.Duration(nPeers)*(o.warmup+o.duration) + time.Second)
}
