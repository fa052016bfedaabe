package pool

import "math/bits"

// Random sends each request to a backend drawn at random, in proportion to
// the weights. It needs no shared counter at all, so it scales across cores
// and across balancer instances that know nothing of each other; over many
// requests it spreads like round-robin, but without its strict rotation. A
// weighted draw is O(1) (Walker's alias method, tables built per snapshot).
type Random struct {
	src Source
}

// NewRandom returns a random policy drawing from src; nil means
// math/rand/v2's per-thread generator.
func NewRandom(src Source) *Random {
	if src == nil {
		src = runtimeSource{}
	}
	return &Random{src: src}
}

// Picker implements Policy.
func (r *Random) Picker(up []*Backend) Picker {
	return &randomPicker{up: up, draw: newDrawer(up), src: r.src}
}

type randomPicker struct {
	up   []*Backend
	draw drawer
	src  Source
}

// randomDraws is how many draws a pick makes before it settles for the
// first eligible backend: tried and full backends are skipped by drawing
// again, which stays proportional to the weights of the rest.
const randomDraws = 4

func (p *randomPicker) Pick(_ Request, tried Tried) *Backend {
	if len(p.up) == 0 {
		return nil
	}
	var i int
	for range randomDraws {
		i = p.draw.index(p.src.Uint64())
		if b := p.up[i]; eligible(b, &tried) {
			return b
		}
	}
	return firstEligible(p.up, i, &tried)
}

// drawer turns a uniform 64-bit number into a backend index in proportion
// to the weights, in constant time: Walker's alias method with Vose's
// construction, in integers so the proportions are exact. With equal weights
// it is a plain multiply-shift.
type drawer struct {
	n      uint64
	cut    []uint64 // per bucket: below this fraction (of 2^64) keep the bucket
	alias  []int32  // per bucket: the index taken above the cut
	simple bool     // equal weights: the bucket is the answer
}

func newDrawer(up []*Backend) drawer {
	d := drawer{n: uint64(len(up)), simple: sameWeights(up)}
	if d.simple || len(up) == 0 {
		return d
	}
	n := len(up)
	var total uint64
	for _, b := range up {
		total += uint64(b.Weight())
	}
	// Scaled by n, weights average total: a bucket holds exactly total.
	scaled := make([]uint64, n)
	var small, large []int32
	for i, b := range up {
		scaled[i] = uint64(b.Weight()) * uint64(n)
		if scaled[i] < total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	d.cut = make([]uint64, n)
	d.alias = make([]int32, n)
	for i := range d.alias {
		d.alias[i] = int32(i)
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		// Bucket s keeps scaled[s]/total of itself; the rest goes to l.
		d.cut[s], _ = bits.Div64(scaled[s], 0, total)
		d.alias[s] = l
		scaled[l] -= total - scaled[s]
		if scaled[l] < total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is full up to rounding: such buckets always keep
	// themselves (alias to self).
	return d
}

// index maps r to a backend index.
func (d *drawer) index(r uint64) int {
	hi, lo := bits.Mul64(r, d.n)
	if d.simple || lo < d.cut[hi] || d.alias[hi] == int32(hi) {
		return int(hi)
	}
	return int(d.alias[hi])
}
