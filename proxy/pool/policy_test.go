package pool

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// backendsWith returns backends whose entries carry opts[i] after the URL.
func backendsWith(t testing.TB, opts ...string) []*Backend {
	t.Helper()
	var bs []*Backend
	for i, o := range opts {
		b, err := NewBackend(fmt.Sprintf("http://10.1.%d.%d:8080 %s", i/250, i%250+1, o))
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

// weighted returns backends with the given weights.
func weighted(t testing.TB, weights ...int) []*Backend {
	t.Helper()
	opts := make([]string, len(weights))
	for i, w := range weights {
		opts[i] = fmt.Sprintf("weight=%d", w)
	}
	return backendsWith(t, opts...)
}

// keyRequest is a Request whose every key is the same bytes.
type keyRequest []byte

func (k keyRequest) Key(Key) []byte { return k }

// policies returns one of each policy, seeded where they draw.
func policies() map[string]Policy {
	return map[string]Policy{
		PolicyRoundRobin: NewRoundRobin(),
		PolicyLeastConn:  NewLeastConn(),
		PolicyP2C:        NewP2C(NewSeededSource(1)),
		PolicyRandom:     NewRandom(NewSeededSource(1)),
		PolicyHash:       NewMaglev(Key{Kind: KeyURI}),
	}
}

// TestPoliciesHonourTried: every policy, weighted or not, with or without
// a key, offers each usable backend at most once per request and then nil.
func TestPoliciesHonourTried(t *testing.T) {
	for name, pol := range policies() {
		for _, weights := range [][]int{{1}, {1, 1}, {3, 1}, {1, 1, 1, 1, 1}, {5, 1, 1, 1000, 2, 7}} {
			for _, r := range []Request{nil, keyRequest("/k"), keyRequest(nil)} {
				t.Run(fmt.Sprintf("%s/%v/%v", name, weights, r), func(t *testing.T) {
					up := weighted(t, weights...)
					pk := pol.Picker(up)
					for round := range 50 {
						var tried Tried
						for range up {
							b := pk.Pick(r, tried)
							if b == nil {
								t.Fatalf("round %d: nil with %d of %d tried", round, tried.Len(), len(up))
							}
							if tried.Has(b) {
								t.Fatalf("round %d: %s offered twice", round, b)
							}
							tried.Add(b)
						}
						if b := pk.Pick(r, tried); b != nil {
							t.Fatalf("round %d: %s offered with every backend tried", round, b)
						}
					}
				})
			}
		}
	}
}

// TestPoliciesSkipFullBackends: a backend at its max_conns is passed by
// every policy, and a picker over only full backends returns nil.
func TestPoliciesSkipFullBackends(t *testing.T) {
	for name, pol := range policies() {
		t.Run(name, func(t *testing.T) {
			up := backendsWith(t, "max_conns=1", "max_conns=2 weight=3", "", "max_conns=1")
			pk := pol.Picker(up)
			up[0].Begin()
			up[1].Begin()
			up[1].Begin()
			for i := range 200 {
				b := pk.Pick(keyRequest(fmt.Sprint(i)), Tried{})
				if b == up[0] || b == up[1] {
					t.Fatalf("pick %d: %s is full", i, b)
				}
				if b == nil {
					t.Fatalf("pick %d: nil with two backends free", i)
				}
			}
			up[2].Begin() // no limit: never full
			up[3].Begin()
			for range 50 {
				if b := pk.Pick(keyRequest("k"), Tried{}); b != up[2] {
					t.Fatalf("picked %v, want the one backend without a limit", b)
				}
			}
			var tried Tried
			tried.Add(up[2])
			if b := pk.Pick(keyRequest("k"), tried); b != nil {
				t.Fatalf("picked %s with the rest full", b)
			}
		})
	}
}

// TestPoliciesEmpty: a picker over no backends returns nil.
func TestPoliciesEmpty(t *testing.T) {
	for name, pol := range policies() {
		if b := pol.Picker(nil).Pick(keyRequest("k"), Tried{}); b != nil {
			t.Errorf("%s: picked %s from nothing", name, b)
		}
	}
}

// TestPoliciesConcurrent picks from every policy on many goroutines while
// backends go down and up, for the race detector.
func TestPoliciesConcurrent(t *testing.T) {
	for name, pol := range policies() {
		t.Run(name, func(t *testing.T) {
			bs := backendsWith(t, "weight=2", "max_conns=3", "", "backup", "weight=5 max_conns=4")
			p, err := New(bs, pol)
			if err != nil {
				t.Fatal(err)
			}
			stop := flap(p, bs)
			var readers sync.WaitGroup
			for g := range 6 {
				readers.Add(1)
				go func() {
					defer readers.Done()
					for i := range 2000 {
						var tried Tried
						r := keyRequest(fmt.Sprint(g * i % 97))
						for {
							b, _ := p.Acquire(r, tried)
							if b == nil {
								break
							}
							if tried.Has(b) {
								t.Errorf("%s acquired twice for one request", b)
								return
							}
							if max := b.MaxConns(); max != 0 && b.InFlight() > int64(max) {
								t.Errorf("%s: %d in flight, limit %d", b, b.InFlight(), max)
							}
							tried.Add(b)
							b.Done(false)
						}
					}
				}()
			}
			readers.Wait()
			stop()
			for _, b := range bs {
				if n := b.InFlight(); n != 0 {
					t.Errorf("%s: %d in flight after all attempts ended", b, n)
				}
			}
		})
	}
}

func TestNewPolicy(t *testing.T) {
	for _, name := range PolicyNames {
		if _, err := NewPolicy(name, Key{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	p, _ := NewPolicy(PolicyHash, Key{})
	if k := p.(*Maglev).Key(); k.Kind != KeyClientIP {
		t.Errorf("hash without a key hashes %v, want the client IP", k)
	}
	_, err := NewPolicy("fastest", Key{})
	if want := `unknown policy "fastest": want round-robin, least-conn, p2c, random or hash`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Key
		err  string
	}{
		{in: "ip", want: Key{Kind: KeyClientIP}},
		{in: "uri", want: Key{Kind: KeyURI}},
		{in: "header:X-User", want: Key{Kind: KeyHeader, Name: "X-User"}},
		{in: "cookie:session_id", want: Key{Kind: KeyCookie, Name: "session_id"}},
		{in: "body", err: `unknown key "body": want ip, uri, header:NAME or cookie:NAME`},
		{in: "IP", err: `unknown key "IP"`},
		{in: "header:", err: `header name "": empty name`},
		{in: "cookie:a b", err: `cookie name "a b": character ' ' is not allowed`},
		{in: "header:X:Y", err: `character ':' is not allowed`},
		{in: "query:x", err: `unknown key "query:x"`},
	} {
		k, err := ParseKey(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseKey(%q) error %v, want it to contain %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || k != tc.want {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", tc.in, k, err, tc.want)
		}
		if k.String() != tc.in {
			t.Errorf("%+v.String() = %q, want %q", k, k.String(), tc.in)
		}
	}
}

// spread counts the picks per backend over n picks, ending each attempt at
// once.
func spread(pk Picker, r Request, n int) map[*Backend]int {
	got := map[*Backend]int{}
	for range n {
		got[pk.Pick(r, Tried{})]++
	}
	return got
}

// checkShares fails when a backend's share of total strays from
// weight/Σweight by more than tol (a fraction of total).
func checkShares(t *testing.T, up []*Backend, got map[*Backend]int, total int, tol float64) {
	t.Helper()
	sum := 0
	for _, b := range up {
		sum += b.Weight()
	}
	for _, b := range up {
		want := float64(total) * float64(b.Weight()) / float64(sum)
		if d := float64(got[b]) - want; d > tol*float64(total) || -d > tol*float64(total) {
			t.Errorf("%s (weight %d): %d of %d picks, want %.0f ± %.0f", b, b.Weight(), got[b], total, want, tol*float64(total))
		}
	}
}
