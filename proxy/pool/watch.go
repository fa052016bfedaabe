package pool

import "time"

// StateChange describes one backend changing state. Every change goes
// through the pool (MarkDown from live traffic or a health check, MarkUp
// from a health check), so watchers see each exactly once.
type StateChange struct {
	Backend *Backend
	From    State
	To      State
	// Reason says why the backend went down (the connect error, the failed
	// check); it is empty when a backend comes up.
	Reason string
	At     time.Time
	// UpBefore and Up count the backends in rotation before and after the
	// change (backups while no primary is up), Total all of them. Up
	// falling to 0 means no backend is available; rising from 0, that the
	// pool recovered.
	UpBefore int
	Up       int
	Total    int
}

// Watch registers fn to be called after every state change, in the order
// the changes happen. fn runs while the pool's state lock is held, on the
// goroutine that made the change, which may be serving a request: it must
// return quickly (hand the change to a queue, say), must not block, and
// must not call MarkUp or MarkDown.
func (p *Pool) Watch(fn func(StateChange)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchers = append(p.watchers, fn)
}

// notify tells the watchers about a change. Callers hold p.mu and have
// rebuilt the snapshot; before is how many backends were in rotation.
func (p *Pool) notify(b *Backend, from, to State, reason string, before int) {
	if len(p.watchers) == 0 {
		return
	}
	c := StateChange{
		Backend:  b,
		From:     from,
		To:       to,
		Reason:   reason,
		At:       b.Since(),
		UpBefore: before,
		Up:       len(p.snap.Load().up),
		Total:    len(p.snap.Load().all),
	}
	for _, fn := range p.watchers {
		fn(c)
	}
}
