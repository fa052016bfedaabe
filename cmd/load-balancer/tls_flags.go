package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy"
)

// tlsFlags are the flags for TLS termination, https backends and the
// upstream proxy.
type tlsFlags struct {
	cert, key     string
	port          int
	minVersion    string
	redirect      bool
	hsts          time.Duration
	backendCA     string
	insecure      bool
	upstreamProxy string
}

// defaultTLSPort is where HTTPS is served when -tls-cert is given.
const defaultTLSPort = 3443

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cert, "tls-cert", "", "PEM certificate chain files, comma-separated: serve HTTPS on -tls-port; the client's SNI picks one, the first is the default")
	fs.StringVar(&f.key, "tls-key", "", "PEM private key files, comma-separated, one for each -tls-cert file")
	fs.IntVar(&f.port, "tls-port", defaultTLSPort, "port to serve HTTPS on, beside -port (needs -tls-cert)")
	fs.StringVar(&f.minVersion, "tls-min-version", "1.2", "oldest TLS version accepted: 1.2 or 1.3")
	fs.BoolVar(&f.redirect, "redirect-https", false, "answer plain HTTP with 308 to the same URL over HTTPS on -tls-port, except the -health-path and OPTIONS *")
	fs.DurationVar(&f.hsts, "hsts", 0, "send Strict-Transport-Security with this max-age on HTTPS responses, such as 8760h (0: off)")
	fs.StringVar(&f.backendCA, "backend-ca", "", "PEM bundle of CA certificates trusted for https backends, besides the system's")
	fs.BoolVar(&f.insecure, "backend-insecure-skip-verify", false, "do not verify the certificates of https backends (labs only: anyone on the path can impersonate them)")
	fs.StringVar(&f.upstreamProxy, "upstream-proxy", "", "reach backends through a forward proxy: http://[user:pass@]host:port (CONNECT), socks5://[user:pass@]host:port, or env (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)")
}

// apply checks the flags and puts them into o. set holds the names of the
// flags given on the command line.
func (f *tlsFlags) apply(o *options, set map[string]bool, host string, port int) error {
	if err := f.applyServing(o, set, host, port); err != nil {
		return err
	}
	if err := f.applyBackends(o); err != nil {
		return err
	}
	if f.upstreamProxy != "" {
		if err := proxy.CheckUpstreamProxy(f.upstreamProxy); err != nil {
			return invalid("invalid -upstream-proxy %q: %v", redacted(f.upstreamProxy), err)
		}
		o.proxy.UpstreamProxy = f.upstreamProxy
	}
	return nil
}

// applyServing reads the flags of TLS termination.
func (f *tlsFlags) applyServing(o *options, set map[string]bool, host string, port int) error {
	if f.cert == "" && f.key == "" {
		for _, name := range []string{"tls-port", "tls-min-version", "redirect-https", "hsts"} {
			if set[name] {
				return invalid("invalid -%s: needs -tls-cert and -tls-key", name)
			}
		}
		return nil
	}
	if f.cert == "" {
		return invalid("missing -tls-cert: -tls-key %q needs its certificate", f.key)
	}
	if f.key == "" {
		return invalid("missing -tls-key: -tls-cert %q needs its private key", f.cert)
	}
	certs, keys := strings.Split(f.cert, ","), strings.Split(f.key, ",")
	if len(certs) != len(keys) {
		return invalid("invalid -tls-key: %d files for %d -tls-cert files; give one key for each certificate, in the same order", len(keys), len(certs))
	}
	c := &proxy.TLSConfig{RedirectHTTP: f.redirect, RedirectPort: f.port}
	for i := range certs {
		cert, key := strings.TrimSpace(certs[i]), strings.TrimSpace(keys[i])
		if cert == "" {
			return invalid("invalid -tls-cert %q: empty file name", f.cert)
		}
		if key == "" {
			return invalid("invalid -tls-key %q: empty file name", f.key)
		}
		c.Certificates = append(c.Certificates, proxy.CertificateFiles{CertFile: cert, KeyFile: key})
	}

	switch {
	case f.port < 1 || f.port > 65535:
		return invalid("invalid -tls-port %d: want 1-65535", f.port)
	case f.port == port:
		return invalid("invalid -tls-port %d: the same as -port", f.port)
	}
	switch f.minVersion {
	case "1.2":
		c.MinVersion = tls.VersionTLS12
	case "1.3":
		c.MinVersion = tls.VersionTLS13
	default:
		return invalid("invalid -tls-min-version %q: want 1.2 or 1.3", f.minVersion)
	}
	switch {
	case f.hsts < 0:
		return invalid("invalid -hsts %v: must not be negative", f.hsts)
	case f.hsts > 0 && f.hsts < time.Second:
		return invalid("invalid -hsts %v: at least 1s (max-age counts seconds)", f.hsts)
	}
	c.HSTS = f.hsts
	o.proxy.TLS = c
	o.tlsAddr = listenAddr(host, f.port)
	return nil
}

// applyBackends reads the flags of TLS to https backends.
func (f *tlsFlags) applyBackends(o *options) error {
	if f.backendCA == "" && !f.insecure {
		return nil
	}
	if f.backendCA != "" && f.insecure {
		return invalid("invalid -backend-ca %q: no use with -backend-insecure-skip-verify, which trusts any certificate", f.backendCA)
	}
	anyHTTPS := false
	for _, b := range o.proxy.Backends {
		anyHTTPS = anyHTTPS || strings.HasPrefix(strings.ToLower(b), "https://")
	}
	if f.insecure {
		o.proxy.BackendTLS = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for, and warned about
		if !anyHTTPS {
			o.warnings = append(o.warnings, "-backend-insecure-skip-verify has no effect: no https:// backends")
		}
		return nil
	}
	data, err := os.ReadFile(f.backendCA)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return invalid("invalid -backend-ca %q: %v", f.backendCA, err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(data) {
		return invalid("invalid -backend-ca %q: no PEM certificates found", f.backendCA)
	}
	o.proxy.BackendTLS = &tls.Config{RootCAs: roots}
	if !anyHTTPS {
		o.warnings = append(o.warnings, "-backend-ca has no effect: no https:// backends")
	}
	return nil
}

// redacted hides the password of a proxy URL in messages.
func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
