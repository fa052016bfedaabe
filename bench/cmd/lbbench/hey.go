package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// hey drives load with hey (github.com/rakyll/hey), the fallback when wrk
// is missing. It is written in Go and costs more CPU per request than wrk,
// so on a shared core it saturates sooner.
type hey struct {
	path string
	pin  []string
	dir  string
}

func (h *hey) Name() string    { return "hey" }
func (h *hey) Version() string { return "hey (no version flag)" }
func (h *hey) Non2xxMeaning() string {
	return "responses with a status outside 200-299"
}

func (h *hey) Run(ctx context.Context, spec loadSpec) (loadResult, error) {
	if spec.MixEvery > 0 {
		return loadResult{}, errors.New("a mixed load needs wrk: hey asks for one URL only")
	}
	args := []string{
		"-z", spec.Duration.String(), "-c", strconv.Itoa(spec.Conns), "-t", "5",
		"-disable-compression", "-disable-redirects",
	}
	if len(h.pin) > 0 {
		args = append(args, "-cpus", "1")
	}
	if !spec.KeepAlive {
		args = append(args, "-disable-keepalive")
	}
	if spec.Method != "" && spec.Method != "GET" {
		body, err := writeTemp(h.dir, fmt.Sprintf("hey-body-%d-*", len(spec.Body)), spec.Body)
		if err != nil {
			return loadResult{}, err
		}
		defer os.Remove(body)
		args = append(args, "-m", spec.Method, "-D", body, "-T", "application/octet-stream")
	}
	args = append(args, spec.URL)
	out, err := runTool(ctx, h.pin, h.path, args, spec.Duration)
	if err != nil {
		return loadResult{}, err
	}
	return parseHey(out)
}

var (
	heyTotalRe  = regexp.MustCompile(`^\s*Total:\s+([\d.]+) secs`)
	heySlowRe   = regexp.MustCompile(`^\s*Slowest:\s+([\d.]+) secs`)
	heyRPSRe    = regexp.MustCompile(`^\s*Requests/sec:\s+([\d.]+)`)
	heyPctRe    = regexp.MustCompile(`^\s*(\d+)% in ([\d.]+) secs`)
	heyStatusRe = regexp.MustCompile(`^\s*\[(\d{3})\]\s+(\d+) responses`)
	heyErrorRe  = regexp.MustCompile(`^\s*\[(\d+)\]\s+\S`)
)

// parseHey reads the summary hey prints. Requests are the responses in its
// status code distribution plus the errors in its error distribution.
func parseHey(out []byte) (loadResult, error) {
	var r loadResult
	var haveTotal, haveRPS bool
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if t := strings.TrimSpace(line); strings.HasSuffix(t, ":") && !strings.HasPrefix(line, " ") {
			section = strings.TrimSuffix(t, ":")
			continue
		}
		switch {
		case heyTotalRe.MatchString(line) && section == "Summary":
			r.Seconds, _ = strconv.ParseFloat(heyTotalRe.FindStringSubmatch(line)[1], 64)
			haveTotal = true
		case heySlowRe.MatchString(line):
			r.Max = heySeconds(heySlowRe.FindStringSubmatch(line)[1])
		case heyRPSRe.MatchString(line):
			r.RPS, _ = strconv.ParseFloat(heyRPSRe.FindStringSubmatch(line)[1], 64)
			haveRPS = true
		case heyPctRe.MatchString(line) && section == "Latency distribution":
			m := heyPctRe.FindStringSubmatch(line)
			switch m[1] {
			case "50":
				r.P50 = heySeconds(m[2])
			case "99":
				r.P99 = heySeconds(m[2])
			}
		case heyStatusRe.MatchString(line) && section == "Status code distribution":
			m := heyStatusRe.FindStringSubmatch(line)
			n, _ := strconv.ParseInt(m[2], 10, 64)
			r.Requests += n
			if m[1][0] != '2' {
				r.Non2xx += n
			}
		case heyErrorRe.MatchString(line) && section == "Error distribution":
			n, _ := strconv.ParseInt(heyErrorRe.FindStringSubmatch(line)[1], 10, 64)
			r.Errors += n
		}
	}
	if !haveTotal || !haveRPS {
		return r, fmt.Errorf("hey output has no %s: %q", missing(map[string]bool{
			"Total": haveTotal, "Requests/sec": haveRPS,
		}), truncateOutput(out))
	}
	// hey counts failed attempts in Requests/sec; keep only responses.
	if r.Seconds > 0 {
		r.RPS = float64(r.Requests) / r.Seconds
	}
	return r, nil
}

// heySeconds converts hey's "0.0012" (seconds) to a duration.
func heySeconds(s string) time.Duration {
	v, _ := strconv.ParseFloat(s, 64)
	return time.Duration(v * float64(time.Second))
}
