package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

// post sends a POST with a JSON body (none when body is empty) and extra
// headers, given as name, value pairs.
func post(t *testing.T, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// fakeReloader answers with err and counts.
type fakeReloader struct {
	mu    sync.Mutex
	err   error
	stats ReloadStats
}

func (f *fakeReloader) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		f.stats.Failures++
		f.stats.LastError = f.err.Error()
		return f.err
	}
	f.stats.Successes++
	f.stats.LastSuccess = time.Now()
	f.stats.LastError = ""
	return nil
}

func (f *fakeReloader) ReloadStats() ReloadStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeReloader) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// controlRig is a rig whose admin interface controls the proxy.
func controlRig(t *testing.T, n int, token string) (*rig, *fakeReloader) {
	t.Helper()
	rl := &fakeReloader{}
	r := newRig(t, n, proxy.Config{Health: proxy.HealthConfig{Interval: time.Hour}}, Config{Token: token, Reloader: rl})
	// newRig builds the admin interface without control: rebuild it with.
	r.admin.Shutdown(t.Context()) //nolint:errcheck // replaced below
	var err error
	if r.admin, err = New(r.proxy, Config{Token: token, Control: r.proxy, Reloader: rl}); err != nil {
		t.Fatal(err)
	}
	r.adminURL = serve(t, r.admin.Serve)
	t.Cleanup(func() { r.admin.Shutdown(t.Context()) }) //nolint:errcheck // test end
	return r, rl
}

func TestControlAPI(t *testing.T) {
	r, _ := controlRig(t, 2, "")
	b0, b1 := r.backends[0].URL(), r.backends[1].URL()
	extra := backendtest.Start(t, "extra")

	// Drain: no new requests; the answer shows the state.
	code, body := post(t, r.adminURL+"/api/backends/drain", `{"url": "`+b0+`"}`)
	var b backendJSON
	if err := json.Unmarshal([]byte(body), &b); code != http.StatusOK || err != nil || b.State != "drained" || b.Pool != proxy.DefaultPool || b.InRotation {
		t.Fatalf("drain: %d %s", code, body)
	}
	hits0 := r.backends[0].Hits()
	r.traffic(t, 4, "/", http.StatusOK)
	if r.backends[0].Hits() != hits0 {
		t.Error("a drained backend got requests")
	}
	bs := apiBackends(t, r)
	if bs[0].State != "drained" || bs[0].Health != "up" || bs[1].State != "up" {
		t.Errorf("/api/backends: %s %s, %s", bs[0].State, bs[0].Health, bs[1].State)
	}
	m, _ := scrape(t, r)
	if m.get(t, "lb_backend_draining", "backend", b0) != 1 || m.get(t, "lb_backend_draining", "backend", b1) != 0 {
		t.Error("lb_backend_draining does not show the drain")
	}
	if code, body := post(t, r.adminURL+"/api/backends/enable", `{"pool": "default", "url": "`+b0+`"}`); code != http.StatusOK || !strings.Contains(body, `"state":"up"`) {
		t.Errorf("enable: %d %s", code, body)
	}

	// Add, weigh, remove.
	code, body = post(t, r.adminURL+"/api/backends/add", `{"backend": "`+extra.URL()+` weight=2"}`)
	if code != http.StatusCreated || !strings.Contains(body, `"weight":2`) {
		t.Fatalf("add: %d %s", code, body)
	}
	if len(apiBackends(t, r)) != 3 {
		t.Error("the added backend is not listed")
	}
	if code, body := post(t, r.adminURL+"/api/backends/weight", `{"url": "`+extra.URL()+`", "weight": 5}`); code != http.StatusOK || !strings.Contains(body, `"weight":5`) {
		t.Errorf("weight: %d %s", code, body)
	}
	m, _ = scrape(t, r)
	if m.get(t, "lb_backend_weight", "backend", extra.URL()) != 5 || m.get(t, "lb_pool_backends", "pool", "default") != 3 {
		t.Error("metrics do not follow the changes")
	}
	r.traffic(t, 7, "/", http.StatusOK)
	if n := extra.Hits(); n != 5 {
		t.Errorf("weight 5 of 7: the added backend served %d", n)
	}
	if code, body := post(t, r.adminURL+"/api/backends/remove", `{"url": "`+extra.URL()+`"}`); code != http.StatusOK || !strings.Contains(body, `"state":"removed"`) {
		t.Errorf("remove: %d %s", code, body)
	}
	if len(apiBackends(t, r)) != 2 {
		t.Error("the removed backend is still listed")
	}

	// Errors: their status says what is wrong.
	for _, tc := range []struct {
		path, body string
		want       int
		in         string
	}{
		{"/api/backends/drain", `{"url": "http://127.0.0.1:1"}`, http.StatusNotFound, "not found"},
		{"/api/backends/drain", `{"pool": "nope", "url": "` + b0 + `"}`, http.StatusNotFound, `pool \"nope\"`},
		{"/api/backends/add", `{"backend": "` + b0 + `"}`, http.StatusConflict, "already"},
		{"/api/backends/add", `{"backend": "htp://x"}`, http.StatusBadRequest, `unsupported scheme \"htp\"`},
		{"/api/backends/add", `{}`, http.StatusBadRequest, `missing \"backend\"`},
		{"/api/backends/weight", `{"url": "` + b0 + `", "weight": 0}`, http.StatusBadRequest, "invalid weight 0"},
		{"/api/backends/drain", `{}`, http.StatusBadRequest, `missing \"url\"`},
		{"/api/backends/drain", `{"url": "` + b0 + `", "wieght": 1}`, http.StatusBadRequest, `unknown field \"wieght\"`},
		{"/api/backends/drain", `not json`, http.StatusBadRequest, "invalid JSON"},
	} {
		code, body := post(t, r.adminURL+tc.path, tc.body)
		if code != tc.want || !strings.Contains(body, tc.in) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.path, tc.body, code, body, tc.want, tc.in)
		}
	}
}

// TestControlAPIAnswers: the API answers as the README says: remove with
// the backend it removed, bad input (no pool named among several) with 400
// naming the pools, a reload with no configuration file with 409, and the
// removal of a pool's last backend, which a configuration file could not
// leave, is refused with 409.
func TestControlAPIAnswers(t *testing.T) {
	web, api1, api2 := backendtest.Start(t, "web"), backendtest.Start(t, "api1"), backendtest.Start(t, "api2")
	p, url := poolsRig(t, proxy.HealthConfig{Interval: time.Hour},
		proxy.PoolConfig{Name: "web", Backends: []string{web.URL()}},
		proxy.PoolConfig{Name: "api", Backends: []string{api1.URL(), api2.URL()}},
	)
	for _, tc := range []struct {
		name, path, body string
		want             int
		in               []string // in the body
	}{
		{"remove answers the backend", "/api/backends/remove", `{"pool": "api", "url": "` + api2.URL() + `"}`, http.StatusOK,
			[]string{`"url":"` + api2.URL() + `"`, `"pool":"api"`, `"state":"removed"`, `"in_rotation":false`}},
		{"remove the last of a pool", "/api/backends/remove", `{"pool": "api", "url": "` + api1.URL() + `"}`, http.StatusConflict,
			[]string{`"error":`, "last", `\"api\"`}},
		{"remove the only one", "/api/backends/remove", `{"pool": "web", "url": "` + web.URL() + `"}`, http.StatusConflict,
			[]string{`"error":`, "last", `\"web\"`}},
		{"no pool named among several", "/api/backends/drain", `{"url": "` + web.URL() + `"}`, http.StatusBadRequest,
			[]string{`"error":`, `\"web\"`, `\"api\"`}},
		{"reload without a configuration file", "/api/reload", "", http.StatusConflict,
			[]string{`"error":`, "no configuration file"}},
	} {
		code, body := post(t, url+tc.path, tc.body)
		if code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
		for _, in := range tc.in {
			if !strings.Contains(body, in) {
				t.Errorf("%s: body %s lacks %s", tc.name, body, in)
			}
		}
	}
	if n := len(p.Pool().Backends()) + len(p.Pools()[1].Backends()); n != 2 {
		t.Errorf("%d backends left, want web's and api's first", n)
	}
}

// TestControlAPIGuards: changes need the token, a POST, JSON, and a request
// from the admin interface's own pages; without a Control there is nothing
// to change.
func TestControlAPIGuards(t *testing.T) {
	const token = "t0k"
	r, _ := controlRig(t, 1, token)
	u := r.backends[0].URL()
	auth := "Bearer " + token
	drain := r.adminURL + "/api/backends/drain"
	body := `{"url": "` + u + `"}`
	for _, tc := range []struct {
		name   string
		header []string
		body   string
		want   int
	}{
		{"no token", nil, body, http.StatusUnauthorized},
		{"cross-site page", []string{"Authorization", auth, "Sec-Fetch-Site", "cross-site"}, body, http.StatusForbidden},
		{"other origin", []string{"Authorization", auth, "Origin", "http://evil.example"}, body, http.StatusForbidden},
		{"form body", []string{"Authorization", auth, "Content-Type", "application/x-www-form-urlencoded"}, body, http.StatusUnsupportedMediaType},
		{"text body", []string{"Authorization", auth, "Content-Type", "text/plain"}, body, http.StatusUnsupportedMediaType},
		{"same origin", []string{"Authorization", auth, "Origin", r.adminURL, "Sec-Fetch-Site", "same-origin"}, body, http.StatusOK},
	} {
		if code, got := post(t, drain, tc.body, tc.header...); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, got, tc.want)
		}
	}
	if code, _ := fetch(t, drain, auth); code != http.StatusMethodNotAllowed {
		t.Errorf("GET of a change: %d, want 405", code)
	}
	if code, _ := post(t, r.adminURL+"/api/backends", "", "Authorization", auth); code != http.StatusMethodNotAllowed {
		t.Errorf("POST to a listing: %d, want 405", code)
	}

	// Read-only: no Control.
	ro := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	if code, _ := post(t, ro.adminURL+"/api/backends/drain", body); code != http.StatusNotFound {
		t.Errorf("drain without a Control: %d, want 404", code)
	}
	if code, body := post(t, ro.adminURL+"/api/reload", ""); code != http.StatusConflict || !strings.Contains(body, "no configuration file") {
		t.Errorf("reload without a Reloader: %d %s, want 409 saying there is no configuration file", code, body)
	}
}

func TestReloadAPI(t *testing.T) {
	r, rl := controlRig(t, 1, "")
	if code, body := post(t, r.adminURL+"/api/reload", ""); code != http.StatusOK || !strings.Contains(body, "reloaded") {
		t.Errorf("reload: %d %s", code, body)
	}
	rl.fail(errors.New(`lb.yaml:3: pools.api.backends[0]: invalid backend "htp://x"`))
	code, body := post(t, r.adminURL+"/api/reload", "")
	if code != http.StatusBadRequest || !strings.Contains(body, `lb.yaml:3: pools.api.backends[0]: invalid backend \"htp://x\"`) {
		t.Errorf("refused reload: %d %s", code, body)
	}
	m, text := scrape(t, r)
	if m.get(t, "lb_config_reloads_total", "result", "success") != 1 || m.get(t, "lb_config_reloads_total", "result", "failure") != 1 ||
		m.get(t, "lb_config_last_reload_successful") != 0 || m.get(t, "lb_config_last_reload_success_timestamp_seconds") == 0 {
		t.Errorf("reload metrics:\n%s", text)
	}
	promtool(t, text)
	code, body = fetch(t, r.adminURL+"/api/status", "")
	if code != http.StatusOK || !strings.Contains(body, `"reloads":{"successes":1,"failures":1`) || !strings.Contains(body, `"controls":true`) {
		t.Errorf("/api/status: %s", body)
	}
}

// TestControlAPIAfterClose: a change the proxy refuses because it is closed
// is not the client's fault: every change (add, remove, weight, drain,
// enable, reload) is refused with an error wrapping proxy.ErrClosed that
// names the backend, answered 503 with the reason by the admin API, and
// changes nothing; a body that is bad whatever the proxy's state still
// answers 400. Before, remove, weight, drain and enable went on changing the
// pools of a closed proxy, and answered 200.
func TestControlAPIAfterClose(t *testing.T) {
	r, rl := controlRig(t, 2, "")
	b0, b1 := r.backends[0].URL(), r.backends[1].URL()
	extra := backendtest.Start(t, "extra")
	// Drained before Close, so that enabling it after would change it.
	if _, err := r.proxy.DrainBackend("", b1); err != nil {
		t.Fatal(err)
	}
	r.proxy.Close()
	// The Reloader fails as the binary's does after Close: with the
	// proxy's own error.
	rl.fail(r.proxy.Reload(proxy.Config{Backends: []string{extra.URL()}}))

	for _, tc := range []struct {
		name string
		call func() error
		url  string // named by the error
	}{
		{"AddBackend", func() error { _, err := r.proxy.AddBackend("", extra.URL()); return err }, extra.URL()},
		{"RemoveBackend", func() error { return r.proxy.RemoveBackend("", b0) }, b0},
		{"SetWeight", func() error { return r.proxy.SetWeight("", b0, 7) }, b0},
		{"DrainBackend", func() error { _, err := r.proxy.DrainBackend("", b0); return err }, b0},
		{"EnableBackend", func() error { _, err := r.proxy.EnableBackend("", b1); return err }, b1},
	} {
		err := tc.call()
		if !errors.Is(err, proxy.ErrClosed) || !strings.Contains(err.Error(), "the proxy is closed") || !strings.Contains(err.Error(), tc.url) {
			t.Errorf("%s after Close: %v, want an error wrapping ErrClosed that names %s and says the proxy is closed", tc.name, err, tc.url)
		}
	}

	for _, tc := range []struct {
		name, path, body string
		want             int
		in               []string // in the error
	}{
		{"add", "/api/backends/add", `{"backend": "` + extra.URL() + `"}`, http.StatusServiceUnavailable, []string{"the proxy is closed", extra.URL()}},
		{"remove", "/api/backends/remove", `{"url": "` + b0 + `"}`, http.StatusServiceUnavailable, []string{"the proxy is closed", b0}},
		{"weight", "/api/backends/weight", `{"url": "` + b0 + `", "weight": 7}`, http.StatusServiceUnavailable, []string{"the proxy is closed", b0}},
		{"drain", "/api/backends/drain", `{"url": "` + b0 + `"}`, http.StatusServiceUnavailable, []string{"the proxy is closed", b0}},
		{"enable", "/api/backends/enable", `{"url": "` + b1 + `"}`, http.StatusServiceUnavailable, []string{"the proxy is closed", b1}},
		{"reload", "/api/reload", "", http.StatusServiceUnavailable, []string{"the proxy is closed"}},
		{"add, no backend", "/api/backends/add", `{}`, http.StatusBadRequest, []string{`missing "backend"`}},
		{"add, not JSON", "/api/backends/add", `not json`, http.StatusBadRequest, []string{"invalid JSON"}},
		{"remove, no url", "/api/backends/remove", `{}`, http.StatusBadRequest, []string{`missing "url"`}},
	} {
		code, body := post(t, r.adminURL+tc.path, tc.body)
		var e errorJSON
		err := json.Unmarshal([]byte(body), &e)
		ok := err == nil && code == tc.want
		for _, in := range tc.in {
			ok = ok && strings.Contains(e.Error, in)
		}
		if !ok {
			t.Errorf("%s after Close: %d %s, want %d with an error saying %q", tc.name, code, body, tc.want, tc.in)
		}
	}

	var got []string
	for _, b := range r.proxy.Pool().Backends() {
		got = append(got, fmt.Sprintf("%s weight=%d draining=%v", b.URL(), b.Weight(), b.Draining()))
	}
	want := []string{b0 + " weight=1 draining=false", b1 + " weight=1 draining=true"}
	if !slices.Equal(got, want) {
		t.Errorf("backends after the changes refused: %q, want them as they were at Close: %q", got, want)
	}
}

// TestPoolsAPI shows every pool, and /api/health says which have nothing
// in rotation.
func TestPoolsAPI(t *testing.T) {
	web, api := backendtest.Start(t, "web"), backendtest.Start(t, "api")
	p, url := poolsRig(t, proxy.HealthConfig{Interval: time.Hour},
		proxy.PoolConfig{Name: "web", Backends: []string{web.URL()}},
		proxy.PoolConfig{Name: "api", Backends: []string{api.URL()}},
	)

	code, body := fetch(t, url+"/api/pools", "")
	var pools []poolJSON
	if err := json.Unmarshal([]byte(body), &pools); code != http.StatusOK || err != nil || len(pools) != 2 {
		t.Fatalf("/api/pools: %d %s", code, body)
	}
	if pools[0].Name != "web" || pools[1].Name != "api" || pools[0].Policy != "round-robin" || len(pools[1].Backends) != 1 || pools[1].Backends[0].Pool != "api" {
		t.Errorf("/api/pools: %+v", pools)
	}
	if _, err := p.DrainBackend("api", api.URL()); err != nil {
		t.Fatal(err)
	}
	code, body = fetch(t, url+"/api/health", "")
	if code != http.StatusOK || !strings.Contains(body, `"status":"degraded"`) || !strings.Contains(body, `{"name":"api","backends_up":0,"backends_total":1}`) {
		t.Errorf("/api/health with an empty pool: %d %s", code, body)
	}
	if code, body := post(t, url+"/api/backends/drain", `{"url": "`+web.URL()+`"}`); code != http.StatusBadRequest {
		t.Errorf("no pool named with several: %d %s, want 400", code, body)
	}
	m, _ := scrapeURL(t, url)
	if m.get(t, "lb_backend_up", "pool", "api", "backend", api.URL()) != 1 || m.get(t, "lb_pool_backends_up", "pool", "api") != 0 {
		t.Error("per-pool metrics wrong")
	}
}
