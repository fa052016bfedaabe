package pool

import (
	"errors"
	"fmt"
)

// Errors of run-time changes, for front ends and admin interfaces to tell
// apart with errors.Is.
var (
	// ErrNotFound: no pool, or no backend in it, has that name or URL.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the change contradicts the pool as it is, such as
	// adding a backend it has, or removing one that service discovery
	// found.
	ErrConflict = errors.New("conflict")
	// ErrClosed: the front end making the change has been closed and
	// takes no more: no fault of the caller's, and no other input helps.
	ErrClosed = errors.New("closed")
)

// What operators change at run time, through the admin interface: draining a
// backend for maintenance, putting it back, and its weight. Each change takes
// effect with the next snapshot, built at once; none waits for the request
// path.

// Drain stops b from taking new attempts, as nginx's drain and HAProxy's
// "set server state drain" do: the attempts in flight on it finish, sticky
// sessions pinned to it move to others, and it reports Drained once the last
// one has. Health checks go on, so its health is known when it is enabled
// again. A draining backend stays so across reloads while it stays in the
// pool. It reports whether b was active and is a member.
func (p *Pool) Drain(b *Backend) bool { return p.setDraining(b, true) }

// Enable puts a drained (or draining) backend back into rotation, subject to
// its health like any other, and reports whether it was draining.
func (p *Pool) Enable(b *Backend) bool { return p.setDraining(b, false) }

func (p *Pool) setDraining(b *Backend, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.snap.Load().member(b) || b.draining.Load() == on {
		return false
	}
	b.draining.Store(on)
	p.rebuild()
	return true
}

// Draining reports whether an operator drains the backend: it takes no new
// attempts, whatever its health.
func (b *Backend) Draining() bool { return b.draining.Load() }

// Drained reports whether the backend is draining and has no attempt left in
// flight: it can be stopped without failing a request.
func (b *Backend) Drained() bool { return b.draining.Load() && b.inflight.Load() == 0 }

// SetWeight changes the weight of member b (1 to MaxWeight) and rebuilds the
// policy's tables for it.
func (p *Pool) SetWeight(b *Backend, weight int) error {
	if weight < 1 || weight > MaxWeight {
		return fmt.Errorf("invalid weight %d: want 1-%d", weight, MaxWeight)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.snap.Load().member(b) {
		return fmt.Errorf("backend %q is not in the pool: %w", b.url, ErrNotFound)
	}
	b.weight.Store(int32(weight))
	p.rebuild()
	return nil
}
