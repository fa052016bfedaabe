package pool

import (
	"math/bits"
	"slices"
	"strings"
)

// MaglevTableSize is the number of entries in a Maglev lookup table: a prime,
// as the algorithm needs, and the size Google's Maglev paper uses. Every
// backend owns M/n entries give or take one (times its weight share), so
// the spread is even to within 1% up to about 650 backends.
const MaglevTableSize = 65537

// Maglev is consistent hashing with Google's Maglev lookup table: the request
// attribute named by the key (client IP, URI, a header or a cookie) is hashed
// to one of MaglevTableSize entries, each owned by a backend. The table
// depends only on the set of backends, not on their order or on the process,
// so two balancers with the same backends map every key the same way; when
// one backend of N leaves, only about 1/N of the keys move. It suits caches
// and anything holding per-client state: the same key keeps reaching the
// same backend while it is healthy. Weights scale a backend's share of the
// table. A request without the key is balanced round-robin. A key whose
// backend is tried or full goes to the owner of the next entry, so it too
// has a stable second choice.
type Maglev struct {
	key Key
	rr  RoundRobin // for requests without the key
}

// NewMaglev returns a consistent-hashing policy over the attribute key names.
func NewMaglev(key Key) *Maglev { return &Maglev{key: key} }

// Key returns the attribute the policy hashes.
func (m *Maglev) Key() Key { return m.key }

// Picker implements Policy. It builds the lookup table: O(M log M) work,
// once per snapshot.
func (m *Maglev) Picker(up []*Backend) Picker {
	p := &maglevPicker{
		key:      m.key,
		fallback: roundRobinPicker{up: up, seq: smoothSequence(up), next: &m.rr.next},
	}
	if len(up) > 0 {
		p.backends, p.table = maglevTable(up, MaglevTableSize)
	}
	return p
}

type maglevPicker struct {
	key      Key
	backends []*Backend // up sorted by URL; table entries index it
	table    []int32
	fallback roundRobinPicker
}

func (p *maglevPicker) Pick(r Request, tried Tried) *Backend {
	if len(p.table) == 0 {
		return nil
	}
	var k []byte
	if r != nil {
		k = r.Key(p.key)
	}
	if len(k) == 0 {
		return p.fallback.Pick(r, tried)
	}
	slot, _ := bits.Mul64(hashBytes(k, 0), uint64(len(p.table)))
	b := p.backends[p.table[slot]]
	if eligible(b, &tried) {
		return b
	}
	return p.next(int(slot), &tried)
}

// maglevWalk bounds how many entries per backend a key whose owner cannot
// take it walks before falling back to a scan.
const maglevWalk = 8

// next walks the table from slot: consecutive entries belong to backends in
// an order fixed by the key, so a key's second choice is as stable as its
// first.
func (p *maglevPicker) next(slot int, tried *Tried) *Backend {
	m := len(p.table)
	steps := min(maglevWalk*len(p.backends), m)
	for i := 1; i < steps; i++ {
		s := slot + i
		if s >= m {
			s -= m
		}
		if b := p.backends[p.table[s]]; eligible(b, tried) {
			return b
		}
	}
	return firstEligible(p.backends, int(p.table[slot]), tried)
}

// Seeds of the two hashes that give each backend its place in the table.
const (
	maglevOffsetSeed = 0x6d61676c65763a6f // "maglev:o"
	maglevSkipSeed   = 0x6d61676c65763a73 // "maglev:s"
)

// maglevTable builds the lookup table of size m (a prime) over up, following
// the Maglev paper (§3.4): each backend has a permutation of the entries,
// given by an offset and a skip hashed from its URL, and the backends take
// turns claiming their next free preferred entry until the table is full.
// With weights, a backend takes a turn in proportion to its weight (as
// Envoy does). Backends are sorted by URL first, so the table does not
// depend on the order they were listed in.
func maglevTable(up []*Backend, m uint64) ([]*Backend, []int32) {
	bs := slices.Clone(up)
	slices.SortFunc(bs, func(a, b *Backend) int { return strings.Compare(a.url, b.url) })
	n := len(bs)
	pos := make([]uint64, n)
	skip := make([]uint64, n)
	weight := make([]uint64, n)
	var maxWeight uint64
	for i, b := range bs {
		u := []byte(b.url)
		pos[i] = hashBytes(u, maglevOffsetSeed) % m
		skip[i] = hashBytes(u, maglevSkipSeed)%(m-1) + 1
		weight[i] = uint64(b.Weight())
		maxWeight = max(maxWeight, weight[i])
	}
	weighted := !sameWeights(bs)
	due := make([]uint64, n) // weighted: the turn count a backend waits for

	table := make([]int32, m)
	for i := range table {
		table[i] = -1
	}
	for filled, turn := uint64(0), uint64(1); filled < m; turn++ {
		for i := 0; i < n && filled < m; i++ {
			if weighted {
				// A backend of the largest weight claims an entry every
				// turn; one of a third of it, every third turn.
				if turn*weight[i] < due[i] {
					continue
				}
				due[i] += maxWeight
			}
			c := pos[i]
			for table[c] >= 0 {
				if c += skip[i]; c >= m {
					c -= m
				}
			}
			table[c] = int32(i)
			filled++
			if c += skip[i]; c >= m {
				c -= m
			}
			pos[i] = c
		}
	}
	return bs, table
}

// hashBytes is a fast, fixed 64-bit hash of b: the same on every machine and
// in every process, so that two balancers map a key to the same backend. It
// reads eight bytes at a time and mixes each word in.
func hashBytes(b []byte, seed uint64) uint64 {
	h := mix64(seed ^ 0x243f6a8885a308d3 ^ uint64(len(b))*0x9e3779b97f4a7c15)
	for len(b) >= 8 {
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		h = mix64(h ^ w)
		b = b[8:]
	}
	var w uint64
	for i, c := range b {
		w |= uint64(c) << (8 * i)
	}
	return mix64(h ^ w ^ uint64(len(b))<<59)
}
