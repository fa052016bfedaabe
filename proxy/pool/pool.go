// Package pool is the balancing core: backends with their health and
// counters, an immutable snapshot of the usable ones, and the policies that
// pick one. It imports no HTTP library, so every front end shares it.
package pool

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of backends and the policy that balances over them.
// Selection reads an immutable snapshot behind an atomic pointer: it takes no
// lock and allocates nothing. Health changes build a new snapshot, serialised
// by a mutex that the request path never touches. A Pool is safe for
// concurrent use.
type Pool struct {
	backends []*Backend
	policy   Policy

	mu       sync.Mutex // serialises snapshot rebuilds and state changes
	snap     atomic.Pointer[snapshot]
	watchers []func(StateChange) // under mu: watch.go

	traffic Traffic
}

// snapshot is the set of usable backends at one moment, with the policy's
// picker prepared for exactly that set.
type snapshot struct {
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

// New returns a pool over backends, balanced by policy (round-robin when nil).
// Backends keep the order given, two entries may not share an address, and a
// Backend belongs to one Pool only.
func New(backends []*Backend, policy Policy) (*Pool, error) {
	if len(backends) == 0 {
		return nil, errors.New("no backends")
	}
	seen := make(map[string]bool, len(backends))
	for _, b := range backends {
		if seen[b.url] {
			return nil, fmt.Errorf("duplicate backend %q", b.url)
		}
		seen[b.url] = true
		if b.pooled {
			return nil, fmt.Errorf("backend %q already belongs to a pool", b.url)
		}
	}
	for i, b := range backends {
		b.pooled = true
		b.index = i
	}
	if policy == nil {
		policy = NewRoundRobin()
	}
	p := &Pool{backends: backends, policy: policy}
	p.traffic.startedUnix = time.Now().Unix()
	p.rebuild()
	return p, nil
}

// Index returns b's position in the Backends of the Pool it belongs to, so
// that front ends can keep per-backend data in a slice rather than a map.
// It is 0 for a backend in no pool.
func (b *Backend) Index() int { return b.index }

// Backends returns every configured backend, up or down, in configured order.
// The slice must not be modified.
func (p *Pool) Backends() []*Backend { return p.backends }

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
	if !b.pooled || b.index >= len(s.usable) || !s.usable[b.index] || p.backends[b.index] != b {
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
	if !b.Up() {
		return false
	}
	// Out of the backends that may take traffic at all (not configured
	// down), count those out already.
	down, total := 0, 0
	for _, o := range p.backends {
		if o.disabled {
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
	before := len(p.snap.Load().up)
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
	old, before := b.State(), len(p.snap.Load().up)
	if !b.setState(s) {
		return false
	}
	p.rebuild()
	p.notify(b, old, s, reason, before)
	return true
}

// rebuild publishes a snapshot of the usable backends: the healthy
// primaries, or the healthy backups while no primary is healthy; never one
// configured down. The policy prepares its picker for that set here, once,
// off the request path. Callers hold p.mu, or own p exclusively as New does.
func (p *Pool) rebuild() {
	var primaries, backups []*Backend
	for _, b := range p.backends {
		switch {
		case b.disabled || !b.Up():
		case b.backup:
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
	usable := make([]bool, len(p.backends))
	for _, b := range up {
		usable[b.index] = true
	}
	p.snap.Store(&snapshot{up: up, usable: usable, picker: p.policy.Picker(up)})
}
