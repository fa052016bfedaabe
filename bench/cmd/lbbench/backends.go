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

// Backend kinds.
const (
	backendGo    = "backend-server"
	backendNginx = "nginx"
)

// startBackends starts two backends on free ports, pinned with the load
// generator: two backend-server processes, or one nginx with two servers.
func (h *harness) startBackends(sizes []int) error {
	for range 2 {
		port, err := freePort()
		if err != nil {
			return err
		}
		h.backends = append(h.backends, "127.0.0.1:"+strconv.Itoa(port))
	}
	switch h.opts.backend {
	case "go":
		h.backendKind = backendGo
		bin := filepath.Join(h.opts.binDir, "backend-server")
		for i, addr := range h.backends {
			_, port, _ := strings.Cut(addr, ":")
			env := append(childEnv(), "PORT="+port)
			p, err := startProcess(fmt.Sprintf("backend-server %d", i+1), h.loadPin,
				[]string{bin, "-host=127.0.0.1"}, env, filepath.Join(h.dir, "backend-"+port+".log"))
			if err != nil {
				return err
			}
			h.backendProcs = append(h.backendProcs, p)
			if err := p.waitListening(addr, 10*time.Second); err != nil {
				return err
			}
		}
	case "nginx":
		bin := lookTool("nginx")
		if bin == "" {
			return fmt.Errorf("-backend=nginx: nginx is not installed")
		}
		h.backendKind = backendNginx + " (" + strings.TrimPrefix(firstLine(bin, "-v"), "nginx version: ") + ", 1 worker)"
		dir, err := h.subdir("nginx-backend")
		if err != nil {
			return err
		}
		cfg := configs.Backend{Dir: dir, Listen: h.backends, Sizes: sizes, NoFile: h.noFile}
		if err := cfg.WriteBodies(); err != nil {
			return err
		}
		conf, err := configs.NginxBackend(cfg)
		if err != nil {
			return err
		}
		path := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(path, conf, 0o644); err != nil {
			return err
		}
		p, err := startProcess("nginx backend", h.loadPin,
			[]string{bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")}, childEnv(), filepath.Join(dir, "stdout.log"))
		if err != nil {
			return err
		}
		h.backendProcs = append(h.backendProcs, p)
		for _, addr := range h.backends {
			if err := p.waitListening(addr, 10*time.Second); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("invalid -backend %q: want go or nginx", h.opts.backend)
	}
	return nil
}

// backendURLs is the -backends value for the Go proxies.
func (h *harness) backendURLs() string {
	urls := make([]string, len(h.backends))
	for i, b := range h.backends {
		urls[i] = "http://" + b
	}
	return strings.Join(urls, ",")
}
