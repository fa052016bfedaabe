package proxy

import (
	"net/netip"
	"sync"
)

// rateLimiter is a token bucket per client address: each client may make
// rate requests per second on average, and burst at once. Buckets are
// sharded by address so clients rarely share a lock, and each shard holds a
// bounded number of them: when full, buckets that have refilled (clients
// gone quiet) are dropped first, then any.
type rateLimiter struct {
	rate   float64 // tokens per nanosecond
	burst  float64
	shards [rateShards]rateShard
}

const (
	rateShards        = 64
	maxBucketsInShard = 4096 // 256k clients in all, about 10 MiB at most
)

type rateShard struct {
	mu      sync.Mutex
	buckets map[netip.Addr]bucket
	_       [40]byte // keep shards off each other's cache lines
}

type bucket struct {
	tokens float64
	last   int64 // unix nanoseconds of the last refill
}

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	rl := &rateLimiter{rate: perSecond / 1e9, burst: float64(burst)}
	for i := range rl.shards {
		rl.shards[i].buckets = make(map[netip.Addr]bucket)
	}
	return rl
}

// allow takes a token from a's bucket at time now (unix nanoseconds) and
// reports whether there was one.
func (rl *rateLimiter) allow(a netip.Addr, now int64) bool {
	s := &rl.shards[shardOf(a)]
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[a]
	if !ok {
		if len(s.buckets) >= maxBucketsInShard {
			rl.evict(s, now)
		}
		b = bucket{tokens: rl.burst, last: now}
	} else if now > b.last {
		b.tokens = min(rl.burst, b.tokens+float64(now-b.last)*rl.rate)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	s.buckets[a] = b
	return allowed
}

// evict makes room in a full shard: first every bucket that has refilled,
// then, if none had, a quarter of them.
func (rl *rateLimiter) evict(s *rateShard, now int64) {
	for a, b := range s.buckets {
		if b.tokens+float64(now-b.last)*rl.rate >= rl.burst {
			delete(s.buckets, a)
		}
	}
	for a := range s.buckets {
		if len(s.buckets) < maxBucketsInShard*3/4 {
			break
		}
		delete(s.buckets, a)
	}
}

func shardOf(a netip.Addr) int {
	b := a.As16()
	h := uint32(2166136261)
	for _, c := range b[10:] { // IPv4 lives in the last four; mix a little more
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % rateShards)
}
