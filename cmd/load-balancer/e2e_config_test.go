package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// getHost GETs url with the Host header host and returns status and body.
func getHost(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// adminCall sends method to the admin interface with the token and a JSON
// body (when not empty).
func adminCall(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBinaryConfigReload runs the balancer on a configuration file with two
// pools and routes, reloads it on SIGHUP and through the admin API (a bad
// file refused, the old one serving on), and drains a backend through the
// admin API.
func TestBinaryConfigReload(t *testing.T) {
	bin := buildBinaries(t)
	var urls []string
	name := func(i int) string { return "Backend server is running on port " + strconv.Itoa(i) }
	var ports []int
	for range 3 {
		p := freePort(t)
		start(t, []string{"PORT=" + strconv.Itoa(p)}, filepath.Join(bin, "backend-server"))
		ports = append(ports, p)
		urls = append(urls, "http://127.0.0.1:"+strconv.Itoa(p))
	}
	lbPort, adminPort := freePort(t), freePort(t)
	url, adminURL := "http://127.0.0.1:"+strconv.Itoa(lbPort), "http://127.0.0.1:"+strconv.Itoa(adminPort)
	head := "listeners: [\"127.0.0.1:" + strconv.Itoa(lbPort) + "\"]\n" +
		"admin-addr: 127.0.0.1:" + strconv.Itoa(adminPort) + "\n" +
		"admin-token: s3cret\n" +
		"health-interval: 100ms\nhealth-timeout: 50ms\nhealth-path: /health\n"
	routes := "routes:\n  - {host: api.example.com, pool: api}\n  - {pool: web}\n"
	path := filepath.Join(t.TempDir(), "lb.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(head+body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("pools:\n  web: {backends: [" + urls[0] + "]}\n  api: {backends: [" + urls[1] + "]}\n" + routes)

	lb := start(t, nil, filepath.Join(bin, "load-balancer"), "-config="+path)
	// Both pools serve once their first health checks are in.
	waitUntil(t, "the balancer to serve both pools", func() bool {
		code, _ := getHost(t, url+"/", "www.example.com")
		apiCode, _ := getHost(t, url+"/", "api.example.com")
		return code == 200 && apiCode == 200
	})
	if _, body := getHost(t, url+"/", "api.example.com"); body != name(ports[1]) {
		t.Errorf("api.example.com answered by %q, want the api pool's %d", body, ports[1])
	}
	if _, body := getHost(t, url+"/", "www.example.com"); body != name(ports[0]) {
		t.Errorf("www.example.com answered by %q, want the web pool's %d", body, ports[0])
	}

	// SIGHUP: api moves to the third backend, web gets the second too.
	write("pools:\n  web: {backends: [" + urls[0] + ", " + urls[1] + "]}\n  api: {backends: [" + urls[2] + "]}\n" + routes)
	lb.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reload", func() bool { _, body := getHost(t, url+"/", "api.example.com"); return body == name(ports[2]) })
	// The line follows the swap that the request above already saw.
	waitUntil(t, "the reload line in the log", func() bool { return strings.Contains(lb.output(), "configuration reload applied") })

	// A bad file is refused, with where and why; the running one stays.
	write("pools:\n  web: {backends: [" + urls[0] + "]}\n  api:\n    backends:\n      - htp://x\n" + routes)
	if code, _ := adminCall(t, http.MethodPost, adminURL+"/api/reload", "", ""); code != http.StatusUnauthorized {
		t.Errorf("reload without the token: %d, want 401", code)
	}
	code, body := adminCall(t, http.MethodPost, adminURL+"/api/reload", "s3cret", "")
	if want := path + `:11: pools.api.backends[0]: invalid backend \"htp://x\": unsupported scheme \"htp\"`; code != http.StatusBadRequest || !strings.Contains(body, want) {
		t.Errorf("bad reload: %d %s\nwant 400 with %s", code, body, want)
	}
	if _, body := getHost(t, url+"/", "api.example.com"); body != name(ports[2]) {
		t.Errorf("after a refused reload api.example.com is answered by %q", body)
	}

	// Drain the first backend of web: all of web's traffic goes to the second.
	drain := `{"pool": "web", "url": "` + urls[0] + `"}`
	code, body = adminCall(t, http.MethodPost, adminURL+"/api/backends/drain", "s3cret", drain)
	var b struct{ State string }
	if json.Unmarshal([]byte(body), &b); code != http.StatusOK || b.State != "drained" {
		t.Errorf("drain: %d %s, want 200 and drained (nothing in flight)", code, body)
	}
	for range 4 {
		if _, body := getHost(t, url+"/", "www.example.com"); body != name(ports[1]) {
			t.Fatalf("while draining, web answered by %q", body)
		}
	}
	_, metrics := adminCall(t, http.MethodGet, adminURL+"/metrics", "s3cret", "")
	for _, want := range []string{
		`lb_backend_draining{pool="web",backend="` + urls[0] + `"} 1`,
		`lb_config_reloads_total{result="success"} 1`,
		`lb_config_reloads_total{result="failure"} 1`,
		"lb_config_last_reload_successful 0",
		`lb_pool_backends{pool="web"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, list := adminCall(t, http.MethodGet, adminURL+"/api/backends", "s3cret", "")
	if !strings.Contains(list, `"url":"`+urls[0]+`","pool":"web","state":"drained"`) {
		t.Errorf("/api/backends does not show the drained backend:\n%s", list)
	}
	if code, body := adminCall(t, http.MethodPost, adminURL+"/api/backends/enable", "s3cret", drain); code != http.StatusOK || !strings.Contains(body, `"state":"up"`) {
		t.Errorf("enable: %d %s", code, body)
	}

	lb.cmd.Process.Signal(syscall.SIGTERM)
	if err := lb.cmd.Wait(); err != nil {
		t.Errorf("balancer exit: %v", err)
	}
}

// TestBinaryCheckConfig: -check-config exits 0 for a good file and 2 with
// the error for a bad one, starting nothing.
func TestBinaryCheckConfig(t *testing.T) {
	bin := buildBinaries(t)
	out, err := exec.Command(filepath.Join(bin, "load-balancer"), "-check-config", "-config=../../examples/lb.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "configuration OK") {
		t.Errorf("good file: %v\n%s", err, out)
	}
	path := filepath.Join(t.TempDir(), "lb.yaml")
	os.WriteFile(path, []byte("backends: [http://a:1]\nhealth-intervl: 5s\n"), 0o600)
	out, err = exec.Command(filepath.Join(bin, "load-balancer"), "-check-config", "-config="+path).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 ||
		!strings.Contains(string(out), path+":2: health-intervl: unknown key (did you mean health-interval?)") {
		t.Errorf("bad file: %v\n%s", err, out)
	}
}

// TestBinaryCheckConfigRefusesListenHost: a -host, listener or admin
// address that can never be listened on (a malformed IP, a short IPv4 form
// such as 127.1, an IP with a trailing dot, a name that does not resolve)
// fails -check-config with status 2 naming it, as a start would, instead
// of passing it and a start then exiting 1.
func TestBinaryCheckConfigRefusesListenHost(t *testing.T) {
	bin := buildBinaries(t)
	file := filepath.Join(t.TempDir(), "lb.yaml")
	if err := os.WriteFile(file, []byte("backends: [http://127.0.0.1:1]\nlisteners: [\"0x7f.1:3030\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-backends=http://127.0.0.1:1", "-host=999.1.1.1"}, `invalid -host "999.1.1.1": not an IPv4 address`},
		{[]string{"-backends=http://127.0.0.1:1", "-host=127.1"}, `invalid -host "127.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{"-backends=http://127.0.0.1:1", "-admin-addr=127.0.0.1.:9030"}, `invalid -admin-addr "127.0.0.1.:9030": host "127.0.0.1.": an IP address takes no trailing dot`},
		{[]string{"-backends=http://127.0.0.1:1", "-host=notahost.invalid"}, `invalid -host "notahost.invalid": not an IP address, and the name does not resolve`},
		{[]string{"-backends=http://127.0.0.1:1", "-admin-addr=notahost.invalid:9030"}, `invalid -admin-addr "notahost.invalid:9030": host "notahost.invalid"`},
		{[]string{"-config=" + file}, file + `:2: listeners[0]: invalid address "0x7f.1:3030": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
	} {
		for _, check := range []bool{true, false} {
			args := tc.args
			if check {
				args = append([]string{"-check-config"}, args...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, err := exec.CommandContext(ctx, filepath.Join(bin, "load-balancer"), args...).CombinedOutput()
			cancel()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("%q: %v, want exit status 2 with %q\n%s", args, err, tc.want, out)
			}
		}
	}
}
