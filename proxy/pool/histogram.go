package pool

import (
	"math"
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds of the latency histogram's buckets,
// from half a millisecond (a fast backend on the same host) to 30 seconds
// (the default backend timeout), about three per decade as Prometheus
// client libraries choose them. A last, unbounded bucket follows.
var LatencyBuckets = [HistogramBuckets - 1]time.Duration{
	500 * time.Microsecond,
	1 * time.Millisecond,
	2500 * time.Microsecond,
	5 * time.Millisecond,
	10 * time.Millisecond,
	25 * time.Millisecond,
	50 * time.Millisecond,
	100 * time.Millisecond,
	250 * time.Millisecond,
	500 * time.Millisecond,
	1 * time.Second,
	2500 * time.Millisecond,
	5 * time.Second,
	10 * time.Second,
	30 * time.Second,
}

// HistogramBuckets is the number of buckets, the unbounded one included. A
// power of two, so the bucket search is four steps of a fixed shape.
const HistogramBuckets = 16

// upperBounds are LatencyBuckets in nanoseconds with the unbounded bucket's
// bound last, laid out for bucketOf.
var upperBounds = func() (b [HistogramBuckets]int64) {
	for i, d := range LatencyBuckets {
		b[i] = int64(d)
	}
	b[HistogramBuckets-1] = math.MaxInt64
	return b
}()

// Histogram counts durations into the fixed LatencyBuckets. Observe is a
// bucket search and two atomic adds: no lock, no allocation. The zero value
// is ready to use.
type Histogram struct {
	counts [HistogramBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe counts d.
func (h *Histogram) Observe(d time.Duration) {
	h.counts[bucketOf(int64(d))].Add(1)
	h.sum.Add(int64(d))
}

// bucketOf returns the index of the first bucket whose upper bound is at
// least ns: a binary search unrolled into four steps over the 16 bounds.
// Each step is a compare and a conditional add, which the compiler turns
// into a conditional move, so the search costs the same for every duration
// and never mispredicts a branch.
func bucketOf(ns int64) int {
	i := 0
	if ns > upperBounds[i+7] {
		i += 8
	}
	if ns > upperBounds[i+3] {
		i += 4
	}
	if ns > upperBounds[i+1] {
		i += 2
	}
	if ns > upperBounds[i] {
		i++
	}
	return i
}

// HistogramSnapshot is a histogram's counts at one moment.
type HistogramSnapshot struct {
	// Counts holds each bucket's own count (not cumulative), the bucket of
	// LatencyBuckets[i] at i and the unbounded bucket last.
	Counts [HistogramBuckets]uint64
	// Sum is the total of the durations observed.
	Sum time.Duration
}

// Snapshot returns the histogram's counts.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	for i := range s.Counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Count returns the number of durations observed.
func (s HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Sub returns the counts observed since an earlier snapshot old.
func (s HistogramSnapshot) Sub(old HistogramSnapshot) HistogramSnapshot {
	for i := range s.Counts {
		s.Counts[i] -= old.Counts[i]
	}
	s.Sum -= old.Sum
	return s
}

// Quantile estimates the q-quantile (0 < q < 1) of the durations observed,
// interpolating linearly within the bucket it falls in, as Prometheus's
// histogram_quantile does. In the unbounded bucket it returns the highest
// bound. With nothing observed it returns 0 and false.
func (s HistogramSnapshot) Quantile(q float64) (time.Duration, bool) {
	total := s.Count()
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range s.Counts {
		if c == 0 || seen+float64(c) < rank {
			seen += float64(c)
			continue
		}
		if i == HistogramBuckets-1 {
			return LatencyBuckets[len(LatencyBuckets)-1], true
		}
		lower := time.Duration(0)
		if i > 0 {
			lower = LatencyBuckets[i-1]
		}
		upper := LatencyBuckets[i]
		frac := (rank - seen) / float64(c)
		return lower + time.Duration(frac*float64(upper-lower)), true
	}
	return LatencyBuckets[len(LatencyBuckets)-1], true
}
