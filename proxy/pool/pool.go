// Package pool is the balancing core: backends with their health and
// counters, an immutable snapshot of the usable ones, and the policies that
// pick one. It imports no HTTP library, so every front end shares it.
package pool

import (
	"errors"
	"fmt"
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
	picker Picker
}

// New returns a pool over backends, balanced by policy (round-robin when nil).
// Backends keep the order given, and two entries may not share an address.
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
	}
	if policy == nil {
		policy = NewRoundRobin()
	}
	p := &Pool{backends: backends, policy: policy}
	p.traffic.startedUnix = time.Now().Unix()
	p.rebuild()
	return p, nil
}

// Backends returns every configured backend, up or down, in configured order.
// The slice must not be modified.
func (p *Pool) Backends() []*Backend { return p.backends }

// Up returns the backends that now take traffic. The slice must not be
// modified.
func (p *Pool) Up() []*Backend { return p.snap.Load().up }

// Next picks the backend for r, skipping those already in tried. It returns
// nil when no usable backend is left. r may be nil for policies that do not
// look at the request.
func (p *Pool) Next(r Request, tried Tried) *Backend {
	return p.snap.Load().picker.Pick(r, tried)
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
	down := 0
	for _, o := range p.backends {
		if !o.Up() {
			down++
		}
	}
	if (down+1)*100 > maxPercent*len(p.backends) {
		return false
	}
	b.setState(StateDown)
	b.ejected.Add(1)
	p.rebuild()
	p.notify(b, StateUp, StateDown, reason)
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
	old := b.State()
	if !b.setState(s) {
		return false
	}
	p.rebuild()
	p.notify(b, old, s, reason)
	return true
}

// rebuild publishes a snapshot of the backends that are up. Callers hold
// p.mu, or own p exclusively as New does.
func (p *Pool) rebuild() {
	up := make([]*Backend, 0, len(p.backends))
	for _, b := range p.backends {
		if b.Up() {
			up = append(up, b)
		}
	}
	p.snap.Store(&snapshot{up: up, picker: p.policy.Picker(up)})
}
