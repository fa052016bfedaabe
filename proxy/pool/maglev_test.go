package pool

import (
	"fmt"
	"slices"
	"testing"
)

// owners maps keys to the URL of the backend a picker chooses for each.
func owners(pk Picker, keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = pk.Pick(keyRequest(k), Tried{}).URL()
	}
	return out
}

func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/user/%d?session=%x", i, i*7919)
	}
	return keys
}

func TestMaglevSameKeySameBackend(t *testing.T) {
	up := weighted(t, 1, 1, 1, 1, 1)
	pk := NewMaglev(Key{Kind: KeyURI}).Picker(up)
	keys := testKeys(1000)
	first := owners(pk, keys)
	used := map[string]int{}
	for _, o := range first {
		used[o]++
	}
	if len(used) != len(up) {
		t.Errorf("1000 keys went to %d of %d backends", len(used), len(up))
	}
	for range 5 {
		if again := owners(pk, keys); !slices.Equal(again, first) {
			t.Fatal("a key moved while every backend stayed healthy")
		}
	}
}

// TestMaglevTableIsDeterministic: two builds from the same backends, listed
// in any order, give the same table entry for entry.
func TestMaglevTableIsDeterministic(t *testing.T) {
	a := weighted(t, 1, 2, 1, 3, 1)
	b := weighted(t, 1, 2, 1, 3, 1) // distinct Backend values, same URLs
	slices.Reverse(b)
	ba, ta := maglevTable(a, MaglevTableSize)
	bb, tb := maglevTable(b, MaglevTableSize)
	if len(ta) != MaglevTableSize {
		t.Fatalf("table of %d entries", len(ta))
	}
	for i := range ta {
		if ba[ta[i]].URL() != bb[tb[i]].URL() {
			t.Fatalf("entry %d: %s in one build, %s in the other", i, ba[ta[i]], bb[tb[i]])
		}
	}
}

// TestMaglevBalance: each backend owns its weight's share of the table, to
// within an entry or two (a weighted turn can land a claim on either side
// of the table filling up).
func TestMaglevBalance(t *testing.T) {
	for _, weights := range [][]int{{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}, {3, 1}, {1, 2, 3, 4}} {
		up := weighted(t, weights...)
		bs, table := maglevTable(up, MaglevTableSize)
		count := map[*Backend]int{}
		for _, e := range table {
			count[bs[e]]++
		}
		sum := 0
		for _, w := range weights {
			sum += w
		}
		for _, b := range up {
			want := float64(MaglevTableSize) * float64(b.Weight()) / float64(sum)
			if d := float64(count[b]) - want; d > float64(len(up))+1 || -d > float64(len(up))+1 {
				t.Errorf("weights %v: %s owns %d entries, want %.0f", weights, b, count[b], want)
			}
		}
	}
}

// TestMaglevDisruption: when one of five backends goes, the keys it owned
// move (about a fifth) and hardly any others: Maglev refills the table, so a
// few entries change hands among the survivors (under 1% of keys), the price
// of its even balance.
func TestMaglevDisruption(t *testing.T) {
	up := weighted(t, 1, 1, 1, 1, 1)
	policy := NewMaglev(Key{Kind: KeyURI})
	keys := testKeys(20000)
	before := owners(policy.Picker(up), keys)
	for gone := range up {
		rest := slices.Delete(slices.Clone(up), gone, gone+1)
		after := owners(policy.Picker(rest), keys)
		moved, movedElsewhere := 0, 0
		for i := range keys {
			if after[i] != before[i] {
				moved++
				if before[i] != up[gone].URL() {
					movedElsewhere++
				}
			}
		}
		share := float64(moved) / float64(len(keys))
		t.Logf("removing %s moved %.1f%% of keys (%d of other backends)", up[gone], 100*share, movedElsewhere)
		if share > 0.25 {
			t.Errorf("removing %s moved %.1f%% of keys, want at most 25%%", up[gone], 100*share)
		}
		if share < 0.15 {
			t.Errorf("removing %s moved only %.1f%% of keys: its own keys must move", up[gone], 100*share)
		}
		if float64(movedElsewhere) > 0.01*float64(len(keys)) {
			t.Errorf("removing %s moved %d keys of other backends", up[gone], movedElsewhere)
		}
	}
}

// TestMaglevFallbacks: a request without the key is balanced round-robin,
// and a key whose backend was tried goes to a second choice that is the
// same every time.
func TestMaglevFallbacks(t *testing.T) {
	up := weighted(t, 1, 1, 1)
	pk := NewMaglev(Key{Kind: KeyHeader, Name: "X-User"}).Picker(up)
	var picks []*Backend
	for range 6 {
		picks = append(picks, pk.Pick(keyRequest(nil), Tried{}))
	}
	if got := names(up, picks); got != "abcabc" {
		t.Errorf("without the key: %s, want round-robin abcabc", got)
	}
	if b := pk.Pick(nil, Tried{}); b == nil {
		t.Error("nil request: no backend")
	}

	for _, k := range testKeys(50) {
		first := pk.Pick(keyRequest(k), Tried{})
		var tried Tried
		tried.Add(first)
		second := pk.Pick(keyRequest(k), tried)
		if second == nil || second == first {
			t.Fatalf("key %s: second choice %v", k, second)
		}
		for range 3 {
			if again := pk.Pick(keyRequest(k), tried); again != second {
				t.Fatalf("key %s: second choice %s, then %s", k, second, again)
			}
		}
	}
}

func TestHashBytesIsFixed(t *testing.T) {
	// These values are part of the contract: balancers of the same version
	// on any machine hash alike. A change here remaps every key.
	for _, tc := range []struct {
		in   string
		want uint64
	}{
		{"", 0xf5904f05c9828dd6},
		{"10.0.0.1", 0x52d37f56c1fef8a8},
		{"/some/longer/path?with=query", 0xbed4d88078b1a408},
	} {
		if got := hashBytes([]byte(tc.in), 0); got != tc.want {
			t.Errorf("hashBytes(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}
