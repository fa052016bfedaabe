package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		file string
		want loadResult
	}{
		{"wrk-keepalive.txt", loadResult{
			Requests: 75724, Seconds: 1.1, RPS: 68833.99,
			P50: 81 * time.Microsecond, P99: 395 * time.Microsecond, Max: 571 * time.Microsecond,
		}},
		{"wrk-non2xx.txt", loadResult{
			Requests: 15406, Seconds: 1, RPS: 15401.26,
			P50: 304 * time.Microsecond, P99: 611 * time.Microsecond, Max: 1430 * time.Microsecond,
			Non2xx: 15406,
		}},
		{"wrk-errors.txt", loadResult{
			Requests: 80240, Seconds: 2, RPS: 40119.85,
			P50: 11800 * time.Microsecond, P99: 26400 * time.Microsecond, Max: 1020 * time.Millisecond,
			Errors: 3 + 12 + 0 + 7, Non2xx: 41,
		}},
		{"wrk-nothing.txt", loadResult{Requests: 0, Seconds: 1}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseWrk(out)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("parseWrk =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestParseWrkRejects(t *testing.T) {
	full, err := os.ReadFile(filepath.Join("testdata", "wrk-keepalive.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, out, want string
	}{
		{"empty", "", "no Requests/sec, latency line, request total"},
		{"connection refused", "unable to connect to 127.0.0.1:1 Connection refused\n", "no Requests/sec"},
		{"no --latency", strings.Join(removeLines(string(full), "Latency Distribution", " 50%", " 75%", " 90%", " 99%"), "\n"), "no latency distribution"},
		{"bad unit", strings.Replace(string(full), "571.00us", "571.00zz", 1), `unknown unit "zz"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWrk([]byte(tc.out))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseWrk error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func removeLines(s string, subs ...string) []string {
	var out []string
next:
	for _, line := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(line, sub) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

func TestParseWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"680.00us", 680 * time.Microsecond, false},
		{"1.42ms", 1420 * time.Microsecond, false},
		{"2.00s", 2 * time.Second, false},
		{"1.50m", 90 * time.Second, false},
		{"1.00h", time.Hour, false},
		{"0.00us", 0, false},
		{"12", 0, true},
		{"ms", 0, true},
		{"1.2.3ms", 0, true},
	} {
		got, err := parseWrkDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseWrkDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestWrkDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{time.Second, "1s"},
		{1500 * time.Millisecond, "2s"},
		{400 * time.Millisecond, "1s"},
		{10 * time.Second, "10s"},
	} {
		if got := wrkDuration(tc.in); got != tc.want {
			t.Errorf("wrkDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLuaString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"xxxx", "[[\nxxxx]]"},
		{"a]]b", "[=[\na]]b]=]"},
		{"a]]b]=]c", "[==[\na]]b]=]c]==]"},
		{"", "[[\n]]"},
	} {
		if got := luaString([]byte(tc.in)); got != tc.want {
			t.Errorf("luaString(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWrkScript(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec loadSpec
		has  []string
		not  []string
	}{
		{"POST", loadSpec{Method: "POST", Body: []byte("abc")}, []string{`wrk.method = "POST"`, "wrk.body = [[\nabc]]", "Content-Type"}, []string{"request ="}},
		{"mixed GET", loadSpec{Method: "GET", MixPath: "/bytes/65536", MixEvery: 50}, []string{`wrk.method = "GET"`, "n % 50 == 0", `wrk.format(nil, "/bytes/65536")`, "return wrk.format()"}, []string{"wrk.body"}},
	} {
		lua := wrkScript(tc.spec)
		for _, s := range tc.has {
			if !strings.Contains(lua, s) {
				t.Errorf("%s: script lacks %q:\n%s", tc.name, s, lua)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(lua, s) {
				t.Errorf("%s: script has %q:\n%s", tc.name, s, lua)
			}
		}
	}
}

// TestWrkMixedLoad runs a mixed load with the real wrk (skipped where it
// is missing): one request in fifty asks for the other path.
func TestWrkMixedLoad(t *testing.T) {
	path, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk not installed")
	}
	var small, large atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/large" {
			large.Add(1)
		} else {
			small.Add(1)
		}
	}))
	defer srv.Close()
	w := &wrk{path: path, dir: t.TempDir()}
	res, err := w.Run(context.Background(), loadSpec{URL: srv.URL + "/small", Method: "GET", Conns: 4, KeepAlive: true,
		Duration: time.Second, MixPath: "/large", MixEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	s, l := small.Load(), large.Load()
	if l == 0 || s < 40*l || s > 60*l || res.Requests == 0 {
		t.Errorf("%d small and %d large requests (wrk counted %d), want one in fifty large", s, l, res.Requests)
	}
}
