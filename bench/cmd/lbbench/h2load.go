package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// h2load drives HTTP/2 load (nghttp2's h2load, Debian nghttp2-client): one
// thread, Streams requests in flight on each connection, over TLS. wrk and
// hey speak HTTP/1.1 only. Latency percentiles come from its per-request
// log, since its summary gives only min, max and mean.
type h2load struct {
	path    string
	pin     []string
	dir     string
	version string
}

func (h *h2load) Name() string    { return "h2load" }
func (h *h2load) Version() string { return h.version }
func (h *h2load) Non2xxMeaning() string {
	return "responses with status 400 or above (h2load's 4xx and 5xx)"
}

// h2loadVersion returns "h2load nghttp2/1.52.0".
func h2loadVersion(path string) string { return firstLine(path, "--version") }

func (h *h2load) Run(ctx context.Context, spec loadSpec) (loadResult, error) {
	logFile, err := writeTemp(h.dir, "h2load-requests-*.log", nil)
	if err != nil {
		return loadResult{}, err
	}
	defer os.Remove(logFile)
	streams := max(spec.Streams, 1)
	args := []string{
		"-t1", "-c" + strconv.Itoa(spec.Conns), "-m" + strconv.Itoa(streams),
		"-D" + strconv.Itoa(max(1, int((spec.Duration+time.Second/2)/time.Second))),
		"--log-file=" + logFile, spec.URL,
	}
	out, err := runTool(ctx, h.pin, h.path, args, spec.Duration)
	if err != nil {
		return loadResult{}, err
	}
	r, err := parseH2load(out)
	if err != nil {
		return r, err
	}
	if log, err := os.ReadFile(logFile); err == nil {
		r.P50, r.P99, r.Max = h2loadPercentiles(log)
	}
	return r, nil
}

var (
	h2loadFinishedRe = regexp.MustCompile(`^finished in ([\d.]+)(\w+), ([\d.]+) req/s`)
	h2loadRequestsRe = regexp.MustCompile(`^requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatusRe   = regexp.MustCompile(`^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2load reads h2load's summary.
func parseH2load(out []byte) (loadResult, error) {
	var r loadResult
	var haveFinished, haveRequests bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		num := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		switch {
		case h2loadFinishedRe.MatchString(line):
			m := h2loadFinishedRe.FindStringSubmatch(line)
			d, err := time.ParseDuration(m[1] + m[2])
			if err != nil {
				return r, fmt.Errorf("h2load line %q: %v", line, err)
			}
			r.Seconds = d.Seconds()
			r.RPS, _ = strconv.ParseFloat(m[3], 64)
			haveFinished = true
		case h2loadRequestsRe.MatchString(line):
			m := h2loadRequestsRe.FindStringSubmatch(line)
			r.Requests = num(m[2])
			r.Errors = num(m[5]) + num(m[6])
			haveRequests = true
		case h2loadStatusRe.MatchString(line):
			m := h2loadStatusRe.FindStringSubmatch(line)
			r.Non2xx = num(m[3]) + num(m[4])
		}
	}
	if !haveFinished || !haveRequests {
		return r, fmt.Errorf("h2load output has no %s: %q", missing(map[string]bool{
			"finished line": haveFinished, "requests line": haveRequests,
		}), truncateOutput(out))
	}
	// "finished in" counts from the start, warm-up included; the rate is
	// over the measured time.
	if r.RPS > 0 {
		r.Seconds = float64(r.Requests) / r.RPS
	}
	return r, nil
}

// h2loadPercentiles reads h2load's per-request log (start time, status,
// microseconds to the end of the response, tab-separated) and returns the
// median, the 99th percentile and the largest time.
func h2loadPercentiles(log []byte) (p50, p99, most time.Duration) {
	var times []time.Duration
	for _, line := range bytes.Split(log, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 3 {
			continue
		}
		us, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil {
			continue
		}
		times = append(times, time.Duration(us)*time.Microsecond)
	}
	if len(times) == 0 {
		return 0, 0, 0
	}
	slices.Sort(times)
	at := func(q float64) time.Duration { return times[min(len(times)-1, int(q*float64(len(times))))] }
	return at(0.50), at(0.99), times[len(times)-1]
}
