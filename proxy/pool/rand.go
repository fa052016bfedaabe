package pool

import (
	"math/rand/v2"
	"sync/atomic"
)

// Source supplies the random numbers the p2c and random policies draw, one
// Uint64 per draw. Implementations must be safe for concurrent use and cheap:
// they run on every pick. Inject a seeded one (NewSeededSource) to make a
// test's picks exact.
type Source interface {
	Uint64() uint64
}

// runtimeSource draws from math/rand/v2's top-level generator, which is
// per-thread runtime state: no lock and no shared cache line between cores.
type runtimeSource struct{}

func (runtimeSource) Uint64() uint64 { return rand.Uint64() }

// NewSeededSource returns a deterministic Source: SplitMix64 over an atomic
// counter. Concurrent callers each get distinct values, and one goroutine
// gets the same sequence for the same seed on every run.
func NewSeededSource(seed uint64) Source {
	s := &splitMix{}
	s.state.Store(seed)
	return s
}

type splitMix struct {
	state atomic.Uint64
}

func (s *splitMix) Uint64() uint64 {
	return mix64(s.state.Add(0x9e3779b97f4a7c15))
}

// mix64 is MurmurHash3's 64-bit finaliser: a bijection in which every input
// bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
