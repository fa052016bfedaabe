package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rishichirchi/Load-Balancee/bench/configs"
)

// Peer names, as the report shows them.
const (
	peerBalancer = "balancer"
	peerNetHTTP  = "net/http"
	peerNginx    = "nginx"
	peerHAProxy  = "haproxy"
	peerDirect   = "direct"
)

// peerOrder is every peer, in report order.
var peerOrder = []string{peerBalancer, peerNetHTTP, peerNginx, peerHAProxy, peerDirect}

// peer is one of the things load is put on: a proxy in front of the
// backends, or the first backend itself ("direct").
type peer struct {
	Name    string
	Version string
	Skip    string // why it is not measured (not installed); empty when it is
	Err     string // why it failed, when it did
	Pinning string // the CPUs it may run on, as the kernel reports them

	proc    *process // nil for direct
	addr    string   // host:port the load goes to
	tlsAddr string   // host:port of its HTTPS listener (HTTP/1.1 and HTTP/2); "" when it has none
}

// measured reports whether the peer takes load.
func (p *peer) measured() bool { return p.Skip == "" && p.Err == "" }

// selectPeers turns a comma-separated list of peer names into peers, in
// report order; "all" or empty is every peer.
func selectPeers(list string) ([]*peer, error) {
	want := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			want[name] = true
		}
	}
	all := len(want) == 0 || want["all"]
	delete(want, "all")
	var out []*peer
	for _, name := range peerOrder {
		if all || want[name] {
			out = append(out, &peer{Name: name})
			delete(want, name)
		}
	}
	for name := range want {
		return nil, fmt.Errorf("unknown peer %q: want a comma-separated list of all, %s", name, strings.Join(peerOrder, ", "))
	}
	return out, nil
}

// startPeer starts p's server on a free port, pinned to the proxy CPU, and
// checks that it proxies. It sets p.Skip when the server is not installed.
func (h *harness) startPeer(p *peer) error {
	if p.Name == peerDirect {
		p.addr = h.backends[0]
		p.Version = h.backendKind
		return nil
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	p.addr = "127.0.0.1:" + strconv.Itoa(port)
	p.tlsAddr = ""
	if h.cert != nil && (p.Name == peerBalancer || p.Name == peerNginx || p.Name == peerHAProxy) {
		// TLS and HTTP/2 scenarios: an HTTPS listener with ALPN h2 and
		// http/1.1 beside the plain one.
		tlsPort, err := freePort()
		if err != nil {
			return err
		}
		p.tlsAddr = "127.0.0.1:" + strconv.Itoa(tlsPort)
	}
	var argv []string
	switch p.Name {
	case peerBalancer:
		bin := filepath.Join(h.opts.binDir, "load-balancer")
		// The admin interface is off: its default port may be taken on a
		// shared machine, and it does no work per request anyway.
		argv = []string{bin, "-backends=" + h.backendURLs(), "-host=127.0.0.1", "-port=" + strconv.Itoa(port), "-log-level=warn", "-admin-addr="}
		if p.tlsAddr != "" {
			_, tlsPort, _ := strings.Cut(p.tlsAddr, ":")
			argv = append(argv, "-tls-port="+tlsPort, "-tls-cert="+h.cert.certFile, "-tls-key="+h.cert.keyFile)
		}
		p.Version = firstLine(bin, "-version")
	case peerNetHTTP:
		argv = []string{filepath.Join(h.opts.binDir, "httpproxy"), "-backends=" + h.backendURLs(), "-listen=" + p.addr}
		p.Version = "httputil.ReverseProxy, " + h.machine.GoVersion
	case peerNginx:
		if argv, err = h.nginxProxyArgs(p); err != nil || argv == nil {
			return err
		}
	case peerHAProxy:
		if argv, err = h.haproxyArgs(p); err != nil || argv == nil {
			return err
		}
	default:
		return fmt.Errorf("unknown peer %q", p.Name)
	}
	logPath := filepath.Join(h.dir, strings.ReplaceAll(p.Name, "/", "")+".log")
	proc, err := startProcess(p.Name, h.proxyPin, argv, childEnv(), logPath)
	if err != nil {
		return err
	}
	p.proc = proc
	if err := proc.waitListening(p.addr, 10*time.Second); err != nil {
		return err
	}
	if p.tlsAddr != "" {
		if err := proc.waitListening(p.tlsAddr, 10*time.Second); err != nil {
			return err
		}
	}
	if p.Pinning, err = h.fs.cpusAllowed(proc.PID()); err != nil {
		return err
	}
	if len(h.proxyPin) > 0 && p.Pinning != h.opts.proxyCPU {
		return fmt.Errorf("%s runs on CPUs %s, want %s", p.Name, p.Pinning, h.opts.proxyCPU)
	}
	return nil
}

func (h *harness) nginxProxyArgs(p *peer) ([]string, error) {
	bin := lookTool("nginx")
	if bin == "" {
		p.Skip = "nginx is not installed"
		return nil, nil
	}
	p.Version = strings.TrimPrefix(firstLine(bin, "-v"), "nginx version: ")
	dir, path, err := h.writeProxyConfig(p, "nginx-proxy", "nginx.conf", configs.NginxProxy)
	if err != nil {
		return nil, err
	}
	return []string{bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}, nil
}

func (h *harness) haproxyArgs(p *peer) ([]string, error) {
	bin := lookTool("haproxy")
	if bin == "" {
		p.Skip = "haproxy is not installed"
		return nil, nil
	}
	// "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
	p.Version = firstLine(bin, "-v")
	if f := strings.Fields(p.Version); len(f) >= 3 && f[1] == "version" {
		p.Version = "HAProxy " + f[2]
	}
	_, path, err := h.writeProxyConfig(p, "haproxy", "haproxy.cfg", configs.HAProxy)
	if err != nil {
		return nil, err
	}
	return []string{bin, "-db", "-f", path}, nil
}

// connsNeeded is how many connections a proxy must hold at once: the idle
// connections or the largest scenario's clients, plus as many to the
// backends (nginx counts both in worker_connections) and some slack.
func (h *harness) connsNeeded() int {
	clients := h.opts.idleConns
	for _, sc := range scenarios {
		clients = max(clients, sc.Conns)
	}
	return clients + 1024
}

// writeProxyConfig renders a proxy's configuration into its own directory
// and returns the directory and the file's path.
func (h *harness) writeProxyConfig(p *peer, dirName, file string, render func(configs.Proxy) ([]byte, error)) (dir, path string, err error) {
	if dir, err = h.subdir(dirName); err != nil {
		return "", "", err
	}
	pc := configs.Proxy{Dir: dir, Listen: p.addr, Backends: h.backends, NoFile: h.noFile, Conns: h.connsNeeded()}
	if p.tlsAddr != "" {
		pc.TLSListen, pc.CertFile, pc.KeyFile, pc.PEMFile = p.tlsAddr, h.cert.certFile, h.cert.keyFile, h.cert.pemFile
	}
	conf, err := render(pc)
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, file)
	return dir, path, os.WriteFile(path, conf, 0o644)
}

// subdir makes a directory under the harness's temp directory that nginx's
// unprivileged workers can read.
func (h *harness) subdir(name string) (string, error) {
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}
