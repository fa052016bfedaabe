package proxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// Run-time control, as the admin API exposes it: every change goes through
// the same path as a reload (Proxy.mu, pool.Update, a new routing table), so
// requests never wait for it and backends that stay keep everything. Changes
// last until the next Reload, which makes the configuration the truth again
// (draining excepted: it is the backend's, and stays).

// Errors of the control methods wrap pool.ErrNotFound (no such pool or
// backend) or pool.ErrConflict (adding a backend the pool has, removing one
// that discovery found or a pool's last, enabling one configured down), to
// be told apart with errors.Is; every one's after Close wraps ErrClosed;
// others are invalid input (a pool.ParseError, a weight out of range, no
// pool named where there are several).
var (
	ErrNotFound = pool.ErrNotFound
	ErrConflict = pool.ErrConflict
)

// Pools returns the pools in configuration order (the default pool first).
// Each is live: its Backends and state change as the proxy runs; a reload
// may replace the list.
func (p *Proxy) Pools() []*pool.Pool {
	rs := p.table.Load().routes
	out := make([]*pool.Pool, len(rs))
	for i, r := range rs {
		out[i] = r.pool
	}
	return out
}

// Pool returns the default pool: Config.Backends', or the only one. With
// several pools and none called DefaultPool, it is the first; see Pools.
func (p *Proxy) Pool() *pool.Pool {
	rs := p.table.Load().routes
	for _, r := range rs {
		if r.name == DefaultPool {
			return r.pool
		}
	}
	return rs[0].pool
}

// Traffic returns the counters of the proxy's front end: client requests,
// connections and bytes, across pools.
func (p *Proxy) Traffic() *pool.Traffic { return p.traffic }

// livePoolLocked returns the pool called name; an empty name means the only
// pool. Callers hold p.mu.
func (p *Proxy) livePoolLocked(name string) (*livePool, error) {
	if name == "" {
		if len(p.order) == 1 {
			return p.pools[p.order[0]], nil
		}
		// Bad input, not a pool that is missing.
		names := make([]string, len(p.order))
		for i, n := range p.order {
			names[i] = strconv.Quote(n)
		}
		return nil, fmt.Errorf("no pool named, and there are %d: name one of %s", len(names), strings.Join(names, ", "))
	}
	lp := p.pools[name]
	if lp == nil {
		return nil, fmt.Errorf("pool %q: %w", name, ErrNotFound)
	}
	return lp, nil
}

// memberLocked returns the pool called poolName and its member with the URL
// url (in any spelling that NewBackend accepts). Callers hold p.mu.
func (p *Proxy) memberLocked(poolName, url string) (*livePool, *pool.Backend, error) {
	lp, err := p.livePoolLocked(poolName)
	if err != nil {
		return nil, nil, err
	}
	b, err := pool.NewBackend(url)
	if err != nil {
		return nil, nil, err
	}
	m := lp.pool.Lookup(b.URL())
	if m == nil {
		return nil, nil, fmt.Errorf("backend %q in pool %q: %w", b.URL(), lp.spec.Name, ErrNotFound)
	}
	return lp, m, nil
}

// AddBackend adds entry ("http://10.0.0.9:8080 weight=2", the syntax of
// Config.Backends) to the pool called poolName ("" for the only pool) and
// returns the new member. It is checked at once and takes traffic while
// healthy. After Close it returns an error wrapping ErrClosed.
func (p *Proxy) AddBackend(poolName, entry string) (*pool.Backend, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return nil, fmt.Errorf("backend %q not added: the proxy is %w", entry, ErrClosed)
	}
	lp, err := p.livePoolLocked(poolName)
	if err != nil {
		return nil, err
	}
	b, err := pool.NewBackend(entry)
	if err != nil {
		return nil, err
	}
	if lp.pool.Lookup(b.URL()) != nil {
		return nil, fmt.Errorf("backend %q is in pool %q already: %w", b.URL(), lp.spec.Name, ErrConflict)
	}
	if err := p.attach(b); err != nil {
		return nil, err
	}
	// A backend of the configuration that the admin API removed stays
	// removed: the entry given here, with its own options, takes its place.
	lp.runtime = append(lp.runtime, b)
	delete(lp.weights, b.URL())
	p.apply(lp, nil)
	p.publish()
	if m := lp.pool.Lookup(b.URL()); m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("backend %q was not added", b.URL())
}

// RemoveBackend takes the backend with the URL url out of the pool called
// poolName: it takes no new request, and its connections close once its
// requests in flight have finished. A backend that service discovery found
// cannot be removed here (the next update would bring it back): drain it, or
// remove it at its source. Nor can the last backend of a pool without
// discovery, which a configuration could not leave empty: add another
// first, or drain it. After Close it returns an error wrapping ErrClosed.
func (p *Proxy) RemoveBackend(poolName, url string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("backend %q not removed: the proxy is %w", url, ErrClosed)
	}
	lp, b, err := p.memberLocked(poolName, url)
	if err != nil {
		return err
	}
	u := b.URL()
	if len(lp.spec.Discovery) == 0 && len(lp.pool.Backends()) == 1 {
		return fmt.Errorf("backend %q is the last in pool %q, which may not be left empty: add another first, or drain it: %w",
			u, lp.spec.Name, ErrConflict)
	}
	origin := ""
	switch {
	case slices.ContainsFunc(lp.spec.static, func(s *pool.Backend) bool { return s.URL() == u }):
		if lp.removed == nil {
			lp.removed = map[string]bool{}
		}
		lp.removed[u] = true
	case slices.ContainsFunc(lp.runtime, func(s *pool.Backend) bool { return s.URL() == u }):
	default:
		for key, list := range lp.found {
			if slices.ContainsFunc(list, func(s *pool.Backend) bool { return s.URL() == u }) {
				origin = key
			}
		}
		return fmt.Errorf("backend %q was found by %s: drain it, or remove it there: %w", u, origin, ErrConflict)
	}
	lp.runtime = slices.DeleteFunc(lp.runtime, func(s *pool.Backend) bool { return s.URL() == u })
	delete(lp.weights, u)
	gone := p.apply(lp, nil)
	p.publish()
	for _, g := range gone {
		p.retire(g)
	}
	return nil
}

// SetWeight sets the weight (1 to pool.MaxWeight) of the backend with the
// URL url in the pool called poolName, until the next reload. After Close
// it returns an error wrapping ErrClosed.
func (p *Proxy) SetWeight(poolName, url string, weight int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("weight of backend %q not set: the proxy is %w", url, ErrClosed)
	}
	lp, b, err := p.memberLocked(poolName, url)
	if err != nil {
		return err
	}
	if err := lp.pool.SetWeight(b, weight); err != nil {
		return err
	}
	if lp.weights == nil {
		lp.weights = map[string]int{}
	}
	lp.weights[b.URL()] = weight
	p.log.Info("backend weight set: "+b.URL(), "pool", lp.spec.Name, "weight", weight)
	return nil
}

// DrainBackend stops the backend with the URL url in the pool called
// poolName from taking new requests; those in flight finish, and it then
// reports drained (pool.Backend.Drained). Health checks go on. After Close
// it returns an error wrapping ErrClosed.
func (p *Proxy) DrainBackend(poolName, url string) (*pool.Backend, error) {
	return p.setDraining(poolName, url, true)
}

// EnableBackend puts a drained backend back into rotation, subject to its
// health. A backend configured "down" is refused with an error wrapping
// ErrConflict: only the configuration (Reload) brings it into rotation.
// After Close it returns an error wrapping ErrClosed.
func (p *Proxy) EnableBackend(poolName, url string) (*pool.Backend, error) {
	return p.setDraining(poolName, url, false)
}

func (p *Proxy) setDraining(poolName, url string, on bool) (*pool.Backend, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		done := "drained"
		if !on {
			done = "enabled"
		}
		return nil, fmt.Errorf("backend %q not %s: the proxy is %w", url, done, ErrClosed)
	}
	lp, b, err := p.memberLocked(poolName, url)
	if err != nil {
		return nil, err
	}
	if !on && b.Disabled() {
		// Enabling would answer success and leave it out of rotation.
		return nil, fmt.Errorf("backend %q is configured down in pool %q: only the configuration can bring it into rotation: %w",
			b.URL(), lp.spec.Name, ErrConflict)
	}
	if on {
		if lp.pool.Drain(b) {
			p.log.Info("backend draining: "+b.URL(), "pool", lp.spec.Name, "in_flight", b.InFlight())
		}
	} else if lp.pool.Enable(b) {
		p.log.Info("backend enabled: "+b.URL(), "pool", lp.spec.Name)
	}
	return b, nil
}
