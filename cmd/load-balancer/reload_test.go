package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// TestReloaderLooksUpOnlyChangedListenHosts: a reload looks up only the
// names to listen on that the running configuration does not have. With
// the resolver failing after the start, a reload whose listener and admin
// names are unchanged (spelt with a trailing dot or not, or moved from a
// listener to host) succeeds at once; one that brings a new name is
// refused naming it, and changes nothing.
func TestReloaderLooksUpOnlyChangedListenHosts(t *testing.T) {
	a, b := backendtest.Start(t, "a"), backendtest.Start(t, "b")
	var asked []string
	failing := false
	orig := lookupHost
	lookupHost = func(_ context.Context, host string) ([]string, error) {
		asked = append(asked, host)
		if failing {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		return []string{"127.0.0.1"}, nil
	}
	t.Cleanup(func() { lookupHost = orig })

	body := func(backend, where string) string {
		return "backends: [" + backend + "]\nhealth-path: /health\n" + where
	}
	listeners := "listeners: [\"lb.internal:3031\"]\nadmin-addr: admin.internal:9030\n"
	path := writeConfig(t, body(a.URL(), listeners))
	args := []string{"-config=" + path}
	o, err := parseFlags(args, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lb.internal", "admin.internal"}; !slices.Equal(asked, want) {
		t.Fatalf("looked up %q at start, want %q", asked, want)
	}
	rl, _ := startReloader(t, args, o)
	failing = true

	for _, tc := range []struct {
		name    string
		where   string // where to listen, after the backends
		backend string
		asked   []string // the names looked up
		err     string   // in the reload's error; "" for success
	}{
		{"unchanged, with another backend", listeners, b.URL(), nil, ""},
		{"unchanged, spelt otherwise", "listeners: [\"LB.internal.:3031\"]\nadmin-addr: admin.internal.:9030\n", b.URL(), nil, ""},
		{"a listener on a new name", "listeners: [\"lb.internal:3031\", \"new.internal:3032\"]\nadmin-addr: admin.internal:9030\n", a.URL(),
			[]string{"new.internal"}, path + `:3: listeners[1]: invalid address "new.internal:3032": host "new.internal": not an IP address, and the name does not resolve (no such host)`},
		{"the admin interface on a new name", "listeners: [\"lb.internal:3031\"]\nadmin-addr: other.internal:9030\n", a.URL(),
			[]string{"other.internal"}, path + `:4: admin-addr: invalid admin-addr "other.internal:9030": host "other.internal": not an IP address, and the name does not resolve (no such host)`},
		{"a known name moved to host", "host: lb.internal\nport: 3031\nadmin-addr: lb.internal:9030\n", a.URL(), nil, ""},
	} {
		if err := os.WriteFile(path, []byte(body(tc.backend, tc.where)), 0o600); err != nil {
			t.Fatal(err)
		}
		asked = nil
		err := rl.Reload()
		if !slices.Equal(asked, tc.asked) {
			t.Errorf("%s: looked up %q, want %q", tc.name, asked, tc.asked)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
		if want := tc.backend; tc.err != "" {
			// Refused: the backend of the last reload applied stays.
			if bs := rl.p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != b.URL() {
				t.Errorf("%s: a refused reload changed the backends: %v", tc.name, bs)
			}
		} else if bs := rl.p.Pool().Backends(); len(bs) != 1 || bs[0].URL() != want {
			t.Errorf("%s: backends %v, want %s", tc.name, bs, want)
		}
	}
	if st := rl.ReloadStats(); st.Successes != 3 || st.Failures != 2 {
		t.Errorf("stats %+v, want 3 successes and 2 failures", st)
	}
}
