package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rishichirchi/Load-Balancee/internal/hostname"
	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/discovery"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The configuration file (-config=FILE) is YAML. Its top-level keys are the
// flags, by the same names and with the same values ("health-interval: 5s"),
// and three more that only a file can say: listeners, pools and routes. A
// flag given on the command line overrides the file's key. Every error names
// the file, the line and the key:
//
//	lb.yaml:12: pools.api.backends[1]: invalid backend "htp://x": unsupported scheme "htp"
//
// go.yaml.in/yaml/v3 reads it: the YAML organisation's continuation of
// gopkg.in/yaml.v3 (archived), with the same node API, which keeps the line
// of every key and value so that errors can name them.

// configFile is a parsed configuration file.
type configFile struct {
	path  string
	hosts *listenHosts // checks the listeners' hosts

	settings []setting // keys that are flags, in file order

	listeners     []listenerSpec
	listenersLine int // 0 without listeners

	pools []*poolEntry
	// routes in file order.
	routes []routeEntry
}

// setting is a key that is a flag, with its value(s) as the flag takes them.
type setting struct {
	key    string
	values []string // one per Set; list flags take several
	line   int
}

// listenerSpec is an address to serve on, plain or TLS.
type listenerSpec struct {
	addr string
	tls  bool
	line int
}

// poolEntry is a pool as the file says it; policy and the like are resolved
// against the top-level defaults once the flags are known.
type poolEntry struct {
	name     string
	line     int
	backends []string
	dns      *discovery.DNS
	etcd     *discovery.Etcd
	keys     map[string]*yaml.Node // policy, hash-key, sticky-cookie, health-path
}

// routeEntry is a route and where it is written.
type routeEntry struct {
	route proxy.Route
	line  int
}

// Keys a file may not hold: they are about the command line itself.
var commandOnly = map[string]bool{"config": true, "check-config": true, "version": true, "h": true, "help": true}

// Flags whose value may be a YAML list, joined with commas (alert-webhook is
// set once per item).
var listFlags = map[string]bool{"backends": true, "tls-cert": true, "tls-key": true, "trusted-proxies": true, "alert-webhook": true}

// fileError is an error at a line of the file, about a key.
func (cf *configFile) errorf(line int, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line <= 0 {
		return invalid("%s: %s: %s", cf.path, key, msg)
	}
	return invalid("%s:%d: %s: %s", cf.path, line, key, msg)
}

// loadConfig reads and checks the file at path. flags are the names of the
// flags, which are keys too; hosts checks the listeners' hosts.
func loadConfig(path string, flags []string, hosts *listenHosts) (*configFile, error) {
	known := make(map[string]bool, len(flags))
	for _, f := range flags {
		known[f] = !commandOnly[f]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, invalid("invalid -config %q: %v", path, err)
	}
	cf := &configFile{path: path, hosts: hosts}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, cf.syntaxError(err)
	}
	// yaml reads the first document alone: keys after a "---" would be
	// ignored without a word. An empty one (a trailing "---") holds none.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, cf.syntaxError(err)
		}
		if len(next.Content) > 0 && !isEmpty(next.Content[0]) {
			return nil, cf.errorf(next.Line, "(top level)", "a second YAML document, whose keys would be ignored: give every key in one document")
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, invalid("%s: empty configuration", path)
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, cf.errorf(root.Line, "(top level)", "want a mapping of keys to values, such as port: 3030")
	}
	err = cf.eachKey(root, "", func(key string, k, v *yaml.Node) error {
		switch {
		case key == "listeners":
			return cf.parseListeners(v)
		case key == "pools":
			return cf.parsePools(v)
		case key == "routes":
			return cf.parseRoutes(v)
		case commandOnly[key]:
			return cf.errorf(k.Line, key, "not allowed in a configuration file: give it on the command line")
		case !known[key]:
			return cf.unknownKey(k, key, "", topKeys(flags))
		}
		return cf.parseSetting(key, v)
	})
	if err != nil {
		return nil, err
	}
	return cf, nil
}

// isEmpty reports whether n is a document's empty content: no value, or
// only a null.
func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError places a YAML parser's error in the file.
func (cf *configFile) syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return invalid("%s:%s: invalid YAML: %s", cf.path, m[1], m[2])
	}
	return invalid("%s: invalid YAML: %s", cf.path, strings.TrimPrefix(msg, "yaml: "))
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// eachKey calls fn for each key of mapping m, in order, refusing duplicate
// and non-scalar keys. prefix is m's path, for messages ("pools.api.").
func (cf *configFile) eachKey(m *yaml.Node, prefix string, fn func(key string, k, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return cf.errorf(k.Line, strings.TrimSuffix(prefix, "."), "keys must be plain names")
		}
		if k.Tag == "!!merge" {
			return cf.errorf(k.Line, prefix+k.Value, "merge keys (<<) are not supported: repeat the keys")
		}
		if first, dup := seen[k.Value]; dup {
			return cf.errorf(k.Line, prefix+k.Value, "given twice (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if err := fn(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

// unknownKey refuses a key, suggesting the nearest known one.
func (cf *configFile) unknownKey(k *yaml.Node, key, prefix string, known []string) error {
	msg := "unknown key"
	if s := nearest(key, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	return cf.errorf(k.Line, prefix+key, "%s", msg)
}

// scalar returns a scalar node's value; anything else is an error.
func (cf *configFile) scalar(v *yaml.Node, key string) (string, error) {
	switch {
	case v.Kind != yaml.ScalarNode:
		return "", cf.errorf(v.Line, key, "want a single value, not a %s", kindName(v))
	case v.Tag == "!!null":
		return "", cf.errorf(v.Line, key, "empty value")
	}
	return v.Value, nil
}

// list returns a sequence's scalar items with their lines, or a scalar as
// a comma-separated list.
func (cf *configFile) list(v *yaml.Node, key string) (items []string, lines []int, err error) {
	if v.Kind == yaml.ScalarNode {
		s, err := cf.scalar(v, key)
		if err != nil {
			return nil, nil, err
		}
		for _, item := range strings.Split(s, ",") {
			items = append(items, strings.TrimSpace(item))
			lines = append(lines, v.Line)
		}
		return items, lines, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, nil, cf.errorf(v.Line, key, "want a list, or a comma-separated string")
	}
	for i, item := range v.Content {
		item = resolve(item)
		s, err := cf.scalar(item, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, nil, err
		}
		items = append(items, s)
		lines = append(lines, item.Line)
	}
	return items, lines, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// parseSetting reads a key that is a flag.
func (cf *configFile) parseSetting(key string, v *yaml.Node) error {
	s := setting{key: key, line: v.Line}
	if listFlags[key] && v.Kind == yaml.SequenceNode {
		items, lines, err := cf.list(v, key)
		if err != nil {
			return err
		}
		if key == "backends" {
			for i, e := range items {
				if _, err := pool.NewBackend(e); err != nil {
					return cf.errorf(lines[i], fmt.Sprintf("backends[%d]", i), "%v", err)
				}
			}
		}
		if key == "alert-webhook" {
			s.values = items
		} else {
			s.values = []string{strings.Join(items, ",")}
		}
	} else {
		val, err := cf.scalar(v, key)
		if err != nil {
			return err
		}
		s.values = []string{val}
	}
	cf.settings = append(cf.settings, s)
	return nil
}

// setting returns the file's setting of key, if any.
func (cf *configFile) setting(key string) (setting, bool) {
	for _, s := range cf.settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// parseListeners reads
//
//	listeners:
//	  - ":3030"
//	  - address: 127.0.0.1:3443
//	    tls: true
func (cf *configFile) parseListeners(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return cf.errorf(v.Line, "listeners", "want a list of addresses, such as - \":3030\"")
	}
	cf.listenersLine = v.Line
	seen := map[string]int{}
	for i, item := range v.Content {
		item = resolve(item)
		path := fmt.Sprintf("listeners[%d]", i)
		l := listenerSpec{line: item.Line}
		switch item.Kind {
		case yaml.ScalarNode:
			a, err := cf.scalar(item, path)
			if err != nil {
				return err
			}
			l.addr = a
		case yaml.MappingNode:
			err := cf.eachKey(item, path+".", func(key string, k, v *yaml.Node) error {
				switch key {
				case "address":
					a, err := cf.scalar(v, path+".address")
					l.addr = a
					return err
				case "tls":
					b, err := cf.boolean(v, path+".tls")
					l.tls = b
					return err
				}
				return cf.unknownKey(k, key, path+".", []string{"address", "tls"})
			})
			if err != nil {
				return err
			}
			if l.addr == "" {
				return cf.errorf(item.Line, path, "no address")
			}
		default:
			return cf.errorf(item.Line, path, "want an address, or a mapping with address and tls")
		}
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			return cf.errorf(l.line, path, "invalid address %q: want host:port or :port, such as :3030", l.addr)
		}
		n, ok := hostname.Port(port)
		if !ok {
			return cf.errorf(l.line, path, "invalid address %q: port %q: want 1-65535", l.addr, port)
		}
		h, err := cf.hosts.check(host)
		if err != nil {
			return cf.errorf(l.line, path, "invalid address %q: host %q: %v", l.addr, host, err)
		}
		// Listened on as checked, which tells one address however it
		// is spelt (localhost. is localhost, ::ffff:127.0.0.1 is
		// 127.0.0.1, port 03031 is 3031).
		given := l.addr
		l.addr = net.JoinHostPort(h, strconv.Itoa(n))
		if first, dup := seen[l.addr]; dup {
			return cf.errorf(l.line, path, "address %q is listed twice (first at line %d)", given, first)
		}
		seen[l.addr] = l.line
		cf.listeners = append(cf.listeners, l)
	}
	return nil
}

func (cf *configFile) boolean(v *yaml.Node, key string) (bool, error) {
	s, err := cf.scalar(v, key)
	if err != nil {
		return false, err
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, cf.errorf(v.Line, key, "invalid value %q: want true or false", s)
	}
	return b, nil
}

// Keys of a pool, and of its discovery sources.
var (
	poolKeys = []string{"backends", "dns", "etcd", "policy", "hash-key", "sticky-cookie", "health-path"}
	dnsKeys  = []string{"name", "type", "port", "scheme", "refresh", "resolver", "options"}
	etcdKeys = []string{"endpoints", "prefix", "dial-timeout", "username", "password"}
)

// parsePools reads the pools mapping, name to pool.
func (cf *configFile) parsePools(v *yaml.Node) error {
	if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
		return cf.errorf(v.Line, "pools", "want a mapping of pool names to pools, such as api: {backends: [http://10.0.0.1:8080]}")
	}
	return cf.eachKey(v, "pools.", func(name string, k, pv *yaml.Node) error {
		path := "pools." + name
		if err := proxy.CheckPoolName(name); err != nil {
			return cf.errorf(k.Line, path, "%v", err)
		}
		if pv.Kind != yaml.MappingNode {
			return cf.errorf(pv.Line, path, "want a mapping with backends, dns or etcd")
		}
		pe := &poolEntry{name: name, line: k.Line, keys: map[string]*yaml.Node{}}
		err := cf.eachKey(pv, path+".", func(key string, k, v *yaml.Node) error {
			kp := path + "." + key
			switch key {
			case "backends":
				items, lines, err := cf.list(v, kp)
				if err != nil {
					return err
				}
				seen := map[string]int{}
				for i, e := range items {
					b, err := pool.NewBackend(e)
					if err != nil {
						return cf.errorf(lines[i], fmt.Sprintf("%s[%d]", kp, i), "%v", err)
					}
					if first, dup := seen[b.URL()]; dup {
						return cf.errorf(lines[i], fmt.Sprintf("%s[%d]", kp, i), "duplicate backend %q (of %s[%d])", e, kp, first)
					}
					seen[b.URL()] = i
				}
				pe.backends = items
			case "dns":
				d, err := cf.parseDNS(v, kp)
				pe.dns = d
				return err
			case "etcd":
				e, err := cf.parseEtcd(v, kp)
				pe.etcd = e
				return err
			case "policy", "hash-key", "sticky-cookie", "health-path":
				if _, err := cf.scalar(v, kp); err != nil {
					return err
				}
				pe.keys[key] = v
			default:
				return cf.unknownKey(k, key, path+".", poolKeys)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(pe.backends) == 0 && pe.dns == nil && pe.etcd == nil {
			return cf.errorf(k.Line, path, "no backends: give backends, dns or etcd")
		}
		cf.pools = append(cf.pools, pe)
		return nil
	})
}

// parseDNS reads a pool's dns source: a name ("api.internal:8080" for A and
// AAAA records on that port, "_api._tcp.example.com" for SRV), or a mapping
// of dnsKeys.
func (cf *configFile) parseDNS(v *yaml.Node, path string) (*discovery.DNS, error) {
	d := &discovery.DNS{}
	switch v.Kind {
	case yaml.ScalarNode:
		s, err := cf.scalar(v, path)
		if err != nil {
			return nil, err
		}
		if host, port, err := net.SplitHostPort(s); err == nil {
			d.Name = host
			if d.Port, err = strconv.Atoi(port); err != nil {
				return nil, cf.errorf(v.Line, path, "invalid port %q", port)
			}
		} else {
			d.Name = s
		}
	case yaml.MappingNode:
		err := cf.eachKey(v, path+".", func(key string, k, v *yaml.Node) error {
			kp := path + "." + key
			s, err := cf.scalar(v, kp)
			if err != nil {
				return err
			}
			switch key {
			case "name":
				d.Name = s
			case "type":
				d.Type = s
			case "port":
				if d.Port, err = strconv.Atoi(s); err != nil {
					return cf.errorf(v.Line, kp, "invalid port %q: want 1-65535", s)
				}
			case "scheme":
				d.Scheme = s
			case "refresh":
				if d.Refresh, err = time.ParseDuration(s); err != nil {
					return cf.errorf(v.Line, kp, "invalid duration %q: want one such as 30s", s)
				}
			case "resolver":
				d.Resolver = s
			case "options":
				d.Options = s
			default:
				return cf.unknownKey(k, key, path+".", dnsKeys)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	default:
		return nil, cf.errorf(v.Line, path, "want a name, or a mapping with name, type, port...")
	}
	if err := d.Check(); err != nil {
		return nil, cf.errorf(v.Line, path, "%s", strings.TrimPrefix(err.Error(), "dns: "))
	}
	return d, nil
}

// parseEtcd reads a pool's etcd source: a mapping of etcdKeys.
func (cf *configFile) parseEtcd(v *yaml.Node, path string) (*discovery.Etcd, error) {
	if v.Kind != yaml.MappingNode {
		return nil, cf.errorf(v.Line, path, "want a mapping with endpoints and prefix")
	}
	e := &discovery.Etcd{}
	err := cf.eachKey(v, path+".", func(key string, k, v *yaml.Node) error {
		kp := path + "." + key
		if key == "endpoints" {
			items, _, err := cf.list(v, kp)
			e.Endpoints = items
			return err
		}
		s, err := cf.scalar(v, kp)
		if err != nil {
			return err
		}
		switch key {
		case "prefix":
			e.Prefix = s
		case "dial-timeout":
			if e.DialTimeout, err = time.ParseDuration(s); err != nil {
				return cf.errorf(v.Line, kp, "invalid duration %q: want one such as 5s", s)
			}
		case "username":
			e.Username = s
		case "password":
			e.Password = s
		default:
			return cf.unknownKey(k, key, path+".", etcdKeys)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := e.Check(); err != nil {
		return nil, cf.errorf(v.Line, path, "%s", strings.TrimPrefix(err.Error(), "etcd: "))
	}
	return e, nil
}

// parseRoutes reads the routes list; pools are checked once all are known.
func (cf *configFile) parseRoutes(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return cf.errorf(v.Line, "routes", "want a list of routes, such as - {host: api.example.com, pool: api}")
	}
	for i, item := range v.Content {
		item = resolve(item)
		path := fmt.Sprintf("routes[%d]", i)
		if item.Kind != yaml.MappingNode {
			return cf.errorf(item.Line, path, "want a mapping with host, path_prefix and pool")
		}
		var r proxy.Route
		err := cf.eachKey(item, path+".", func(key string, k, v *yaml.Node) error {
			s, err := cf.scalar(v, path+"."+key)
			if err != nil {
				return err
			}
			switch key {
			case "host":
				r.Host = s
			case "path_prefix":
				r.PathPrefix = s
			case "pool":
				r.Pool = s
			default:
				return cf.unknownKey(k, key, path+".", []string{"host", "path_prefix", "pool"})
			}
			return nil
		})
		if err != nil {
			return err
		}
		if r.Pool == "" {
			return cf.errorf(item.Line, path, "no pool: say which pool gets these requests")
		}
		if err := proxy.CheckRoute(r); err != nil {
			return cf.errorf(item.Line, path, "%v", err)
		}
		cf.routes = append(cf.routes, routeEntry{route: r, line: item.Line})
	}
	return nil
}

// flagRef finds the flags a validation message names ("-health-timeout").
var flagRef = regexp.MustCompile(`-([a-z][a-z0-9-]*[a-z0-9])`)

// locate places an error about flags in the file, when the first flag it
// names that the file set (and the command line did not) is there: the
// message then reads "lb.yaml:7: health-timeout: invalid health-timeout
// 10s: ...".
func (cf *configFile) locate(err error, fromFile map[string]bool) error {
	var ue *usageError
	if !errors.As(err, &ue) || strings.HasPrefix(ue.msg, cf.path+":") {
		return err
	}
	for _, m := range flagRef.FindAllStringSubmatch(ue.msg, -1) {
		key := m[1]
		if !fromFile[key] {
			continue
		}
		s, _ := cf.setting(key)
		return cf.errorf(s.line, key, "%s", strings.Replace(ue.msg, "-"+key, key, 1))
	}
	return err
}

// nearest returns the candidate closest to s, if it is close enough to be a
// likely typo.
func nearest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		d := editDistance(s, c)
		if len(s) > 3 && strings.Contains(c, s) {
			d = 1 // "prefix" for "path_prefix"
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// topKeys are the keys a file may have at the top level.
func topKeys(flags []string) []string {
	keys := []string{"listeners", "pools", "routes"}
	for _, n := range flags {
		if !commandOnly[n] {
			keys = append(keys, n)
		}
	}
	return keys
}
