package main

import (
	"bytes"
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
