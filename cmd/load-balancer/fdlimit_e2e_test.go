package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBinaryOutOfFileDescriptors runs the balancer with 64 file
// descriptors and opens more connections than that: accepting fails with
// EMFILE meanwhile, which the balancer logs and waits out, and once the
// connections close it serves again (fasthttp alone would stop serving for
// good on the first such error).
func TestBinaryOutOfFileDescriptors(t *testing.T) {
	bin := buildBinaries(t)
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh to lower the file descriptor limit with")
	}
	bePort, lbPort := freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(bePort)}, filepath.Join(bin, "backend-server"))
	lb := start(t, nil, "sh", "-c", `ulimit -n 64 && exec "$0" "$@"`, filepath.Join(bin, "load-balancer"),
		"-backends=http://127.0.0.1:"+strconv.Itoa(bePort), "-port="+strconv.Itoa(lbPort), "-admin-addr=")
	url := "http://127.0.0.1:" + strconv.Itoa(lbPort) + "/"
	waitUntil(t, "the balancer to serve", func() bool { code, _ := fetch(t, url); return code == 200 })

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 100 {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(lbPort))
		if err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
		held = append(held, c)
	}
	waitUntil(t, "the balancer to report it cannot accept", func() bool {
		return strings.Contains(lb.output(), "cannot accept connections; retrying") &&
			strings.Contains(lb.output(), "too many open files")
	})
	for _, c := range held {
		c.Close()
	}
	held = nil
	waitUntil(t, "the balancer to serve again", func() bool { code, _ := fetch(t, url); return code == 200 })
	if lb.cmd.ProcessState != nil || strings.Contains(lb.output(), "server stopped") {
		t.Fatalf("the balancer stopped:\n%s", lb.output())
	}
}
