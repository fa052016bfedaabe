package pool

import (
	"testing"
	"time"
)

// The cost of what the request path records per attempt, piece by piece.
// BenchmarkRequestMetrics in package proxy measures the whole sequence.

func BenchmarkMonotonic(b *testing.B) {
	var d time.Duration
	for b.Loop() {
		d += Monotonic()
	}
	_ = d
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	d := []time.Duration{300 * time.Microsecond, 4 * time.Millisecond, 70 * time.Millisecond, 2 * time.Second}
	b.Run("serial", func(b *testing.B) {
		i := 0
		for b.Loop() {
			h.Observe(d[i&3])
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				h.Observe(d[i&3])
				i++
			}
		})
	})
}

func BenchmarkBucketOf(b *testing.B) {
	ns := []int64{3e5, 4e6, 7e7, 2e9, 9e5, 1.2e7, 6e8, 4e10}
	s := 0
	i := 0
	for b.Loop() {
		s += bucketOf(ns[i&7])
		i++
	}
	_ = s
}
