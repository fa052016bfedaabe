package main

import (
	"flag"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/rishichirchi/Load-Balancee/proxy"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// How a configuration file becomes options: its flag keys through the flags
// themselves (so the file takes every flag, checked the same way), then its
// pools, routes and listeners.

// fileFlags is a loaded file and the flags it set.
type fileFlags struct {
	file *configFile
	keys map[string]bool // flags the file set (the command line did not give them)
}

// applyFile loads the file at path and sets, from its keys, every flag of fs
// that the command line did not give; hosts checks its listeners' hosts.
func applyFile(fs *flag.FlagSet, path string, hosts *listenHosts) (fileFlags, error) {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	cf, err := loadConfig(path, names, hosts)
	if err != nil {
		return fileFlags{}, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	keys := map[string]bool{}
	for _, s := range cf.settings {
		if given[s.key] {
			continue // the command line overrides the file
		}
		for _, v := range s.values {
			if err := fs.Set(s.key, v); err != nil {
				return fileFlags{}, cf.errorf(s.line, s.key, "invalid value %q: %s", v, setError(fs.Lookup(s.key), err))
			}
		}
		keys[s.key] = true
	}
	return fileFlags{file: cf, keys: keys}, nil
}

// setError explains why a flag refused a value: the flag package says only
// "parse error" for its own types.
func setError(f *flag.Flag, err error) string {
	if msg := err.Error(); msg != "parse error" && msg != "value out of range" {
		return msg
	}
	switch fmt.Sprintf("%T", f.Value) {
	case "*flag.durationValue":
		return "want a duration such as 5s or 250ms"
	case "*flag.intValue":
		return "want a whole number"
	case "*flag.boolValue":
		return "want true or false"
	}
	return err.Error()
}

// applyConfig adds the file's pools, routes and listeners to o, once the
// flags (the file's included) are parsed: pools take the top-level policy,
// hash-key, sticky-cookie and health-path unless they say their own. set
// holds every flag given, by the command line or the file; fileKeys those
// of the file.
func applyConfig(o *options, cf *configFile, set, fileKeys map[string]bool) error {
	pools := map[string]bool{}
	if len(o.proxy.Backends) > 0 {
		pools[proxy.DefaultPool] = true
	}
	keyUsed := len(o.proxy.Backends) > 0 && o.policyName == pool.PolicyHash
	for _, pe := range cf.pools {
		path := "pools." + pe.name
		if pools[pe.name] {
			return cf.errorf(pe.line, path, "the pool that the top-level backends make is called %q: name this one otherwise", proxy.DefaultPool)
		}
		pools[pe.name] = true
		pc := proxy.PoolConfig{Name: pe.name, Backends: pe.backends, StickyCookie: o.proxy.StickyCookie}
		name, key := o.policyName, o.hashKey
		if v := pe.keys["policy"]; v != nil {
			if name = v.Value; !slices.Contains(pool.PolicyNames, name) {
				return cf.errorf(v.Line, path+".policy", "invalid policy %q: want round-robin, least-conn, p2c, random or hash", name)
			}
		}
		if v := pe.keys["hash-key"]; v != nil {
			k, err := pool.ParseKey(v.Value)
			if err != nil {
				return cf.errorf(v.Line, path+".hash-key", "%v", err)
			}
			if name != pool.PolicyHash {
				return cf.errorf(v.Line, path+".hash-key", "only used with policy hash (the pool's policy is %q)", name)
			}
			key = k
		} else if name == pool.PolicyHash {
			keyUsed = true
		}
		pol, err := pool.NewPolicy(name, key)
		if err != nil {
			return cf.errorf(pe.line, path, "%v", err)
		}
		pc.Policy = pol
		if v := pe.keys["sticky-cookie"]; v != nil {
			if err := pool.CheckToken(v.Value); err != nil {
				return cf.errorf(v.Line, path+".sticky-cookie", "invalid cookie name %q: %v", v.Value, err)
			}
			pc.StickyCookie = v.Value
		}
		if v := pe.keys["health-path"]; v != nil {
			if !strings.HasPrefix(v.Value, "/") {
				return cf.errorf(v.Line, path+".health-path", "invalid path %q: must start with /", v.Value)
			}
			pc.HealthPath = v.Value
		}
		if pe.dns != nil {
			pc.Discovery = append(pc.Discovery, pe.dns)
		}
		if pe.etcd != nil {
			pc.Discovery = append(pc.Discovery, pe.etcd)
		}
		o.proxy.Pools = append(o.proxy.Pools, pc)
	}
	if set["hash-key"] && !keyUsed && o.policyName != pool.PolicyHash {
		return invalid("invalid -hash-key %q: no pool uses policy hash", o.hashKey.String())
	}

	type routeKey struct{ host, prefix string }
	seen := map[routeKey]int{}
	for i, re := range cf.routes {
		path := fmt.Sprintf("routes[%d]", i)
		r := re.route
		if !pools[r.Pool] {
			return cf.errorf(re.line, path, "unknown pool %q (pools: %s)", r.Pool, strings.Join(slices.Sorted(maps.Keys(pools)), ", "))
		}
		k := routeKey{strings.TrimSuffix(strings.ToLower(r.Host), "."), r.PathPrefix}
		if first, dup := seen[k]; dup {
			return cf.errorf(re.line, path, "the same host and path prefix as the route at line %d", first)
		}
		seen[k] = re.line
		o.proxy.Routes = append(o.proxy.Routes, r)
	}

	if err := applyListeners(o, cf, set, fileKeys); err != nil {
		return err
	}
	if err := proxy.Check(o.proxy); err != nil {
		// Certificate files are read only here: place their errors at
		// their keys.
		for prefix, key := range map[string]string{"TLS certificate ": "tls-cert", "TLS key ": "tls-key"} {
			if st, ok := cf.setting(key); ok && fileKeys[key] && strings.HasPrefix(err.Error(), prefix) {
				return cf.errorf(st.line, key, "%v", err)
			}
		}
		return invalid("%s: %v", cf.path, err)
	}
	return nil
}

// applyListeners takes the file's listeners, unless the command line gives
// -host, -port or -tls-port: those then say where to listen, as without a
// file.
func applyListeners(o *options, cf *configFile, set, fileKeys map[string]bool) error {
	if cf.listenersLine == 0 {
		return nil
	}
	for _, k := range []string{"host", "port", "tls-port"} {
		if set[k] && !fileKeys[k] {
			return nil // the command line says where
		}
	}
	for _, k := range []string{"host", "port", "tls-port"} {
		if fileKeys[k] {
			return cf.errorf(cf.listenersLine, "listeners", "give listeners, or host, port and tls-port, not both (%s is set too)", k)
		}
	}
	o.listeners = cf.listeners
	o.addr, o.tlsAddr = "", ""
	for i, l := range cf.listeners {
		path := fmt.Sprintf("listeners[%d]", i)
		switch {
		case l.tls && o.proxy.TLS == nil:
			return cf.errorf(l.line, path, "tls needs tls-cert and tls-key")
		case l.tls && o.tlsAddr == "":
			o.tlsAddr = l.addr
			_, port, _ := net.SplitHostPort(l.addr)
			o.proxy.TLS.RedirectPort, _ = strconv.Atoi(port)
		case !l.tls && o.addr == "":
			o.addr = l.addr
		}
		if sameListener(o.adminAddr, l.addr) {
			return cf.errorf(l.line, path, "address %q is the admin interface's (admin-addr): give each its own port", l.addr)
		}
	}
	if o.proxy.TLS != nil && o.tlsAddr == "" {
		return cf.errorf(cf.listenersLine, "listeners", "tls-cert is given but no listener has tls: true")
	}
	if o.addr == "" {
		o.addr = o.tlsAddr
	}
	return nil
}

// sameListener reports whether two listen addresses would take the same
// port on a shared address.
func sameListener(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && pa == pb && (ha == hb || ha == "" || hb == "")
}
