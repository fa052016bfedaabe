package pool

import (
	"strings"
	"testing"
)

// names turns picks into the letters of their backends' positions in up.
func names(up []*Backend, picks []*Backend) string {
	var sb strings.Builder
	for _, p := range picks {
		for i, b := range up {
			if b == p {
				sb.WriteByte(byte('a' + i))
			}
		}
	}
	return sb.String()
}

func TestSmoothWeightedRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    string // one period, or more
	}{
		{[]int{1, 1, 1}, "abcabc"},
		{[]int{3, 1}, "aabaaaba"},         // a,a,b,a: never three a in a row
		{[]int{6, 2}, "aaba"},             // reduced by the gcd to 3:1
		{[]int{5, 1, 1}, "aabacaaaabaca"}, // nginx's documented example
		{[]int{1, 2}, "babbab"},
		{[]int{2, 3, 5}, "cbacbccabc"},
	} {
		up := weighted(t, tc.weights...)
		pk := NewRoundRobin().Picker(up)
		var picks []*Backend
		for range len(tc.want) {
			picks = append(picks, pk.Pick(nil, Tried{}))
		}
		if got := names(up, picks); got != tc.want {
			t.Errorf("weights %v: order %s, want %s", tc.weights, got, tc.want)
		}
	}
}

// TestWeightedRoundRobinShares: 3:1 over 4,000 picks lands within ±2%, and
// no stretch of the order runs more than three picks of a.
func TestWeightedRoundRobinShares(t *testing.T) {
	up := weighted(t, 3, 1)
	pk := NewRoundRobin().Picker(up)
	var picks []*Backend
	got := map[*Backend]int{}
	for range 4000 {
		b := pk.Pick(nil, Tried{})
		got[b]++
		picks = append(picks, b)
	}
	checkShares(t, up, got, 4000, 0.02)
	if order := names(up, picks); strings.Contains(order, "aaaa") || strings.Contains(order, "bb") {
		t.Errorf("3:1 not interleaved: %s...", order[:40])
	}

	up = weighted(t, 7, 2, 1, 10)
	got = spread(NewRoundRobin().Picker(up), nil, 4000)
	checkShares(t, up, got, 4000, 0.02)
}

// TestRoundRobinSkipsByTurn: when the backend whose turn it is was tried,
// the pick goes to the next in the weighted order, not always to the first.
func TestRoundRobinSkipsByTurn(t *testing.T) {
	up := weighted(t, 1, 1, 1)
	pk := NewRoundRobin().Picker(up)
	var tried Tried
	tried.Add(up[1])
	var picks []*Backend
	for range 6 {
		picks = append(picks, pk.Pick(nil, tried))
	}
	if got := names(up, picks); got != "accacc" {
		t.Errorf("with b tried: %s, want accacc (b's turns go to c)", got)
	}
}

// TestRoundRobinCarriesOnAcrossSnapshots: a health change does not restart
// the rotation at the first backend.
func TestRoundRobinCarriesOnAcrossSnapshots(t *testing.T) {
	p, bs := newPool(t, 3)
	if b := p.Next(nil, Tried{}); b != bs[0] {
		t.Fatalf("first pick %s", b)
	}
	p.MarkDown(bs[2], "x")
	p.MarkUp(bs[2])
	if b := p.Next(nil, Tried{}); b != bs[1] {
		t.Errorf("after a rebuild picked %s, want %s", b, bs[1])
	}
}
