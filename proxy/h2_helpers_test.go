package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/backend/backendtest"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// h2Backend is a net/http backend speaking HTTP/2: with prior knowledge
// (h2c) on plain TCP, or over TLS with ALPN h2. It answers like the
// project's backend-server: the greeting, /health, /echo (with the
// protocol it was reached over), /status/N, /stream (chunks, flushed, then
// a trailer).
type h2Backend struct {
	name string
	addr string
	tls  bool
	hits atomic.Int64

	mu    sync.Mutex
	srv   *http.Server
	ln    net.Listener
	conns map[net.Conn]struct{}
	// unhold lets the killed backend's port go (backendtest.HoldPort); nil before kill.
	unhold func()
}

func startH2Backend(t *testing.T, name string, leaf *testpki.Leaf) *h2Backend {
	t.Helper()
	b := &h2Backend{name: name, tls: leaf != nil, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: b, ErrorLog: discardLog(), ConnState: func(c net.Conn, s http.ConnState) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch s {
		case http.StateNew:
			b.conns[c] = struct{}{}
		case http.StateClosed, http.StateHijacked:
			delete(b.conns, c)
		}
	}}
	var protos http.Protocols
	if leaf != nil {
		protos.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"h2"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	srv.Protocols = &protos
	b.srv, b.ln = srv, ln
	go srv.Serve(ln) //nolint:errcheck // ends at kill
	t.Cleanup(func() {
		b.kill()
		b.mu.Lock()
		defer b.mu.Unlock()
		b.unhold()
	})
	return b
}

// URL is the backend's entry for Config.Backends, with its proto option.
func (b *h2Backend) URL() string {
	if b.tls {
		return "https://" + b.addr + " proto=h2"
	}
	return "http://" + b.addr + " proto=h2c"
}

// kill closes the listener and every connection at once. Its port stays
// refused, and kept from other listeners, until the test's end.
func (b *h2Backend) kill() {
	b.srv.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.unhold == nil {
		b.unhold = backendtest.HoldPort(b.addr)
	}
}

func (b *h2Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Backend", b.name)
	if r.URL.Path != "/health" {
		b.hits.Add(1)
	}
	switch {
	case r.URL.Path == "/health":
		io.WriteString(w, "ok")
	case r.URL.Path == "/echo":
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(backend.Echo{ //nolint:errcheck // the test reads it
			Backend: b.name, Method: r.Method, URI: r.RequestURI, Proto: r.Proto, Host: r.Host,
			Headers: r.Header, BodyLength: len(body), RemoteAddr: r.RemoteAddr,
		})
	case strings.HasPrefix(r.URL.Path, "/status/"):
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.WriteHeader(code)
	case r.URL.Path == "/stream":
		w.Header().Set("Trailer", "X-Sum")
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := range n {
			io.WriteString(w, "chunk "+strconv.Itoa(i)+"\n")
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Sum", strconv.Itoa(n))
	default:
		io.WriteString(w, "Backend server is running on port "+b.name)
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// newH2Client returns a net/http client that speaks HTTP/2 only: over TLS
// trusting roots, or with prior knowledge (h2c) when roots is nil.
func newH2Client(t *testing.T, roots *x509.CertPool) *http.Client {
	t.Helper()
	var protos http.Protocols
	tr := &http.Transport{DisableCompression: true}
	if roots != nil {
		protos.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	} else {
		protos.SetUnencryptedHTTP2(true)
	}
	tr.Protocols = &protos
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h2Proxy starts a proxy with TLS (a certificate for localhost) and h2c on
// its plain port, over backends.
func h2Proxy(t *testing.T, ca *testpki.CA, cfg Config) *tlsProxy {
	t.Helper()
	cfg.TLS = &TLSConfig{Certificates: certFiles(t, ca.Issue(t, "localhost"))}
	cfg.HTTP2.H2C = true
	return startTLSProxy(t, cfg)
}

// do sends req with c and returns the response with its body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// tlsPort returns the proxy's TLS port.
func (tp *tlsProxy) tlsPort() string {
	_, port, _ := net.SplitHostPort(tp.tlsAddr)
	return port
}
