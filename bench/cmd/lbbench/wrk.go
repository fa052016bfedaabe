package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// wrk drives load with wrk (github.com/wg/wrk): one thread, --latency.
type wrk struct {
	path    string   // the wrk executable
	pin     []string // command prefix that pins it, such as taskset -c 0; empty for none
	dir     string   // where request scripts are written
	version string
}

func (w *wrk) Name() string    { return "wrk" }
func (w *wrk) Version() string { return w.version }
func (w *wrk) Non2xxMeaning() string {
	return "responses with status 400 or above (wrk's \"Non-2xx or 3xx responses\")"
}

// wrkVersion runs `wrk -v` and returns its first line.
func wrkVersion(path string) string {
	out, _ := exec.Command(path, "-v").CombinedOutput() // wrk -v exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	line, _, _ = strings.Cut(line, " Copyright")
	return strings.TrimSpace(line)
}

func (w *wrk) Run(ctx context.Context, spec loadSpec) (loadResult, error) {
	args := []string{
		"-t1", "-c" + strconv.Itoa(spec.Conns), "-d" + wrkDuration(spec.Duration),
		"--timeout", "5s", "--latency",
	}
	if !spec.KeepAlive {
		args = append(args, "-H", "Connection: close")
	}
	if (spec.Method != "" && spec.Method != "GET") || spec.MixEvery > 0 {
		script, err := w.script(spec)
		if err != nil {
			return loadResult{}, err
		}
		defer os.Remove(script)
		args = append(args, "-s", script)
	}
	args = append(args, spec.URL)
	out, err := runTool(ctx, w.pin, w.path, args, spec.Duration)
	if err != nil {
		return loadResult{}, err
	}
	return parseWrk(out)
}

// wrkDuration formats d as wrk wants it: whole seconds at the least.
func wrkDuration(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second/2)/time.Second))) + "s"
}

// script writes a Lua script that sets the method and body of every request
// and, for a mixed load, the path of every MixEvery-th one. Each run has a
// file of its own: runs of -together start at the same moment.
func (w *wrk) script(spec loadSpec) (string, error) {
	return writeTemp(w.dir, fmt.Sprintf("wrk-%s-%d-%d-*.lua", strings.ToLower(spec.Method), len(spec.Body), spec.MixEvery), []byte(wrkScript(spec)))
}

// wrkScript is the Lua script of script. wrk runs a copy of it for each
// thread, so the count is per thread (the harness runs one).
func wrkScript(spec loadSpec) string {
	method := cmp.Or(spec.Method, "GET")
	lua := fmt.Sprintf("wrk.method = %q\n", method)
	if method != "GET" {
		lua += fmt.Sprintf("wrk.body = %s\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", luaString(spec.Body))
	}
	if spec.MixEvery > 0 {
		lua += fmt.Sprintf("local n = 0\nrequest = function()\n  n = n + 1\n  if n %% %d == 0 then\n    return wrk.format(nil, %q)\n  end\n  return wrk.format()\nend\n",
			spec.MixEvery, spec.MixPath)
	}
	return lua
}

// luaString quotes b as a Lua long string literal.
func luaString(b []byte) string {
	eq := ""
	for bytes.Contains(b, []byte("]"+eq+"]")) {
		eq += "="
	}
	// A long string drops a newline that directly follows its opening bracket.
	return "[" + eq + "[\n" + string(b) + "]" + eq + "]"
}

var (
	wrkTotalRe   = regexp.MustCompile(`^\s*(\d+) requests in ([\d.]+)(\w+),`)
	wrkRPSRe     = regexp.MustCompile(`^Requests/sec:\s+([\d.]+)`)
	wrkLatencyRe = regexp.MustCompile(`^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+`)
	wrkPctRe     = regexp.MustCompile(`^\s+(\d+(?:\.\d+)?)%\s+(\S+)\s*$`)
	wrkSocketRe  = regexp.MustCompile(`^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xxRe  = regexp.MustCompile(`^\s*Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads the report `wrk --latency` prints.
func parseWrk(out []byte) (loadResult, error) {
	var r loadResult
	var haveTotal, haveRPS, haveMax, inDist bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "Latency Distribution" {
			inDist = true
			continue
		}
		if m := wrkPctRe.FindStringSubmatch(line); m != nil && inDist {
			d, err := parseWrkDuration(m[2])
			if err != nil {
				return r, fmt.Errorf("wrk latency distribution line %q: %v", line, err)
			}
			switch m[1] {
			case "50", "50.000":
				r.P50 = d
			case "99", "99.000":
				r.P99 = d
			}
			continue
		}
		inDist = false
		switch {
		case wrkLatencyRe.MatchString(line):
			m := wrkLatencyRe.FindStringSubmatch(line)
			d, err := parseWrkDuration(m[3])
			if err != nil {
				return r, fmt.Errorf("wrk latency line %q: %v", line, err)
			}
			r.Max, haveMax = d, true
		case wrkTotalRe.MatchString(line):
			m := wrkTotalRe.FindStringSubmatch(line)
			r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
			d, err := parseWrkDuration(m[2] + m[3])
			if err != nil {
				return r, fmt.Errorf("wrk total line %q: %v", line, err)
			}
			r.Seconds, haveTotal = d.Seconds(), true
		case wrkRPSRe.MatchString(line):
			r.RPS, _ = strconv.ParseFloat(wrkRPSRe.FindStringSubmatch(line)[1], 64)
			haveRPS = true
		case wrkSocketRe.MatchString(line):
			for _, s := range wrkSocketRe.FindStringSubmatch(line)[1:] {
				n, _ := strconv.ParseInt(s, 10, 64)
				r.Errors += n
			}
		case wrkNon2xxRe.MatchString(line):
			r.Non2xx, _ = strconv.ParseInt(wrkNon2xxRe.FindStringSubmatch(line)[1], 10, 64)
		}
	}
	if !haveTotal || !haveRPS || !haveMax {
		return r, fmt.Errorf("wrk output has no %s: %q", missing(map[string]bool{
			"request total": haveTotal, "Requests/sec": haveRPS, "latency line": haveMax,
		}), truncateOutput(out))
	}
	if r.P50 == 0 && r.Requests > 0 {
		return r, fmt.Errorf("wrk output has no latency distribution (run without --latency?): %q", truncateOutput(out))
	}
	return r, nil
}

// parseWrkDuration parses a time as wrk prints it: "680.00us", "1.42ms",
// "2.00s", "1.05m", "1.00h".
func parseWrkDuration(s string) (time.Duration, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("time %q: no number and unit", s)
	}
	v, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("time %q: %v", s, err)
	}
	unit := map[string]time.Duration{
		"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second,
		"m": time.Minute, "h": time.Hour,
	}[s[i:]]
	if unit == 0 {
		return 0, fmt.Errorf("time %q: unknown unit %q", s, s[i:])
	}
	return time.Duration(v * float64(unit)), nil
}

// missing names the keys of have whose value is false, in sorted order.
func missing(have map[string]bool) string {
	var names []string
	for k, ok := range have {
		if !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func truncateOutput(out []byte) string {
	if len(out) > 600 {
		return string(out[:600]) + "..."
	}
	return string(out)
}
