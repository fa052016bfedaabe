package pool

import "math/bits"

// P2C is the power of two random choices (Mitzenmacher), Envoy's default
// least-request balancer: each pick draws two different backends at random
// (in proportion to their weights) and takes the one with fewer attempts in
// flight relative to its weight. It keeps load nearly as even as
// least-connections at the cost of two counter reads instead of a scan of
// every backend, and avoids least-connections' herd, where every balancer
// sends its next requests to the same momentarily idle backend.
type P2C struct {
	src Source
}

// NewP2C returns a power-of-two-choices policy drawing from src; nil means
// math/rand/v2's per-thread generator.
func NewP2C(src Source) *P2C {
	if src == nil {
		src = runtimeSource{}
	}
	return &P2C{src: src}
}

// Picker implements Policy.
func (c *P2C) Picker(up []*Backend) Picker {
	return &p2cPicker{up: up, draw: newDrawer(up), weighted: !sameWeights(up), src: c.src}
}

type p2cPicker struct {
	up       []*Backend
	draw     drawer
	weighted bool
	src      Source
}

func (p *p2cPicker) Pick(_ Request, tried Tried) *Backend {
	n := len(p.up)
	switch n {
	case 0:
		return nil
	case 1:
		if b := p.up[0]; eligible(b, &tried) {
			return b
		}
		return nil
	}
	i, j := p.candidates()
	a, b := p.up[i], p.up[j]
	okA, okB := eligible(a, &tried), eligible(b, &tried)
	switch {
	case okA && okB:
		if p.lighter(b, a) {
			return b
		}
		return a
	case okA:
		return a
	case okB:
		return b
	}
	// Both candidates are tried or full: fall back to the least loaded of
	// the rest, as least-connections would choose.
	return leastLoaded(p.up, i, p.weighted, &tried)
}

// candidates draws two different backend indices.
func (p *p2cPicker) candidates() (i, j int) {
	n := uint64(len(p.up))
	r := p.src.Uint64()
	if !p.weighted {
		// One draw gives both: the high word of r·n is the first index, and
		// the fraction left over picks the second among the other n-1.
		hi, lo := bits.Mul64(r, n)
		hj, _ := bits.Mul64(lo, n-1)
		if hj >= hi {
			hj++
		}
		return int(hi), int(hj)
	}
	i = p.draw.index(r)
	j = i
	for k := 0; k < 3 && j == i; k++ {
		j = p.draw.index(p.src.Uint64())
	}
	if j == i { // a dominant weight: take the next backend as the second
		if j++; j == int(n) {
			j = 0
		}
	}
	return i, j
}

// lighter reports whether b carries less load than a, per unit of weight.
func (p *p2cPicker) lighter(b, a *Backend) bool {
	lb, la := b.inflight.Load(), a.inflight.Load()
	if !p.weighted {
		return lb < la
	}
	return lb*int64(a.weight.Load()) < la*int64(b.weight.Load())
}
