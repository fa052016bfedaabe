package proxy

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestHTTP2Front serves HTTP/2 over TLS (ALPN) and with prior knowledge on
// the plain port, while HTTP/1.1 on the same ports keeps the fasthttp path:
// the counters tell the two apart.
func TestHTTP2Front(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	be := startBackend(t, "a")
	tp := h2Proxy(t, ca, Config{Backends: []string{be.URL()}})
	traffic := tp.Pool().Traffic()

	// HTTP/2 over TLS, Go's client.
	h2 := newH2Client(t, ca.Pool())
	resp, body := do(t, h2, newRequest(t, "GET", tp.tlsURL("localhost", "/echo?x=1"), nil))
	if resp.ProtoMajor != 2 {
		t.Fatalf("TLS: client got %s, want HTTP/2", resp.Proto)
	}
	var e backend.Echo
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("echo: %v: %q", err, body)
	}
	if e.URI != "/echo?x=1" || e.Proto != "HTTP/1.1" || header(e, "X-Forwarded-Proto")[0] != "https" {
		t.Errorf("backend saw %s %s, X-Forwarded-Proto %q", e.URI, e.Proto, header(e, "X-Forwarded-Proto"))
	}
	s := traffic.Snapshot()
	if s.HTTP2Requests != 1 || s.HTTP2ConnsTotal != 1 {
		t.Errorf("after one HTTP/2 request: %d HTTP/2 requests on %d connections, want 1 and 1", s.HTTP2Requests, s.HTTP2ConnsTotal)
	}

	// h2c with prior knowledge on the plain port.
	h2c := newH2Client(t, nil)
	resp, body = do(t, h2c, newRequest(t, "GET", tp.plainURL+"/echo", nil))
	if resp.ProtoMajor != 2 || !strings.Contains(body, `"X-Forwarded-Proto":["http"]`) {
		t.Fatalf("h2c: %s, body %q", resp.Proto, body)
	}

	// HTTP/1.1 on both ports: the fasthttp path, not the net/http one.
	before := traffic.Snapshot()
	for _, url := range []string{tp.plainURL + "/", tp.tlsURL("localhost", "/")} {
		resp, body := do(t, newTLSClient(t, ca.Pool()), newRequest(t, "GET", url, nil))
		if resp.ProtoMajor != 1 || backendOf(body) != "a" {
			t.Fatalf("HTTP/1.1 %s: %s %q", url, resp.Proto, body)
		}
	}
	after := traffic.Snapshot()
	total := func(s [5]uint64) (n uint64) {
		for _, v := range s {
			n += v
		}
		return n
	}
	if total(after.Requests)-total(before.Requests) != 2 || after.HTTP2Requests != before.HTTP2Requests ||
		after.HTTP1ViaNet != 0 || after.HTTP2ConnsTotal != before.HTTP2ConnsTotal {
		t.Errorf("HTTP/1.1 requests: counters before %+v after %+v: want 2 more requests, none on the net/http path", before, after)
	}

	// curl, when installed: --http2 over TLS and prior knowledge in plain.
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: skipping the curl checks")
		return
	}
	caFile := ca.WriteFile(t, t.TempDir())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--http2", "--cacert", caFile, tp.tlsURL("localhost", "/")}, "2"},
		{[]string{"--http2-prior-knowledge", tp.plainURL + "/"}, "2"},
		{[]string{"--http1.1", "--cacert", caFile, tp.tlsURL("localhost", "/")}, "1.1"},
	} {
		args := append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code} %{http_version}"}, tc.args...)
		out, err := exec.Command("curl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v: %s", tc.args, err, out)
		}
		if got := string(out); got != "200 "+tc.want {
			t.Errorf("curl %v: %q, want %q", tc.args, got, "200 "+tc.want)
		}
	}
}

// TestH2COff keeps the HTTP/1.1 server's answer to the HTTP/2 preface when
// h2c is off: 400, and nothing proxied.
func TestH2COff(t *testing.T) {
	be := startBackend(t, "a")
	_, url := startProxy(t, Config{Backends: []string{be.URL()}})
	status, _ := rawRequest(t, url, string(h2Preface))
	if !strings.HasPrefix(status, "HTTP/1.1 400") {
		t.Errorf("preface with h2c off: %q, want 400", status)
	}
	if be.hits.Load() != 0 {
		t.Error("the preface reached a backend")
	}
	// A request starting like the preface ("P...") is still HTTP/1.1 with
	// h2c on: the sniffing hands it over untouched.
	_, url = startProxy(t, Config{Backends: []string{be.URL()}, HTTP2: HTTP2Config{H2C: true}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("P")) //nolint:errcheck // checked by the answer
	c.Write([]byte("UT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "a" {
		t.Errorf("PUT split after its first byte, h2c on: %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
	}
}
