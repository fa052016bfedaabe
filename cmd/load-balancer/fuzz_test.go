package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseFlags feeds arbitrary command lines to the flag parser: it must
// never panic, and every refusal must say what was wrong.
func FuzzParseFlags(f *testing.F) {
	for _, seed := range []string{
		"-backends=http://localhost:8081,http://localhost:8082 -port=3030",
		"-backends=htp://x",
		"-backends=http://a:1 -max-body-size=16KiB -max-header-size=1MiB",
		"-backends=http://a:1 -rate-limit=100/s -trusted-proxies=10.0.0.0/8",
		"-backends=https://a:443 -tls-cert=a.crt -tls-key=a.key -hsts=1h",
		"-backends=http://a:1 -hedge-after=50ms -try-timeout=0 -retries=15",
		"-backends=http://[::1]:80,http://A:1/ -upstream-proxy=socks5://p:1080",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var out bytes.Buffer
		o, err := parseFlags(strings.Fields(line), &out)
		if err == nil && o == nil {
			t.Fatal("no options and no error")
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("an empty error for %q", line)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{"4096", "16KiB", "1G", "9999999999999999999", "12XB", " 3 MiB "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

// FuzzConfigFile feeds arbitrary files to -config: the loader must never
// panic, and every refusal must be a usage error (exit 2) that names the
// file.
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"backends: [http://a:1]\nport: 3030\n",
		"pools:\n  api:\n    backends: [http://a:1, htp://x]\n    policy: hash\n    hash-key: uri\n",
		"pools:\n  s:\n    dns: {name: _a._tcp.x, refresh: 5s}\n  e:\n    etcd: {endpoints: [http://e:2379], prefix: /x/}\n",
		"backends: [http://a:1]\nroutes:\n  - {host: \"*.a.com\", path_prefix: /x/, pool: default}\n  - {pool: default}\n",
		"listeners: [\":1\", {address: \":2\", tls: true}]\nbackends: http://a:1\n",
		"x: &a [1]\ny: *a\n<<: *a\n",
		"- [\n",
		"\t\tport: 1",
	} {
		f.Add(seed)
	}
	path := filepath.Join(f.TempDir(), "lb.yaml")
	f.Fuzz(func(t *testing.T, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := parseFlags([]string{"-config=" + path}, &bytes.Buffer{})
		if err == nil && o == nil {
			t.Fatal("no options and no error")
		}
		var ue *usageError
		if err != nil && (!errors.As(err, &ue) || !strings.Contains(err.Error(), path)) {
			t.Fatalf("error %T %q for %q: want a usage error naming the file", err, err, body)
		}
	})
}
