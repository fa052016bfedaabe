package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// TLSConfig configures TLS termination: the proxy serves HTTPS with
// ServeTLS or ListenAndServeTLS beside plain HTTP, and hands the decrypted
// requests to the same request path. The zero value of every field but
// Certificates selects the default named in its comment.
type TLSConfig struct {
	// Certificates are the certificate/key pairs to serve. The name a client
	// asks for (SNI) picks the certificate: an exact DNS name first, then a
	// wildcard; the first pair serves clients that send no name or one no
	// certificate covers. At least one is required; each must load, or New
	// fails naming the file.
	Certificates []CertificateFiles

	// MinVersion is the oldest protocol accepted: tls.VersionTLS12 or
	// tls.VersionTLS13. Zero means TLS 1.2.
	MinVersion uint16

	// ReloadInterval is how often the certificate files are checked; when
	// one changed, all are loaded again and new handshakes get them. A pair
	// that fails to load is logged and the previous certificates keep
	// serving. Zero means DefaultCertPollInterval (5s); negative turns the
	// checks off (ReloadCertificates still reloads).
	ReloadInterval time.Duration

	// HSTS, when positive, adds "Strict-Transport-Security: max-age=N" (N in
	// seconds) to every response sent over TLS, on HTTP/1.1 and HTTP/2, the
	// proxy's own answers included, that does not already carry the header
	// from the backend. Zero sends none. At least one second.
	HSTS time.Duration

	// RedirectHTTP answers requests that arrive over plain HTTP (HTTP/1.1,
	// or HTTP/2 with HTTP2Config.H2C) with 308 Permanent Redirect to the
	// same host, path and query over https on RedirectPort, except
	// requests for Health.Path, which are proxied as usual so that a load
	// balancer in front can keep checking, CONNECT, which gets 405 as over
	// TLS, and OPTIONS *, which names no path to redirect to and is
	// proxied as over TLS. False proxies plain HTTP like HTTPS.
	RedirectHTTP bool
	// RedirectPort is the HTTPS port redirects point to. Zero means 443,
	// which the Location leaves out.
	RedirectPort int
}

// Modern cipher suites for TLS 1.2: forward secret and AEAD only (Mozilla's
// "intermediate" list). TLS 1.3 suites are all of that kind and not
// configurable.
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// Application protocols offered with ALPN: HTTP/1.1 alone, both (the TLS
// listener with HTTP/2 on, h2 first as clients prefer it), and h2 alone (a
// proto=h2 backend).
var (
	alpnHTTP11 = []string{"http/1.1"}
	alpnBoth   = []string{"h2", "http/1.1"}
	alpnH2Only = []string{"h2"}
)

func (c *TLSConfig) withDefaults() (*TLSConfig, error) {
	if c == nil {
		return nil, nil
	}
	cc := *c
	cc.Certificates = append([]CertificateFiles(nil), c.Certificates...) // the caller's may change
	if len(cc.Certificates) == 0 {
		return nil, errors.New("TLS: no certificates configured")
	}
	for _, f := range cc.Certificates {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, fmt.Errorf("TLS: certificate %q with key %q: both files are required", f.CertFile, f.KeyFile)
		}
	}
	switch cc.MinVersion {
	case 0:
		cc.MinVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("TLS minimum version %s: want TLS 1.2 or 1.3", tls.VersionName(cc.MinVersion))
	}
	if cc.ReloadInterval == 0 {
		cc.ReloadInterval = DefaultCertPollInterval
	}
	if cc.HSTS < 0 || (cc.HSTS > 0 && cc.HSTS < time.Second) {
		return nil, fmt.Errorf("HSTS max-age %v: want zero (off) or at least 1s", cc.HSTS)
	}
	if cc.RedirectPort == 0 {
		cc.RedirectPort = 443
	}
	if cc.RedirectPort < 1 || cc.RedirectPort > 65535 {
		return nil, fmt.Errorf("redirect port %d: want 1-65535", cc.RedirectPort)
	}
	return &cc, nil
}

// serverTLSConfig is the configuration of the TLS listener, or nil without
// TLS.
func serverTLSConfig(c *TLSConfig, certs *certStore, h2 bool) *tls.Config {
	if c == nil {
		return nil
	}
	protos := alpnHTTP11
	if h2 {
		protos = alpnBoth
	}
	return &tls.Config{
		GetCertificate: certs.getCertificate,
		MinVersion:     c.MinVersion,
		CipherSuites:   serverCipherSuites,
		NextProtos:     protos,
		// Session tickets are on (Go's default), their keys rotated by
		// crypto/tls; a reload keeps them, since the Config stays.
	}
}

// TLSConfig returns the server TLS configuration ServeTLS uses, or nil when
// Config.TLS is nil. Its GetCertificate follows reloads. Use it to serve
// HTTPS from a server of the caller's that mounts HandleFastHTTP; do not
// modify it.
func (p *Proxy) TLSConfig() *tls.Config { return p.tlsConfig }

// ServeTLS proxies the requests of connections accepted on ln, a TCP
// listener, after a TLS handshake on each. It runs in the same server as
// Serve, which may serve a plain listener at the same time. It needs
// Config.TLS, and returns when ln fails, or ErrServerClosed when Shutdown is
// called; called after Shutdown or Close, it closes ln and returns
// ErrServerClosed at once.
func (p *Proxy) ServeTLS(ln net.Listener) error {
	if p.tlsConfig == nil {
		return errors.New("proxy: ServeTLS needs Config.TLS")
	}
	if p.serveRefused() {
		ln.Close()
		return ErrServerClosed
	}
	// Not fasthttp's own ServeTLS: it clones the configuration, and the
	// clone would not follow certificate reloads.
	return p.serve(tls.NewListener(p.guardListener(ln, true), p.tlsConfig))
}

// ListenAndServeTLS listens on the TCP address addr and calls ServeTLS.
// After Shutdown or Close it returns ErrServerClosed without listening.
func (p *Proxy) ListenAndServeTLS(addr string) error {
	if p.tlsConfig == nil {
		return errors.New("proxy: ListenAndServeTLS needs Config.TLS")
	}
	if p.serveRefused() {
		return ErrServerClosed
	}
	ln, err := Listen(addr)
	if err != nil {
		return err // Listen names addr
	}
	return p.ServeTLS(ln)
}

// ReloadCertificates loads the certificate files again, as a change to them
// would. If every pair loads, new handshakes get the new certificates;
// connections already open keep theirs. Otherwise the error, also logged,
// names the file at fault and the previous certificates keep serving.
// Without Config.TLS it does nothing.
func (p *Proxy) ReloadCertificates() error {
	if p.certs == nil {
		return nil
	}
	return p.certs.reload()
}

// abortConn closes c at once. A TLS connection's Close first writes a
// close_notify alert and may wait up to five seconds for a peer that reads
// nothing; the watchdog closes connections from its one sweeping goroutine
// and must not wait, so for TLS it closes the socket beneath.
//
// An abort never lingers (linger.go).
func abortConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if g := clientOf(c); g != nil {
		g.linger.Store(false)
	}
	c.Close()
}
