package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// logBuffer collects a proxy's log records as text, for tests that assert
// what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

func newLogBuffer() (*logBuffer, *slog.Logger) {
	lb := &logBuffer{}
	return lb, slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tlsProxy is a proxy serving plain HTTP and HTTPS on two loopback ports.
type tlsProxy struct {
	*Proxy
	plainURL string // http://127.0.0.1:port
	tlsAddr  string // 127.0.0.1:port
}

// tlsURL returns the HTTPS URL of path under host (which the certificate
// must name), on the proxy's TLS port.
func (tp *tlsProxy) tlsURL(host, path string) string {
	_, port, _ := net.SplitHostPort(tp.tlsAddr)
	return "https://" + net.JoinHostPort(host, port) + path
}

func startTLSProxy(t *testing.T, cfg Config) *tlsProxy {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	if cfg.Health.Path == "" {
		cfg.Health.Path = "/health"
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.Serve(lns[0]) }()    //nolint:errcheck // ends at shutdown
	go func() { defer wg.Done(); p.ServeTLS(lns[1]) }() //nolint:errcheck // ends at shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx) //nolint:errcheck // best effort at test end
		wg.Wait()
	})
	return &tlsProxy{Proxy: p, plainURL: "http://" + lns[0].Addr().String(), tlsAddr: lns[1].Addr().String()}
}

// certFiles writes leaves into a temporary directory and returns the pairs
// for TLSConfig.Certificates.
func certFiles(t *testing.T, leaves ...*testpki.Leaf) []CertificateFiles {
	t.Helper()
	dir := t.TempDir()
	var files []CertificateFiles
	for i, l := range leaves {
		c, k := l.WriteFiles(t, dir, "cert"+string(rune('0'+i)))
		files = append(files, CertificateFiles{CertFile: c, KeyFile: k})
	}
	return files
}

// newTLSClient returns a keep-alive net/http client that trusts roots only.
func newTLSClient(t *testing.T, roots *x509.CertPool) *http.Client {
	t.Helper()
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: 8,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// dialTLS connects to addr with cfg and returns the handshaken connection.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS handshake with %s (SNI %q): %v", addr, cfg.ServerName, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// servedSerial returns the serial number of the certificate the server at
// addr presents to a client asking for serverName.
func servedSerial(t *testing.T, addr, serverName string, roots *x509.CertPool) string {
	t.Helper()
	c := dialTLS(t, addr, &tls.Config{ServerName: serverName, RootCAs: roots})
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// tlsBackend is a test backend serving HTTPS, which records the server names
// (SNI) its clients asked for.
type tlsBackend struct {
	*testBackend
	mu  sync.Mutex
	sni []string
}

func startTLSBackend(t *testing.T, name string, leaf *testpki.Leaf) *tlsBackend {
	t.Helper()
	tb := &tlsBackend{}
	tb.testBackend = &testBackend{t: t, name: name, handler: backend.New(name), tls: &tls.Config{
		Certificates: []tls.Certificate{leaf.TLS},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			tb.mu.Lock()
			tb.sni = append(tb.sni, hello.ServerName)
			tb.mu.Unlock()
			return nil, nil
		},
	}}
	tb.listen("127.0.0.1:0")
	t.Cleanup(tb.kill)
	return tb
}

// URLFor returns the backend's URL with host in place of its IP address.
func (tb *tlsBackend) URLFor(host string) string {
	_, port, _ := net.SplitHostPort(tb.addr)
	return "https://" + net.JoinHostPort(host, port)
}

// handshakes returns the server names of every handshake so far.
func (tb *tlsBackend) handshakes() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.sni...)
}
