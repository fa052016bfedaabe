package pool

import "testing"

// TestP2CSpreadsEvenly: under equal load (every attempt ends before the
// next), four backends each get a quarter of 20,000 picks within ±10%.
func TestP2CSpreadsEvenly(t *testing.T) {
	up := weighted(t, 1, 1, 1, 1)
	got := spread(NewP2C(NewSeededSource(42)).Picker(up), nil, 20000)
	checkShares(t, up, got, 20000, 0.25*0.10)
}

// TestP2CPrefersLessLoaded: of the two candidates the less loaded wins, so a
// backend that holds many requests is chosen only when it is drawn twice,
// which p2c never does.
func TestP2CPrefersLessLoaded(t *testing.T) {
	up := weighted(t, 1, 1)
	for range 5 {
		up[0].Begin()
	}
	pk := NewP2C(NewSeededSource(7)).Picker(up)
	for i := range 100 {
		if b := pk.Pick(nil, Tried{}); b != up[1] {
			t.Fatalf("pick %d: %s, want the idle backend", i, b)
		}
	}

	// With four backends, the busiest is never chosen, and the idle one is
	// chosen whenever it is drawn: 3 of 6 pairs, half the picks.
	up = weighted(t, 1, 1, 1, 1)
	for i, n := range []int{9, 1, 1, 0} {
		for range n {
			up[i].Begin()
		}
	}
	got := spread(NewP2C(NewSeededSource(3)).Picker(up), nil, 6000)
	if got[up[0]] != 0 {
		t.Errorf("the busiest backend got %d picks", got[up[0]])
	}
	if n := got[up[3]]; n < 2700 || n > 3300 {
		t.Errorf("the idle backend got %d of 6000 picks, want about 3000", n)
	}
}

// TestP2CWeighted: candidates are drawn by weight.
func TestP2CWeighted(t *testing.T) {
	up := weighted(t, 3, 1, 1, 3)
	got := spread(NewP2C(NewSeededSource(9)).Picker(up), nil, 40000)
	// Ties go to the first drawn, so idle picks follow the weights.
	checkShares(t, up, got, 40000, 0.02)
}

// TestSeededSourceIsExact: the same seed gives the same picks.
func TestSeededSourceIsExact(t *testing.T) {
	up := weighted(t, 1, 2, 3, 4, 5)
	run := func() string {
		pk := NewP2C(NewSeededSource(2024)).Picker(up)
		var picks []*Backend
		for range 64 {
			picks = append(picks, pk.Pick(nil, Tried{}))
		}
		return names(up, picks)
	}
	if a, b := run(), run(); a != b {
		t.Errorf("two runs with one seed differ:\n%s\n%s", a, b)
	}
}
