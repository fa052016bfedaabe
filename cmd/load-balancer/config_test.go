package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rishichirchi/Load-Balancee/internal/testpki"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/discovery"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// writeConfig writes body to lb.yaml in a directory of its own and returns
// its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lb.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// parseConfig parses the flags with -config set to a file holding body.
func parseConfig(t *testing.T, body string, args ...string) (*options, string, error) {
	t.Helper()
	path := writeConfig(t, body)
	o, err := parseFlags(append([]string{"-config=" + path}, args...), &bytes.Buffer{})
	return o, path, err
}

// TestConfigRejects: every error names the file, the line and the key.
// "lb.yaml" in want stands for the file's path.
func TestConfigRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		args []string
		want string
	}{
		{"bad backend in a pool", `
pools:
  api:
    backends:
      - http://10.0.0.1:8080
      - htp://x
`, nil, `lb.yaml:6: pools.api.backends[1]: invalid backend "htp://x": unsupported scheme "htp"`},
		{"unknown key", "backends: [http://a:1]\nhelth-interval: 5s\n", nil,
			"lb.yaml:2: helth-interval: unknown key (did you mean health-interval?)"},
		{"value a flag refuses", "backends: [http://a:1]\nport: abc\n", nil, `lb.yaml:2: port: invalid value "abc": want a whole number`},
		{"duration without unit", "backends: [http://a:1]\nhealth-interval: 5\n", nil,
			`lb.yaml:2: health-interval: invalid value "5": want a duration such as 5s or 250ms`},
		{"value out of range", "backends: [http://a:1]\nport: 70000\n", nil, "lb.yaml:2: port: invalid port 70000: want 1-65535"},
		{"unknown access log format", "backends: [http://a:1]\naccess-log: /tmp/x.log\naccess-log-format: xml\n", nil,
			`lb.yaml:3: access-log-format: invalid access-log-format "xml": want combined or json`},
		{"values that disagree", "backends: [http://a:1]\nhealth-interval: 1s\nhealth-timeout: 2s\n", nil,
			"lb.yaml:3: health-timeout: invalid health-timeout 2s: longer than -health-interval 1s"},
		{"bad top-level backend", "backends:\n  - http://a:1\n  - http://b:1 wieght=2\n", nil,
			`lb.yaml:3: backends[1]: invalid backend "http://b:1 wieght=2": unknown option "wieght=2"`},
		{"blank admin token", "backends: [http://a:1]\nadmin-token: \"   \"\n", nil, `lb.yaml:2: admin-token: invalid admin-token "   ": only white space`},
		{"duplicate key", "backends: [http://a:1]\nport: 1\nport: 2\n", nil, "lb.yaml:3: port: given twice (first at line 2)"},
		{"YAML syntax", "backends: [http://a:1\nport: 1\n", nil, "lb.yaml:"},
		{"not a mapping", "- a\n- b\n", nil, "lb.yaml:1: (top level): want a mapping"},
		{"second document", "backends: [http://a:1]\nport: 3030\n---\nport: 4040\n", nil,
			"lb.yaml:3: (top level): a second YAML document, whose keys would be ignored: give every key in one document"},
		{"second document after an empty one", "backends: [http://a:1]\n---\n# nothing\n---\nretries: 1\n", nil,
			"lb.yaml:4: (top level): a second YAML document"},
		{"first document empty", "---\n---\nbackends: [http://a:1]\n", nil, "lb.yaml:2: (top level): a second YAML document"},
		{"YAML syntax in a second document", "backends: [http://a:1]\n---\nport: [1\n", nil, "invalid YAML: did not find expected ',' or ']'"},
		{"empty file", "# nothing\n", nil, "lb.yaml: empty configuration"},
		{"a list for a single value", "backends: [http://a:1]\nport: [1, 2]\n", nil, "lb.yaml:2: port: want a single value, not a list"},
		{"empty value", "backends: [http://a:1]\nport:\n", nil, "lb.yaml:2: port: empty value"},
		{"command-line key", "backends: [http://a:1]\nconfig: other.yaml\n", nil, "lb.yaml:2: config: not allowed in a configuration file"},
		{"no backends", "port: 3030\n", nil, "lb.yaml: backends: no backends: give backends, or pools"},
		{"unknown pool key", "pools:\n  api:\n    backend: [http://a:1]\n", nil,
			"lb.yaml:3: pools.api.backend: unknown key (did you mean backends?)"},
		{"bad pool name", "pools:\n  \"a b\":\n    backends: [http://a:1]\n", nil, `lb.yaml:2: pools.a b: invalid pool name "a b"`},
		{"empty pool", "pools:\n  api:\n    policy: p2c\n", nil, "lb.yaml:2: pools.api: no backends: give backends, dns or etcd"},
		{"duplicate backend in a pool", "pools:\n  api:\n    backends:\n      - http://a:1\n      - http://A:1/\n", nil,
			`lb.yaml:5: pools.api.backends[1]: duplicate backend "http://A:1/" (of pools.api.backends[0])`},
		{"duplicate backend in a pool, spelt otherwise", "pools:\n  api:\n    backends:\n      - http://127.0.0.1:24081\n      - http://[::ffff:127.0.0.1]:024081\n", nil,
			`lb.yaml:5: pools.api.backends[1]: duplicate backend "http://[::ffff:127.0.0.1]:024081" (of pools.api.backends[0])`},
		{"duplicate backend in a pool, with a trailing dot", "pools:\n  api:\n    backends:\n      - http://api.internal.:8080\n      - http://API.internal:8080 weight=2\n", nil,
			`lb.yaml:5: pools.api.backends[1]: duplicate backend "http://API.internal:8080 weight=2" (of pools.api.backends[0])`},
		{"backend at a short IPv4 form", "pools:\n  api:\n    backends:\n      - http://0x7f.1:8080\n", nil,
			`lb.yaml:4: pools.api.backends[0]: invalid backend "http://0x7f.1:8080": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"bad policy", "pools:\n  api:\n    backends: [http://a:1]\n    policy: fastest\n", nil,
			`lb.yaml:4: pools.api.policy: invalid policy "fastest"`},
		{"hash key without hash", "pools:\n  api:\n    backends: [http://a:1]\n    hash-key: uri\n", nil,
			`lb.yaml:4: pools.api.hash-key: only used with policy hash (the pool's policy is "round-robin")`},
		{"bad health path", "pools:\n  api:\n    backends: [http://a:1]\n    health-path: healthz\n", nil,
			`lb.yaml:4: pools.api.health-path: invalid path "healthz": must start with /`},
		{"pool named default beside backends", "backends: [http://a:1]\npools:\n  default:\n    backends: [http://b:1]\n", nil,
			`lb.yaml:3: pools.default: the pool that the top-level backends make is called "default"`},
		{"dns without port", "pools:\n  api:\n    dns: api.internal\n", nil, "lb.yaml:3: pools.api.dns: api.internal: A records need a port"},
		{"dns name at a short IPv4 form", "pools:\n  api:\n    dns: 127.1:8080\n", nil,
			`lb.yaml:3: pools.api.dns: invalid name "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"dns name at a hexadecimal IPv4 form", "pools:\n  api:\n    dns:\n      name: 0x7f.1\n      port: 8080\n", nil,
			`lb.yaml:4: pools.api.dns: invalid name "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"dns name that is an IP address", "pools:\n  api:\n    dns: 10.0.0.1:8080\n", nil,
			`lb.yaml:3: pools.api.dns: invalid name "10.0.0.1": an IP address, which has no records to look up (list it in backends instead)`},
		{"dns name that is an IP address with a trailing dot", "pools:\n  api:\n    dns: 10.0.0.1.:8080\n", nil,
			`lb.yaml:3: pools.api.dns: invalid name "10.0.0.1.": an IP address takes no trailing dot`},
		{"dns name with an empty label", "pools:\n  api:\n    dns: _api.._tcp.example.com\n", nil,
			`lb.yaml:3: pools.api.dns: invalid name "_api.._tcp.example.com": an empty label (a dot at the start, or two in a row), which no name has`},
		{"dns resolver at a short IPv4 form", "pools:\n  api:\n    dns: {name: _api._tcp.example.com, resolver: \"2130706433:53\"}\n", nil,
			`lb.yaml:3: pools.api.dns: invalid resolver "2130706433:53": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{"dns resolver on port 0", "pools:\n  api:\n    dns: {name: api.internal, port: 8080, resolver: \"127.0.0.1:0\"}\n", nil,
			`lb.yaml:3: pools.api.dns: invalid resolver "127.0.0.1:0": port "0": want 1-65535`},
		{"dns resolver on a port out of range", "pools:\n  api:\n    dns:\n      name: _api._tcp.example.com\n      resolver: \"[::1]:65536\"\n", nil,
			`lb.yaml:4: pools.api.dns: invalid resolver "[::1]:65536": port "65536": want 1-65535`},
		{"dns resolver on a named port", "pools:\n  api:\n    dns: {name: api.internal, port: 8080, resolver: \"localhost:domain\"}\n", nil,
			`lb.yaml:3: pools.api.dns: invalid resolver "localhost:domain": port "domain": want 1-65535`},
		{"unknown dns key", "pools:\n  api:\n    dns:\n      name: api.internal\n      ttl: 5s\n", nil,
			"lb.yaml:5: pools.api.dns.ttl: unknown key"},
		{"bad dns refresh", "pools:\n  api:\n    dns: {name: _a._tcp.x, refresh: soon}\n", nil,
			`lb.yaml:3: pools.api.dns.refresh: invalid duration "soon"`},
		{"etcd without endpoints", "pools:\n  api:\n    etcd: {prefix: /lb/}\n", nil, "lb.yaml:3: pools.api.etcd: no endpoints"},
		{"bad etcd endpoint", "pools:\n  api:\n    etcd: {endpoints: [127.0.0.1:2379], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "127.0.0.1:2379"`},
		{"etcd endpoint at a short IPv4 form", "pools:\n  api:\n    etcd: {endpoints: [\"http://127.0.0.1:2379\", \"http://127.1:2379\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://127.1:2379": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"etcd endpoint at a hexadecimal IPv4 form", "pools:\n  api:\n    etcd:\n      endpoints:\n        - https://0x7f.1:2379\n      prefix: /lb/\n", nil,
			`lb.yaml:4: pools.api.etcd: invalid endpoint "https://0x7f.1:2379": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"etcd endpoint at an IP address with a trailing dot", "pools:\n  api:\n    etcd: {endpoints: [\"http://127.0.0.1.:2379\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://127.0.0.1.:2379": host "127.0.0.1.": an IP address takes no trailing dot`},
		{"etcd endpoint with an empty label", "pools:\n  api:\n    etcd: {endpoints: [\"http://etcd..internal:2379\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://etcd..internal:2379": host "etcd..internal": an empty label`},
		{"etcd endpoint without a host", "pools:\n  api:\n    etcd: {endpoints: [\"http://:2379\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://:2379": missing host`},
		{"etcd endpoint without a port", "pools:\n  api:\n    etcd: {endpoints: [\"http://[::1]\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://[::1]": missing port`},
		{"etcd endpoint on port 0", "pools:\n  api:\n    etcd: {endpoints: [\"http://etcd.internal:0\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://etcd.internal:0": invalid port "0": want 1-65535`},
		{"etcd endpoint on a port out of range", "pools:\n  api:\n    etcd: {endpoints: [\"http://[::1]:65536\"], prefix: /lb/}\n", nil,
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://[::1]:65536": invalid port "65536": want 1-65535`},
		{"alert webhook at a short IPv4 form", "backends: [http://a:1]\nalert-webhook:\n  - http://hooks.local/a\n  - http://127.1:8080/b\n", nil,
			`lb.yaml:3: alert-webhook: invalid alert-webhook "http://127.1:8080/b": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{"alert webhook at an IP address with a trailing dot", "backends: [http://a:1]\nalert-webhook: https://127.0.0.1.:8443/hook\n", nil,
			`lb.yaml:2: alert-webhook: invalid alert-webhook "https://127.0.0.1.:8443/hook": host "127.0.0.1.": an IP address takes no trailing dot`},
		{"alert webhook on port 0", "backends: [http://a:1]\nalert-webhook: [\"http://hooks.local:0/a\"]\n", nil,
			`lb.yaml:2: alert-webhook: invalid alert-webhook "http://hooks.local:0/a": invalid port "0": want 1-65535`},
		{"route to an unknown pool", "pools:\n  api:\n    backends: [http://a:1]\nroutes:\n  - path_prefix: /x/\n    pool: nope\n", nil,
			`lb.yaml:5: routes[0]: unknown pool "nope" (pools: api)`},
		{"route without pool", "backends: [http://a:1]\nroutes:\n  - host: a.com\n", nil, "lb.yaml:3: routes[0]: no pool"},
		{"unknown route key", "backends: [http://a:1]\nroutes:\n  - prefix: /a/\n    pool: default\n", nil,
			"lb.yaml:3: routes[0].prefix: unknown key (did you mean path_prefix?)"},
		{"bad route host", "backends: [http://a:1]\nroutes:\n  - host: a.*.com\n    pool: default\n", nil,
			`lb.yaml:3: routes[0]: invalid host "a.*.com"`},
		{"route path without slash", "backends: [http://a:1]\nroutes:\n  - path_prefix: api\n    pool: default\n", nil,
			`lb.yaml:3: routes[0]: invalid path prefix "api": must start with /`},
		{"duplicate route", "backends: [http://a:1]\nroutes:\n  - {host: a.com, pool: default}\n  - {host: A.com, pool: default}\n", nil,
			"lb.yaml:4: routes[1]: the same host and path prefix as the route at line 3"},
		{"listeners and port", "backends: [http://a:1]\nport: 3030\nlisteners: [\":3031\"]\n", nil,
			"lb.yaml:3: listeners: give listeners, or host, port and tls-port, not both (port is set too)"},
		{"bad listener", "backends: [http://a:1]\nlisteners: [\"3031\"]\n", nil,
			`lb.yaml:2: listeners[0]: invalid address "3031": want host:port or :port`},
		{"listener on a bad IP", "backends: [http://a:1]\nlisteners: [\":3031\", \"999.1.1.1:3032\"]\n", nil,
			`lb.yaml:2: listeners[1]: invalid address "999.1.1.1:3032": host "999.1.1.1": not an IPv4 address, and no host name is all numbers`},
		{"listener on a short IPv4 form", "backends: [http://a:1]\nlisteners: [\":3031\", \"127.1:3032\"]\n", nil,
			`lb.yaml:2: listeners[1]: invalid address "127.1:3032": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"listener on a hexadecimal IPv4 form", "backends: [http://a:1]\nlisteners:\n  - address: 0x7f.1:3031\n", nil,
			`lb.yaml:3: listeners[0]: invalid address "0x7f.1:3031": host "0x7f.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{"listener on an IPv4 address as one number", "backends: [http://a:1]\nlisteners: [\"2130706433:3031\"]\n", nil,
			`lb.yaml:2: listeners[0]: invalid address "2130706433:3031": host "2130706433": an IPv4 address takes the dotted-decimal form`},
		{"listener on an octal IPv4 form", "backends: [http://a:1]\nlisteners: [\"0177.0.0.1:3031\"]\n", nil,
			`lb.yaml:2: listeners[0]: invalid address "0177.0.0.1:3031": host "0177.0.0.1": an IPv4 address takes the dotted-decimal form`},
		{"listener on an IP address with a trailing dot", "backends: [http://a:1]\nlisteners: [\"127.0.0.1.:3031\"]\n", nil,
			`lb.yaml:2: listeners[0]: invalid address "127.0.0.1.:3031": host "127.0.0.1.": an IP address takes no trailing dot, which Go's resolver does not read as one (write 127.0.0.1)`},
		{"listener on a name with an empty label", "backends: [http://a:1]\nlisteners: [\"a..b:3031\"]\n", nil,
			`lb.yaml:2: listeners[0]: invalid address "a..b:3031": host "a..b": an empty label (a dot at the start, or two in a row), which no name has`},
		{"listener on a name that does not resolve", "backends: [http://a:1]\nlisteners:\n  - address: notahost.invalid:3031\n", nil,
			`lb.yaml:3: listeners[0]: invalid address "notahost.invalid:3031": host "notahost.invalid": not an IP address, and the name does not resolve`},
		{"bad host key", "backends: [http://a:1]\nhost: 999.1.1.1\n", nil, `lb.yaml:2: host: invalid host "999.1.1.1": not an IPv4 address`},
		{"host key at a short IPv4 form", "backends: [http://a:1]\nhost: 127.1\n", nil,
			`lb.yaml:2: host: invalid host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{"host key with a trailing dot on an IP", "backends: [http://a:1]\nhost: 127.0.0.1.\n", nil,
			`lb.yaml:2: host: invalid host "127.0.0.1.": an IP address takes no trailing dot`},
		{"admin-addr key at a short IPv4 form", "backends: [http://a:1]\nadmin-addr: 0x7f.1:9030\n", nil,
			`lb.yaml:2: admin-addr: invalid admin-addr "0x7f.1:9030": host "0x7f.1": an IPv4 address takes the dotted-decimal form`},
		{"admin-addr key with an empty label", "backends: [http://a:1]\nadmin-addr: .localhost:9030\n", nil,
			`lb.yaml:2: admin-addr: invalid admin-addr ".localhost:9030": host ".localhost": an empty label`},
		{"upstream proxy at a short IPv4 form", "backends: [http://a:1]\nupstream-proxy: http://127.1:3128\n", nil,
			`lb.yaml:2: upstream-proxy: invalid upstream-proxy "http://127.1:3128": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1;`},
		{"upstream proxy at an IP address with a trailing dot", "backends: [http://a:1]\nupstream-proxy: socks5://127.0.0.1.:1080\n", nil,
			`lb.yaml:2: upstream-proxy: invalid upstream-proxy "socks5://127.0.0.1.:1080": host "127.0.0.1.": an IP address takes no trailing dot`},
		{"duplicate listener", "backends: [http://a:1]\nlisteners: [\":3031\", \":3031\"]\n", nil,
			`lb.yaml:2: listeners[1]: address ":3031" is listed twice`},
		{"duplicate listener, with a trailing dot", "backends: [http://a:1]\nlisteners: [\"localhost:3031\", \"localhost.:3031\"]\n", nil,
			`lb.yaml:2: listeners[1]: address "localhost.:3031" is listed twice (first at line 2)`},
		{"duplicate listener, spelt otherwise", "backends: [http://a:1]\nlisteners:\n  - 127.0.0.1:3031\n  - \"[::ffff:127.0.0.1]:03031\"\n", nil,
			`lb.yaml:4: listeners[1]: address "[::ffff:127.0.0.1]:03031" is listed twice (first at line 3)`},
		{"listener on the admin port, with a trailing dot", "backends: [http://a:1]\nadmin-addr: localhost.:9030\nlisteners: [\"localhost:9030\"]\n", nil,
			`lb.yaml:3: listeners[0]: address "localhost:9030" is the admin interface's`},
		{"tls listener without certificates", "backends: [http://a:1]\nlisteners:\n  - address: \":3443\"\n    tls: true\n", nil,
			"lb.yaml:3: listeners[0]: tls needs tls-cert and tls-key"},
		{"listener on the admin port", "backends: [http://a:1]\nadmin-addr: 127.0.0.1:9030\nlisteners: [\":9030\"]\n", nil,
			`lb.yaml:3: listeners[0]: address ":9030" is the admin interface's`},
		{"missing certificate file", "backends: [http://a:1]\ntls-cert: /nonexistent/a.crt\ntls-key: /nonexistent/a.key\n", nil,
			`lb.yaml:2: tls-cert: TLS certificate "/nonexistent/a.crt": no such file or directory`},
		{"merge key", "x: &x {policy: p2c}\npools:\n  api:\n    <<: *x\n", nil, "lb.yaml:1: x: unknown key"},
		{"a flag on the command line is still checked", "backends: [http://a:1]\n", []string{"-port=0"}, "invalid -port 0: want 1-65535"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, path, err := parseConfig(t, tc.body, tc.args...)
			want := strings.ReplaceAll(tc.want, "lb.yaml", path)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v\nwant %q", err, want)
			}
			if _, ok := err.(*usageError); err != nil && !ok {
				t.Errorf("error %T: a bad configuration must exit 2", err)
			}
		})
	}
}

// TestConfigDocumentMarkers: a file may start its one document with "---"
// and end it with "..." or an empty "---".
func TestConfigDocumentMarkers(t *testing.T) {
	for _, body := range []string{
		"---\nbackends: [http://a:1]\nport: 4000\n",
		"backends: [http://a:1]\nport: 4000\n...\n",
		"backends: [http://a:1]\nport: 4000\n---\n# nothing more\n",
	} {
		o, _, err := parseConfig(t, body)
		if err != nil || o.addr != ":4000" {
			t.Errorf("%q: %v", body, err)
		}
	}
}

// TestConfigExample loads examples/lb.yaml, the file the README shows.
func TestConfigExample(t *testing.T) {
	o, err := parseFlags([]string{"-config=../../examples/lb.yaml"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c := o.proxy
	if len(c.Backends) != 0 || len(c.Pools) != 5 || len(c.Routes) != 6 {
		t.Fatalf("%d default backends, %d pools, %d routes; want 0, 5, 6", len(c.Backends), len(c.Pools), len(c.Routes))
	}
	byName := map[string]proxy.PoolConfig{}
	for _, pc := range c.Pools {
		byName[pc.Name] = pc
	}
	web, api, search, users, grpc := byName["web"], byName["api"], byName["search"], byName["users"], byName["grpc"]
	if len(grpc.Backends) != 1 || !strings.Contains(grpc.Backends[0], "proto=h2c health=grpc") {
		t.Errorf("grpc: %+v", grpc)
	}
	if len(web.Backends) != 2 || web.StickyCookie != "lb_web" || policyOf(web.Policy) != "round-robin" {
		t.Errorf("web: %+v", web)
	}
	if len(api.Backends) != 2 || policyOf(api.Policy) != "least-conn" || api.HealthPath != "/health" {
		t.Errorf("api: %+v", api)
	}
	if d, ok := search.Discovery[0].(*discovery.DNS); !ok || d.Type != discovery.TypeSRV || d.Refresh != 30*time.Second {
		t.Errorf("search: %+v", search.Discovery)
	}
	if e, ok := users.Discovery[0].(*discovery.Etcd); !ok || e.Prefix != "/lb/users/" || policyOf(users.Policy) != "hash header:X-User-ID" {
		t.Errorf("users: %+v %v", users.Discovery, users.Policy)
	}
	if r := c.Routes[len(c.Routes)-1]; r.Pool != "web" || r.Host != "" || r.PathPrefix != "" {
		t.Errorf("the last route is %+v, want the default route to web", r)
	}
	if len(o.listeners) != 1 || o.listeners[0].addr != ":3030" || o.adminAddr != "127.0.0.1:9030" {
		t.Errorf("listeners %+v, admin %q", o.listeners, o.adminAddr)
	}
	if c.Health.Interval != 5*time.Second || c.Retries != 2 || c.BackendTimeout != 30*time.Second {
		t.Errorf("settings %+v", c)
	}
	if err := proxy.Check(c); err != nil {
		t.Errorf("the proxy refuses it: %v", err)
	}
}

func policyOf(p pool.Policy) string {
	if s, ok := p.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

// TestConfigAndFlags: the file sets any flag; one given on the command line
// wins; the top-level policy and friends are the pools' defaults.
func TestConfigAndFlags(t *testing.T) {
	body := `
backends: http://a:1, http://b:1 weight=2
port: 4000
retries: 5
policy: hash
hash-key: cookie:sid
sticky-cookie: lb
health-path: /hc
alert-webhook:
  - http://hooks.local/a
  - http://hooks.local/b
trusted-proxies: [10.0.0.0/8, 192.168.0.0/16]
max-body-size: 1MiB
pools:
  api:
    backends: [http://c:1]
  batch:
    backends: [http://d:1]
    policy: p2c
    sticky-cookie: batch_lb
    health-path: /ping
`
	o, _, err := parseConfig(t, body, "-port=5000", "-retries=1")
	if err != nil {
		t.Fatal(err)
	}
	c := o.proxy
	if o.addr != ":5000" || c.Retries != 1 {
		t.Errorf("addr %q retries %d: the command line must win", o.addr, c.Retries)
	}
	if !slices.Equal(c.Backends, []string{"http://a:1", "http://b:1 weight=2"}) || policyOf(c.Policy) != "hash cookie:sid" || c.StickyCookie != "lb" {
		t.Errorf("default pool: %v %v %q", c.Backends, c.Policy, c.StickyCookie)
	}
	if c.Health.Path != "/hc" || c.MaxBodySize != 1<<20 || len(c.TrustedProxies) != 2 || len(o.alertURLs) != 2 {
		t.Errorf("settings: %+v alerts %v", c, o.alertURLs)
	}
	api, batch := c.Pools[0], c.Pools[1]
	if policyOf(api.Policy) != "hash cookie:sid" || api.StickyCookie != "lb" || api.HealthPath != "" {
		t.Errorf("api takes the defaults: %v %q %q", api.Policy, api.StickyCookie, api.HealthPath)
	}
	if policyOf(batch.Policy) != "p2c" || batch.StickyCookie != "batch_lb" || batch.HealthPath != "/ping" {
		t.Errorf("batch says its own: %v %q %q", batch.Policy, batch.StickyCookie, batch.HealthPath)
	}
	if api.Policy == c.Policy {
		t.Error("pools share a policy instance")
	}

	// -backends on the command line replaces the file's.
	o, _, err = parseConfig(t, body, "-backends=http://z:1")
	if err != nil || !slices.Equal(o.proxy.Backends, []string{"http://z:1"}) {
		t.Errorf("-backends override: %v %v", o.proxy.Backends, err)
	}
	// -port on the command line replaces the file's listeners.
	o, _, err = parseConfig(t, "backends: [http://a:1]\nlisteners: [\":4001\", \"127.0.0.1:4002\"]\n", "-port=4003")
	if err != nil || len(o.listeners) != 1 || o.listeners[0].addr != ":4003" {
		t.Errorf("-port override: %+v %v", o.listeners, err)
	}
}

// TestConfigListeners: several listeners, TLS ones with the certificates.
func TestConfigListeners(t *testing.T) {
	dir := t.TempDir()
	cert, key := testpki.NewCA(t, "test CA").Issue(t, "localhost").WriteFiles(t, dir, "lb")
	body := `
backends: [http://a:1]
tls-cert: ` + cert + `
tls-key: ` + key + `
redirect-https: true
listeners:
  - ":8080"
  - address: 127.0.0.1:8081
  - address: ":8443"
    tls: true
`
	o, _, err := parseConfig(t, body)
	if err != nil {
		t.Fatal(err)
	}
	want := []listenerSpec{{addr: ":8080", line: 7}, {addr: "127.0.0.1:8081", line: 8}, {addr: ":8443", tls: true, line: 9}}
	if !slices.Equal(o.listeners, want) {
		t.Errorf("listeners %+v, want %+v", o.listeners, want)
	}
	if o.proxy.TLS == nil || o.proxy.TLS.RedirectPort != 8443 || o.tlsAddr != ":8443" || o.addr != ":8080" {
		t.Errorf("TLS %+v at %q, plain at %q", o.proxy.TLS, o.tlsAddr, o.addr)
	}
	_, path, err := parseConfig(t, "backends: [http://a:1]\ntls-cert: "+cert+"\ntls-key: "+key+"\nlisteners: [\":8080\"]\n")
	if want := path + ":4: listeners: tls-cert is given but no listener has tls: true"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestConfigListenerHosts: a listener's host is an IP address, IPv6 in
// brackets, or a name that resolves, listened on in one form however it is
// spelt (a name without its trailing dot, an IP address in its shortest
// form, the port a number), as are the file's host and admin-addr keys.
func TestConfigListenerHosts(t *testing.T) {
	for _, tc := range []struct {
		body      string
		addr      string // the first listener's address
		adminAddr string
	}{
		{"listeners: [\"127.0.0.1:3031\"]\n", "127.0.0.1:3031", "127.0.0.1:9030"},
		{"listeners: [\"localhost:3031\"]\n", "localhost:3031", "127.0.0.1:9030"},
		{"listeners: [\"LocalHost.:03031\"]\n", "localhost:3031", "127.0.0.1:9030"},
		{"listeners: [\"[::1]:3031\"]\n", "[::1]:3031", "127.0.0.1:9030"},
		{"listeners: [\"[::ffff:127.0.0.1]:3031\"]\n", "127.0.0.1:3031", "127.0.0.1:9030"},
		{"listeners: [\":3031\"]\nadmin-addr: localhost.:9031\n", ":3031", "localhost:9031"},
		{"host: localhost.\nport: 3032\nadmin-addr: \"[::1]:9031\"\n", "localhost:3032", "[::1]:9031"},
		{"host: \"::1\"\n", "[::1]:3030", "127.0.0.1:9030"},
	} {
		o, _, err := parseConfig(t, "backends: [http://a:1]\n"+tc.body)
		if err != nil {
			t.Errorf("%q: %v", tc.body, err)
			continue
		}
		if o.listeners[0].addr != tc.addr || o.addr != tc.addr || o.adminAddr != tc.adminAddr {
			t.Errorf("%q: listening on %q (%q) and %q, want %q and %q", tc.body, o.listeners[0].addr, o.addr, o.adminAddr, tc.addr, tc.adminAddr)
		}
	}
}

// TestConfigDNSNames: a dns source's name and resolver take the forms a
// host does, a name's trailing dot being the same name.
func TestConfigDNSNames(t *testing.T) {
	for _, tc := range []struct {
		dns, name, resolver string
	}{
		{"api.internal:8080", "api.internal", ""},
		{"API.Internal.:8080", "api.internal", ""},
		{"localhost:8080", "localhost", ""},
		{"_api._tcp.example.com.", "_api._tcp.example.com", ""},
		{"{name: api.internal., port: 8080, resolver: \"127.0.0.1:53\"}", "api.internal", "127.0.0.1:53"},
		{"{name: api.internal, port: 8080, resolver: \"[::1]:53\"}", "api.internal", "[::1]:53"},
		{"{name: api.internal, port: 8080, resolver: \"localhost.:53\"}", "api.internal", "localhost.:53"},
	} {
		o, _, err := parseConfig(t, "pools:\n  api:\n    dns: "+tc.dns+"\n")
		if err != nil {
			t.Errorf("dns: %s: %v", tc.dns, err)
			continue
		}
		d, ok := o.proxy.Pools[0].Discovery[0].(*discovery.DNS)
		if !ok || d.Name != tc.name || d.Resolver != tc.resolver {
			t.Errorf("dns: %s: %+v, want name %q and resolver %q", tc.dns, o.proxy.Pools[0].Discovery[0], tc.name, tc.resolver)
		}
	}
}

// TestCheckConfigRefusesHosts: an alert webhook, an etcd endpoint or a
// DNS resolver whose host breaks the rules of every host, or whose port is
// no port, fails -check-config with status 2 and one line naming the
// setting and the value, as a start would.
func TestCheckConfigRefusesHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		file string // the configuration file's body, if any
		want string // stderr; "lb.yaml" stands for the file's path
	}{
		{"webhook flag at a short IPv4 form", []string{"-backends=http://127.0.0.1:1", "-alert-webhook=http://127.1:8080/hook"}, "",
			`invalid -alert-webhook "http://127.1:8080/hook": host "127.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"webhook flag on a port out of range", []string{"-backends=http://127.0.0.1:1", "-alert-webhook=https://hooks.example:70000/hook"}, "",
			`invalid -alert-webhook "https://hooks.example:70000/hook": invalid port "70000": want 1-65535`},
		{"webhook key at a hexadecimal IPv4 form", nil, "backends: [http://127.0.0.1:1]\nalert-webhook: [\"http://0x7f.1/hook\"]\n",
			`lb.yaml:2: alert-webhook: invalid alert-webhook "http://0x7f.1/hook": host "0x7f.1": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"etcd endpoint at an IPv4 address as one number", nil, "pools:\n  api:\n    etcd: {endpoints: [\"http://2130706433:2379\"], prefix: /lb/}\n",
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://2130706433:2379": host "2130706433": an IPv4 address takes the dotted-decimal form, four numbers without leading zeros (C's inet_aton reads this one as 127.0.0.1; Go's resolver does not read it)`},
		{"etcd endpoint on port 0", nil, "pools:\n  api:\n    etcd: {endpoints: [\"http://[::1]:0\"], prefix: /lb/}\n",
			`lb.yaml:3: pools.api.etcd: invalid endpoint "http://[::1]:0": invalid port "0": want 1-65535`},
		{"dns resolver on port 0", nil, "pools:\n  api:\n    dns: {name: api.internal, port: 8080, resolver: \"[::1]:0\"}\n",
			`lb.yaml:3: pools.api.dns: invalid resolver "[::1]:0": port "0": want 1-65535`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, want := tc.args, tc.want
			if tc.file != "" {
				path := writeConfig(t, tc.file)
				args = append(args, "-config="+path)
				want = strings.ReplaceAll(want, "lb.yaml", path)
			}
			var out, errs bytes.Buffer
			if code := run(append([]string{"-check-config"}, args...), &out, &errs); code != 2 || errs.String() != "load-balancer: "+want+"\n" {
				t.Errorf("exit %d, stderr %q\nwant exit 2 and %q", code, errs.String(), want)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-check-config", "-config=../../examples/lb.yaml"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "configuration OK: ../../examples/lb.yaml: 5 pools, 5 static backends, 2 discovery sources, 6 routes, 1 listeners") {
		t.Errorf("output %q", out.String())
	}
	path := writeConfig(t, "pools:\n  api:\n    backends: [htp://x]\n")
	out.Reset()
	errs.Reset()
	if code := run([]string{"-check-config", "-config=" + path}, &out, &errs); code != 2 {
		t.Errorf("exit %d for a bad file, want 2", code)
	}
	if want := path + `:3: pools.api.backends[0]: invalid backend "htp://x"`; !strings.Contains(errs.String(), want) {
		t.Errorf("stderr %q, want %q", errs.String(), want)
	}
	if code := run([]string{"-check-config", "-config=/nonexistent/lb.yaml"}, &out, &errs); code != 2 ||
		!strings.Contains(errs.String(), `invalid -config "/nonexistent/lb.yaml": no such file or directory`) {
		t.Errorf("missing file: exit %d, %q", code, errs.String())
	}

	// Flags alone are checked as a start would check them: a certificate
	// and a key that do not belong together are refused, naming both.
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	cert, _ := ca.Issue(t, "localhost").WriteFiles(t, dir, "a")
	_, key := ca.Issue(t, "localhost").WriteFiles(t, dir, "b")
	errs.Reset()
	if code := run([]string{"-check-config", "-backends=http://127.0.0.1:1", "-tls-cert=" + cert, "-tls-key=" + key}, &out, &errs); code != 2 ||
		!strings.Contains(errs.String(), "does not match") || !strings.Contains(errs.String(), key) {
		t.Errorf("mismatched pair by flags: exit %d, %q; want 2 naming %s", code, errs.String(), key)
	}
	// And an access log that cannot be opened.
	errs.Reset()
	missing := filepath.Join(dir, "no-such-dir", "access.log")
	if code := run([]string{"-check-config", "-backends=http://127.0.0.1:1", "-access-log=" + missing}, &out, &errs); code != 2 ||
		!strings.Contains(errs.String(), missing) {
		t.Errorf("access log in a missing directory: exit %d, %q; want 2 naming it", code, errs.String())
	}
}
