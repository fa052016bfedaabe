package pool

import "sync/atomic"

// LeastConn sends each request to the backend with the fewest attempts in
// flight relative to its weight (in-flight ÷ weight), as nginx's least_conn
// and HAProxy's leastconn do. Ties are broken by weighted round-robin: the
// scan starts at the backend whose turn it is in the smooth weighted
// sequence, so idle backends share sequential requests by weight. It suits requests whose cost varies
// widely (slow queries, uploads, long polls): a backend stuck on slow work
// stops receiving new requests until it catches up. A pick reads every
// usable backend's counter, O(backends), without a lock.
type LeastConn struct {
	next atomic.Uint64
}

// NewLeastConn returns a least-connections policy.
func NewLeastConn() *LeastConn { return &LeastConn{} }

// Picker implements Policy.
func (lc *LeastConn) Picker(up []*Backend) Picker {
	p := &leastConnPicker{up: up, weighted: !sameWeights(up), next: &lc.next}
	if p.weighted {
		p.turns = positions(up, smoothSequence(up))
	}
	return p
}

type leastConnPicker struct {
	up       []*Backend
	weighted bool
	turns    []int32 // weighted: up's indices in smooth weighted order
	next     *atomic.Uint64
}

func (p *leastConnPicker) Pick(_ Request, tried Tried) *Backend {
	if len(p.up) == 0 {
		return nil
	}
	i := p.next.Add(1) - 1
	var start int
	if p.weighted {
		start = int(p.turns[i%uint64(len(p.turns))])
	} else {
		start = int(i % uint64(len(p.up)))
	}
	return leastLoaded(p.up, start, p.weighted, &tried)
}

// positions maps each backend of seq to its index in up.
func positions(up, seq []*Backend) []int32 {
	at := make(map[*Backend]int32, len(up))
	for i, b := range up {
		at[b] = int32(i)
	}
	pos := make([]int32, len(seq))
	for i, b := range seq {
		pos[i] = at[b]
	}
	return pos
}

// leastLoaded returns the eligible backend of up with the least in-flight
// load, scanning from start so that the first of equals rotates with start.
// With weighted set, load is in-flight ÷ weight, compared by cross-multiplying.
func leastLoaded(up []*Backend, start int, weighted bool, tried *Tried) *Backend {
	var best *Backend
	var bestLoad, bestWeight int64
	n := len(up)
	for i := 0; i < n; i++ {
		j := start + i
		if j >= n {
			j -= n
		}
		b := up[j]
		load := b.inflight.Load()
		if limit := b.maxConns.Load(); limit != 0 && load >= limit {
			continue
		}
		if tried.n != 0 && tried.Has(b) {
			continue
		}
		if best != nil {
			if weighted {
				if load*bestWeight >= bestLoad*int64(b.weight.Load()) {
					continue
				}
			} else if load >= bestLoad {
				continue
			}
		}
		best, bestLoad, bestWeight = b, load, int64(b.weight.Load())
		if load == 0 {
			break // nothing beats an idle backend
		}
	}
	return best
}

// sameWeights reports whether every backend of up has the same weight, so
// that a policy can skip weighting altogether.
func sameWeights(up []*Backend) bool {
	for _, b := range up {
		if b.Weight() != up[0].Weight() {
			return false
		}
	}
	return true
}
