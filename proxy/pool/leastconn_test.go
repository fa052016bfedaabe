package pool

import "testing"

func TestLeastConnPicksFewestInFlight(t *testing.T) {
	up := weighted(t, 1, 1, 1)
	pk := NewLeastConn().Picker(up)
	for range 3 {
		up[0].Begin()
	}
	up[1].Begin()
	for i := range 10 {
		if b := pk.Pick(nil, Tried{}); b != up[2] {
			t.Fatalf("pick %d: %s, want the idle backend", i, b)
		}
	}
	up[2].Begin()
	up[2].Begin()
	if b := pk.Pick(nil, Tried{}); b != up[1] {
		t.Errorf("picked %s, want the one with 1 in flight", b)
	}
	var tried Tried
	tried.Add(up[1])
	if b := pk.Pick(nil, tried); b != up[2] {
		t.Errorf("with the least loaded tried picked %s, want the next least", b)
	}
}

// TestLeastConnTiesRotate: idle backends share sequential requests in turn,
// by weight.
func TestLeastConnTiesRotate(t *testing.T) {
	up := weighted(t, 1, 1, 1)
	pk := NewLeastConn().Picker(up)
	var picks []*Backend
	for range 6 {
		picks = append(picks, pk.Pick(nil, Tried{}))
	}
	if got := names(up, picks); got != "abcabc" {
		t.Errorf("ties broke as %s, want abcabc", got)
	}

	up = weighted(t, 3, 1)
	got := spread(NewLeastConn().Picker(up), nil, 4000)
	checkShares(t, up, got, 4000, 0.02)
}

// TestLeastConnWeighted: load is in-flight per unit of weight.
func TestLeastConnWeighted(t *testing.T) {
	up := weighted(t, 4, 1)
	pk := NewLeastConn().Picker(up)
	for range 3 {
		up[0].Begin() // 3/4 < 1/1 once b has one
	}
	up[1].Begin()
	if b := pk.Pick(nil, Tried{}); b != up[0] {
		t.Errorf("picked %s, want a: 3 in flight over weight 4 is less than 1 over 1", b)
	}
	up[0].Begin()
	up[0].Begin() // 5/4 > 1/1
	if b := pk.Pick(nil, Tried{}); b != up[1] {
		t.Errorf("picked %s, want b: 5 over weight 4 is more than 1 over 1", b)
	}
}
