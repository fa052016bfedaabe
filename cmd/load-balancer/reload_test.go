package main

import (
	"bytes"
	"io"
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

// TestReloaderAccessLogPath: a reload naming an access log file that cannot
// be opened is refused as any bad value is (at start it exits 2): the error
// names the path, it counts as a failure, and the old configuration (its
// backends, its log file) stays. One that can be opened moves the log.
func TestReloaderAccessLogPath(t *testing.T) {
	a, b := backendtest.Start(t, "a"), backendtest.Start(t, "b")
	dir := t.TempDir()
	first := filepath.Join(dir, "first.log")
	body := func(backend, log string) string {
		return "backends: [" + backend + "]\nhealth-path: /health\naccess-log: " + log + "\n"
	}
	path := writeConfig(t, body(a.URL(), first))
	args := []string{"-config=" + path}
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	rl, _ := startReloader(t, args, o)
	if rl.accessLog, err = openLogFile(first, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.accessLog.close() })

	for i, tc := range []struct {
		name string
		log  string
		ok   bool
	}{
		{"no such directory", filepath.Join(dir, "missing", "a.log"), false},
		{"a directory", dir, false},
		{"a file that opens", filepath.Join(dir, "second.log"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(body(b.URL(), tc.log)), 0o600); err != nil {
				t.Fatal(err)
			}
			before := rl.ReloadStats()
			err := rl.Reload()
			st := rl.ReloadStats()
			bs := rl.p.Pool().Backends()
			if tc.ok {
				if err != nil || st.Successes != before.Successes+1 || rl.accessLog.name() != tc.log || len(bs) != 1 || bs[0].URL() != b.URL() {
					t.Errorf("reload %d: %v, stats %+v, log %s, backends %v; want applied", i, err, st, rl.accessLog.name(), bs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.log) {
				t.Errorf("reload: %v, want an error naming %s", err, tc.log)
			}
			if st.Failures != before.Failures+1 || st.Successes != before.Successes {
				t.Errorf("stats %+v after %+v: want one more failure", st, before)
			}
			if rl.accessLog.name() != first || len(bs) != 1 || bs[0].URL() != a.URL() {
				t.Errorf("a refused reload changed things: log %s, backends %v", rl.accessLog.name(), bs)
			}
		})
	}
}
