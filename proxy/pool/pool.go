// Package pool is the balancing core: backends with their health and
// counters, an immutable snapshot of the usable ones, and the policies that
// pick one. It imports no HTTP library, so every front end shares it.
package pool

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// Pool is a set of backends and the policy that balances over them.
// Selection reads an immutable snapshot behind an atomic pointer: it takes no
// lock and allocates nothing. Health changes, membership changes (Update) and
// operators' changes (Drain, Enable, SetWeight) build a new snapshot,
// serialised by a mutex that the request path never touches. A Pool is safe
// for concurrent use.
type Pool struct {
	name string

	mu       sync.Mutex // serialises snapshot rebuilds and state changes
	policy   Policy     // under mu
	snap     atomic.Pointer[snapshot]
	watchers []func(StateChange) // under mu: watch.go
}

// snapshot is the pool at one moment: its members, the usable ones, and the
// policy's picker prepared for exactly that set.
type snapshot struct {
	all    []*Backend // every member, in configured order
	up     []*Backend
	usable []bool // by Backend.index: whether it is in up
	picker Picker
}

// Result says whether Acquire found a backend and, when it did not, why.
type Result uint8

const (
	// Acquired: a backend was returned and its attempt begun.
	Acquired Result = iota
	// NoneUsable: no usable backend is left that the request has not tried
	// (none is healthy, or all have been tried).
	NoneUsable
	// AllAtLimit: usable backends are left, but every one has MaxConns
	// attempts in flight. Front ends answer 503 at once rather than queue.
	AllAtLimit
)

// String returns a short name for r.
func (r Result) String() string {
	switch r {
	case Acquired:
		return "acquired"
	case NoneUsable:
		return "none usable"
	case AllAtLimit:
		return "all at limit"
	}
	return "result(" + strconv.Itoa(int(r)) + ")"
}

// New returns a pool over backends, balanced by policy (round-robin when
// nil). Backends keep the order given, two entries may not share an address,
// and a Backend belongs to one Pool only. A pool may start empty, as one that
// service discovery fills does: it then has no backend to give until Update.
func New(backends []*Backend, policy Policy) (*Pool, error) {
	if policy == nil {
		policy = NewRoundRobin()
	}
	p := &Pool{policy: policy}
	p.snap.Store(&snapshot{all: []*Backend{}, up: []*Backend{}, picker: policy.Picker(nil)})
	if _, _, err := p.Update(backends, nil); err != nil {
		return nil, err
	}
	return p, nil
}

// NewNamed is New for a pool with a name: the one routes and the admin
// interface know it by.
func NewNamed(name string, backends []*Backend, policy Policy) (*Pool, error) {
	p, err := New(backends, policy)
	if err != nil {
		return nil, err
	}
	p.name = name
	return p, nil
}

// Name returns the name the pool was created with, or "".
func (p *Pool) Name() string { return p.name }

// Policy returns the policy the pool balances with.
func (p *Pool) Policy() Policy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.policy
}

// Update makes backends the pool's members, in that order, and policy its
// policy (nil keeps the current one). A backend whose URL is already a
// member does not replace it: the member stays, with its connections (the
// transport), health, draining and counters, and takes the given backend's
// options (weight, max_conns, backup, down). Backends of the list that are
// new join as they are, and members missing from it leave: they take no new
// attempt from this moment, and their attempts in flight finish (see
// Backend.InFlight). A member whose URL comes back with another protocol,
// health check or dial address (see SameKind) is replaced by the newcomer. Update returns
// the backends that joined and those that left; on error nothing changes.
//
// The request path never waits for Update: the new membership is published
// as one snapshot. Callers serialise their Updates when they compute them
// from the current members.
func (p *Pool) Update(backends []*Backend, policy Policy) (added, removed []*Backend, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.snap.Load().all
	byURL := make(map[string]*Backend, len(cur))
	for _, b := range cur {
		byURL[b.url] = b
	}
	seen := make(map[string]bool, len(backends))
	members := make([]*Backend, 0, len(backends))
	for _, b := range backends {
		if seen[b.url] {
			return nil, nil, fmt.Errorf("duplicate backend %q", b.url)
		}
		seen[b.url] = true
		if m := byURL[b.url]; m != nil && m.SameKind(b) {
			members = append(members, m)
			continue
		}
		if o := b.owner.Load(); o != nil && o != p {
			return nil, nil, fmt.Errorf("backend %q already belongs to a pool", b.url)
		}
		members = append(members, b)
		added = append(added, b)
	}
	// Validated: apply.
	kept := make(map[*Backend]bool, len(members))
	for _, b := range backends {
		if m := byURL[b.url]; m != nil && m != b && m.SameKind(b) {
			m.setOptions(b.Options())
		}
	}
	for _, m := range members {
		kept[m] = true
	}
	for _, b := range cur {
		if !kept[b] {
			removed = append(removed, b)
			b.owner.Store(nil)
		}
	}
	for i, b := range members {
		b.owner.Store(p)
		b.index.Store(int32(i))
	}
	if policy != nil {
		p.policy = policy
	}
	p.publish(members)
	return added, removed, nil
}

// SameKind reports whether o, a backend with b's URL, speaks the same
// protocol, is checked the same way and is dialled at the same address (a
// name's trailing dot, which the URL drops, is the resolver's to read):
// Update keeps a member (its connections, health and counters) only for
// such a newcomer, and replaces it otherwise.
func (b *Backend) SameKind(o *Backend) bool {
	return b.proto == o.proto && b.health == o.health && b.healthService == o.healthService && b.addr == o.addr
}

// Index returns b's position in the Backends of the Pool it belongs to, so
// that front ends can keep per-backend data in a slice rather than a map
// (rebuilt when the membership changes). It is 0 for a backend in no pool.
func (b *Backend) Index() int { return int(b.index.Load()) }

// Pool returns the pool b belongs to, or nil after it left (or before it
// joined) one.
func (b *Backend) Pool() *Pool { return b.owner.Load() }

// Backends returns every member, up or down, in configured order. The slice
// must not be modified.
func (p *Pool) Backends() []*Backend { return p.snap.Load().all }

// Lookup returns the member with the given URL (as Backend.URL spells it),
// or nil.
func (p *Pool) Lookup(url string) *Backend {
	for _, b := range p.snap.Load().all {
		if b.url == url {
			return b
		}
	}
	return nil
}

// member reports whether b is one of p's members in snapshot s.
func (s *snapshot) member(b *Backend) bool {
	i := int(b.index.Load())
	return i < len(s.all) && s.all[i] == b
}

// Up returns the backends that now take traffic: the healthy primaries or,
// while none is healthy, the healthy backups. The slice must not be modified.
func (p *Pool) Up() []*Backend { return p.snap.Load().up }

// Next picks the backend for r, skipping those already in tried and those at
// their MaxConns. It returns nil when no such backend is left. r may be nil
// for policies that do not look at the request. Next only chooses; Acquire
// also begins the attempt.
func (p *Pool) Next(r Request, tried Tried) *Backend {
	return p.snap.Load().picker.Pick(r, tried)
}

// Acquire picks the backend for r as Next does and begins an attempt on it
// (TryBegin), so a backend's MaxConns holds however many requests race for
// its last slot. The caller ends the attempt with Done. When no backend is
// returned, the Result says whether none is usable or all are at their limit.
func (p *Pool) Acquire(r Request, tried Tried) (*Backend, Result) {
	s := p.snap.Load()
	lost := tried // tried, plus backends whose last slot another request took
	for range MaxTries {
		b := s.picker.Pick(r, lost)
		if b == nil {
			break
		}
		if b.TryBegin() {
			return b, Acquired
		}
		if lost.Has(b) {
			break // a picker that ignores tried; do not spin on it
		}
		lost.Add(b)
	}
	for _, b := range s.up {
		if !tried.Has(b) {
			return nil, AllAtLimit
		}
	}
	return nil, NoneUsable
}

// AcquireBackend begins an attempt on b, as Acquire would had the policy
// chosen it, when b takes traffic now: it is in the usable set, not in tried
// and below its MaxConns. It is how a front end honours session affinity
// without bypassing health, backups or limits. It reports whether the attempt
// was begun; the caller then ends it with Done.
func (p *Pool) AcquireBackend(b *Backend, tried Tried) bool {
	s := p.snap.Load()
	i := int(b.index.Load())
	if i >= len(s.all) || s.all[i] != b || !s.usable[i] {
		return false
	}
	if tried.n != 0 && tried.Has(b) {
		return false
	}
	return b.TryBegin()
}

// MarkDown takes b out of rotation and records reason as its last error. It
// reports whether b was up, so a caller logs the transition once.
func (p *Pool) MarkDown(b *Backend, reason string) bool {
	b.RecordError(reason)
	return p.setState(b, StateDown, reason)
}

// Eject takes b out of rotation because live traffic found it failing, and
// reports whether it did. It refuses when that would leave more than
// maxPercent of the backends down: with too many out, traffic is better
// spread over all of them, failing or not, than crowded onto the rest or
// refused (Envoy's panic threshold).
func (p *Pool) Eject(b *Backend, reason string, maxPercent int) bool {
	b.RecordError(reason)
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.snap.Load()
	if !b.Up() || !s.member(b) {
		return false
	}
	// Out of the backends that may take traffic at all (not configured
	// down), count those out already.
	down, total := 0, 0
	for _, o := range s.all {
		if o.Disabled() {
			continue
		}
		total++
		if !o.Up() {
			down++
		}
	}
	if (down+1)*100 > maxPercent*total {
		return false
	}
	before := len(s.up)
	b.setState(StateDown)
	b.ejected.Add(1)
	p.rebuild()
	p.notify(b, StateUp, StateDown, reason, before)
	return true
}

// MarkUp puts b back into rotation and reports whether it was down.
func (p *Pool) MarkUp(b *Backend) bool {
	b.ResetFailureStreak()
	return p.setState(b, StateUp, "")
}

func (p *Pool) setState(b *Backend, s State, reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	snap := p.snap.Load()
	if !snap.member(b) {
		// It left the pool; its health no longer matters to anyone.
		return false
	}
	old, before := b.State(), len(snap.up)
	if !b.setState(s) {
		return false
	}
	p.rebuild()
	p.notify(b, old, s, reason, before)
	return true
}

// rebuild publishes a snapshot of the current members after a change of
// health, role or weight. Callers hold p.mu.
func (p *Pool) rebuild() { p.publish(p.snap.Load().all) }

// publish makes members the pool's members and publishes a snapshot of the
// usable ones: the healthy primaries, or the healthy backups while no primary
// is healthy; never one configured down or draining. The policy prepares its
// picker for that set here, once, off the request path. Callers hold p.mu.
func (p *Pool) publish(members []*Backend) {
	var primaries, backups []*Backend
	for _, b := range members {
		switch {
		case b.Disabled() || b.Draining() || !b.Up():
		case b.Backup():
			backups = append(backups, b)
		default:
			primaries = append(primaries, b)
		}
	}
	up := primaries
	if len(up) == 0 {
		up = backups
	}
	if up == nil {
		up = []*Backend{}
	}
	usable := make([]bool, len(members))
	for _, b := range up {
		usable[b.index.Load()] = true
	}
	p.snap.Store(&snapshot{all: members, up: up, usable: usable, picker: p.policy.Picker(up)})
}
