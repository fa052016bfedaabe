package proxy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiterBucket(t *testing.T) {
	rl := newRateLimiter(10, 3) // 10/s, burst 3
	a := netip.MustParseAddr("192.0.2.1")
	now := time.Now().UnixNano()
	for i := range 3 {
		if !rl.allow(a, now) {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	if rl.allow(a, now) {
		t.Fatal("fourth request at once allowed with a burst of 3")
	}
	if !rl.allow(netip.MustParseAddr("192.0.2.2"), now) {
		t.Error("another client shares the first one's bucket")
	}
	if rl.allow(a, now+int64(50*time.Millisecond)) {
		t.Error("allowed after 50ms at 10/s (half a token)")
	}
	if !rl.allow(a, now+int64(110*time.Millisecond)) {
		t.Error("refused after 110ms at 10/s (a token has refilled)")
	}
	// A long quiet spell refills to the burst, not beyond.
	later := now + int64(time.Hour)
	n := 0
	for rl.allow(a, later) {
		n++
	}
	if n != 3 {
		t.Errorf("%d requests allowed after an hour, want the burst of 3", n)
	}
}

func TestRateLimiterBoundedMemory(t *testing.T) {
	rl := newRateLimiter(1, 1)
	now := time.Now().UnixNano()
	for i := range rateShards * maxBucketsInShard * 2 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		rl.allow(a, now)
	}
	total := 0
	for i := range rl.shards {
		n := len(rl.shards[i].buckets)
		if n > maxBucketsInShard {
			t.Fatalf("shard %d holds %d buckets, over %d", i, n, maxBucketsInShard)
		}
		total += n
	}
	if total == 0 {
		t.Error("no buckets at all")
	}
	t.Log(fmt.Sprintf("%d buckets kept for %d clients", total, rateShards*maxBucketsInShard*2))
}

func BenchmarkRateLimiter(b *testing.B) {
	rl := newRateLimiter(1e9, 1e9)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		now := time.Now().UnixNano()
		for pb.Next() {
			i++
			rl.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
		}
	})
}
