package main

import (
	"bytes"
	"log/slog"
	"os"
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
	var logs lockedLog
	log := slog.New(slog.NewTextHandler(&logs, nil))
	o.proxy.Logger = log
	p, err := proxy.New(o.proxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	rl := &reloader{args: args, p: p, log: log, current: o}

	if err := os.WriteFile(path, []byte(body(b.URL(), "4001", "new-secret")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if bs := p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != b.URL() {
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
	if bs := p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != b.URL() {
		t.Errorf("a refused reload changed the backends: %v", bs)
	}
}
