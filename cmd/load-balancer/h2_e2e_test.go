package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestBinaryHTTP2 runs the binaries with HTTP/2 on: curl --http2 over TLS
// and with prior knowledge in plain gets HTTP/2, curl --http1.1 gets
// HTTP/1.1 from the same ports, and /metrics counts each protocol.
func TestBinaryHTTP2(t *testing.T) {
	bin := buildBinaries(t)
	ca := testpki.NewCA(t, "test CA")
	dir := t.TempDir()
	caFile := ca.WriteFile(t, dir)
	certFile, keyFile := ca.Issue(t, "localhost").WriteFiles(t, dir, "lb")

	bp, lbPort, tlsPort, adminPort := freePort(t), freePort(t), freePort(t), freePort(t)
	start(t, []string{"PORT=" + strconv.Itoa(bp)}, filepath.Join(bin, "backend-server"))
	admin := "127.0.0.1:" + strconv.Itoa(adminPort)
	lb := start(t, nil, filepath.Join(bin, "load-balancer"),
		"-backends=http://127.0.0.1:"+strconv.Itoa(bp), "-host=127.0.0.1", "-port="+strconv.Itoa(lbPort),
		"-tls-port="+strconv.Itoa(tlsPort), "-tls-cert="+certFile, "-tls-key="+keyFile, "-h2c",
		"-health-path=/health", "-admin-addr="+admin)
	httpsURL := "https://localhost:" + strconv.Itoa(tlsPort) + "/"
	plainURL := "http://127.0.0.1:" + strconv.Itoa(lbPort) + "/"
	waitUntil(t, "the balancer to serve HTTPS", func() bool {
		out, err := curlTLS(t, caFile, "--http1.1", "-o", "/dev/null", "-w", "%{http_code}", httpsURL)
		return err == nil && out == "200"
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http2", httpsURL}, "200 2"},
		{[]string{"--http2-prior-knowledge", plainURL}, "200 2"},
		{[]string{"--http1.1", plainURL}, "200 1.1"},
	} {
		out, err := curlTLS(t, caFile, append([]string{"-o", "/dev/null", "-w", "%{http_code} %{http_version}"}, tc.args...)...)
		if err != nil || out != tc.want {
			t.Errorf("curl %v: %q %v, want %q", tc.args, out, err, tc.want)
		}
	}
	if !strings.Contains(lb.output(), `alpn=h2,http/1.1`) || !strings.Contains(lb.output(), "h2c") {
		t.Errorf("log does not say HTTP/2 is served:\n%s", lb.output())
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`lb_requests_by_protocol_total{protocol="h2"} 2`, "lb_http2_connections_total 2", "lb_requests_net_path_total 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
