package backend

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func startServer(t *testing.T) (*Handler, string) {
	t.Helper()
	h := New("8081")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h)
	go srv.Serve(ln) //nolint:errcheck // ends at cleanup
	t.Cleanup(func() { srv.Shutdown() })
	return h, "http://" + ln.Addr().String()
}

func do(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestEndpoints(t *testing.T) {
	_, url := startServer(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // body, exactly
	}{
		{"GET", "/", "", 200, "Backend server is running on port 8081"},
		{"GET", "/any/other/path", "", 200, "Backend server is running on port 8081"},
		{"POST", "/", "data", 200, "Backend server is running on port 8081"},
		{"GET", "/health", "", 200, "ok"},
		{"GET", "/bytes/0", "", 200, ""},
		{"GET", "/bytes/5", "", 200, "xxxxx"},
		{"GET", "/bytes/-1", "", 400, "/bytes/N wants 0 <= N <= 1073741824\n"},
		{"GET", "/bytes/x", "", 400, "/bytes/N wants 0 <= N <= 1073741824\n"},
		{"GET", "/delay/1ms", "", 200, "Backend server is running on port 8081"},
		{"GET", "/delay/forever", "", 400, "/delay/D wants a duration from 0 to 10m0s, such as 250ms\n"},
		{"GET", "/status/503", "", 503, "status 503\n"},
		{"GET", "/status/204", "", 204, ""},
		{"GET", "/status/42", "", 400, "/status/N wants 200 <= N <= 599\n"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := do(t, tc.method, url+tc.path, tc.body)
			if resp.StatusCode != tc.status || body != tc.want {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if got := resp.Header.Get("X-Backend"); got != "8081" {
				t.Errorf("X-Backend %q, want 8081", got)
			}
		})
	}
}

func TestLargeBytesAreStreamed(t *testing.T) {
	_, url := startServer(t)
	resp, err := http.Get(url + "/bytes/3000000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != 3000000 {
		t.Errorf("read %d bytes (%v), want 3000000", n, err)
	}
}

func TestHealthSwitch(t *testing.T) {
	h, url := startServer(t)
	for _, step := range []struct {
		method, body string
		status       int
		want         string
	}{
		{"PUT", "down", 503, "down"},
		{"GET", "", 503, "down"},
		{"PUT", "up", 200, "ok"},
		{"GET", "", 200, "ok"},
		{"PUT", "sideways", 400, "body must be \"up\" or \"down\"\n"},
	} {
		resp, body := do(t, step.method, url+"/health", step.body)
		if resp.StatusCode != step.status || body != step.want {
			t.Errorf("%s /health %q: got %d %q, want %d %q", step.method, step.body, resp.StatusCode, body, step.status, step.want)
		}
	}
	h.SetHealthy(false)
	if resp, _ := do(t, "GET", url+"/health", ""); resp.StatusCode != 503 {
		t.Errorf("after SetHealthy(false): %d", resp.StatusCode)
	}
}

func TestEcho(t *testing.T) {
	_, url := startServer(t)
	req, _ := http.NewRequest("POST", url+"/echo?x=1", strings.NewReader("twelve bytes"))
	req.Header["x-lower"] = []string{"v"}
	req.Host = "Example.COM"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e Echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Method != "POST" || e.URI != "/echo?x=1" || e.Host != "Example.COM" || e.BodyLength != 12 ||
		e.Backend != "8081" || !strings.HasPrefix(e.RemoteAddr, "127.0.0.1:") {
		t.Errorf("echo %+v", e)
	}
	if got := e.Headers["x-lower"]; len(got) != 1 || got[0] != "v" {
		t.Errorf("header names not kept as sent: %v", e.Headers)
	}
}

func TestStats(t *testing.T) {
	h, url := startServer(t)
	do(t, "GET", url+"/", "")
	do(t, "GET", url+"/health", "")
	_, body := do(t, "GET", url+"/stats", "")
	if want := `{"backend":"8081","requests":2,"in_flight":0}` + "\n"; body != want {
		t.Errorf("/stats %q, want %q", body, want)
	}
	if s := h.Stats(); s.Requests != 2 {
		t.Errorf("Stats() %+v", s)
	}
}
