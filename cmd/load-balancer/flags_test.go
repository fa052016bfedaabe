package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/alert"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

func TestParseFlagsRejects(t *testing.T) {
	ok := "-backends=http://localhost:8081"
	for _, tc := range []struct {
		args []string
		want string // in the error message
	}{
		{nil, "missing -backends"},
		{[]string{"-backends=htp://x"}, `invalid -backends entry "htp://x": unsupported scheme "htp"`},
		{[]string{"-backends=localhost:8081"}, `invalid -backends entry "localhost:8081": missing scheme`},
		{[]string{"-backends=http://a:1,http://A:1/"}, `invalid -backends entry "http://A:1/": duplicate of "http://a:1"`},
		{[]string{"-backends=http://a:1,"}, `invalid -backends entry "": empty address`},
		{[]string{"-backends=http://127.0.0.1:024081,http://127.0.0.1:24081"}, `invalid -backends entry "http://127.0.0.1:24081": duplicate of "http://127.0.0.1:024081"`},
		{[]string{"-backends=http://[::ffff:127.0.0.1]:1,http://127.0.0.1:1"}, `invalid -backends entry "http://127.0.0.1:1": duplicate of "http://[::ffff:127.0.0.1]:1"`},
		{[]string{"-backends=http://localhost:1,http://localhost.:1"}, `invalid -backends entry "http://localhost.:1": duplicate of "http://localhost:1"`},
		{[]string{"-backends=http://127.1:8081"}, `invalid -backends entry "http://127.1:8081": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{[]string{"-backends=http://127.0.0.1:1,http://2130706433:1"}, `invalid -backends entry "http://2130706433:1": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{[]string{"-backends=http://a:1/api"}, `path "/api" is not supported`},
		{[]string{ok, "-port=0"}, "invalid -port 0: want 1-65535"},
		{[]string{ok, "-port=70000"}, "invalid -port 70000"},
		{[]string{ok, "-host=999.1.1.1"}, `invalid -host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{[]string{ok, "-host=1.2.3"}, `invalid -host "1.2.3": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 1.2.0.3; Go's resolver does not read it)`},
		{[]string{ok, "-host=127.1"}, `invalid -host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{[]string{ok, "-host=0x7f.1"}, `invalid -host "0x7f.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{[]string{ok, "-host=2130706433"}, `invalid -host "2130706433": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{[]string{ok, "-host=0177.0.0.1"}, `invalid -host "0177.0.0.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{[]string{ok, "-host=127.0.0.1."}, `invalid -host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{[]string{ok, "-host=a..b"}, `invalid -host "a..b": an empty label (a dot at the start, or two in a row), which no name has`},
		{[]string{ok, "-host=.localhost"}, `invalid -host ".localhost": an empty label`},
		{[]string{ok, "-host=::1::2"}, `invalid -host "::1::2": not an IP address (multiple :: in address`},
		{[]string{ok, "-host=[::1::2]"}, `invalid -host "[::1::2]": not an IP address`},
		{[]string{ok, "-host=notahost.invalid"}, `invalid -host "notahost.invalid": not an IP address, and the name does not resolve (no such host)`},
		{[]string{ok, "-admin-addr=999.1.1.1:9030"}, `invalid -admin-addr "999.1.1.1:9030": host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{[]string{ok, "-admin-addr=127.1:9030"}, `invalid -admin-addr "127.1:9030": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{[]string{ok, "-admin-addr=0x7f.1:9030"}, `invalid -admin-addr "0x7f.1:9030": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-admin-addr=2130706433:9030"}, `invalid -admin-addr "2130706433:9030": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-admin-addr=0177.0.0.1:9030"}, `invalid -admin-addr "0177.0.0.1:9030": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-admin-addr=127.0.0.1.:9030"}, `invalid -admin-addr "127.0.0.1.:9030": host "127.0.0.1.": an IP address takes no trailing dot`},
		{[]string{ok, "-admin-addr=a..b:9030"}, `invalid -admin-addr "a..b:9030": host "a..b": an empty label`},
		{[]string{ok, "-admin-addr=notahost.invalid:9030"}, `invalid -admin-addr "notahost.invalid:9030": host "notahost.invalid": not an IP address, and the name does not resolve`},
		// One address however it is spelt: the admin interface's port
		// is taken on the host -host names, with a trailing dot or not.
		{[]string{ok, "-host=localhost", "-admin-addr=localhost.:3030"}, `invalid -admin-addr "localhost.:3030": the admin interface needs a port of its own`},
		{[]string{ok, "-host=::ffff:127.0.0.1", "-admin-addr=127.0.0.1:3030"}, `invalid -admin-addr "127.0.0.1:3030": the admin interface needs a port of its own`},
		{[]string{ok, "-admin-addr=127.0.0.1:03030"}, `invalid -admin-addr "127.0.0.1:03030": the admin interface needs a port of its own, not the one serving traffic (-port 3030)`},
		{[]string{ok, "-health-interval=0s"}, "invalid -health-interval 0s: must be positive"},
		{[]string{ok, "-backend-timeout=-1s"}, "invalid -backend-timeout -1s: must be positive"},
		{[]string{ok, "-health-interval=1s", "-health-timeout=2s"}, "invalid -health-timeout 2s: longer than -health-interval 1s"},
		{[]string{ok, "-retries=-1"}, "invalid -retries -1: want 0-15"},
		{[]string{ok, "-retries=16"}, "invalid -retries 16"},
		{[]string{ok, "-health-rise=0"}, "invalid -health-rise 0: must be at least 1"},
		{[]string{ok, "-max-conns-per-backend=0"}, "invalid -max-conns-per-backend 0"},
		{[]string{ok, "-max-header-size=100"}, "invalid -max-header-size 100: at least 1KiB"},
		{[]string{ok, "-health-path=health"}, `invalid -health-path "health": must start with /`},
		{[]string{ok, "-log-level=verbose"}, `invalid -log-level "verbose": want debug, info, warn or error`},
		{[]string{ok, "-log-format=xml"}, `invalid -log-format "xml": want text or json`},
		{[]string{ok, "extra"}, `unexpected argument "extra"`},
		{[]string{ok, "-try-timeout=-1s"}, "invalid -try-timeout -1s: must not be negative"},
		{[]string{ok, "-tunnel-idle-timeout=-1m"}, "invalid -tunnel-idle-timeout -1m0s: must not be negative"},
		{[]string{ok, "-eject-after=-1"}, "invalid -eject-after -1"},
		{[]string{ok, "-max-ejected-percent=101"}, "invalid -max-ejected-percent 101: want 0-100"},
		{[]string{ok, "-hedge-after=-5ms"}, "invalid -hedge-after -5ms"},
		{[]string{ok, "-hedge-budget=0"}, "invalid -hedge-budget 0: want 1-100"},
		{[]string{ok, "-admin-addr=9030"}, `invalid -admin-addr "9030": want host:port, such as 127.0.0.1:9030`},
		{[]string{ok, "-admin-addr=127.0.0.1:0"}, `invalid -admin-addr "127.0.0.1:0": port "0": want 1-65535`},
		{[]string{ok, "-admin-addr=127.0.0.1:http"}, `invalid -admin-addr "127.0.0.1:http": port "http"`},
		{[]string{ok, "-admin-addr=127.0.0.1:3030"}, `invalid -admin-addr "127.0.0.1:3030": the admin interface needs a port of its own, not the one serving traffic (-port 3030)`},
		{[]string{ok, "-port=8000", "-host=127.0.0.1", "-admin-addr=127.0.0.1:8000"}, `needs a port of its own`},
		{[]string{ok, "-alert-webhook=ftp://hooks.example/x"}, `invalid -alert-webhook "ftp://hooks.example/x": unsupported scheme "ftp" (want http or https)`},
		{[]string{ok, "-alert-webhook=http://a/x,http:///y"}, `invalid -alert-webhook "http:///y": missing host`},
		{[]string{ok, "-alert-webhook=http://:8080/y"}, `invalid -alert-webhook "http://:8080/y": missing host`},
		{[]string{ok, "-alert-webhook=http://127.1:8080/x"}, `invalid -alert-webhook "http://127.1:8080/x": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{[]string{ok, "-alert-webhook=http://a/x,https://0x7f.1/y"}, `invalid -alert-webhook "https://0x7f.1/y": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-alert-webhook=http://2130706433/x"}, `invalid -alert-webhook "http://2130706433/x": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-alert-webhook=http://0177.0.0.1/x"}, `invalid -alert-webhook "http://0177.0.0.1/x": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-alert-webhook=http://127.0.0.1.:8080/x"}, `invalid -alert-webhook "http://127.0.0.1.:8080/x": host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{[]string{ok, "-alert-webhook=http://hooks..example/x"}, `invalid -alert-webhook "http://hooks..example/x": host "hooks..example": an empty label`},
		{[]string{ok, "-alert-webhook=http://[::1]:0/x"}, `invalid -alert-webhook "http://[::1]:0/x": invalid port "0": want 1-65535`},
		{[]string{ok, "-alert-webhook=http://hooks.example:65536/x"}, `invalid -alert-webhook "http://hooks.example:65536/x": invalid port "65536": want 1-65535`},
		{[]string{ok, "-alert-format=xml"}, `invalid -alert-format "xml": want json or slack`},
		{[]string{ok, "-admin-token=  "}, `invalid -admin-token "  ": only white space, which no request can carry`},
		{[]string{ok, "-admin-token=\t"}, `invalid -admin-token "\t": only white space`},
		{[]string{ok, "-client-header-timeout=0s"}, "invalid -client-header-timeout 0s: must be positive"},
		{[]string{ok, "-max-conns=-1"}, "invalid -max-conns -1: must not be negative (0: no limit)"},
		{[]string{ok, "-rate-limit=10/s", "-rate-burst=-1"}, "invalid -rate-burst -1: must not be negative (0: one second's worth)"},
		{[]string{ok, "-rate-burst=5"}, "invalid -rate-burst 5: needs -rate-limit"},
		{[]string{ok, "-hedge-budget=5"}, "invalid -hedge-budget 5: needs -hedge-after"},
		{[]string{ok, "-hedge-after=0", "-hedge-budget=20"}, "invalid -hedge-budget 20: needs -hedge-after"},
		{[]string{ok, "-rate-limit=fast"}, `invalid -rate-limit "fast": want a positive rate`},
		{[]string{ok, "-rate-limit=10/d"}, `invalid -rate-limit "10/d": unknown unit "d"`},
		{[]string{ok, "-trusted-proxies=10.0.0.0/33"}, `invalid -trusted-proxies: invalid trusted proxy "10.0.0.0/33"`},
		{[]string{ok, "-tls-cert=a.crt"}, `missing -tls-key: -tls-cert "a.crt" needs its private key`},
		{[]string{ok, "-tls-key=a.key"}, `missing -tls-cert: -tls-key "a.key" needs its certificate`},
		{[]string{ok, "-tls-cert=a.crt,b.crt", "-tls-key=a.key"}, "invalid -tls-key: 1 files for 2 -tls-cert files"},
		{[]string{ok, "-tls-cert=a.crt,", "-tls-key=a.key,b.key"}, `invalid -tls-cert "a.crt,": empty file name`},
		{[]string{ok, "-tls-cert=a.crt", "-tls-key=a.key", "-tls-port=0"}, "invalid -tls-port 0: want 1-65535"},
		{[]string{ok, "-tls-cert=a.crt", "-tls-key=a.key", "-port=8443", "-tls-port=8443"}, "invalid -tls-port 8443: the same as -port"},
		{[]string{ok, "-tls-cert=a.crt", "-tls-key=a.key", "-tls-min-version=1.1"}, `invalid -tls-min-version "1.1": want 1.2 or 1.3`},
		{[]string{ok, "-tls-cert=a.crt", "-tls-key=a.key", "-hsts=-1s"}, "invalid -hsts -1s: must not be negative"},
		{[]string{ok, "-tls-cert=a.crt", "-tls-key=a.key", "-hsts=10ms"}, "invalid -hsts 10ms: at least 1s"},
		{[]string{ok, "-redirect-https"}, "invalid -redirect-https: needs -tls-cert and -tls-key"},
		{[]string{ok, "-hsts=1h"}, "invalid -hsts: needs -tls-cert and -tls-key"},
		{[]string{ok, "-http2=false", "-h2c"}, "invalid -h2c: HTTP/2 is off (-http2=false)"},
		{[]string{ok, "-http2-max-streams=0"}, "invalid -http2-max-streams 0: want 1-10000"},
		{[]string{ok, "-http2-max-streams=20000"}, "invalid -http2-max-streams 20000: want 1-10000"},
		{[]string{"-backends=http://a:1 proto=h2"}, `invalid -backends entry "http://a:1 proto=h2": proto=h2 is HTTP/2 over TLS and needs an https:// URL`},
		{[]string{"-backends=http://a:1 proto=spdy"}, `invalid -backends entry "http://a:1 proto=spdy": unknown proto "spdy" (want h2, h2c or http/1.1)`},
		{[]string{"-backends=http://a:1 health=grpc"}, `health=grpc needs an HTTP/2 backend`},
		{[]string{"-backends=http://a:1 proto=h2c health=tcp"}, `unknown health check "tcp" (want http, grpc or grpc:SERVICE)`},
		{[]string{ok, "-tls-port=8443"}, "invalid -tls-port: needs -tls-cert and -tls-key"},
		{[]string{ok, "-backend-ca=/nonexistent/ca.pem"}, `invalid -backend-ca "/nonexistent/ca.pem": no such file or directory`},
		{[]string{ok, "-backend-ca=flags_test.go"}, `invalid -backend-ca "flags_test.go": no PEM certificates found`},
		{[]string{ok, "-backend-ca=ca.pem", "-backend-insecure-skip-verify"}, "no use with -backend-insecure-skip-verify"},
		{[]string{ok, "-upstream-proxy=ftp://p:21"}, `invalid -upstream-proxy "ftp://p:21": unsupported scheme "ftp"`},
		{[]string{ok, "-upstream-proxy=p:3128"}, `invalid -upstream-proxy "p:3128": missing scheme`},
		{[]string{ok, "-upstream-proxy=http://u:secret@p:0"}, `invalid -upstream-proxy "http://u:xxxxx@p:0": invalid port "0"`},
		{[]string{ok, "-upstream-proxy=http://127.1:3128"}, `invalid -upstream-proxy "http://127.1:3128": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{[]string{ok, "-upstream-proxy=socks5://u:secret@0x7f.1:1080"}, `invalid -upstream-proxy "socks5://u:xxxxx@0x7f.1:1080": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-upstream-proxy=http://2130706433:3128"}, `invalid -upstream-proxy "http://2130706433:3128": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-upstream-proxy=http://0177.0.0.1:3128"}, `invalid -upstream-proxy "http://0177.0.0.1:3128": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{[]string{ok, "-upstream-proxy=http://127.0.0.1.:3128"}, `invalid -upstream-proxy "http://127.0.0.1.:3128": host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{[]string{ok, "-upstream-proxy=http://proxy..internal:3128"}, `invalid -upstream-proxy "http://proxy..internal:3128": host "proxy..internal": an empty label`},
		{[]string{"-backends=https://a:1,https://A:1/"}, `invalid -backends entry "https://A:1/": duplicate of "https://a:1"`},
		{[]string{"-backends=http://a:1 wieght=3"}, `invalid -backends entry "http://a:1 wieght=3": unknown option "wieght=3" (want weight=N, max_conns=N, backup, down, proto=h2|h2c or health=grpc)`},
		{[]string{"-backends=http://a:1 weight=0"}, `invalid -backends entry "http://a:1 weight=0": invalid weight "0": want 1-1000`},
		{[]string{"-backends=http://a:1 weight=1001"}, `invalid weight "1001": want 1-1000`},
		{[]string{"-backends=http://a:1 max_conns=many"}, `invalid -backends entry "http://a:1 max_conns=many": invalid max_conns "many"`},
		{[]string{"-backends=http://a:1 backup=1"}, `option "backup=1" takes no value`},
		{[]string{"-backends=http://a:1 weight=2,http://a:1 backup"}, `invalid -backends entry "http://a:1 backup": duplicate of "http://a:1 weight=2"`},
		{[]string{ok, "-policy=fastest"}, `invalid -policy "fastest": want round-robin, least-conn, p2c, random or hash`},
		{[]string{ok, "-policy=Round-Robin"}, `invalid -policy "Round-Robin"`},
		{[]string{ok, "-policy=hash", "-hash-key=body"}, `invalid -hash-key "body": unknown key "body": want ip, uri, header:NAME or cookie:NAME`},
		{[]string{ok, "-policy=hash", "-hash-key=header:"}, `invalid -hash-key "header:": header name "": empty name`},
		{[]string{ok, "-policy=hash", "-hash-key=cookie:a;b"}, `invalid -hash-key "cookie:a;b": cookie name "a;b": character ';' is not allowed in a name`},
		{[]string{ok, "-hash-key=uri"}, `invalid -hash-key "uri": only used with -policy=hash (-policy is "round-robin")`},
		{[]string{ok, "-policy=p2c", "-hash-key=ip"}, `invalid -hash-key "ip": only used with -policy=hash`},
		{[]string{ok, "-sticky-cookie=my cookie"}, `invalid -sticky-cookie "my cookie": character ' ' is not allowed in a name`},
		{[]string{ok, "-sticky-cookie=a=b"}, `invalid -sticky-cookie "a=b": character '=' is not allowed`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			_, err := parseFlags(tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestAdminTokenRefused: a token with white space around it, which a
// request's credentials lose (so that a client sending the token as meant
// is refused), or with a control character inside, which no client sends in
// a header, exits 2 with one line naming the problem (and the byte offset of
// a bad byte inside), from the command line and the configuration file
// alike, and never shows the token. One of white space alone says so, as
// before; a space inside is the token's.
func TestAdminTokenRefused(t *testing.T) {
	const around = "white space at its start or end, which a request's credentials lose: remove it (the token is not shown)"
	inside := func(what string, at int) string {
		return fmt.Sprintf("%s at byte offset %d, which no request can carry (the token is not shown)", what, at)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		config string // the configuration file's admin-token line, if any
		want   string // the error; "lb.yaml" stands for the file's path; "" for none
		token  string // the token taken, when there is no error
	}{
		{name: "flag, space before", args: []string{"-admin-token= s3cret"}, want: "invalid -admin-token: " + around},
		{name: "flag, space after", args: []string{"-admin-token=s3cret "}, want: "invalid -admin-token: " + around},
		{name: "flag, both", args: []string{"-admin-token= s3cret "}, want: "invalid -admin-token: " + around},
		{name: "flag, tab and newline", args: []string{"-admin-token=\ts3cret\n"}, want: "invalid -admin-token: " + around},
		{name: "flag, no-break space", args: []string{"-admin-token=s3cret\u00a0"}, want: "invalid -admin-token: " + around},
		{name: "file, quoted spaces", config: `admin-token: " s3cret "`, want: "lb.yaml:2: admin-token: invalid admin-token: " + around},
		{name: "file, trailing tab", config: `admin-token: "s3cret\t"`, want: "lb.yaml:2: admin-token: invalid admin-token: " + around},
		{name: "flag over the file's good one", args: []string{"-admin-token=s3cret "}, config: "admin-token: s3cret", want: "invalid -admin-token: " + around},
		{name: "flag, only white space", args: []string{"-admin-token=  "}, want: `invalid -admin-token "  ": only white space, which no request can carry`},
		{name: "flag, space inside", args: []string{"-admin-token=s3 cret"}, token: "s3 cret"},
		{name: "flag, NUL inside", args: []string{"-admin-token=s3\x00cret"}, want: "invalid -admin-token: " + inside("control character 0x00", 2)},
		{name: "flag, DEL last", args: []string{"-admin-token=s3cret\x7f"}, want: "invalid -admin-token: " + inside("control character 0x7f", 6)},
		{name: "file, space inside", config: "admin-token: s3 cret", token: "s3 cret"},
		{name: "file, escape inside", config: `admin-token: "s3\ecret"`, want: "lb.yaml:2: admin-token: invalid admin-token: " + inside("control character 0x1b", 2)},
		{name: "file, plain", config: "admin-token: s3cret", token: "s3cret"},
		{name: "file, unquoted: YAML drops the spaces", config: "admin-token:   s3cret   ", token: "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-backends=http://a:1"}, tc.args...)
			path := ""
			if tc.config != "" {
				path = writeConfig(t, "backends: [http://a:1]\n"+tc.config+"\n")
				args = append([]string{"-config=" + path}, tc.args...)
			}
			o, err := parseFlags(args, &bytes.Buffer{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if o.adminToken != tc.token {
					t.Errorf("token %q, want %q", o.adminToken, tc.token)
				}
				return
			}
			want := strings.ReplaceAll(tc.want, "lb.yaml", path)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v\nwant %s", err, want)
			}
			if _, ok := err.(*usageError); !ok {
				t.Errorf("error %T: must exit 2", err)
			}
			if strings.Contains(err.Error(), "cret") {
				t.Errorf("error %q shows the token", err)
			}
			var stderr bytes.Buffer
			if code := run(append(args, "-check-config"), &bytes.Buffer{}, &stderr); code != 2 || stderr.String() != "load-balancer: "+want+"\n" {
				t.Errorf("-check-config: exit %d, %q; want 2 and the error", code, stderr.String())
			}
		})
	}
}

// TestParseFlagsFlushInterval: -flush-interval takes -1 (each piece at
// once, as documented) on the command line and in the file; other negative
// durations are refused, naming the value.
func TestParseFlagsFlushInterval(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string // the -config file's keys besides backends; "" for none
		args   []string
		want   time.Duration
		err    string // in the error message; "lb.yaml" stands for the file
	}{
		{name: "default", want: 0},
		{name: "-1", args: []string{"-flush-interval=-1"}, want: -1},
		{name: "zero", args: []string{"-flush-interval=0"}, want: 0},
		{name: "duration", args: []string{"-flush-interval=100ms"}, want: 100 * time.Millisecond},
		{name: "-1 in the file", config: "flush-interval: -1\n", want: -1},
		{name: "duration in the file", config: "flush-interval: 50ms\n", want: 50 * time.Millisecond},
		{name: "-2s", args: []string{"-flush-interval=-2s"}, err: "invalid -flush-interval -2s: want -1 (each piece at once), 0 or a positive duration"},
		{name: "-1s", args: []string{"-flush-interval=-1s"}, err: "invalid -flush-interval -1s: want -1 (each piece at once)"},
		{name: "-2", args: []string{"-flush-interval=-2"}, err: `invalid value "-2" for flag -flush-interval: want -1, 0 or a duration such as 100ms`},
		{name: "-2s in the file", config: "flush-interval: -2s\n", err: "lb.yaml:2: flush-interval: invalid flush-interval -2s: want -1"},
		{name: "no unit in the file", config: "flush-interval: 5\n", err: `lb.yaml:2: flush-interval: invalid value "5": want -1, 0 or a duration such as 100ms`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parseCase(t, tc.config, tc.args, tc.err)
			if o == nil {
				return
			}
			if o.proxy.FlushInterval != tc.want {
				t.Errorf("flush interval %v, want %v", o.proxy.FlushInterval, tc.want)
			}
		})
	}
}

// TestParseFlagsSplice: -splice is off unless turned on, on the command
// line or in the file; a value that is not a boolean is refused, naming it.
func TestParseFlagsSplice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		args   []string
		splice bool
		err    string
	}{
		{name: "default"},
		{name: "off", args: []string{"-splice=false"}},
		{name: "on", args: []string{"-splice"}, splice: true},
		{name: "on in the file", config: "splice: true\n", splice: true},
		{name: "not a boolean", args: []string{"-splice=maybe"}, err: `invalid boolean value "maybe" for -splice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parseCase(t, tc.config, tc.args, tc.err)
			if o == nil {
				return
			}
			if o.proxy.Splice != tc.splice {
				t.Errorf("Splice %v, want %v", o.proxy.Splice, tc.splice)
			}
		})
	}
}

// TestParseFlagsHealthTimeoutDefault: without -health-timeout the check
// timeout is 2s, or -health-interval when that is shorter (as HAProxy takes
// the interval for a timeout not given); only a timeout given, on the
// command line or in the file, longer than the interval is refused.
func TestParseFlagsHealthTimeoutDefault(t *testing.T) {
	for _, tc := range []struct {
		name              string
		config            string // the -config file's keys besides backends; "" for none
		args              []string
		interval, timeout time.Duration
		err               string // in the error message; "lb.yaml" stands for the file
	}{
		{name: "defaults", interval: 5 * time.Second, timeout: 2 * time.Second},
		{name: "interval of 1s alone", args: []string{"-health-interval=1s"}, interval: time.Second, timeout: time.Second},
		{name: "interval of 500ms alone", args: []string{"-health-interval=500ms"}, interval: 500 * time.Millisecond, timeout: 500 * time.Millisecond},
		{name: "longer interval alone", args: []string{"-health-interval=10s"}, interval: 10 * time.Second, timeout: 2 * time.Second},
		{name: "both given", args: []string{"-health-interval=1s", "-health-timeout=300ms"}, interval: time.Second, timeout: 300 * time.Millisecond},
		{name: "timeout equal to the interval", args: []string{"-health-interval=1s", "-health-timeout=1s"}, interval: time.Second, timeout: time.Second},
		{name: "timeout alone", args: []string{"-health-timeout=4s"}, interval: 5 * time.Second, timeout: 4 * time.Second},
		{name: "timeout given longer", args: []string{"-health-interval=1s", "-health-timeout=1500ms"}, err: "invalid -health-timeout 1.5s: longer than -health-interval 1s"},
		{name: "timeout alone longer than the default interval", args: []string{"-health-timeout=6s"}, err: "invalid -health-timeout 6s: longer than -health-interval 5s"},
		{name: "interval alone in the file", config: "health-interval: 1s\n", interval: time.Second, timeout: time.Second},
		{name: "interval in the file, timeout on the command line", config: "health-interval: 1s\n", args: []string{"-health-timeout=200ms"},
			interval: time.Second, timeout: 200 * time.Millisecond},
		{name: "timeout in the file, shorter interval on the command line", config: "health-timeout: 3s\n", args: []string{"-health-interval=2s"},
			err: "lb.yaml:2: health-timeout: invalid health-timeout 3s: longer than -health-interval 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := parseCase(t, tc.config, tc.args, tc.err)
			if o == nil {
				return
			}
			if h := o.proxy.Health; h.Interval != tc.interval || h.Timeout != tc.timeout {
				t.Errorf("interval %v timeout %v, want %v %v", h.Interval, h.Timeout, tc.interval, tc.timeout)
			}
		})
	}
}

// TestParseFlagsSyntaxErrorsNameFlagAndValue: a value a flag cannot parse
// exits 2 with one line naming the flag and the value, and what it wants,
// as any other bad value: the help text is for -h.
func TestParseFlagsSyntaxErrorsNameFlagAndValue(t *testing.T) {
	for _, tc := range []struct {
		arg, want string
	}{
		{"-health-interval=soon", `load-balancer: invalid value "soon" for flag -health-interval: want a duration such as 5s or 250ms`},
		{"-max-body-size=10XB", `load-balancer: invalid value "10XB" for flag -max-body-size: unknown unit "XB": want B, KiB, MiB or GiB`},
		{"-max-header-size=big", `load-balancer: invalid value "big" for flag -max-header-size: want a byte count such as 4096, 16KiB or 16MiB`},
		{"-max-header-size=99999999999999999999", `load-balancer: invalid value "99999999999999999999" for flag -max-header-size: number out of range`},
		{"-port=http", `load-balancer: invalid value "http" for flag -port: want a whole number`},
		{"-http2=maybe", `load-balancer: invalid boolean value "maybe" for -http2: want true or false`},
		{"-nope", "load-balancer: flag provided but not defined: -nope (-h lists the flags)"},
	} {
		var out, errOut bytes.Buffer
		if code := run([]string{"-backends=http://a:1", tc.arg}, &out, &errOut); code != 2 {
			t.Errorf("%s: exit %d, want 2", tc.arg, code)
		}
		if got := errOut.String(); got != tc.want+"\n" {
			t.Errorf("%s: stderr %q, want the one line %q", tc.arg, got, tc.want)
		}
	}
}

func TestParseFlagsValues(t *testing.T) {
	o, err := parseFlags([]string{
		"-backends=http://localhost:8081, http://localhost:8082",
		"-port=8080", "-host=127.0.0.1", "-retries=0", "-max-header-size=32KiB",
		"-max-body-size=1GiB", "-health-interval=10s", "-health-path=/healthz",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.proxy
	if strings.Join(c.Backends, " ") != "http://localhost:8081 http://localhost:8082" {
		t.Errorf("backends %q", c.Backends)
	}
	if o.addr != "127.0.0.1:8080" || c.Retries != -1 || c.MaxHeaderSize != 32<<10 ||
		c.MaxBodySize != 1<<30 || c.Health.Interval != 10*time.Second || c.Health.Path != "/healthz" {
		t.Errorf("parsed %+v addr %q", c, o.addr)
	}

	o, err = parseFlags([]string{"-backends=http://a:1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c = o.proxy
	if o.addr != ":3030" || c.Retries != 2 || c.MaxHeaderSize != 16<<10 || c.MaxBodySize != 16<<20 ||
		c.Health.Interval != 5*time.Second || c.Health.Timeout != 2*time.Second || c.Health.Rise != 2 ||
		c.Health.Fall != 2 || c.DialTimeout != 3*time.Second || c.BackendTimeout != 30*time.Second ||
		c.ClientIdleTimeout != 60*time.Second || c.MaxConnsPerBackend != 1024 || o.shutdownTimeout != 10*time.Second ||
		c.TryTimeout != time.Second || c.TunnelIdleTimeout != time.Hour || c.EjectAfter != 2 || c.MaxEjectedPercent != 50 || c.HedgeAfter != 0 || c.HedgeBudget != 10 ||
		c.ClientHeaderTimeout != 10*time.Second || c.ClientBodyTimeout != 60*time.Second || c.RateLimit != 0 || c.MaxConns != 0 ||
		c.HTTP2 != (proxy.HTTP2Config{MaxConcurrentStreams: 250}) {
		t.Errorf("defaults %+v addr %q", c, o.addr)
	}

	o, err = parseFlags([]string{"-backends=https://a:1 proto=h2 health=grpc:svc.v1", "-h2c", "-http2-max-streams=100"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.proxy.HTTP2 != (proxy.HTTP2Config{H2C: true, MaxConcurrentStreams: 100}) {
		t.Errorf("HTTP/2 flags: %+v", o.proxy.HTTP2)
	}
	if o, err = parseFlags([]string{"-backends=http://a:1", "-http2=false"}, &bytes.Buffer{}); err != nil || !o.proxy.HTTP2.Disable {
		t.Errorf("-http2=false: %+v %v", o.proxy.HTTP2, err)
	}
}

// TestParseFlagsListenHost: -host and -admin-addr take an IP address,
// bracketed or not, or a name that resolves, and are listened on in one
// form however they are spelt: a name without its trailing dot (the same
// name, and the form Go's resolver finds localhost in /etc/hosts by), an
// IP address in its shortest form.
func TestParseFlagsListenHost(t *testing.T) {
	for _, tc := range []struct {
		host, addr string // -host, and the address listened on
		admin, adm string // -admin-addr, and the address listened on
	}{
		{"", ":3030", "127.0.0.1:9030", "127.0.0.1:9030"},
		{"127.0.0.1", "127.0.0.1:3030", "127.0.0.1:9031", "127.0.0.1:9031"},
		{"::1", "[::1]:3030", "[::1]:9030", "[::1]:9030"},
		{"[::1]", "[::1]:3030", "[0::1]:9030", "[::1]:9030"},
		{"::ffff:127.0.0.1", "127.0.0.1:3030", "[::ffff:127.0.0.1]:9030", "127.0.0.1:9030"},
		{"localhost", "localhost:3030", "localhost:9030", "localhost:9030"},
		{"localhost.", "localhost:3030", "localhost.:9030", "localhost:9030"},
		{"LocalHost", "localhost:3030", "LOCALHOST.:9030", "localhost:9030"},
		{"0.0.0.0", "0.0.0.0:3030", ":9030", ":9030"},
	} {
		o, err := parseFlags([]string{"-backends=http://a:1", "-host=" + tc.host, "-admin-addr=" + tc.admin}, &bytes.Buffer{})
		if err != nil {
			t.Errorf("-host=%s -admin-addr=%s: %v", tc.host, tc.admin, err)
			continue
		}
		if o.addr != tc.addr || o.adminAddr != tc.adm {
			t.Errorf("-host=%s -admin-addr=%s: listening on %q and %q, want %q and %q", tc.host, tc.admin, o.addr, o.adminAddr, tc.addr, tc.adm)
		}
	}
}

// TestParseFlagsUpstreamProxyHost: -upstream-proxy takes a host as a
// backend URL does: an IP address (IPv6 in brackets) or a name, with its
// trailing dot or not.
func TestParseFlagsUpstreamProxyHost(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:3128", "http://localhost:3128", "socks5://[::1]:1080", "http://proxy.internal.:3128", "socks5h://u:p@proxy.internal",
	} {
		o, err := parseFlags([]string{"-backends=http://a:1", "-upstream-proxy=" + u}, &bytes.Buffer{})
		if err != nil || o.proxy.UpstreamProxy != u {
			t.Errorf("-upstream-proxy=%s: %v, upstream proxy %q", u, err, o.proxy.UpstreamProxy)
		}
	}
}

func TestParseFlagsMonitoring(t *testing.T) {
	o, err := parseFlags([]string{"-backends=http://a:1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.adminAddr != "127.0.0.1:9030" || o.adminToken != "" || len(o.alertURLs) != 0 || o.alertFormat != alert.FormatJSON {
		t.Errorf("defaults: admin %q token %q alerts %q format %v", o.adminAddr, o.adminToken, o.alertURLs, o.alertFormat)
	}
	o, err = parseFlags([]string{"-backends=http://a:1", "-admin-addr=", "-admin-token=t0k",
		"-alert-webhook=http://hooks.example/a, https://hooks.example/b", "-alert-webhook=http://127.0.0.1:9/c",
		"-alert-format=slack"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://hooks.example/a", "https://hooks.example/b", "http://127.0.0.1:9/c"}
	if o.adminAddr != "" || o.adminToken != "t0k" || strings.Join(o.alertURLs, " ") != strings.Join(want, " ") || o.alertFormat != alert.FormatSlack {
		t.Errorf("admin %q token %q alerts %q format %v", o.adminAddr, o.adminToken, o.alertURLs, o.alertFormat)
	}
	if _, err := parseFlags([]string{"-backends=http://a:1", "-port=3030", "-admin-addr=[::1]:3031"}, &bytes.Buffer{}); err != nil {
		t.Errorf("IPv6 admin address refused: %v", err)
	}
}

func TestParseFlagsAdminTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name  string
		path  string
		extra []string
		token string // the token read, when no error is wanted
		err   string // in the error message
	}{
		{name: "line", path: file("line", "s3cret\n"), token: "s3cret"},
		{name: "no newline", path: file("bare", "s3cret"), token: "s3cret"},
		{name: "first line, trimmed", path: file("lines", "  s3cret \r\nsecond line\n"), token: "s3cret"},
		{name: "empty", path: file("empty", ""), err: "its first line is empty"},
		{name: "blank first line", path: file("blank", " \t\nsecond\n"), err: "its first line is empty"},
		{name: "too long", path: file("long", strings.Repeat("x", maxTokenFile+1)), err: "its first line is longer than 4096 bytes"},
		{name: "missing", path: filepath.Join(dir, "nope"), err: "no such file or directory"},
		{name: "byte order mark", path: file("bom", "\ufeffs3cret\r\n"), token: "s3cret"},
		{name: "directory", path: dir, err: "is a directory"},
		{name: "socket", path: socketFile(t, dir), err: "is not a regular file (a socket)"},
		{name: "with -admin-token", path: file("both", "s3cret\n"), extra: []string{"-admin-token=t0k"}, err: "-admin-token is set too; give one of them"},
		{name: "control inside, offset in the token", path: file("ctl", "  s3\x01cret\r\n"),
			err: "the token on its first line has control character 0x01 at byte offset 2, which no request can carry (the token is not shown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-backends=http://a:1", "-admin-token-file=" + tc.path}, tc.extra...)
			o, err := parseFlags(args, &bytes.Buffer{})
			if tc.err != "" {
				want := fmt.Sprintf("invalid -admin-token-file %q: %s", tc.path, tc.err)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want it to contain %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.adminToken != tc.token {
				t.Errorf("token %q, want %q", o.adminToken, tc.token)
			}
			if o.settings["admin-token"] != tc.token {
				t.Errorf("settings hold token %q, want %q, so that a reload tells a changed file", o.settings["admin-token"], tc.token)
			}
		})
	}
}

// socketFile returns the path of a Unix socket listening in dir: a file
// that is not a regular one, and that reads no token.
func socketFile(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no Unix sockets here: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}

// TestParseFlagsAdminTokenPrecedence checks that -admin-token and
// -admin-token-file act as one setting: the command line's overrides the
// -config file's, and only two in the same place are refused.
func TestParseFlagsAdminTokenPrecedence(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-token-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const both = "-admin-token is set too; give one of them"
	for _, tc := range []struct {
		name   string
		config string // the -config file's keys besides backends
		args   []string
		token  string // want, when err is empty
		err    string
	}{
		{name: "file's admin-token, command line's -admin-token-file", config: "admin-token: from-config\n",
			args: []string{"-admin-token-file=" + tokenFile}, token: "from-token-file"},
		{name: "file's admin-token-file, command line's -admin-token", config: "admin-token-file: " + tokenFile + "\n",
			args: []string{"-admin-token=from-command-line"}, token: "from-command-line"},
		{name: "both in the file", config: "admin-token: from-config\nadmin-token-file: " + tokenFile + "\n", err: both},
		{name: "both on the command line", args: []string{"-admin-token=x", "-admin-token-file=" + tokenFile}, err: both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-config=" + writeConfig(t, "backends: [http://a:1]\n"+tc.config)}, tc.args...)
			o, err := parseFlags(args, &bytes.Buffer{})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want it to contain %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.adminToken != tc.token {
				t.Errorf("token %q, want %q", o.adminToken, tc.token)
			}
		})
	}
}

func TestParseFlagsPolicies(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		policy string // as logged
		check  func(pool.Policy) bool
	}{
		{nil, "round-robin", func(p pool.Policy) bool { _, ok := p.(*pool.RoundRobin); return ok }},
		{[]string{"-policy=least-conn"}, "least-conn", func(p pool.Policy) bool { _, ok := p.(*pool.LeastConn); return ok }},
		{[]string{"-policy=p2c"}, "p2c", func(p pool.Policy) bool { _, ok := p.(*pool.P2C); return ok }},
		{[]string{"-policy=random"}, "random", func(p pool.Policy) bool { _, ok := p.(*pool.Random); return ok }},
		{[]string{"-policy=hash"}, "hash ip", func(p pool.Policy) bool {
			m, ok := p.(*pool.Maglev)
			return ok && m.Key() == pool.Key{Kind: pool.KeyClientIP}
		}},
		{[]string{"-policy=hash", "-hash-key=uri"}, "hash uri", func(p pool.Policy) bool {
			return p.(*pool.Maglev).Key() == pool.Key{Kind: pool.KeyURI}
		}},
		{[]string{"-policy=hash", "-hash-key=header:X-User-ID"}, "hash header:X-User-ID", func(p pool.Policy) bool {
			return p.(*pool.Maglev).Key() == pool.Key{Kind: pool.KeyHeader, Name: "X-User-ID"}
		}},
		{[]string{"-policy=hash", "-hash-key=cookie:sid"}, "hash cookie:sid", func(p pool.Policy) bool {
			return p.(*pool.Maglev).Key() == pool.Key{Kind: pool.KeyCookie, Name: "sid"}
		}},
	} {
		o, err := parseFlags(append([]string{"-backends=http://a:1"}, tc.args...), &bytes.Buffer{})
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if o.policy != tc.policy || !tc.check(o.proxy.Policy) {
			t.Errorf("%v: policy %q %T, want %q", tc.args, o.policy, o.proxy.Policy, tc.policy)
		}
	}
}

func TestParseFlagsBackendOptionsAndSticky(t *testing.T) {
	o, err := parseFlags([]string{
		"-backends=http://a:1 weight=3 max_conns=200, http://b:1 backup,http://c:1 down,http://d:1",
		"-sticky-cookie=lb_backend",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://a:1 weight=3 max_conns=200", "http://b:1 backup", "http://c:1 down", "http://d:1"}
	if strings.Join(o.proxy.Backends, ",") != strings.Join(want, ",") {
		t.Errorf("backends %q, want %q", o.proxy.Backends, want)
	}
	if o.proxy.StickyCookie != "lb_backend" {
		t.Errorf("sticky cookie %q", o.proxy.StickyCookie)
	}
	// The entries, options and all, are what the library parses.
	o.proxy.Health.Interval = -1
	p, err := proxy.New(o.proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := []pool.Options{}
	for _, b := range p.Pool().Backends() {
		got = append(got, b.Options())
	}
	wantOpts := []pool.Options{{Weight: 3, MaxConns: 200}, {Weight: 1, Backup: true}, {Weight: 1, Down: true}, {Weight: 1}}
	if !slices.Equal(got, wantOpts) {
		t.Errorf("options %+v, want %+v", got, wantOpts)
	}
}

func TestParseTLSFlags(t *testing.T) {
	o, err := parseFlags([]string{
		"-backends=https://b.internal,http://localhost:8081", "-host=127.0.0.1",
		"-tls-cert= a.crt, b.crt", "-tls-key=a.key,b.key ", "-tls-port=8443", "-tls-min-version=1.3",
		"-redirect-https", "-hsts=8760h", "-backend-insecure-skip-verify", "-upstream-proxy=env",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.proxy.TLS
	if c == nil {
		t.Fatal("no TLS configuration")
	}
	if o.tlsAddr != "127.0.0.1:8443" || c.RedirectPort != 8443 || !c.RedirectHTTP || c.HSTS != 8760*time.Hour ||
		c.MinVersion != tls.VersionTLS13 || len(c.Certificates) != 2 ||
		c.Certificates[0] != (proxy.CertificateFiles{CertFile: "a.crt", KeyFile: "a.key"}) ||
		c.Certificates[1] != (proxy.CertificateFiles{CertFile: "b.crt", KeyFile: "b.key"}) {
		t.Errorf("TLS %+v at %q", c, o.tlsAddr)
	}
	if o.proxy.BackendTLS == nil || !o.proxy.BackendTLS.InsecureSkipVerify || o.proxy.UpstreamProxy != "env" {
		t.Errorf("backend TLS %+v, upstream proxy %q", o.proxy.BackendTLS, o.proxy.UpstreamProxy)
	}
	if len(o.warnings) != 0 {
		t.Errorf("warnings %q", o.warnings)
	}

	// Without -tls-cert nothing of TLS is set up; the defaults are 1.2 and
	// port 3443.
	o, err = parseFlags([]string{"-backends=http://a:1", "-backend-ca=" + writeCA(t)}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.proxy.TLS != nil || o.tlsAddr != "" {
		t.Errorf("TLS set up without -tls-cert: %+v %q", o.proxy.TLS, o.tlsAddr)
	}
	if o.proxy.BackendTLS == nil || o.proxy.BackendTLS.RootCAs == nil {
		t.Error("-backend-ca did not set the backends' roots")
	}
	if len(o.warnings) != 1 || !strings.Contains(o.warnings[0], "-backend-ca has no effect") {
		t.Errorf("warnings %q, want one about -backend-ca without https backends", o.warnings)
	}
	o, err = parseFlags([]string{"-backends=http://a:1", "-tls-cert=a.crt", "-tls-key=a.key"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.tlsAddr != ":3443" || o.proxy.TLS.MinVersion != tls.VersionTLS12 || o.proxy.TLS.HSTS != 0 || o.proxy.TLS.RedirectHTTP {
		t.Errorf("TLS defaults %+v at %q", o.proxy.TLS, o.tlsAddr)
	}
}

func writeCA(t *testing.T) string {
	t.Helper()
	return testpki.NewCA(t, "test CA").WriteFile(t, t.TempDir())
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4096", 4096}, {"16KiB", 16 << 10}, {"16k", 16 << 10}, {"16KB", 16 << 10},
		{"2MiB", 2 << 20}, {"1G", 1 << 30}, {"7B", 7}, {" 3 MiB ", 3 << 20},
	} {
		if got, err := parseSize(tc.in); err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "KiB", "1.5MiB", "12XB", "99999999999999999999"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-h"}, &out, &errOut); code != 0 {
		t.Errorf("-h exited %d", code)
	}
	for _, name := range []string{"backends", "port", "host", "health-interval", "health-timeout", "health-path",
		"health-rise", "health-fall", "retries", "dial-timeout", "backend-timeout", "client-idle-timeout",
		"max-header-size", "max-body-size", "max-conns-per-backend", "shutdown-timeout", "log-level",
		"log-format", "version", "try-timeout", "tunnel-idle-timeout", "eject-after", "max-ejected-percent", "hedge-after", "hedge-budget",
		"client-header-timeout", "client-body-timeout", "max-conns", "max-conns-per-ip", "rate-limit", "rate-burst",
		"trusted-proxies", "tls-cert", "tls-key", "tls-port", "tls-min-version", "redirect-https", "hsts",
		"backend-ca", "backend-insecure-skip-verify", "upstream-proxy", "policy", "hash-key", "sticky-cookie",
		"admin-addr", "admin-token", "admin-token-file", "alert-webhook", "alert-format", "http2", "h2c", "http2-max-streams"} {
		if !strings.Contains(errOut.String(), "-"+name) {
			t.Errorf("-h does not list -%s", name)
		}
	}
	if !strings.Contains(errOut.String(), "(default 16KiB)") {
		t.Errorf("-h does not show size defaults readably:\n%s", errOut.String())
	}
}

func TestRunExitCodes(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-backends=htp://x"}, &out, &errOut); code != 2 {
		t.Errorf("bad flag exited %d, want 2", code)
	}
	if want := "load-balancer: invalid -backends entry \"htp://x\": unsupported scheme \"htp\"\n"; errOut.String() != want {
		t.Errorf("stderr %q, want %q", errOut.String(), want)
	}
	out.Reset()
	if code := run([]string{"-version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "load-balancer ") {
		t.Errorf("-version: %d %q", code, out.String())
	}
}

func TestParseFlagsDisableWithZero(t *testing.T) {
	o, err := parseFlags([]string{"-backends=http://a:1", "-try-timeout=0", "-tunnel-idle-timeout=0", "-eject-after=0", "-hedge-after=20ms", "-max-body-size=0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.proxy.TryTimeout >= 0 || o.proxy.TunnelIdleTimeout >= 0 || o.proxy.EjectAfter >= 0 || o.proxy.HedgeAfter != 20*time.Millisecond || o.proxy.MaxBodySize >= 0 {
		t.Errorf("try %v tunnel %v eject %d hedge %v body %d: zero must disable, not select the default",
			o.proxy.TryTimeout, o.proxy.TunnelIdleTimeout, o.proxy.EjectAfter, o.proxy.HedgeAfter, o.proxy.MaxBodySize)
	}
}

// TestParseFlagsRateBurstAndHedgeBudget: each is taken with the flag it
// qualifies, from the command line or the file.
func TestParseFlagsRateBurstAndHedgeBudget(t *testing.T) {
	o, err := parseFlags([]string{"-backends=http://a:1", "-rate-limit=10/s", "-rate-burst=5", "-hedge-after=20ms", "-hedge-budget=30"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.proxy.RateLimit != 10 || o.proxy.RateBurst != 5 || o.proxy.HedgeAfter != 20*time.Millisecond || o.proxy.HedgeBudget != 30 {
		t.Errorf("rate %v burst %d hedge after %v budget %d", o.proxy.RateLimit, o.proxy.RateBurst, o.proxy.HedgeAfter, o.proxy.HedgeBudget)
	}
	o, _, err = parseConfig(t, "backends: [http://a:1]\nrate-burst: 7\nhedge-budget: 40\n", "-rate-limit=1/s", "-hedge-after=1s")
	if err != nil || o.proxy.RateBurst != 7 || o.proxy.HedgeBudget != 40 {
		t.Errorf("from the file: burst %d budget %d, %v", o.proxy.RateBurst, o.proxy.HedgeBudget, err)
	}
	_, path, err := parseConfig(t, "backends: [http://a:1]\nrate-burst: 7\n")
	if want := path + ":2: rate-burst: invalid rate-burst 7: needs -rate-limit"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]float64{"100/s": 100, "100": 100, "6000/m": 100, "36000/h": 10, " 5 / s ": 5} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0/s", "-1/s", "x/s", "10/d"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

// TestRunRejectsBadCertificates exits 2 at start, naming the file at fault.
func TestRunRejectsBadCertificates(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	dir := t.TempDir()
	aCrt, aKey := ca.Issue(t, "a.test").WriteFiles(t, dir, "a")
	_, bKey := ca.Issue(t, "b.test").WriteFiles(t, dir, "b")
	for _, tc := range []struct {
		cert, key, want string
	}{
		{dir + "/missing.crt", aKey, `TLS certificate "` + dir + `/missing.crt": no such file or directory`},
		{aCrt, dir + "/missing.key", `TLS key "` + dir + `/missing.key": no such file or directory`},
		{aCrt, bKey, `TLS key "` + bKey + `": does not match certificate "` + aCrt + `"`},
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"-backends=http://127.0.0.1:1", "-port=1", "-tls-port=2",
			"-tls-cert=" + tc.cert, "-tls-key=" + tc.key, "-log-level=error"}, &out, &errOut)
		if code != 2 {
			t.Errorf("%s + %s: exit %d, want 2", tc.cert, tc.key, code)
		}
		if !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("stderr %q, want it to contain %q", errOut.String(), tc.want)
		}
	}
}

// parseCase runs parseFlags over args after -config= a file of one
// backend and config, or after -backends= one backend when config is
// empty. With wantErr given ("lb.yaml" standing for the file) it checks
// that the error contains it and returns nil; else it fails on any error.
func parseCase(t *testing.T, config string, args []string, wantErr string) *options {
	t.Helper()
	path := ""
	if config != "" {
		path = writeConfig(t, "backends: [http://a:1]\n"+config)
		args = append([]string{"-config=" + path}, args...)
	} else {
		args = append([]string{"-backends=http://a:1"}, args...)
	}
	o, err := parseFlags(args, &bytes.Buffer{})
	if wantErr != "" {
		want := strings.ReplaceAll(wantErr, "lb.yaml", path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want it to contain %q", err, want)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return o
}
