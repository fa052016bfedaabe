package proxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// DefaultPool is the name of the pool Config.Backends makes.
const DefaultPool = "default"

// PoolConfig is a pool of backends besides Config.Backends', with its own
// balancing, affinity, health path and sources of backends. Routes say which
// requests it gets.
type PoolConfig struct {
	// Name is how routes, logs, metrics and the admin API know the pool:
	// letters, digits, '-', '_' and '.', starting with a letter or digit.
	// DefaultPool is Config.Backends' when that is set.
	Name string
	// Backends are the pool's static members, as Config.Backends says them.
	Backends []string
	// Discovery finds more members at run time (package discovery: DNS,
	// etcd). A pool needs Backends, Discovery or both; it may be empty while
	// discovery has found nothing yet, and then answers 502.
	Discovery []Discoverer
	// Policy balances the pool; nil means weighted round-robin. Give each
	// pool its own: policies keep per-pool state.
	Policy pool.Policy
	// StickyCookie is as Config.StickyCookie, for this pool; empty means
	// no affinity.
	StickyCookie string
	// HealthPath is the path of this pool's health checks; empty means
	// Config.Health.Path.
	HealthPath string
}

// Discoverer finds a pool's backends at run time: DNS records or keys in
// etcd (package discovery), or anything that can list addresses.
//
// One that also has a method Check() error, as discovery.DNS and
// discovery.Etcd have, is checked by New, Reload and Check before anything
// else uses it: an error refuses the configuration, naming the pool. Check
// may fill in defaults (String is called after it). It is called again by
// every Reload and Check given the discoverer, also while it runs: it must
// then find nothing to change.
type Discoverer interface {
	// Discover calls update with the complete list of the pool's backends,
	// in the syntax of Config.Backends ("http://10.0.0.7:8080 weight=2"),
	// when it first knows them and each time they change, until ctx ends;
	// it returns then, and calls update no more. Through a failure of its
	// source it keeps the last list (and reports the failure in its own
	// log) rather than send an empty one. update does not block for long.
	Discover(ctx context.Context, update func(entries []string))
	// String names the source with its settings, for logs: "dns
	// _api._tcp.example.com SRV". Two discoverers with the same String are
	// the same source: a reload that keeps it keeps it running, and keeps
	// the backends it found.
	String() string
}

// poolSpec is a validated pool: its configuration, with the static entries
// parsed.
type poolSpec struct {
	PoolConfig
	static []*pool.Backend // parsed Backends, in order
}

// poolSpecs validates the pools cfg describes: the default one from
// cfg.Backends, then cfg.Pools. It returns them with the name of the pool
// that takes requests no route names ("" for none).
func (c *Config) poolSpecs() (specs []*poolSpec, defaultPool string, err error) {
	all := c.Pools
	if len(c.Backends) > 0 {
		def := PoolConfig{
			Name:         DefaultPool,
			Backends:     c.Backends,
			Policy:       c.Policy,
			StickyCookie: c.StickyCookie,
		}
		all = append([]PoolConfig{def}, all...)
	}
	if len(all) == 0 {
		return nil, "", errors.New("no backends configured")
	}
	seen := make(map[string]bool, len(all))
	for _, pc := range all {
		if err := CheckPoolName(pc.Name); err != nil {
			return nil, "", err
		}
		if seen[pc.Name] {
			if pc.Name == DefaultPool && len(c.Backends) > 0 {
				return nil, "", fmt.Errorf("pool %q: the name of the pool Backends makes", pc.Name)
			}
			return nil, "", fmt.Errorf("pool %q: defined twice", pc.Name)
		}
		seen[pc.Name] = true
		if len(pc.Backends) == 0 && len(pc.Discovery) == 0 {
			return nil, "", fmt.Errorf("pool %q: no backends and no discovery", pc.Name)
		}
		if pc.StickyCookie != "" {
			if err := pool.CheckToken(pc.StickyCookie); err != nil {
				return nil, "", fmt.Errorf("pool %q: sticky cookie %q: %v", pc.Name, pc.StickyCookie, err)
			}
		}
		if pc.HealthPath != "" && pc.HealthPath[0] != '/' {
			return nil, "", fmt.Errorf("pool %q: health path %q: must start with /", pc.Name, pc.HealthPath)
		}
		if nilPointer(pc.Policy) {
			return nil, "", fmt.Errorf("pool %q: policy is a nil %T (make it with its constructor, such as pool.NewLeastConn)", pc.Name, pc.Policy)
		}
		keys := make(map[string]bool, len(pc.Discovery))
		for _, d := range pc.Discovery {
			if d == nil || nilPointer(d) {
				return nil, "", fmt.Errorf("pool %q: nil discoverer %T", pc.Name, d)
			}
			// Before String: Check fills in the defaults it names.
			if c, ok := d.(interface{ Check() error }); ok {
				if err := c.Check(); err != nil {
					return nil, "", fmt.Errorf("pool %q: %w", pc.Name, err)
				}
			}
			if keys[d.String()] {
				return nil, "", fmt.Errorf("pool %q: discovery %q given twice", pc.Name, d.String())
			}
			keys[d.String()] = true
		}
		s := &poolSpec{PoolConfig: pc}
		urls := make(map[string]string, len(pc.Backends))
		for _, raw := range pc.Backends {
			b, err := pool.NewBackend(raw)
			if err != nil {
				return nil, "", fmt.Errorf("pool %q: %w", pc.Name, err)
			}
			if first, dup := urls[b.URL()]; dup {
				return nil, "", fmt.Errorf("pool %q: duplicate backend %q (and %q)", pc.Name, raw, first)
			}
			urls[b.URL()] = raw
			s.static = append(s.static, b)
		}
		specs = append(specs, s)
	}
	switch {
	case seen[DefaultPool]:
		defaultPool = DefaultPool
	case len(specs) == 1:
		defaultPool = specs[0].Name
	}
	return specs, defaultPool, nil
}

// CheckPoolName accepts the names a pool may have: they read well in a URL,
// a metric label and a log line.
func CheckPoolName(name string) error {
	if name == "" {
		return errors.New("pool without a name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return fmt.Errorf("invalid pool name %q: letters, digits, '-', '_' and '.', starting with a letter or digit", name)
		}
	}
	return nil
}

// nilPointer reports whether v, an interface value given in a Config, holds
// a nil pointer (a typed nil, such as a *pool.LeastConn never made), which
// its methods would dereference on the first request.
func nilPointer(v any) bool {
	r := reflect.ValueOf(v)
	return r.Kind() == reflect.Pointer && r.IsNil()
}
