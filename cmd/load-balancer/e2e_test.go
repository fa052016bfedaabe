package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end test runs the real binaries, as `make run` does, and talks
// to them with curl (net/http when curl is missing).

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func buildBinaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "lb-e2e-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "../load-balancer", "../backend-server")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building binaries: %v", buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a started binary whose output is collected.
type process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.output())
		}
	})
	return p
}

// fetch GETs url with curl, or net/http without it, and returns status and body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-s", "-m", "10", "-w", "\n%{http_code}", url).Output()
		if err != nil {
			return 0, err.Error()
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		code, _ := strconv.Atoi(s[i+1:])
		return code, s[:i]
	}
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBinariesEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not found; using net/http as the client")
	}
	bin := buildBinaries(t)
	p1, p2, lbPort := freePort(t), freePort(t), freePort(t)
	b1 := start(t, []string{"PORT=" + strconv.Itoa(p1)}, filepath.Join(bin, "backend-server"))
	start(t, []string{"PORT=" + strconv.Itoa(p2)}, filepath.Join(bin, "backend-server"))
	u1, u2 := "http://127.0.0.1:"+strconv.Itoa(p1), "http://127.0.0.1:"+strconv.Itoa(p2)
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends="+u1+","+u2, "-port="+strconv.Itoa(lbPort),
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)

	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/"); return code == 200 })
	for _, line := range []string{
		"Configured server: " + u1, "Configured server: " + u2,
		"Load balancer started at :" + strconv.Itoa(lbPort),
	} {
		if !strings.Contains(lb.output(), line) {
			t.Errorf("log lacks %q", line)
		}
	}
	if strings.Contains(lb.output(), "Selected backend") {
		t.Error("per-request lines logged at the default level")
	}

	seen := map[string]int{}
	for range 6 {
		code, body := fetch(t, url+"/")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		seen[body]++
	}
	for _, p := range []int{p1, p2} {
		if n := seen["Backend server is running on port "+strconv.Itoa(p)]; n != 3 {
			t.Errorf("backend on %d answered %d of 6: %v", p, n, seen)
		}
	}

	// A killed backend costs no request and is reported once.
	b1.cmd.Process.Kill()
	b1.cmd.Wait()
	for i := range 6 {
		if code, body := fetch(t, url+"/"); code != 200 {
			t.Fatalf("request %d after the kill: %d %s", i, code, body)
		}
	}
	waitUntil(t, "the down line", func() bool { return strings.Contains(lb.output(), "backend down: "+u1) })
	if n := strings.Count(lb.output(), "backend down: "+u1); n != 1 {
		t.Errorf("backend down logged %d times, want once", n)
	}

	// SIGTERM lets the in-flight request finish, then exits 0.
	slow := make(chan int, 1)
	go func() { code, _ := fetch(t, url+"/delay/700ms"); slow <- code }()
	waitUntil(t, "the slow request at the backend", func() bool {
		_, body := fetch(t, u2+"/stats")
		return strings.Contains(body, `"in_flight":1`)
	})
	lb.cmd.Process.Signal(syscall.SIGTERM)
	if code := <-slow; code != 200 {
		t.Errorf("in-flight request during shutdown: status %d", code)
	}
	err := lb.cmd.Wait()
	if err != nil {
		t.Errorf("balancer exit: %v", err)
	}
	if !strings.Contains(lb.output(), "stopped") {
		t.Error("no stopped line in the log")
	}
}

func TestBinaryRejectsBadFlag(t *testing.T) {
	bin := buildBinaries(t)
	cmd := exec.Command(filepath.Join(bin, "load-balancer"), "-backends=htp://x")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("exit %v, want status 2", err)
	}
	if want := `invalid -backends entry "htp://x": unsupported scheme "htp"`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
	}
}

// fetchWithJar GETs url keeping cookies in the jar file, as a browser would,
// with curl (net/http and a cookie jar without curl).
func fetchWithJar(t *testing.T, jar *cookieJar, url string) (int, string) {
	t.Helper()
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-s", "-m", "10", "-b", jar.path, "-c", jar.path, "-w", "\n%{http_code}", url).Output()
		if err != nil {
			return 0, err.Error()
		}
		s := string(out)
		i := strings.LastIndexByte(s, '\n')
		code, _ := strconv.Atoi(s[i+1:])
		return code, s[:i]
	}
	resp, err := jar.client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// cookieJar is curl's cookie file, or a net/http jar without curl.
type cookieJar struct {
	path   string
	client *http.Client
}

func newCookieJar(t *testing.T) *cookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cookieJar{path: filepath.Join(t.TempDir(), "cookies"), client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// TestBinaryBalancing runs the binary with weighted backends and a sticky
// cookie: clients without the cookie are spread 3:1, and a client keeping
// its cookies stays on one backend.
func TestBinaryBalancing(t *testing.T) {
	bin := buildBinaries(t)
	p1, p2, p3, lbPort := freePort(t), freePort(t), freePort(t), freePort(t)
	for _, p := range []int{p1, p2, p3} {
		start(t, []string{"PORT=" + strconv.Itoa(p)}, filepath.Join(bin, "backend-server"))
	}
	u := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p) }
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends="+u(p1)+" weight=3,"+u(p2)+","+u(p3)+" backup",
		"-sticky-cookie=lb", "-port="+strconv.Itoa(lbPort),
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)
	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/"); return code == 200 })
	for _, line := range []string{
		`msg="Configured server: ` + u(p1) + `" options="weight=3"`,
		`msg="Configured server: ` + u(p3) + `" options=backup`,
		"policy=round-robin sticky_cookie=lb",
	} {
		if !strings.Contains(lb.output(), line) {
			t.Errorf("log lacks %q:\n%s", line, lb.output())
		}
	}

	seen := map[string]int{}
	for range 40 {
		code, body := fetch(t, url+"/")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		seen[strings.TrimPrefix(body, "Backend server is running on port ")]++
	}
	// 40 requests are ten whole periods of a,a,b,a, wherever they start.
	if a, b, c := seen[strconv.Itoa(p1)], seen[strconv.Itoa(p2)], seen[strconv.Itoa(p3)]; a != 30 || b != 10 || c != 0 {
		t.Errorf("weight 3, weight 1 and a backup served %d, %d and %d of 40; want 30, 10, 0", a, b, c)
	}

	jar := newCookieJar(t)
	_, first := fetchWithJar(t, jar, url+"/")
	for i := range 20 {
		if code, body := fetchWithJar(t, jar, url+"/"); code != 200 || body != first {
			t.Fatalf("request %d with the cookie: %d %q, want %q", i, code, body, first)
		}
	}
}
