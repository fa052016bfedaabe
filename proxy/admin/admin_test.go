package admin

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

func TestTokenEnforced(t *testing.T) {
	const token = "s3cret-token"
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{Token: token})
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	for _, path := range []string{"/metrics", "/api/backends", "/api/health", "/api/status", "/", "/assets/app.js", "/nope"} {
		for _, tc := range []struct {
			auth string
			want int
		}{
			{"", http.StatusUnauthorized},
			{"Bearer wrong", http.StatusUnauthorized},
			{"Bearer " + token + "x", http.StatusUnauthorized},
			{"Bearer " + token[:len(token)-1], http.StatusUnauthorized},
			{"Bearer", http.StatusUnauthorized},
			{token, http.StatusUnauthorized},
			{"Token " + token, http.StatusUnauthorized},
			{basic("admin", "wrong"), http.StatusUnauthorized},
			{basic(token, ""), http.StatusUnauthorized},
			{"Basic !!!", http.StatusUnauthorized},
			{"Bearer " + token, http.StatusOK},
			{"bearer  " + token, http.StatusOK},
			{basic("admin", token), http.StatusOK},
			{basic("", token), http.StatusOK},
		} {
			want := tc.want
			if path == "/nope" && want == http.StatusOK {
				want = http.StatusNotFound
			}
			code, body := fetch(t, r.adminURL+path, tc.auth)
			if code != want {
				t.Errorf("%s with Authorization %q: %d, want %d", path, tc.auth, code, want)
			}
			if code == http.StatusUnauthorized && (strings.Contains(body, "lb_") || strings.Contains(body, "backend")) {
				t.Errorf("%s: a 401 leaked content: %q", path, body)
			}
		}
	}
	req, _ := http.NewRequest(http.MethodGet, r.adminURL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Values("WWW-Authenticate"); len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer ") || !strings.HasPrefix(ch[1], "Basic ") {
		t.Errorf("challenges %q, want Bearer and Basic (so browsers prompt)", ch)
	}
}

func TestNoTokenNeededWithoutOne(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	if code, _ := fetch(t, r.adminURL+"/metrics", ""); code != http.StatusOK {
		t.Errorf("GET /metrics without a token configured: %d", code)
	}
}

// The admin interface lives on its own listener: the port that serves
// traffic proxies /metrics and /api/* to the backends like any other path.
func TestPublicPortServesNoAdmin(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	for _, path := range []string{"/metrics", "/api/backends", "/api/health", "/api/status", "/assets/app.js"} {
		code, body := fetch(t, r.proxyURL+path, "")
		if code != http.StatusOK || !strings.HasPrefix(body, "Backend server is running on port ") {
			t.Errorf("public %s: %d %q, want the backend's own answer", path, code, body)
		}
		if strings.Contains(body, "lb_") || strings.Contains(body, "# TYPE") {
			t.Errorf("public %s served metrics: %q", path, body)
		}
	}
}

func TestRouting(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		contains     string
	}{
		{"GET", "/", 200, "text/html", `<table id="backends">`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/assets/app.js", 200, "text/javascript", "/api/status"},
		{"GET", "/assets/style.css", 200, "text/css", ".state.down"},
		{"GET", "/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"GET", "/metrics", 200, "text/plain; version=0.0.4", "# TYPE lb_backend_up gauge"},
		{"GET", "/api/backends", 200, "application/json", `"state":"up"`},
		{"GET", "/api/health", 200, "application/json", `"status":"ok"`},
		{"GET", "/api/status", 200, "application/json", `"backends_up":1`},
		{"POST", "/api/backends", 405, "", ""},
		{"DELETE", "/metrics", 405, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"GET", "/assets/", 404, "", ""},
		{"GET", "/api/", 404, "", ""},
	} {
		req, _ := http.NewRequest(tc.method, r.adminURL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if tc.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, resp.Header.Get("Content-Type"), tc.ctype)
		}
		if !strings.Contains(sb.String(), tc.contains) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.contains)
		}
		if tc.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, resp.Header.Get("Allow"))
		}
		if tc.path == "/" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("the dashboard has no content security policy")
		}
	}
}

// The page caches by ETag: a reload costs a 304.
func TestDashboardETag(t *testing.T) {
	r := newRig(t, 1, proxy.Config{Health: proxy.HealthConfig{Interval: -1}}, Config{})
	resp, err := http.Get(r.adminURL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, r.adminURL+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", resp.StatusCode)
	}
}

// TestListenAndServeHost: the admin listener's host follows the rules of
// every host in the configuration, as proxy.Listen's: the forms Go's
// resolver cannot read are refused at once, naming the host and what is
// wrong, and a name with a trailing dot is the same name, served.
func TestListenAndServeHost(t *testing.T) {
	p, err := proxy.New(proxy.Config{Backends: []string{"http://127.0.0.1:1"}, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for _, tc := range []struct{ addr, err string }{
		{"127.1:9030", `admin listener on 127.1:9030: host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"0x7f.1:9030", `host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"2130706433:9030", `host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{"0177.0.0.1:9030", `host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{"127.0.0.1.:9030", `host "127.0.0.1.": an IP address takes no trailing dot`},
		{"a..b:9030", `host "a..b": an empty label`},
	} {
		err := New(p, Config{Logger: quietLogger()}).ListenAndServe(tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ListenAndServe(%q): %v, want an error with %q", tc.addr, err, tc.err)
		}
	}

	port := strconv.Itoa(backendtest.ReservePort(t))
	a := New(p, Config{Logger: quietLogger()})
	served := make(chan error, 1)
	go func() { served <- a.ListenAndServe("localhost.:" + port) }()
	t.Cleanup(func() {
		a.Shutdown(t.Context()) //nolint:errcheck // test end
		select {
		case <-served:
		case <-time.After(5 * time.Second): // or already read: it failed
		}
	})
	waitFor(t, "the admin interface on localhost.:"+port, 5*time.Second, func() bool {
		select {
		case err := <-served:
			t.Fatalf("ListenAndServe(localhost.:%s): %v", port, err)
		default:
		}
		resp, err := http.Get("http://127.0.0.1:" + port + "/api/status")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}
