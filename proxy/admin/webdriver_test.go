package admin

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A small WebDriver client: chromedriver drives a real headless Chromium,
// and the W3C WebDriver protocol is plain JSON over HTTP, so the standard
// library is all the tests need.

// browser is one Chromium session.
type browser struct {
	t       *testing.T
	driver  string // chromedriver's base URL
	session string
	client  *http.Client
	logs    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lookTool finds a program: env names an explicit path, else the first of
// names on PATH. Missing in CI (which installs them) fails the test;
// elsewhere it is skipped with the reason.
func lookTool(t *testing.T, env string, names ...string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found (Debian packages chromium and chromium-driver, or %s=path)", names[0], env)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + ": .ci/run should have installed it")
	}
	t.Skip(msg + ": skipping the browser test")
	return ""
}

// startBrowser starts chromedriver and a headless Chromium session with a
// fresh profile, and ends both when the test ends.
func startBrowser(t *testing.T, width, height int) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	chromium := lookTool(t, "CHROMIUM", "chromium", "chromium-browser", "google-chrome")
	driverPath := lookTool(t, "CHROMEDRIVER", "chromedriver")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &browser{
		t:      t,
		driver: fmt.Sprintf("http://127.0.0.1:%d", port),
		client: &http.Client{Timeout: 60 * time.Second},
		logs:   &lockedBuffer{},
	}
	cmd := exec.Command(driverPath, fmt.Sprintf("--port=%d", port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", b.logs)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		if err := b.call(http.MethodGet, "/status", nil, &status); err == nil && status.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready after 20s:\n%s", b.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{
				"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
				"--disable-background-networking", "--disable-component-update", "--disable-sync",
				"--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
				"--user-data-dir=" + t.TempDir(),
				fmt.Sprintf("--window-size=%d,%d", width, height),
			},
		},
	}}}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(http.MethodPost, "/session", caps, &sess); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	b.session = "/session/" + sess.SessionID
	t.Cleanup(func() { b.call(http.MethodDelete, b.session, nil, nil) }) //nolint:errcheck // best effort
	return b
}

// webdriverError is the protocol's error answer.
type webdriverError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// call sends one command and decodes the answer's value into out.
func (b *browser) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.driver+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var envelope struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var we webdriverError
		json.Unmarshal(envelope.Value, &we)
		return fmt.Errorf("%s %s: %s: %s", method, path, we.Error, we.Message)
	}
	if out != nil {
		return json.Unmarshal(envelope.Value, out)
	}
	return nil
}

// open loads url in the browser.
func (b *browser) open(url string) {
	b.t.Helper()
	if err := b.call(http.MethodPost, b.session+"/url", map[string]string{"url": url}, nil); err != nil {
		b.t.Fatal(err)
	}
}

// text returns the rendered text of the first element matching css; ok is
// false when there is none.
func (b *browser) text(css string) (text string, ok bool) {
	var el map[string]string
	if err := b.call(http.MethodPost, b.session+"/element", map[string]string{"using": "css selector", "value": css}, &el); err != nil {
		return "", false
	}
	var id string
	for _, v := range el { // the key is the protocol's element identifier
		id = v
	}
	if err := b.call(http.MethodGet, b.session+"/element/"+id+"/text", nil, &text); err != nil {
		return "", false
	}
	return text, true
}

// click clicks the first element matching css and reports whether there
// was one to click.
func (b *browser) click(css string) bool {
	var el map[string]string
	if err := b.call(http.MethodPost, b.session+"/element", map[string]string{"using": "css selector", "value": css}, &el); err != nil {
		return false
	}
	for _, id := range el { // the key is the protocol's element identifier
		return b.call(http.MethodPost, b.session+"/element/"+id+"/click", map[string]string{}, nil) == nil
	}
	return false
}

// screenshot saves the viewport as a PNG at path.
func (b *browser) screenshot(path string) error {
	var data string
	if err := b.call(http.MethodGet, b.session+"/screenshot", nil, &data); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// waitFor polls cond until it holds; on timeout it saves a screenshot of
// the page in the temporary directory, logs where, and fails the test.
func (b *browser) waitFor(what string, timeout time.Duration, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			name := strings.NewReplacer("/", "-", " ", "-").Replace(b.t.Name())
			path := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d.png", name, time.Now().Unix()))
			if err := b.screenshot(path); err != nil {
				b.t.Logf("no screenshot: %v", err)
			} else {
				b.t.Logf("screenshot of the page: %s", path)
			}
			if body, ok := b.text("body"); ok {
				b.t.Logf("page text:\n%s", body)
			}
			b.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
