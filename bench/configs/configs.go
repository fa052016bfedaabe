// Package configs renders the nginx and HAProxy configurations the
// benchmark harness runs: both as proxies set up like the balancer, and
// nginx as a fast backend.
package configs

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

//go:embed *.tmpl
var files embed.FS

var templates = template.Must(template.ParseFS(files, "*.tmpl"))

// Proxy is what a proxy configuration needs.
type Proxy struct {
	// Dir holds the pid file, the error log and temp files; it must exist.
	Dir string
	// Listen is the address to serve on, such as 127.0.0.1:8080.
	Listen string
	// Backends are the servers to balance over, as host:port.
	Backends []string
	// NoFile is the open-file limit the proxy runs with.
	NoFile int
	// TLSListen, when set, is a second address to serve HTTPS with HTTP/2
	// on (ALPN h2 and http/1.1), with the certificate in CertFile and
	// KeyFile (nginx) or both in PEMFile (HAProxy).
	TLSListen, CertFile, KeyFile, PEMFile string
	// Conns is how many connections, to clients and to backends, the proxy
	// must be able to hold at once. nginx and HAProxy allocate tables of
	// that size at start, so a limit far above the need inflates their
	// memory. Zero means as many as NoFile allows.
	Conns int
}

// connLimit is the connection limit to configure: Conns, within what the
// open-file limit allows.
func (p Proxy) connLimit() int {
	limit := MaxConns(p.NoFile)
	if p.Conns > 0 {
		limit = min(limit, max(p.Conns, 64))
	}
	return limit
}

// MaxConns is how many client connections a proxy with this open-file
// limit can take at once: each proxied connection holds a client socket
// and may hold a backend socket, and some descriptors are kept for
// listeners, logs and health checks.
func MaxConns(noFile int) int {
	return max(64, min(20000, (noFile-256)/2))
}

func (p Proxy) check() error {
	if p.Dir == "" || p.Listen == "" {
		return errors.New("configs: Dir and Listen are required")
	}
	if len(p.Backends) == 0 {
		return errors.New("configs: no backends")
	}
	for _, b := range p.Backends {
		if strings.ContainsAny(b, " \t\n;{}\"'") || !strings.Contains(b, ":") {
			return fmt.Errorf("configs: invalid backend %q: want host:port", b)
		}
	}
	if p.NoFile < 512 {
		return fmt.Errorf("configs: open-file limit %d is too low to benchmark with (want 512 or more)", p.NoFile)
	}
	return nil
}

// NginxProxy renders nginx.conf for nginx as the balancer's peer: one
// worker process, upstream keep-alive, HTTP/1.1 to the backends.
func NginxProxy(p Proxy) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return render("nginx-proxy.conf.tmpl", struct {
		Proxy
		WorkerConnections int
	}{p, p.connLimit()})
}

// HAProxy renders haproxy.cfg for HAProxy as the balancer's peer: one
// thread, keep-alive both sides, http-reuse always.
func HAProxy(p Proxy) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return render("haproxy.cfg.tmpl", struct {
		Proxy
		MaxConn int
	}{p, p.connLimit()})
}

// Backend is what the nginx backend configuration needs.
type Backend struct {
	// Dir holds the pid file, the error log, temp files and the www/ tree
	// that WriteBodies fills; it must exist.
	Dir string
	// Listen are the addresses of the backend servers, one server each.
	Listen []string
	// Sizes are the N of the /bytes/N paths to answer.
	Sizes []int
	// NoFile is the open-file limit nginx runs with.
	NoFile int
}

// InlineLimit is the largest body the nginx backend answers from its
// configuration (`return`, which serves any method); larger bodies are
// files, served to GET only. nginx refuses configuration tokens over 4 KiB.
const InlineLimit = 1024

// NginxBackend renders nginx.conf for nginx as the backends.
func NginxBackend(b Backend) ([]byte, error) {
	if b.Dir == "" || len(b.Listen) == 0 {
		return nil, errors.New("configs: Dir and Listen are required")
	}
	if b.NoFile < 512 {
		return nil, fmt.Errorf("configs: open-file limit %d is too low to benchmark with (want 512 or more)", b.NoFile)
	}
	type server struct{ Listen, Name string }
	type inline struct {
		Size int
		Body string
	}
	data := struct {
		Backend
		Servers           []server
		Inline            []inline
		WorkerConnections int
	}{Backend: b, WorkerConnections: MaxConns(b.NoFile)}
	for _, l := range b.Listen {
		_, port, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("configs: invalid listen address %q: want host:port", l)
		}
		data.Servers = append(data.Servers, server{Listen: l, Name: port})
	}
	for _, n := range uniqueSizes(b.Sizes) {
		if n < 0 {
			return nil, fmt.Errorf("configs: invalid body size %d", n)
		}
		if n <= InlineLimit {
			data.Inline = append(data.Inline, inline{Size: n, Body: strings.Repeat("x", n)})
		}
	}
	return render("nginx-backend.conf.tmpl", data)
}

// WriteBodies writes the files the nginx backend serves for the sizes
// above InlineLimit, as Dir/www/bytes/N, readable by nginx's workers.
func (b Backend) WriteBodies() error {
	dir := filepath.Join(b.Dir, "www", "bytes")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, n := range uniqueSizes(b.Sizes) {
		if n <= InlineLimit {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(n)), bytes.Repeat([]byte{'x'}, n), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func uniqueSizes(sizes []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, n := range sizes {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

func render(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("configs: %s: %v", name, err)
	}
	return buf.Bytes(), nil
}
