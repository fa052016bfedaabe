package proxy

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/rishichirchi/Load-Balancee/backend"
	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

// tlsRig is a client, a proxy and one backend joined by in-memory
// listeners, with TLS on the client side, the backend side, both or
// neither: what TLS adds to the proxy's cost per request, without the
// kernel.
type tlsRig struct {
	client *fasthttp.HostClient
	ln     *fasthttputil.InmemoryListener // the proxy's
	front  *tls.Config                    // the client's TLS config; nil for plain
}

func newTLSRig(tb testing.TB, frontTLS, backendTLS bool) *tlsRig {
	tb.Helper()
	ca := testpki.NewCA(tb, "bench CA")
	bln := fasthttputil.NewInmemoryListener()
	var served net.Listener = bln
	backendURL := "http://backend:80"
	cfg := Config{
		Dial:   func(string, time.Duration) (net.Conn, error) { return bln.Dial() },
		Health: HealthConfig{Interval: -1},
		Logger: discardLogger(),
	}
	if backendTLS {
		leaf := ca.Issue(tb, "backend")
		served = tls.NewListener(bln, &tls.Config{Certificates: []tls.Certificate{leaf.TLS}})
		backendURL = "https://backend:443"
		cfg.BackendTLS = &tls.Config{RootCAs: ca.Pool()}
	}
	cfg.Backends = []string{backendURL}
	srv := backend.NewServer(backend.New("a"))
	go srv.Serve(served) //nolint:errcheck // ends when bln closes
	tb.Cleanup(func() { bln.Close() })

	dir := tb.TempDir()
	certFile, keyFile := ca.Issue(tb, "localhost").WriteFiles(tb, dir, "proxy")
	if frontTLS {
		cfg.TLS = &TLSConfig{Certificates: []CertificateFiles{{CertFile: certFile, KeyFile: keyFile}}, ReloadInterval: -1}
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	pln := fasthttputil.NewInmemoryListener()
	rig := &tlsRig{ln: pln}
	if frontTLS {
		go p.ServeTLS(pln) //nolint:errcheck // ends when pln closes
		rig.front = &tls.Config{ServerName: "localhost", RootCAs: ca.Pool(), ClientSessionCache: tls.NewLRUClientSessionCache(0)}
	} else {
		go p.Serve(pln) //nolint:errcheck // ends when pln closes
	}
	tb.Cleanup(func() {
		pln.Close()
		p.Close()
	})
	rig.client = &fasthttp.HostClient{
		Addr:                      "localhost",
		Dial:                      func(string) (net.Conn, error) { return pln.DialWithLocalAddr(clientAddr) },
		IsTLS:                     frontTLS,
		TLSConfig:                 rig.front,
		MaxIdemponentCallAttempts: 1,
	}
	return rig
}

// BenchmarkProxiedRequestTLS is a keep-alive GET through the proxy, with
// TLS on neither side, the client side (termination), the backend side, or
// both. Handshakes happen once per connection, so this is the cost of
// encrypting and decrypting each request and response.
func BenchmarkProxiedRequestTLS(b *testing.B) {
	for _, bc := range []struct {
		name            string
		front, backside bool
	}{
		{"plain", false, false},
		{"client-TLS", true, false},
		{"backend-TLS", false, true},
		{"both-TLS", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rig := newTLSRig(b, bc.front, bc.backside)
			uri := "http://localhost/"
			if bc.front {
				uri = "https://localhost/"
			}
			b.ReportAllocs()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req := fasthttp.AcquireRequest()
				resp := fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				for pb.Next() {
					req.SetRequestURI(uri)
					if err := rig.client.Do(req, resp); err != nil {
						b.Fatal(err)
					}
					if resp.StatusCode() != fasthttp.StatusOK {
						b.Fatalf("status %d", resp.StatusCode())
					}
				}
			})
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkTLSHandshake opens a new TLS connection to the proxy per
// operation: a full handshake (ECDSA P-256 certificate) or one resumed from
// a session ticket, with the key exchange a browser offers first
// (X25519MLKEM768, Go's default) or the one curl and OpenSSL 3.0 use
// (X25519). Client and server run in the same process, so the time is both
// sides' CPU; the client verifies the chain, which the server does not.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, bc := range []struct {
		name    string
		version uint16
		curve   tls.CurveID
		resume  bool
	}{
		{"full-TLS1.3-MLKEM", tls.VersionTLS13, 0, false},
		{"full-TLS1.3-X25519", tls.VersionTLS13, tls.X25519, false},
		{"resumed-TLS1.3-X25519", tls.VersionTLS13, tls.X25519, true},
		{"full-TLS1.2-X25519", tls.VersionTLS12, tls.X25519, false},
		{"resumed-TLS1.2", tls.VersionTLS12, tls.X25519, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rig := newTLSRig(b, true, false)
			cfg := rig.front.Clone()
			cfg.MaxVersion = bc.version
			if bc.curve != 0 {
				cfg.CurvePreferences = []tls.CurveID{bc.curve}
			}
			if !bc.resume {
				cfg.ClientSessionCache = nil
			}
			handshake := func() *tls.Conn {
				raw, err := rig.ln.Dial()
				if err != nil {
					b.Fatal(err)
				}
				c := tls.Client(raw, cfg)
				if err := c.Handshake(); err != nil {
					b.Fatal(err)
				}
				return c
			}
			if bc.resume {
				// A TLS 1.3 ticket comes after the handshake: read a response.
				c := handshake()
				if status := requestOn(b, c, "localhost"); status != fasthttp.StatusOK {
					b.Fatalf("status %d", status)
				}
				c.Close()
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for range b.N {
				c := handshake()
				if c.ConnectionState().DidResume != bc.resume {
					b.Fatalf("resumed %v, want %v", c.ConnectionState().DidResume, bc.resume)
				}
				c.Close()
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// reportCPU reports the process's CPU time since since, per operation: the
// client's, the proxy's and the backend's together, all in this process.
func reportCPU(b *testing.B, since time.Duration) {
	if used := processCPU() - since; used > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
