package pool

import (
	"math"
	"testing"
)

func TestRandomWeighted(t *testing.T) {
	for _, weights := range [][]int{{1, 1}, {3, 1}, {1, 2, 3, 4}, {1000, 1, 1, 1}, {7, 7, 7, 1, 1}} {
		up := weighted(t, weights...)
		got := spread(NewRandom(NewSeededSource(5)).Picker(up), nil, 40000)
		checkShares(t, up, got, 40000, 0.02)
	}
}

// TestDrawerIsExact: the alias table gives each backend exactly its share
// of the 64-bit range, checked by sweeping it evenly.
func TestDrawerIsExact(t *testing.T) {
	up := weighted(t, 5, 1, 3, 7, 1000, 2)
	d := newDrawer(up)
	const steps = 1 << 20
	got := make([]int, len(up))
	for i := uint64(0); i < steps; i++ {
		got[d.index(i*(math.MaxUint64/steps))]++
	}
	sum := 0
	for _, b := range up {
		sum += b.Weight()
	}
	for i, b := range up {
		want := float64(steps) * float64(b.Weight()) / float64(sum)
		if d := float64(got[i]) - want; math.Abs(d) > 2+want*1e-4 {
			t.Errorf("backend %d (weight %d): %d of %d, want %.1f", i, b.Weight(), got[i], steps, want)
		}
	}
}
