package proxy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/rishichirchi/Load-Balancee/proxy/health"
	"github.com/rishichirchi/Load-Balancee/proxy/pool"
)

// The live configuration: pools, their members, routes and health checks.
// Three things change it at run time, one at a time under Proxy.mu: Reload
// (a new configuration), service discovery (a pool's source reports new
// members) and the admin API (add, remove, weigh, drain). Each change is
// computed beside what serves, then published: members through the pool's
// snapshot (pool.Update), routes through one atomic pointer to a new
// routing table. Backends that stay keep their connections, health and
// counters; backends that leave take no new request and are closed once
// their requests in flight have finished (retire).

// livePool is one pool as it runs: its configuration and what has changed it
// since (discovery, the admin API).
type livePool struct {
	spec *poolSpec
	pool *pool.Pool

	// Changes made through the admin API, kept until the next reload.
	runtime []*pool.Backend // backends added
	removed map[string]bool // static backends removed, by URL
	weights map[string]int  // weights set, by URL

	// Service discovery: the last list each source reported, and the
	// sources running, by Discoverer.String.
	found     map[string][]*pool.Backend
	discovery map[string]*discoveryRun

	healthPath string
	stopHealth context.CancelFunc // nil while no checker runs
	checker    *health.Checker
}

// discoveryRun is one Discoverer running for a pool.
type discoveryRun struct {
	d      Discoverer
	cancel context.CancelFunc
}

// plan is a validated configuration, ready to commit.
type plan struct {
	specs       []*poolSpec
	routes      []Route
	defaultPool string
	health      HealthConfig
}

// Reload applies cfg's pools, routes and health checks without a restart:
// Backends, Policy, StickyCookie, Pools, Routes and Health (every other field
// keeps the value New was given; listeners, timeouts and limits need a
// restart). The new configuration is validated and built beside the one
// serving, then swapped in at once, so a bad one is refused with an error
// and changes nothing. Requests in flight finish where they are. Backends
// that stay (the same URL in a pool of the same name) keep their
// connections, health state, draining and counters, and take their new
// options; new ones join and are checked at once; those that go take no new
// request and are closed once their requests in flight have finished.
// Changes made through the admin API (AddBackend...) since the last reload
// are dropped: the configuration is the truth again. Draining is kept.
// Discovery sources whose String is unchanged keep running and keep what
// they found. After Close (or Shutdown) it returns an error wrapping
// ErrClosed and starts nothing.
func (p *Proxy) Reload(cfg Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("reload refused: the proxy is %w", ErrClosed)
	}
	pl, err := p.plan(cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	p.commit(pl)
	p.log.Debug("configuration reloaded", "pools", len(pl.specs), "routes", len(pl.routes),
		"took", time.Since(start).Round(time.Microsecond).String())
	return nil
}

// ErrClosed is wrapped by the errors of Reload and of the control methods
// (AddBackend, RemoveBackend, SetWeight, DrainBackend, EnableBackend) called
// after Close (or Shutdown, which ends with it): nothing would close the
// backend connections and health checks they set up, and nothing serves
// what the others would change. It is pool.ErrClosed, which the admin
// interface answers with 503.
var ErrClosed = pool.ErrClosed

// Check validates cfg as New would, certificate files read included,
// without starting anything.
func Check(cfg Config) error {
	c, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if c.TLS != nil {
		if _, err := loadCertSet(c.TLS.Certificates); err != nil {
			return err
		}
	}
	specs, def, err := c.poolSpecs()
	if err != nil {
		return err
	}
	_, err = newTable(placeholderRoutes(specs), c.Routes, def)
	return err
}

// placeholderRoutes stand for the pools of specs while routes are checked.
func placeholderRoutes(specs []*poolSpec) []*route {
	rs := make([]*route, len(specs))
	for i, s := range specs {
		rs[i] = &route{name: s.Name}
	}
	return rs
}

// plan validates cfg against what runs, and readies the transports of the
// backends it adds. It changes nothing that serves. Callers hold p.mu.
func (p *Proxy) plan(cfg Config) (*plan, error) {
	cfg.Logger = p.log // validation would otherwise default it
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	specs, def, err := c.poolSpecs()
	if err != nil {
		return nil, err
	}
	if _, err := newTable(placeholderRoutes(specs), c.Routes, def); err != nil {
		return nil, err
	}
	for _, s := range specs {
		var cur *pool.Pool
		if lp := p.pools[s.Name]; lp != nil {
			cur = lp.pool
		}
		for _, b := range s.static {
			if cur != nil && cur.Lookup(b.URL()) != nil {
				continue // stays: its transport is the member's
			}
			if err := p.attach(b); err != nil {
				return nil, fmt.Errorf("pool %q: %w", s.Name, err)
			}
		}
	}
	return &plan{specs: specs, routes: c.Routes, defaultPool: def, health: c.Health}, nil
}

// commit makes pl the live configuration. It cannot fail: plan has
// validated everything. Callers hold p.mu.
func (p *Proxy) commit(pl *plan) {
	healthChanged := p.health != pl.health
	p.health = pl.health
	next := make(map[string]*livePool, len(pl.specs))
	order := make([]string, 0, len(pl.specs))
	var gone []*pool.Backend
	for _, s := range pl.specs {
		lp := p.pools[s.Name]
		policy := s.Policy
		if policy == nil {
			policy = pool.NewRoundRobin()
		}
		if lp == nil {
			np, _ := pool.NewNamed(s.Name, nil, policy)
			if p.cfg.OnStateChange != nil {
				np.Watch(p.cfg.OnStateChange)
			}
			lp = &livePool{pool: np, found: map[string][]*pool.Backend{}, discovery: map[string]*discoveryRun{}}
			if p.started {
				p.log.Info("pool added", "pool", s.Name)
			}
		}
		lp.spec = s
		lp.runtime, lp.removed, lp.weights = nil, nil, nil
		p.syncDiscovery(lp)
		gone = append(gone, p.apply(lp, policy)...)
		path := s.HealthPath
		if path == "" {
			path = pl.health.Path
		}
		if lp.stopHealth == nil || healthChanged || path != lp.healthPath {
			lp.healthPath = path
			p.startChecker(lp)
		}
		next[s.Name] = lp
		order = append(order, s.Name)
	}
	for name, lp := range p.pools {
		if next[name] != nil {
			continue
		}
		p.stopPool(lp)
		gone = append(gone, lp.pool.Backends()...)
		p.log.Info("pool removed", "pool", name, "backends", len(lp.pool.Backends()))
	}
	p.pools, p.order = next, order
	p.routes, p.defaultPool = pl.routes, pl.defaultPool
	p.publish()
	for _, b := range gone {
		p.retire(b)
	}
	p.warnUnrouted()
}

// syncDiscovery starts the pool's discovery sources that are not running yet
// and stops those no longer configured, forgetting what they found. Callers
// hold p.mu.
func (p *Proxy) syncDiscovery(lp *livePool) {
	want := make(map[string]Discoverer, len(lp.spec.Discovery))
	for _, d := range lp.spec.Discovery {
		want[d.String()] = d
	}
	for key, run := range lp.discovery {
		if want[key] == nil {
			run.cancel()
			delete(lp.discovery, key)
			delete(lp.found, key)
		}
	}
	for key, d := range want {
		if lp.discovery[key] == nil {
			p.startDiscovery(lp, d)
		}
	}
}

// startDiscovery runs d for lp until the pool goes or the proxy closes.
func (p *Proxy) startDiscovery(lp *livePool, d Discoverer) {
	ctx, cancel := context.WithCancel(p.bg)
	run := &discoveryRun{d: d, cancel: cancel}
	lp.discovery[d.String()] = run
	name := lp.spec.Name
	p.bgWG.Add(1)
	go func() {
		defer p.bgWG.Done()
		d.Discover(ctx, func(entries []string) {
			if ctx.Err() == nil {
				p.discovered(name, run, entries)
			}
		})
	}()
}

// discovered applies a list of backends that run found for the pool called
// name. A list from a source that has stopped meanwhile is dropped.
func (p *Proxy) discovered(name string, run *discoveryRun, entries []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lp := p.pools[name]
	key := run.d.String()
	if lp == nil || lp.discovery[key] != run {
		return
	}
	list := make([]*pool.Backend, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		b, err := pool.NewBackend(e)
		if err != nil {
			p.log.Warn("discovery: entry ignored", "pool", name, "source", key, "error", err.Error())
			continue
		}
		if !seen[b.URL()] {
			seen[b.URL()] = true
			list = append(list, b)
		}
	}
	lp.found[key] = list
	gone := p.apply(lp, nil)
	p.publish()
	for _, b := range gone {
		p.retire(b)
	}
}

// apply makes the pool's members what its configuration, its discovery
// sources and the admin API say now, the first mention of a URL winning in
// that order, and returns the backends that left. Callers hold p.mu, and
// publish a routing table afterwards (sticky cookies follow the members).
func (p *Proxy) apply(lp *livePool, policy pool.Policy) (gone []*pool.Backend) {
	cur := make(map[string]*pool.Backend, len(lp.pool.Backends()))
	for _, b := range lp.pool.Backends() {
		cur[b.URL()] = b
	}
	var list []*pool.Backend
	seen := map[string]bool{}
	take := func(b *pool.Backend, origin string) {
		u := b.URL()
		if seen[u] {
			return
		}
		seen[u] = true
		if w, ok := lp.weights[u]; ok && cur[u] != b {
			// The admin API's weight over the source's: on a copy, as
			// the source's list is kept for later updates.
			o := b.Options()
			o.Weight = w
			// From its dial address, which its URL may have shortened
			// (a name's trailing dot).
			nb, _ := pool.NewBackend(b.Scheme() + "://" + b.Addr())
			nb.SetOptions(o) //nolint:errcheck // a weight the admin API validated, on a backend in no pool
			nb.SetTransport(b.Transport())
			b = nb
		}
		if (cur[u] == nil || !cur[u].SameKind(b)) && b.Transport() == nil {
			if err := p.attach(b); err != nil {
				p.log.Warn("backend ignored", "pool", lp.spec.Name, "backend", u, "source", origin, "error", err.Error())
				return
			}
		}
		list = append(list, b)
	}
	for _, b := range lp.spec.static {
		if !lp.removed[b.URL()] {
			take(b, "config")
		}
	}
	for _, b := range lp.runtime {
		take(b, "admin API")
	}
	for _, key := range slices.Sorted(maps.Keys(lp.found)) {
		for _, b := range lp.found[key] {
			take(b, key)
		}
	}
	added, removed, err := lp.pool.Update(list, policy)
	if err != nil {
		// plan and the admin API validate every list; this is a bug.
		p.log.Error("pool update refused", "pool", lp.spec.Name, "error", err.Error())
		return nil
	}
	if p.started {
		for _, b := range added {
			p.log.Info("backend added: "+b.URL(), "pool", lp.spec.Name)
		}
		for _, b := range removed {
			p.log.Info("backend removed: "+b.URL(), "pool", lp.spec.Name, "in_flight", b.InFlight())
		}
	}
	if len(added) > 0 && lp.checker != nil {
		lp.checker.Trigger() // check the newcomers now, not an interval later
	}
	return removed
}

// publish builds the routing table from the live pools and routes and swaps
// it in. Callers hold p.mu.
func (p *Proxy) publish() {
	routes := make([]*route, 0, len(p.order))
	for _, name := range p.order {
		lp := p.pools[name]
		r := &route{name: name, pool: lp.pool}
		for _, b := range lp.pool.Backends() {
			r.viaNet = r.viaNet || b.Protocol().HTTP2()
		}
		if lp.spec.StickyCookie != "" {
			r.sticky = newSticky(lp.spec.StickyCookie, lp.pool.Backends())
		}
		routes = append(routes, r)
	}
	t, err := newTable(routes, p.routes, p.defaultPool)
	if err != nil {
		p.log.Error("routing table refused", "error", err.Error()) // validated by plan: a bug
		return
	}
	p.table.Store(t)
}

// warnUnrouted says which pools no request can reach.
func (p *Proxy) warnUnrouted() {
	if len(p.routes) == 0 {
		return
	}
	used := map[string]bool{p.defaultPool: true}
	for _, r := range p.routes {
		used[r.Pool] = true
	}
	for _, name := range p.order {
		if !used[name] {
			p.log.Warn("pool gets no request: no route names it", "pool", name)
		}
	}
}

// startChecker (re)starts the active health checks of lp. Callers hold p.mu.
func (p *Proxy) startChecker(lp *livePool) {
	if lp.stopHealth != nil {
		lp.stopHealth()
		lp.stopHealth, lp.checker = nil, nil
	}
	p.checksOff.Store(p.health.Interval < 0)
	if p.health.Interval < 0 {
		// Nothing checks these any more: those down now return on the
		// timer an ejection starts.
		for _, b := range lp.pool.Backends() {
			if !b.Up() {
				p.readmitLater(lp.pool, b)
			}
		}
		return
	}
	lp.checker = &health.Checker{
		Pool:     lp.pool,
		Prober:   &prober{path: lp.healthPath},
		Interval: p.health.Interval,
		Timeout:  p.health.Timeout,
		Rise:     p.health.Rise,
		Fall:     p.health.Fall,
		Logger:   p.log.With("pool", lp.spec.Name),
	}
	ctx, cancel := context.WithCancel(p.bg)
	lp.stopHealth = cancel
	c := lp.checker
	p.bgWG.Add(1)
	go func() {
		defer p.bgWG.Done()
		c.Run(ctx)
	}()
}

// stopPool stops what runs for a pool that is going. Callers hold p.mu.
func (p *Proxy) stopPool(lp *livePool) {
	for _, run := range lp.discovery {
		run.cancel()
	}
	if lp.stopHealth != nil {
		lp.stopHealth()
	}
}

// retirePoll is how often a retiring backend's requests in flight are counted.
const retirePoll = 20 * time.Millisecond

// retire closes the connections of a backend that has left its pool, once
// its requests in flight have finished: it takes no new ones already. A
// request that has not finished within the backend timeout (a long stream)
// keeps its connection; the pool closes it when it is given back idle.
func (p *Proxy) retire(b *pool.Backend) {
	p.bgWG.Add(1)
	go func() {
		defer p.bgWG.Done()
		t := time.NewTicker(retirePoll)
		defer t.Stop()
		deadline := time.Now().Add(p.cfg.BackendTimeout + p.cfg.DialTimeout)
		for b.InFlight() > 0 && time.Now().Before(deadline) {
			select {
			case <-p.bg.Done():
				deadline = time.Time{}
			case <-t.C:
			}
		}
		upstreamOf(b).close()
		if p.debug {
			p.log.Debug("backend closed: "+b.URL(), "in_flight", b.InFlight())
		}
	}()
}

// passiveReturnAfter is how long a backend that live traffic ejected stays
// out of rotation when no active check is there to bring it back: nginx's
// fail_timeout (10s), after which it takes traffic again and a backend
// still failing is ejected again by the requests that find it so. A
// variable so tests can shorten it.
var passiveReturnAfter = 10 * time.Second

// readmitLater puts b, which live traffic has taken out of rotation, back
// into pl's rotation after passiveReturnAfter, unless active checks have
// been turned on meanwhile (they decide then) or the proxy is closed. It is
// how a backend comes back with active checks off; it runs on an ejection,
// not on the request path.
func (p *Proxy) readmitLater(pl *pool.Pool, b *pool.Backend) {
	after := passiveReturnAfter
	time.AfterFunc(after, func() {
		if p.bg.Err() != nil || !p.checksOff.Load() {
			return
		}
		if pl.MarkUp(b) {
			p.log.Info("backend up: "+b.URL()+": back in rotation after "+after.String()+" (no active checks)", "pool", pl.Name())
		}
	})
}
