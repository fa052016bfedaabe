package pool

import "sync/atomic"

// RoundRobin hands requests to the usable backends in turn. The position is
// one atomic counter shared by every snapshot, so the rotation carries on
// across health changes instead of restarting at the first backend.
type RoundRobin struct {
	next atomic.Uint64
}

// NewRoundRobin returns a round-robin policy.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Picker implements Policy.
func (rr *RoundRobin) Picker(up []*Backend) Picker {
	return &roundRobinPicker{up: up, next: &rr.next}
}

type roundRobinPicker struct {
	up   []*Backend
	next *atomic.Uint64
}

func (p *roundRobinPicker) Pick(_ Request, tried Tried) *Backend {
	n := uint64(len(p.up))
	if n == 0 {
		return nil
	}
	start := p.next.Add(1) - 1
	for i := uint64(0); i < n; i++ {
		b := p.up[(start+i)%n]
		if tried.n == 0 || !tried.Has(b) {
			return b
		}
	}
	return nil
}
