package pool

import "sync/atomic"

// RoundRobin hands requests to the usable backends in turn, weighted with
// nginx's smooth weighted round-robin: weights 3:1 give a, a, b, a rather
// than a, a, a, b, so no backend takes a burst. The sequence is worked out
// once per snapshot; a pick is one atomic increment and an index. The
// position is one counter shared by every snapshot, so the rotation carries
// on across health changes instead of restarting at the first backend.
type RoundRobin struct {
	next atomic.Uint64
}

// NewRoundRobin returns a round-robin policy.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Picker implements Policy.
func (rr *RoundRobin) Picker(up []*Backend) Picker {
	return &roundRobinPicker{up: up, seq: smoothSequence(up), next: &rr.next}
}

type roundRobinPicker struct {
	up   []*Backend
	seq  []*Backend // one period of the smooth weighted order
	next *atomic.Uint64
}

func (p *roundRobinPicker) Pick(_ Request, tried Tried) *Backend {
	n := uint64(len(p.seq))
	if n == 0 {
		return nil
	}
	i := (p.next.Add(1) - 1) % n
	b := p.seq[i]
	if eligible(b, &tried) {
		return b
	}
	return p.skip(i, &tried)
}

// skip finds the backend for a pick whose turn fell on one that is tried or
// full: the next eligible one in the sequence, looking as far ahead as there
// are backends, then any eligible one.
func (p *roundRobinPicker) skip(i uint64, tried *Tried) *Backend {
	n := uint64(len(p.seq))
	for j := uint64(1); j < n && j < uint64(len(p.up)); j++ {
		k := i + j
		if k >= n {
			k -= n
		}
		if b := p.seq[k]; eligible(b, tried) {
			return b
		}
	}
	if n == uint64(len(p.up)) {
		return nil // equal weights: the walk saw every backend
	}
	return firstEligible(p.up, int(i%uint64(len(p.up))), tried)
}

// smoothSequence returns one period of nginx's smooth weighted round-robin
// over up: each step every backend's current value grows by its weight, the
// largest is chosen (the first of equals) and lowered by the total weight.
// Weights are first divided by their greatest common divisor, so the period
// is as short as it can be; with equal weights the sequence is up itself.
// Building it costs O(len(up) × Σweight/gcd), once per snapshot.
func smoothSequence(up []*Backend) []*Backend {
	if len(up) == 0 {
		return nil
	}
	g := 0
	for _, b := range up {
		g = gcd(g, b.Weight())
	}
	total := 0
	w := make([]int, len(up))
	for i, b := range up {
		w[i] = b.Weight() / g
		total += w[i]
	}
	if total == len(up) {
		return up
	}
	cur := make([]int, len(up))
	seq := make([]*Backend, total)
	for s := range seq {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq[s] = up[best]
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
