package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// TestHTTPSBackend reaches an https backend over TLS with SNI set to its
// host, and runs its health checks over the same TLS.
func TestHTTPSBackend(t *testing.T) {
	ca := testpki.NewCA(t, "backend CA")
	be := startTLSBackend(t, "a", ca.Issue(t, "localhost"))
	p, url := startProxy(t, Config{
		Backends:   []string{be.URLFor("localhost")},
		BackendTLS: &tls.Config{RootCAs: ca.Pool()},
		Health:     HealthConfig{Path: "/health", Interval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 1},
	})
	client := newClient(t)
	for range 3 {
		if status, body := get(t, client, url+"/"); status != http.StatusOK || backendOf(body) != "a" {
			t.Fatalf("GET over an https backend: %d %q", status, body)
		}
	}
	sni := be.handshakes()
	if len(sni) == 0 {
		t.Fatal("the backend saw no TLS handshake")
	}
	for _, name := range sni {
		if name != "localhost" {
			t.Errorf("SNI %q, want the backend's host, localhost", name)
		}
	}

	// Checks reach the backend over TLS and read its answer: a 503 takes it
	// down, a 200 brings it back.
	b := p.Pool().Backends()[0]
	be.handler.SetHealthy(false)
	waitFor(t, "the check to see the backend fail", 5*time.Second, func() bool { return !b.Up() })
	be.handler.SetHealthy(true)
	waitFor(t, "the check to see it pass", 5*time.Second, func() bool { return b.Up() })
	if n := len(be.handshakes()); n <= len(sni) {
		t.Errorf("health checks made no TLS handshakes of their own (%d then %d)", len(sni), n)
	}
}

// TestHTTPSBackendVerification refuses a backend whose certificate does not
// verify: the client gets a short 502, and the log says why.
func TestHTTPSBackendVerification(t *testing.T) {
	ca, rogue := testpki.NewCA(t, "backend CA"), testpki.NewCA(t, "rogue CA")
	for _, tc := range []struct {
		name    string
		leaf    *testpki.Leaf
		host    string
		cfg     *tls.Config
		status  int
		logWant string
	}{
		{"trusted CA", ca.Issue(t, "localhost"), "localhost", &tls.Config{RootCAs: ca.Pool()}, 200, ""},
		{"IP address in the certificate", ca.Issue(t, "127.0.0.1"), "127.0.0.1", &tls.Config{RootCAs: ca.Pool()}, 200, ""},
		{"unknown CA", ca.Issue(t, "localhost"), "localhost", nil, 502,
			"tls handshake: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"other CA", rogue.Issue(t, "localhost"), "localhost", &tls.Config{RootCAs: ca.Pool()}, 502,
			"certificate signed by unknown authority"},
		{"wrong name", ca.Issue(t, "other.test"), "localhost", &tls.Config{RootCAs: ca.Pool()}, 502,
			"certificate is valid for other.test, not localhost"},
		{"insecure skip verify", rogue.Issue(t, "other.test"), "localhost", &tls.Config{InsecureSkipVerify: true}, 200,
			"TLS certificates of https backends are not verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := startTLSBackend(t, "a", tc.leaf)
			logs, log := newLogBuffer()
			_, url := startProxy(t, Config{
				Backends:   []string{be.URLFor(tc.host)},
				BackendTLS: tc.cfg,
				Logger:     log,
				Health:     HealthConfig{Interval: -1},
			})
			status, body := get(t, newClient(t), url+"/")
			if status != tc.status {
				t.Fatalf("status %d %q, want %d", status, body, tc.status)
			}
			if status == 502 && body != "502 Bad Gateway: backend unavailable\n" {
				t.Errorf("502 body %q: want the short reason, no error text", body)
			}
			if tc.logWant != "" && !logs.contains(tc.logWant) {
				t.Errorf("log lacks %q:\n%s", tc.logWant, logs)
			}
			if status == 502 && !logs.contains("backend connect failed: "+be.URLFor(tc.host)) {
				t.Errorf("log does not name the backend:\n%s", logs)
			}
		})
	}
}

// TestSchemeIsTheBackends sends each request in the backend's scheme,
// whatever the client used; X-Forwarded-Proto tells the client's.
func TestSchemeIsTheBackends(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	plain := startBackend(t, "plain")
	secure := startTLSBackend(t, "secure", ca.Issue(t, "localhost"))
	for _, tc := range []struct {
		backend string
		name    string
	}{
		{plain.URL(), "plain"},
		{secure.URLFor("localhost"), "secure"},
	} {
		tp := startTLSProxy(t, Config{
			Backends:   []string{tc.backend},
			BackendTLS: &tls.Config{RootCAs: ca.Pool()},
			Health:     HealthConfig{Interval: -1},
			TLS:        &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))},
		})
		for _, client := range []struct {
			url   string
			c     *http.Client
			proto string
		}{
			{tp.plainURL + "/echo", newClient(t), "http"},
			{tp.tlsURL("localhost", "/echo"), newTLSClient(t, ca.Pool()), "https"},
		} {
			e, resp := echoOver(t, client.c, client.url)
			if resp.StatusCode != http.StatusOK || e.Backend != tc.name {
				t.Errorf("%s to the %s backend: status %d from %q", client.proto, tc.name, resp.StatusCode, e.Backend)
			}
			if got := header(e, "X-Forwarded-Proto"); len(got) != 1 || got[0] != client.proto {
				t.Errorf("%s to the %s backend: X-Forwarded-Proto %q", client.proto, tc.name, got)
			}
		}
	}
	if n := len(secure.handshakes()); n == 0 {
		t.Error("the https backend was not reached over TLS")
	}
}

// TestHTTPSBackendHandshakeTimeout bounds the TLS handshake by the dial
// timeout: a backend that accepts and says nothing is a connect failure.
func TestHTTPSBackendHandshakeTimeout(t *testing.T) {
	silent := startRawBackend(t, func(c net.Conn, r *bufio.Reader, rb *rawBackend) {
		io.Copy(io.Discard, r) // read the ClientHello, answer nothing, until the proxy gives up
	})
	logs, log := newLogBuffer()
	_, url := startProxy(t, Config{
		Backends:    []string{strings.Replace(silent.URL(), "http://", "https://", 1)},
		DialTimeout: 100 * time.Millisecond,
		Logger:      log,
		Health:      HealthConfig{Interval: -1},
	})
	status, _ := get(t, newClient(t), url+"/")
	if status != http.StatusBadGateway {
		t.Errorf("status %d, want 502", status)
	}
	if !logs.contains("tls handshake: i/o timeout") {
		t.Errorf("log lacks the handshake timeout:\n%s", logs)
	}
}
