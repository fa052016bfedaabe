package admin

import (
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy"
)

// series is a parsed exposition: each sample's value by its name and labels
// exactly as written, such as lb_backend_up{backend="http://a:1"}.
type series map[string]float64

// parseExposition reads the Prometheus text format strictly enough to catch
// what promtool would: every sample belongs to a family declared by a TYPE
// line, no sample appears twice, values parse, histogram buckets only grow
// and end at _count.
func parseExposition(t *testing.T, body string) series {
	t.Helper()
	s := series{}
	types := map[string]string{}
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("line %d: bad TYPE line %q", i+1, line)
			}
			if _, dup := types[f[2]]; dup {
				t.Errorf("line %d: family %s declared twice", i+1, f[2])
			}
			types[f[2]] = f[3]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("line %d: no value: %q", i+1, line)
		}
		key, raw := line[:sp], line[sp+1:]
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			t.Fatalf("line %d: value %q: %v", i+1, raw, err)
		}
		name := key
		if j := strings.IndexByte(key, '{'); j >= 0 {
			name = key[:j]
		}
		family := name
		if _, ok := types[family]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
					family = base
				}
			}
		}
		if _, ok := types[family]; !ok {
			t.Errorf("line %d: sample %s has no TYPE", i+1, key)
		}
		if _, dup := s[key]; dup {
			t.Errorf("line %d: sample %s twice", i+1, key)
		}
		s[key] = v
	}
	return s
}

// get returns the sample name{labels}, labels given as name, value pairs in
// the order they are written; a missing sample fails the test. The sample
// may carry more labels than those given (such as pool), if only one
// sample matches.
func (s series) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	key := name
	var parts []string
	if len(labels) > 0 {
		for i := 0; i+1 < len(labels); i += 2 {
			parts = append(parts, labels[i]+`="`+labels[i+1]+`"`)
		}
		key += "{" + strings.Join(parts, ",") + "}"
	}
	if v, ok := s[key]; ok {
		return v
	}
	var found []string
	for k := range s {
		inner, ok := strings.CutPrefix(k, name+"{")
		if !ok {
			continue
		}
		have := strings.Split(strings.TrimSuffix(inner, "}"), ",")
		all := true
		for _, p := range parts {
			all = all && slices.Contains(have, p)
		}
		if all {
			found = append(found, k)
		}
	}
	if len(found) != 1 {
		t.Fatalf("no sample %s (matching: %v)", key, found)
	}
	return s[found[0]]
}

// histogram checks one backend's latency histogram and returns its count.
func (s series) histogram(t *testing.T, name, backend string) float64 {
	t.Helper()
	prev := 0.0
	for _, le := range append(latencyLabels(), "+Inf") {
		v := s.get(t, name+"_bucket", "backend", backend, "le", le)
		if v < prev {
			t.Errorf("%s: bucket le=%s holds %v, less than the one before (%v)", backend, le, v, prev)
		}
		prev = v
	}
	if c := s.get(t, name+"_count", "backend", backend); c != prev {
		t.Errorf("%s: _count %v, +Inf bucket %v", backend, c, prev)
	}
	return prev
}

func latencyLabels() []string {
	var ls []string
	for _, b := range latencyBounds {
		ls = append(ls, string(appendFloat(nil, b)))
	}
	return ls
}

func scrape(t *testing.T, r *rig) (series, string) {
	t.Helper()
	return scrapeURL(t, r.adminURL)
}

// scrapeURL reads /metrics of the admin interface at url.
func scrapeURL(t *testing.T, url string) (series, string) {
	t.Helper()
	code, body := fetch(t, url+"/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	return parseExposition(t, body), body
}

// TestMetricsFollowTrafficAndHealth drives traffic and kills a backend, and
// reads each change back from /metrics.
func TestMetricsFollowTrafficAndHealth(t *testing.T) {
	r := newRig(t, 2, proxy.Config{
		Health: proxy.HealthConfig{Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Rise: 1, Fall: 1},
	}, Config{Version: "v1.2.3"})
	a, b := r.backends[0].URL(), r.backends[1].URL()

	m, _ := scrape(t, r)
	if v := m.get(t, "lb_build_info", "version", "v1.2.3", "goversion", runtime.Version()); v != 1 {
		t.Errorf("build info %v", v)
	}
	for _, u := range []string{a, b} {
		if m.get(t, "lb_backend_up", "backend", u) != 1 {
			t.Errorf("%s not up at start", u)
		}
	}
	if m.get(t, "lb_requests_total", "code", "2xx") != 0 || m.get(t, "lb_backends_up") != 2 || m.get(t, "lb_backends") != 2 {
		t.Error("counts before any traffic")
	}
	if m.get(t, "lb_access_log_dropped_total") != 0 {
		t.Error("access log lines dropped without an access log")
	}

	r.traffic(t, 10, "/", http.StatusOK)
	r.traffic(t, 2, "/status/500", http.StatusInternalServerError)
	r.traffic(t, 1, "/status/404", http.StatusNotFound)
	m, body := scrape(t, r)
	for _, tc := range []struct {
		code string
		want float64
	}{{"1xx", 0}, {"2xx", 10}, {"3xx", 0}, {"4xx", 1}, {"5xx", 2}} {
		if got := m.get(t, "lb_requests_total", "code", tc.code); got != tc.want {
			t.Errorf("lb_requests_total{code=%q} = %v, want %v", tc.code, got, tc.want)
		}
		got := m.get(t, "lb_backend_responses_total", "backend", a, "code", tc.code) +
			m.get(t, "lb_backend_responses_total", "backend", b, "code", tc.code)
		if got != tc.want {
			t.Errorf("backend responses %s summed %v, want %v", tc.code, got, tc.want)
		}
	}
	var observed float64
	for _, u := range []string{a, b} {
		n := m.histogram(t, "lb_backend_response_duration_seconds", u)
		if req := m.get(t, "lb_backend_requests_total", "backend", u); n != req || n < 6 {
			t.Errorf("%s: %v latencies for %v requests; round-robin gives each 6 or 7", u, n, req)
		}
		if s := m.get(t, "lb_backend_response_duration_seconds_sum", "backend", u); s <= 0 || s > 5 {
			t.Errorf("%s: latency sum %vs", u, s)
		}
		observed += n
		if m.get(t, "lb_backend_in_flight", "backend", u) != 0 {
			t.Errorf("%s: requests in flight after all answered", u)
		}
	}
	if observed != 13 {
		t.Errorf("%v latencies observed, want 13", observed)
	}
	if in, out := m.get(t, "lb_received_bytes_total"), m.get(t, "lb_sent_bytes_total"); in < 13*30 || out < 13*60 {
		t.Errorf("bytes in %v, out %v: too few for 13 exchanges", in, out)
	}
	if m.get(t, "lb_client_connections_total") < 1 {
		t.Error("no client connection counted")
	}
	promtool(t, body)

	// Killed: the checks take it down, every request goes to the other.
	checksBefore := m.get(t, "lb_backend_health_checks_total", "backend", a)
	r.backends[0].Kill()
	waitFor(t, "a down in /metrics", 5*time.Second, func() bool {
		m, _ := scrape(t, r)
		return m.get(t, "lb_backend_up", "backend", a) == 0
	})
	before := m.get(t, "lb_backend_requests_total", "backend", b)
	r.traffic(t, 4, "/", http.StatusOK)
	m, _ = scrape(t, r)
	if got := m.get(t, "lb_backend_requests_total", "backend", b) - before; got != 4 {
		t.Errorf("b took %v of 4 requests while a was down", got)
	}
	if m.get(t, "lb_backends_up") != 1 || m.get(t, "lb_backend_state_changes_total", "backend", a) != 1 {
		t.Errorf("backends up %v, a's state changes %v; want 1 and 1",
			m.get(t, "lb_backends_up"), m.get(t, "lb_backend_state_changes_total", "backend", a))
	}
	if m.get(t, "lb_backend_health_check_failures_total", "backend", a) < 1 ||
		m.get(t, "lb_backend_health_checks_total", "backend", a) <= checksBefore {
		t.Error("the failed checks were not counted")
	}
	if m.get(t, "lb_backend_health_check_failures_total", "backend", b) != 0 {
		t.Error("b's checks counted as failures")
	}

	r.backends[0].Restart()
	waitFor(t, "a back up in /metrics", 5*time.Second, func() bool {
		m, _ := scrape(t, r)
		return m.get(t, "lb_backend_up", "backend", a) == 1
	})
	m, body = scrape(t, r)
	if m.get(t, "lb_backend_state_changes_total", "backend", a) != 2 || m.get(t, "lb_backends_up") != 2 {
		t.Error("the recovery was not counted")
	}
	promtool(t, body)
}

func TestMetricsCountErrorsByKind(t *testing.T) {
	r := newRig(t, 2, proxy.Config{
		BackendTimeout: 100 * time.Millisecond,
		// Out after one refusal, however many are out already.
		EjectAfter: 1, MaxEjectedPercent: 100,
		Health: proxy.HealthConfig{Interval: -1},
	}, Config{})
	a, b := r.backends[0].URL(), r.backends[1].URL()
	r.traffic(t, 1, "/delay/2s", http.StatusGatewayTimeout) // a times out
	r.backends[0].Kill()
	r.traffic(t, 1, "/", http.StatusOK) // b
	r.traffic(t, 1, "/", http.StatusOK) // a refuses, marked down, retried on b
	m, _ := scrape(t, r)
	for _, tc := range []struct {
		backend, kind string
		want          float64
	}{
		{a, "timeout", 1}, {a, "dial", 1}, {a, "reset", 0}, {a, "response", 0}, {a, "busy", 0},
		{b, "timeout", 0}, {b, "dial", 0},
	} {
		if got := m.get(t, "lb_backend_errors_total", "backend", tc.backend, "kind", tc.kind); got != tc.want {
			t.Errorf("%s errors{kind=%q} = %v, want %v", tc.backend, tc.kind, got, tc.want)
		}
	}
	if m.get(t, "lb_backend_retries_total", "backend", a) != 1 || m.get(t, "lb_backend_retries_total", "backend", b) != 0 {
		t.Error("the retry after a's refusal was not counted on a")
	}
	if m.get(t, "lb_backend_up", "backend", a) != 0 || m.get(t, "lb_backend_ejections_total", "backend", a) != 1 {
		t.Error("a refused a connection but was not ejected")
	}
	// With b killed too, requests fail on b (its kept-alive connection
	// first, then a refused dial) until it is marked down; the next one
	// finds no backend at all.
	r.backends[1].Kill()
	for i := 0; r.proxy.Pool().Backends()[1].Up(); i++ {
		if i == 3 {
			t.Fatal("b is still up after 3 failed requests")
		}
		r.traffic(t, 1, "/", http.StatusBadGateway)
	}
	r.traffic(t, 1, "/", http.StatusBadGateway)
	m, _ = scrape(t, r)
	if m.get(t, "lb_requests_no_backend_total") != 1 || m.get(t, "lb_backends_up") != 0 {
		t.Errorf("no-backend requests %v, backends up %v; want 1, 0", m.get(t, "lb_requests_no_backend_total"), m.get(t, "lb_backends_up"))
	}
}

func TestMetricsGzip(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	req, _ := http.NewRequest(http.MethodGet, r.adminURL+"/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	parseExposition(t, string(body)).get(t, "lb_backends")
}

// promtool runs `promtool check metrics` on body where promtool is
// installed (.ci/run installs it; PROMTOOL may name it). In CI its absence
// is an error; elsewhere the check is skipped with the reason.
func promtool(t *testing.T, body string) {
	t.Helper()
	path := os.Getenv("PROMTOOL")
	if path == "" {
		var err error
		if path, err = exec.LookPath("promtool"); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("promtool not found in CI: .ci/run should have installed it")
			}
			t.Log("promtool not found (Debian package prometheus, or PROMTOOL=path): skipping promtool check metrics")
			return
		}
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("promtool check metrics found problems:\n%s", s)
	}
}
