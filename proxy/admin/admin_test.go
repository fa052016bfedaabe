package admin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
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

// TestNewRefusesBadToken: a token with white space at its start or end
// (read from a file with its newline, say) is refused by New, with an
// error that does not show it: authorized trims what a request sends, so
// no client could ever be let in. So is one with a control character
// inside, which no client sends in a header, the error naming the first
// one's byte offset. A space inside is kept.
func TestNewRefusesBadToken(t *testing.T) {
	const around = "invalid admin token: white space at its start or end, which a request's credentials lose: remove it (the token is not shown)"
	inside := func(what string, at int) string {
		return fmt.Sprintf("invalid admin token: %s at byte offset %d, which no request can carry (the token is not shown)", what, at)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  string // the error; "" for none
	}{
		{"space before", " s3cret", around},
		{"newline after", "s3cret\n", around},
		{"CRLF after", "s3cret\r\n", around},
		{"tab before", "\ts3cret", around},
		{"no-break space after", "s3cret\u00a0", around},
		{"only white space", "  \n", "invalid admin token: only white space, which no request can carry"},
		{"space inside", "s3 cret", ""},
		{"NUL inside", "s3\x00cret", inside("control character 0x00", 2)},
		{"tab inside", "s3cr\tet", inside("control character 0x09", 4)},
		{"escape first", "\x1bs3cret", inside("control character 0x1b", 0)},
		{"DEL last", "s3cret\x7f", inside("control character 0x7f", 6)},
		{"the first of two", "s3\x02c\x01ret", inside("control character 0x02", 2)},
		{"non-ASCII inside", "s3cr\u00e9t", ""},
		{"plain", "s3cret", ""},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(sourceOf(), Config{Token: tc.token, Logger: quietLogger()})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v, want no error", err)
				}
				s.Shutdown(t.Context()) //nolint:errcheck // never served
				return
			}
			if err == nil || err.Error() != tc.want || s != nil {
				t.Fatalf("New: a server %t, error %v; want no server and the error %q", s != nil, err, tc.want)
			}
			if strings.Contains(err.Error(), "cret") {
				t.Errorf("the error shows the token: %q", err)
			}
		})
	}
}

// TestServeAfterShutdown: the admin interface's Serve and ListenAndServe
// called after Shutdown return http.ErrServerClosed at once, as net/http's
// do, rather than serve again (fasthttp's server would, without sampling);
// Serve closes the listener it is given, ListenAndServe does not listen
// (the address is held, so one that tried would fail otherwise). A Serve
// that Shutdown ends returns http.ErrServerClosed too.
func TestServeAfterShutdown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(s *Server, ln net.Listener) error
	}{
		{"Serve", (*Server).Serve},
		{"ListenAndServe", func(s *Server, ln net.Listener) error { return s.ListenAndServe(ln.Addr().String()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(sourceOf(), Config{Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() { served <- tc.serve(s, ln) }()
			select {
			case err := <-served:
				if !errors.Is(err, http.ErrServerClosed) {
					t.Errorf("%s after Shutdown: %v, want http.ErrServerClosed", tc.name, err)
				}
			case <-time.After(5 * time.Second):
				s.Server().Shutdown() //nolint:errcheck // the failure is reported below
				ln.Close()
				<-served
				t.Fatalf("%s after Shutdown was still serving 5 s later", tc.name)
			}
		})
	}
	t.Run("Serve ended by Shutdown", func(t *testing.T) {
		s, err := New(sourceOf(), Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		if code, _ := fetch(t, "http://"+ln.Addr().String()+"/metrics", ""); code != http.StatusOK {
			t.Fatalf("/metrics while serving: %d", code)
		}
		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve ended by Shutdown: %v, want http.ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve still running 5 s after Shutdown returned")
		}
	})
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
		s, err := New(p, Config{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		err = s.ListenAndServe(tc.addr)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ListenAndServe(%q): %v, want an error with %q", tc.addr, err, tc.err)
		}
	}

	port := strconv.Itoa(backendtest.ReservePort(t))
	a, err := New(p, Config{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
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
