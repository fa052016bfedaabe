package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
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

// freePort returns a loopback TCP port for a binary the test starts, held
// until the test ends (backendtest.ReservePort): a port merely found free
// could be given to another listener before the binary binds it (one test
// once got its balancer's port equal to a backend's), and the kernel passes
// over a held one, while the binary can still listen on it.
func freePort(t *testing.T) int {
	t.Helper()
	return backendtest.ReservePort(t)
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
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health",
		"-admin-addr=") // off: the default port may be taken on a shared machine
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

// TestBinaryFrozenBackend is the scenario that stalls nginx and HAProxy with
// their defaults: one of two backends stopped with SIGSTOP (the kernel still
// accepts connections, nothing answers) under 16 concurrent keep-alive
// clients. No request may fail.
func TestBinaryFrozenBackend(t *testing.T) {
	bin := buildBinaries(t)
	p1, p2, lbPort := freePort(t), freePort(t), freePort(t)
	b1 := start(t, []string{"PORT=" + strconv.Itoa(p1)}, filepath.Join(bin, "backend-server"))
	start(t, []string{"PORT=" + strconv.Itoa(p2)}, filepath.Join(bin, "backend-server"))
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends=http://127.0.0.1:"+strconv.Itoa(p1)+",http://127.0.0.1:"+strconv.Itoa(p2),
		"-port="+strconv.Itoa(lbPort), "-try-timeout=300ms", "-health-path=/health", "-admin-addr=")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort) + "/"
	waitUntil(t, "both backends answering", func() bool {
		seen := map[string]bool{}
		for range 4 {
			_, body := fetch(t, url)
			seen[body] = true
		}
		return len(seen) == 2
	})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	b1.cmd.Process.Signal(syscall.SIGSTOP)
	defer b1.cmd.Process.Signal(syscall.SIGCONT)
	var (
		mu       sync.Mutex
		failures []string
		total    int
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(1500 * time.Millisecond)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := client.Get(url)
				mu.Lock()
				total++
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures = append(failures, resp.Status)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed with a backend stopped: %v", len(failures), total, failures[0])
	}
	if total < 100 {
		t.Errorf("only %d requests completed in 1.5s with one backend stopped", total)
	}
	if !strings.Contains(lb.output(), "backend down: http://127.0.0.1:"+strconv.Itoa(p1)) {
		t.Error("the stopped backend was not taken out of rotation")
	}
}

// rssOf returns the resident set size of process pid in bytes.
func rssOf(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// sampleRSS records the largest RSS of pid until stop is closed.
func sampleRSS(t *testing.T, pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, rssOf(t, pid))
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// TestBinaryStreamsOneGiB moves 1 GiB each way through the balancer with
// curl, checks the bytes with SHA-256 at both ends, and samples the
// balancer's memory all the while: it must stay within 64 MiB of idle.
func TestBinaryStreamsOneGiB(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is needed (installed by .ci/run)")
	}
	bin := buildBinaries(t)
	bp, lbPort := freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(bp)}, filepath.Join(bin, "backend-server"))
	lb := start(t, nil, filepath.Join(bin, "load-balancer"), "-backends=http://127.0.0.1:"+strconv.Itoa(bp),
		"-port="+strconv.Itoa(lbPort), "-max-body-size=0", "-health-path=/health", "-admin-addr=")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)
	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/health"); return code == 200 })
	const size = 1 << 30
	idle := rssOf(t, lb.cmd.Process.Pid)

	t.Run("download", func(t *testing.T) {
		stop := make(chan struct{})
		peak := sampleRSS(t, lb.cmd.Process.Pid, stop)
		cmd := exec.Command(curl, "-sS", "--fail", url+"/download/"+strconv.Itoa(size))
		out, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, _ := io.Copy(h, out)
		err := cmd.Wait()
		close(stop)
		if err != nil || n != size {
			t.Fatalf("curl: %v, %d bytes: %s", err, n, stderr.String())
		}
		if got, want := hex.EncodeToString(h.Sum(nil)), backend.PatternSHA256(size); got != want {
			t.Errorf("sha256 %s, want %s", got, want)
		}
		if grew := <-peak - idle; grew > 64<<20 {
			t.Errorf("balancer RSS grew by %d MiB while streaming, want < 64 MiB", grew>>20)
		} else {
			t.Logf("1 GiB down: RSS %d MiB idle, +%d MiB at peak", idle>>20, grew>>20)
		}
	})

	t.Run("upload", func(t *testing.T) {
		stop := make(chan struct{})
		peak := sampleRSS(t, lb.cmd.Process.Pid, stop)
		cmd := exec.Command(curl, "-sS", "--fail", "-T", "-", url+"/upload")
		cmd.Stdin = backend.Zeros(size)
		out, err := cmd.Output()
		close(stop)
		if err != nil {
			t.Fatalf("curl: %v: %s", err, out)
		}
		var up backend.Upload
		if err := json.Unmarshal(out, &up); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if up.Bytes != size || up.SHA256 != backend.ZerosSHA256(size) {
			t.Errorf("backend got %d bytes, sha256 %s", up.Bytes, up.SHA256)
		}
		if grew := <-peak - idle; grew > 64<<20 {
			t.Errorf("balancer RSS grew by %d MiB while streaming, want < 64 MiB", grew>>20)
		} else {
			t.Logf("1 GiB up: RSS %d MiB idle, +%d MiB at peak", idle>>20, grew>>20)
		}
	})
}

// TestBinaryAdminAndAlerts runs the binary with the admin interface behind a
// token and a Slack-style webhook, as an operator would.
func TestBinaryAdminAndAlerts(t *testing.T) {
	bin := buildBinaries(t)
	var mu sync.Mutex
	var alerts []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Text string }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		alerts = append(alerts, body.Text)
		mu.Unlock()
	}))
	defer hook.Close()
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), alerts...)
	}

	p1, p2, lbPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)
	b1 := start(t, []string{"PORT=" + strconv.Itoa(p1)}, filepath.Join(bin, "backend-server"))
	start(t, []string{"PORT=" + strconv.Itoa(p2)}, filepath.Join(bin, "backend-server"))
	u1, u2 := "http://127.0.0.1:"+strconv.Itoa(p1), "http://127.0.0.1:"+strconv.Itoa(p2)
	admin := "127.0.0.1:" + strconv.Itoa(adminPort)
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("e2e-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends="+u1+","+u2, "-port="+strconv.Itoa(lbPort), "-host=127.0.0.1",
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health",
		"-admin-addr="+admin, "-admin-token-file="+tokenFile,
		"-alert-webhook="+hook.URL+"/services/secret", "-alert-format=slack")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)

	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/"); return code == 200 })
	if !strings.Contains(lb.output(), "Admin interface at http://"+admin+"/") {
		t.Errorf("log lacks the admin address:\n%s", lb.output())
	}
	metrics := func(token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := metrics(""); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	code, body := metrics("e2e-token")
	if code != 200 || !strings.Contains(body, `lb_backend_up{pool="default",backend="`+u1+`"} 1`) {
		t.Errorf("/metrics with the token: %d\n%s", code, body)
	}
	if code, body := fetch(t, url+"/metrics"); code != 200 || strings.Contains(body, "lb_") {
		t.Errorf("the public port served %d %q for /metrics; want the backend's answer", code, body)
	}

	b1.cmd.Process.Kill()
	b1.cmd.Wait()
	waitUntil(t, "the down alert", func() bool { return len(received()) >= 1 })
	if got := received(); len(got) != 1 || !strings.Contains(got[0], "Backend `"+u1+"` is *down*") {
		t.Errorf("alerts %q, want one saying %s is down", got, u1)
	}
	code, body = metrics("e2e-token")
	if !strings.Contains(body, `lb_backend_up{pool="default",backend="`+u1+`"} 0`) || !strings.Contains(body, "lb_backends_up 1") {
		t.Errorf("/metrics after the kill: %d\n%s", code, body)
	}
	if strings.Contains(lb.output(), "secret") {
		t.Errorf("the webhook's path was logged:\n%s", lb.output())
	}
	if strings.Contains(lb.output(), "e2e-token") {
		t.Errorf("the admin token was logged:\n%s", lb.output())
	}

	lb.cmd.Process.Signal(syscall.SIGTERM)
	if err := lb.cmd.Wait(); err != nil {
		t.Errorf("balancer exit: %v", err)
	}
}

// TestBinaryShutdownSignals: once SIGTERM has begun the graceful shutdown,
// the admin interface's /api/health answers 503 while a request is still
// finishing, and a second SIGTERM ends the process at once, with status 1
// and a line saying so, rather than waiting out -shutdown-timeout.
func TestBinaryShutdownSignals(t *testing.T) {
	bin := buildBinaries(t)
	bePort, lbPort, adminPort := freePort(t), freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(bePort)}, filepath.Join(bin, "backend-server"))
	be := "http://127.0.0.1:" + strconv.Itoa(bePort)
	admin := "http://127.0.0.1:" + strconv.Itoa(adminPort)
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends="+be, "-port="+strconv.Itoa(lbPort), "-host=127.0.0.1", "-health-path=/health",
		"-try-timeout=0", "-shutdown-timeout=60s", "-admin-addr=127.0.0.1:"+strconv.Itoa(adminPort))
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)
	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/"); return code == 200 })
	if code, body := fetch(t, admin+"/api/health"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/api/health before shutdown: %d %s", code, body)
	}

	go fetch(t, url+"/delay/30s") // holds the shutdown open; cut by the second signal
	waitUntil(t, "the slow request at the backend", func() bool {
		_, body := fetch(t, be+"/stats")
		return strings.Contains(body, `"in_flight":1`)
	})
	lb.cmd.Process.Signal(syscall.SIGTERM)
	var code int
	var body string
	waitUntil(t, "/api/health to change", func() bool { code, body = fetch(t, admin+"/api/health"); return code != 200 })
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"shutting_down"`) {
		t.Errorf("/api/health during the shutdown: %d %s, want 503 shutting_down", code, body)
	}

	exited := make(chan error, 1)
	go func() { exited <- lb.cmd.Wait() }()
	began := time.Now()
	lb.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("exit after the second SIGTERM: %v, want status 1", err)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Errorf("took %v to exit after the second SIGTERM", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after a second SIGTERM")
	}
	if !strings.Contains(lb.output(), "second signal during shutdown: exiting at once") {
		t.Errorf("the forced exit is not logged:\n%s", lb.output())
	}
}

// curlTLS runs curl with args against the balancer, trusting only caFile,
// and returns its output (status code last, after -w) and error.
func curlTLS(t *testing.T, caFile string, args ...string) (string, error) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	out, err := exec.Command(curl, append([]string{"-s", "-m", "10", "--cacert", caFile}, args...)...).CombinedOutput()
	return string(out), err
}

// servedSerial returns the serial of the certificate served at addr for
// name, verified against roots.
func servedSerial(t *testing.T, addr, name string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestBinaryTLS runs the balancer with TLS as a user would, and talks to it
// with curl: HTTPS, the redirect, HSTS, and a reload on SIGHUP.
func TestBinaryTLS(t *testing.T) {
	bin := buildBinaries(t)
	ca := testpki.NewCA(t, "test CA")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir)
	first := ca.Issue(t, "localhost", "127.0.0.1")
	certFile, keyFile := first.WriteFiles(t, dir, "lb")

	bp, lbPort, tlsPort := freePort(t), freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(bp)}, filepath.Join(bin, "backend-server"))
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends=http://127.0.0.1:"+strconv.Itoa(bp), "-port="+strconv.Itoa(lbPort),
		"-tls-port="+strconv.Itoa(tlsPort), "-tls-cert="+certFile, "-tls-key="+keyFile,
		"-redirect-https", "-hsts=8760h", "-health-path=/health", "-health-interval=100ms", "-health-timeout=50ms", "-admin-addr=")
	httpsURL := "https://localhost:" + strconv.Itoa(tlsPort)
	tlsAddr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	waitUntil(t, "the balancer to serve HTTPS", func() bool {
		out, err := curlTLS(t, caFile, "-o", "/dev/null", "-w", "%{http_code}", httpsURL+"/")
		return err == nil && out == "200"
	})
	if !strings.Contains(lb.output(), "Load balancer serving HTTPS at :"+strconv.Itoa(tlsPort)) {
		t.Errorf("log lacks the HTTPS line:\n%s", lb.output())
	}

	// HTTPS answered by the backend, with HSTS.
	out, err := curlTLS(t, caFile, "-D", "-", httpsURL+"/")
	if err != nil || !strings.Contains(out, "Backend server is running on port "+strconv.Itoa(bp)) ||
		!strings.Contains(strings.ToLower(out), "strict-transport-security: max-age=31536000") {
		t.Errorf("curl over HTTPS: %v\n%s", err, out)
	}
	// Plain HTTP is sent to HTTPS, and curl -L follows it there.
	out, _ = curlTLS(t, caFile, "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
		"http://localhost:"+strconv.Itoa(lbPort)+"/echo?x=1")
	if want := "308 " + httpsURL + "/echo?x=1"; out != want {
		t.Errorf("plain HTTP: %q, want %q", out, want)
	}
	out, err = curlTLS(t, caFile, "-L", "http://localhost:"+strconv.Itoa(lbPort)+"/echo?x=1")
	if err != nil || !strings.Contains(out, `"X-Forwarded-Proto":["https"]`) {
		t.Errorf("curl -L through the redirect: %v\n%s", err, out)
	}
	// The health path is not redirected.
	out, _ = curlTLS(t, caFile, "-o", "/dev/null", "-w", "%{http_code}", "http://localhost:"+strconv.Itoa(lbPort)+"/health")
	if out != "200" {
		t.Errorf("health path over plain HTTP: %q, want 200", out)
	}

	// SIGHUP reloads the files; a broken pair is logged and the last good
	// one stays.
	roots := ca.Pool()
	second := ca.Issue(t, "localhost", "127.0.0.1")
	testpki.WriteFile(t, keyFile, second.KeyPEM)
	testpki.WriteFile(t, certFile, second.CertPEM)
	lb.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the reloaded certificate", func() bool {
		return servedSerial(t, tlsAddr, "localhost", roots) == second.Cert.SerialNumber.String()
	})
	testpki.WriteFile(t, keyFile, []byte("not a key"))
	lb.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, "the failed reload in the log", func() bool {
		return strings.Contains(lb.output(), "TLS certificate reload failed")
	})
	if !strings.Contains(lb.output(), keyFile) {
		t.Errorf("the failed reload does not name %s:\n%s", keyFile, lb.output())
	}
	if got := servedSerial(t, tlsAddr, "localhost", roots); got != second.Cert.SerialNumber.String() {
		t.Errorf("after a broken reload the balancer serves %s, want the last good %s", got, second.Cert.SerialNumber)
	}
	if out, err := curlTLS(t, caFile, "-o", "/dev/null", "-w", "%{http_code}", httpsURL+"/"); err != nil || out != "200" {
		t.Errorf("HTTPS after a broken reload: %q %v", out, err)
	}
	if lb.cmd.ProcessState != nil {
		t.Fatal("the balancer exited on SIGHUP")
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
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health", "-admin-addr=")
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
