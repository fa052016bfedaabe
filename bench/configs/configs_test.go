package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
)

func TestMaxConns(t *testing.T) {
	for _, tc := range []struct{ noFile, want int }{
		{1024, 384},
		{20000, 9872},
		{1 << 20, 20000}, // capped
		{300, 64},        // floor
	} {
		if got := MaxConns(tc.noFile); got != tc.want {
			t.Errorf("MaxConns(%d) = %d, want %d", tc.noFile, got, tc.want)
		}
	}
}

func TestConnLimit(t *testing.T) {
	for _, tc := range []struct{ noFile, conns, want int }{
		{20000, 0, 9872},    // all the fd limit allows
		{20000, 6024, 6024}, // what the load needs
		{20000, 50000, 9872},
		{20000, 10, 64},
	} {
		if got := (Proxy{NoFile: tc.noFile, Conns: tc.conns}).connLimit(); got != tc.want {
			t.Errorf("connLimit(nofile %d, conns %d) = %d, want %d", tc.noFile, tc.conns, got, tc.want)
		}
	}
}

func TestProxyConfigs(t *testing.T) {
	p := Proxy{Dir: "/tmp/x", Listen: "127.0.0.1:9100", Backends: []string{"127.0.0.1:9001", "127.0.0.1:9002"}, NoFile: 20000}
	for _, tc := range []struct {
		name   string
		render func(Proxy) ([]byte, error)
		want   []string
	}{
		{"nginx", NginxProxy, []string{
			"worker_processes 1;",
			"worker_connections 9872;",
			"server 127.0.0.1:9001 ",
			"server 127.0.0.1:9002 ",
			"keepalive 1024;",
			"listen 127.0.0.1:9100 backlog=4096;",
			"proxy_http_version 1.1;",
			`proxy_set_header Connection $connection_upgrade;`, `map $http_upgrade $connection_upgrade`,
			"proxy_set_header X-Forwarded-For $remote_addr;",
			"pid /tmp/x/nginx.pid;",
		}},
		{"haproxy", HAProxy, []string{
			"nbthread 1",
			"maxconn 9872",
			"option http-keep-alive",
			"http-reuse always",
			"bind 127.0.0.1:9100",
			"balance roundrobin",
			"server b0 127.0.0.1:9001 check",
			"server b1 127.0.0.1:9002 check",
			"http-request set-header X-Forwarded-For %[src]",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.render(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("config lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestProxyConfigsTLS(t *testing.T) {
	p := Proxy{Dir: "/tmp/x", Listen: "127.0.0.1:9100", Backends: []string{"127.0.0.1:9001"}, NoFile: 20000,
		TLSListen: "127.0.0.1:9443", CertFile: "/tmp/x/c.crt", KeyFile: "/tmp/x/c.key", PEMFile: "/tmp/x/c.pem"}
	ngx, err := NginxProxy(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"listen 127.0.0.1:9443 ssl http2", "ssl_certificate /tmp/x/c.crt;", "ssl_certificate_key /tmp/x/c.key;"} {
		if !strings.Contains(string(ngx), w) {
			t.Errorf("nginx config lacks %q", w)
		}
	}
	hap, err := HAProxy(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hap), "bind 127.0.0.1:9443 ssl crt /tmp/x/c.pem alpn h2,http/1.1") {
		t.Errorf("haproxy config lacks the TLS bind:\n%s", hap)
	}
	p.TLSListen = ""
	if ngx, _ := NginxProxy(p); strings.Contains(string(ngx), "ssl") {
		t.Error("nginx config has TLS without TLSListen")
	}
}

func TestProxyConfigRejects(t *testing.T) {
	ok := Proxy{Dir: "/tmp/x", Listen: "127.0.0.1:9100", Backends: []string{"127.0.0.1:9001"}, NoFile: 4096}
	for _, tc := range []struct {
		name string
		edit func(*Proxy)
		want string
	}{
		{"no backends", func(p *Proxy) { p.Backends = nil }, "no backends"},
		{"backend injects a directive", func(p *Proxy) { p.Backends = []string{"127.0.0.1:1; include /etc/passwd"} }, `invalid backend "127.0.0.1:1; include /etc/passwd"`},
		{"backend without port", func(p *Proxy) { p.Backends = []string{"localhost"} }, `invalid backend "localhost"`},
		{"no dir", func(p *Proxy) { p.Dir = "" }, "Dir and Listen are required"},
		{"fd limit", func(p *Proxy) { p.NoFile = 256 }, "open-file limit 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			for name, render := range map[string]func(Proxy) ([]byte, error){"nginx": NginxProxy, "haproxy": HAProxy} {
				if _, err := render(p); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
				}
			}
		})
	}
}

func TestNginxBackend(t *testing.T) {
	dir := t.TempDir()
	b := Backend{Dir: dir, Listen: []string{"127.0.0.1:9001", "127.0.0.1:9002"}, Sizes: []int{20, 65536, 20}, NoFile: 4096}
	out, err := NginxBackend(b)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(out)
	for _, w := range []string{
		"listen 127.0.0.1:9001 backlog=4096;",
		"listen 127.0.0.1:9002 backlog=4096;",
		`return 200 "Backend server is running on port 9002";`,
		`location = /bytes/20 { return 200 "xxxxxxxxxxxxxxxxxxxx"; }`,
		"root " + dir + "/www;",
	} {
		if !strings.Contains(conf, w) {
			t.Errorf("config lacks %q:\n%s", w, conf)
		}
	}
	if n := strings.Count(conf, "location = /bytes/20 "); n != 2 {
		t.Errorf("/bytes/20 in %d servers, want 2 (one each, sizes deduplicated)", n)
	}
	if strings.Contains(conf, "/bytes/65536 {") {
		t.Errorf("65536 bytes inlined; want it served from a file:\n%s", conf)
	}
	if err := b.WriteBodies(); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(dir, "www", "bytes", "65536"))
	if err != nil || len(body) != 65536 || strings.Trim(string(body), "x") != "" {
		t.Errorf("www/bytes/65536: %d bytes, %v; want 65536 x", len(body), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "www", "bytes", "20")); err == nil {
		t.Error("www/bytes/20 written; inline sizes need no file")
	}
}

// TestConfigsAccepted has nginx and HAProxy themselves check the rendered
// configurations, where they are installed.
func TestConfigsAccepted(t *testing.T) {
	dir := t.TempDir()
	p := Proxy{Dir: dir, Listen: "127.0.0.1:1", Backends: []string{"127.0.0.1:2", "127.0.0.1:3"}, NoFile: 4096}
	pt := p
	pt.TLSListen = "127.0.0.1:4"
	pt.CertFile, pt.KeyFile = testpki.NewCA(t, "CA").Issue(t, "127.0.0.1").WriteFiles(t, dir, "tls")
	cert, _ := os.ReadFile(pt.CertFile)
	key, _ := os.ReadFile(pt.KeyFile)
	pt.PEMFile = filepath.Join(dir, "tls.pem")
	if err := os.WriteFile(pt.PEMFile, append(cert, key...), 0o600); err != nil {
		t.Fatal(err)
	}
	b := Backend{Dir: dir, Listen: []string{"127.0.0.1:2", "127.0.0.1:3"}, Sizes: []int{20, 65536}, NoFile: 4096}
	for _, tc := range []struct {
		name, tool string
		render     func() ([]byte, error)
		check      func(path string) []string
	}{
		{"nginx proxy", "nginx", func() ([]byte, error) { return NginxProxy(p) },
			func(path string) []string { return []string{"-t", "-q", "-c", path, "-e", filepath.Join(dir, "t.log")} }},
		{"nginx backend", "nginx", func() ([]byte, error) { return NginxBackend(b) },
			func(path string) []string { return []string{"-t", "-q", "-c", path, "-e", filepath.Join(dir, "t.log")} }},
		{"haproxy", "haproxy", func() ([]byte, error) { return HAProxy(p) },
			func(path string) []string { return []string{"-c", "-q", "-f", path} }},
		{"nginx proxy with TLS", "nginx", func() ([]byte, error) { return NginxProxy(pt) },
			func(path string) []string { return []string{"-t", "-q", "-c", path, "-e", filepath.Join(dir, "t.log")} }},
		{"haproxy with TLS", "haproxy", func() ([]byte, error) { return HAProxy(pt) },
			func(path string) []string { return []string{"-c", "-q", "-f", path} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool := lookTool(tc.tool)
			if tool == "" {
				t.Skipf("%s is not installed", tc.tool)
			}
			conf, err := tc.render()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".conf")
			if err := os.WriteFile(path, conf, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tool, tc.check(path)...).CombinedOutput(); err != nil {
				t.Errorf("%s rejects the config: %v\n%s\n%s", tc.tool, err, out, conf)
			}
		})
	}
}

func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
