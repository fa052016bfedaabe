package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestBinaryAccessLog: -access-log=FILE gets a combined line per request,
// the proxy's own answers included; after logrotate's move and SIGUSR1 the
// lines go to a new file of the same name; SIGTERM writes out what is
// pending before the process exits.
func TestBinaryAccessLog(t *testing.T) {
	bin := buildBinaries(t)
	port, lbPort := freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(port)}, filepath.Join(bin, "backend-server"))
	be := "http://127.0.0.1:" + strconv.Itoa(port)
	path := filepath.Join(t.TempDir(), "access.log")
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends="+be, "-port="+strconv.Itoa(lbPort), "-access-log="+path,
		"-health-interval=100ms", "-health-timeout=50ms", "-health-path=/health", "-admin-addr=")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort)
	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url+"/"); return code == 200 })

	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	if code, _ := fetch(t, url+"/status/404"); code != 404 {
		t.Fatalf("status %d", code)
	}
	waitUntil(t, "the 404 line", func() bool { return strings.Contains(read(path), `"GET /status/404 HTTP/1.1" 404 `) })
	var line string
	for _, l := range strings.Split(read(path), "\n") {
		if strings.Contains(l, "/status/404") {
			line = l
		}
	}
	if !strings.HasPrefix(line, "127.0.0.1 - - [") || !strings.HasSuffix(line, ` "`+be+`"`) {
		t.Errorf("line %q: want the client first and the backend last", line)
	}

	// logrotate moves the file, then signals.
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	lb.cmd.Process.Signal(syscall.SIGUSR1)
	waitUntil(t, "the reopen", func() bool { return strings.Contains(lb.output(), "access log reopened") })
	fetch(t, url+"/after-rotation")
	waitUntil(t, "a line in the new file", func() bool { return strings.Contains(read(path), "/after-rotation") })
	if strings.Contains(read(rotated), "/after-rotation") {
		t.Error("a line written to the rotated file after SIGUSR1")
	}

	fetch(t, url+"/last")
	lb.cmd.Process.Signal(syscall.SIGTERM)
	if err := lb.cmd.Wait(); err != nil {
		t.Errorf("balancer exit: %v", err)
	}
	if !strings.Contains(read(path), `"GET /last HTTP/1.1" 200 `) {
		t.Errorf("the last line is not in the file after shutdown:\n%s", read(path))
	}
}

// TestBinaryRejectsBadAccessLogFormat: exit 2, naming the value.
func TestBinaryRejectsBadAccessLogFormat(t *testing.T) {
	bin := buildBinaries(t)
	cmd := exec.Command(filepath.Join(bin, "load-balancer"), "-backends=http://127.0.0.1:1", "-access-log-format=xml")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("exit %v, want status 2", err)
	}
	if want := `invalid -access-log-format "xml": want combined or json`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
	}
}
