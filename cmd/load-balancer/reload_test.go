package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/proxy"
)

// lockedLog is a log sink that health checks may write to while the test
// reads it.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReloaderAppliesAndWarns: a reload applies pools and routes, names what
// waits for a restart (without showing secrets), and a bad file counts as a
// failure and changes nothing.
func TestReloaderAppliesAndWarns(t *testing.T) {
	a, b := backendtest.Start(t, "a"), backendtest.Start(t, "b")
	body := func(backend, port, token string) string {
		return "backends: [" + backend + "]\nport: " + port + "\nadmin-token: " + token + "\nhealth-path: /health\n"
	}
	path := writeConfig(t, body(a.URL(), "4000", "old-secret"))
	args := []string{"-config=" + path}
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	rl, logs := startReloader(t, args, o)

	if err := os.WriteFile(path, []byte(body(b.URL(), "4001", "new-secret")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if bs := rl.p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != b.URL() {
		t.Errorf("backends after the reload: %v", bs)
	}
	out := logs.String()
	for _, want := range []string{"port changed; it takes effect after a restart", "admin-token changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("the log shows the token:\n%s", out)
	}

	if err := os.WriteFile(path, []byte("backends: [htp://x]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(); err == nil || !strings.Contains(err.Error(), path+":1: backends[0]") {
		t.Errorf("bad file: %v", err)
	}
	st := rl.ReloadStats()
	if st.Successes != 1 || st.Failures != 1 || st.LastError == "" || st.LastSuccess.IsZero() {
		t.Errorf("stats %+v", st)
	}
	if bs := rl.p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != b.URL() {
		t.Errorf("a refused reload changed the backends: %v", bs)
	}
}

// TestReloaderTellsTokenFileChange: the admin token read from
// admin-token-file counts as the setting, so a reload after the file
// changed says the new token waits for a restart, without showing either.
func TestReloaderTellsTokenFileChange(t *testing.T) {
	a := backendtest.Start(t, "a")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("old-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-config=" + writeConfig(t, "backends: ["+a.URL()+"]\nadmin-token-file: "+tokenFile+"\n")}
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.adminToken != "old-secret" {
		t.Fatalf("token %q from the configuration file's admin-token-file, want old-secret", o.adminToken)
	}
	rl, logs := startReloader(t, args, o)

	if err := os.WriteFile(tokenFile, []byte("new-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "admin-token changed; it takes effect after a restart") {
		t.Errorf("log lacks the token change:\n%s", out)
	}
	if strings.Contains(out, "secret") {
		t.Errorf("the log shows the token:\n%s", out)
	}
}

// startReloader starts a proxy from o, parsed from args, and returns the
// reloader a SIGHUP would call, logging to the log it returns.
func startReloader(t *testing.T, args []string, o *options) (*reloader, *lockedLog) {
	t.Helper()
	logs := &lockedLog{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	o.proxy.Logger = log
	p, err := proxy.New(o.proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &reloader{args: args, p: p, log: log, current: o}, logs
}
