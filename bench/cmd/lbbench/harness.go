package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// measure runs one scenario on one peer: a warm-up, then the measured run
// with the proxy's CPU time sampled before and after.
func (h *harness) measure(ctx context.Context, round int, sc scenario, p *peer) runRecord {
	spec := loadSpec{
		URL: "http://" + p.addr + sc.Path(), Method: sc.Method,
		Body: make([]byte, sc.BodySize), Conns: sc.Conns, KeepAlive: sc.KeepAlive,
	}
	if sc.MixEvery > 0 {
		spec.MixPath, spec.MixEvery = sc.MixPath(), sc.MixEvery
	}
	load := h.load
	if sc.TLS {
		spec.URL = "https://" + p.tlsAddr + sc.Path()
	}
	if sc.HTTP2 {
		spec.URL = "https://" + p.tlsAddr + sc.Path()
		spec.Streams = sc.Streams
		load = h.h2load
	}
	if sc.WebSocket {
		spec.URL = "ws://" + p.addr + sc.Path()
		spec.Body = make([]byte, sc.RespSize)
		load = &wsLoad{self: wsSelf(), pin: h.loadPin}
	}
	fail := func(err error) runRecord {
		return runRecord{Round: round, Peer: p.Name, Error: err.Error()}
	}
	if h.opts.warmup > 0 {
		spec.Duration = h.opts.warmup
		if _, err := load.Run(ctx, spec); err != nil {
			return fail(fmt.Errorf("warm-up: %v", err))
		}
	}
	var before treeSample
	var coreBefore coreTimes
	if p.proc != nil {
		var err error
		if before, err = h.fs.sampleCPU(p.proc.PID()); err != nil {
			return fail(err)
		}
		if coreBefore, err = h.fs.coreTimes(h.proxyCPUs); err != nil {
			return fail(err)
		}
	}
	spec.Duration = h.opts.duration
	lr, err := load.Run(ctx, spec)
	if err != nil {
		return fail(err)
	}
	if lr.Requests == 0 {
		r := fail(fmt.Errorf("no request completed in %v (%d errors)", h.opts.duration, lr.Errors))
		r.stalled = true
		return r
	}
	var cpu *cpuTicks
	var core *coreTimes
	var rss int64
	if p.proc != nil {
		after, err := h.fs.sampleCPU(p.proc.PID())
		if err != nil {
			return fail(err)
		}
		coreAfter, err := h.fs.coreTimes(h.proxyCPUs)
		if err != nil {
			return fail(err)
		}
		d := after.since(before)
		cpu = &d
		if len(h.proxyCPUs) > 0 {
			c := coreAfter.since(coreBefore)
			core = &c
		}
		if rss, err = h.fs.rss(p.proc.PID()); err != nil {
			return fail(err)
		}
	}
	r := newRunRecord(round, p.Name, lr, cpu, h.ticks, rss)
	r.addCoreTimes(core, cpu, h.ticks)
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
	return time.Duration(o.rounds*nScenarios) * (time.Duration(nPeers)*(o.warmup+o.duration) + time.Second)
}
