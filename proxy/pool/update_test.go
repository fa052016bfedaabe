package pool

import (
	"errors"
	"slices"
	"testing"
)

func mustBackend(t *testing.T, entry string) *Backend {
	t.Helper()
	b, err := NewBackend(entry)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func urls(bs []*Backend) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.URL())
	}
	return out
}

// TestUpdateKeepsWhatStays: a member whose URL is in the new list stays the
// same Backend (counters, health, transport), takes the new options, and
// only newcomers join.
func TestUpdateKeepsWhatStays(t *testing.T) {
	a, b := mustBackend(t, "http://a:1"), mustBackend(t, "http://b:1")
	p, err := New([]*Backend{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.SetTransport("a's connections")
	a.Begin()
	a.Done(false)
	p.MarkDown(b, "check failed")

	a2 := mustBackend(t, "http://A:1/ weight=5 max_conns=7") // a, spelled otherwise, new options
	c := mustBackend(t, "http://c:1")
	added, removed, err := p.Update([]*Backend{c, a2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := urls(p.Backends()); !slices.Equal(got, []string{"http://c:1", "http://a:1"}) {
		t.Fatalf("members %v", got)
	}
	if p.Backends()[1] != a {
		t.Fatal("a was replaced; it must stay the same Backend")
	}
	if a.Transport() != "a's connections" || a.Requests() != 1 {
		t.Errorf("a lost its transport or counters: %v, %d requests", a.Transport(), a.Requests())
	}
	if a.Weight() != 5 || a.MaxConns() != 7 {
		t.Errorf("a has weight %d, max_conns %d; want the new options 5, 7", a.Weight(), a.MaxConns())
	}
	if !slices.Equal(added, []*Backend{c}) || !slices.Equal(removed, []*Backend{b}) {
		t.Errorf("added %v removed %v; want [c] [b]", urls(added), urls(removed))
	}
	if b.Pool() != nil || a.Pool() != p || c.Pool() != p {
		t.Error("membership not recorded on the backends")
	}
	// b left: state changes and affinity no longer touch the pool.
	if p.MarkUp(b) {
		t.Error("MarkUp of a backend that left reported a change")
	}
	if p.AcquireBackend(b, Tried{}) {
		t.Error("a backend that left was acquired")
	}
	seen := map[*Backend]bool{}
	for range 10 {
		got, _ := p.Acquire(nil, Tried{})
		seen[got] = true
		got.Done(false)
	}
	if len(seen) != 2 || seen[b] {
		t.Errorf("picks over %v, want a and c only", seen)
	}
	// A backend can join one pool only.
	q, _ := New(nil, nil)
	if _, _, err := q.Update([]*Backend{a}, nil); err == nil {
		t.Error("a member of another pool joined this one")
	}
	if _, _, err := p.Update([]*Backend{c, mustBackend(t, "http://c:1")}, nil); err == nil {
		t.Error("duplicate accepted")
	}
	if got := urls(p.Backends()); !slices.Equal(got, []string{"http://c:1", "http://a:1"}) {
		t.Errorf("a refused update changed the members: %v", got)
	}
}

// TestUpdateChangesPolicy: a new policy takes effect with the update.
func TestUpdateChangesPolicy(t *testing.T) {
	p, bs := newPool(t, 3)
	if _, _, err := p.Update(bs, NewMaglev(Key{Kind: KeyURI})); err != nil {
		t.Fatal(err)
	}
	r := keyRequest("/a")
	first := p.Next(r, Tried{})
	for range 20 {
		if p.Next(r, Tried{}) != first {
			t.Fatal("hash policy not in effect: one key went to two backends")
		}
	}
	if p.Policy().(*Maglev).Key().Kind != KeyURI {
		t.Error("Policy() does not return the new policy")
	}
}

// TestDrain: a draining backend takes no new attempt, its in-flight ones
// finish, it then reports drained, and Enable brings it back. Health
// changes while draining are kept.
func TestDrain(t *testing.T) {
	p, bs := newPool(t, 2)
	a, b := bs[0], bs[1]
	a.Begin() // an attempt in flight
	if !p.Drain(a) || p.Drain(a) {
		t.Fatal("Drain reports a change only the first time")
	}
	if !a.Draining() || a.Drained() {
		t.Errorf("draining %v drained %v; want draining, not drained with an attempt in flight", a.Draining(), a.Drained())
	}
	for range 10 {
		got, _ := p.Acquire(nil, Tried{})
		if got != b {
			t.Fatalf("picked %v while a drains", got)
		}
		got.Done(false)
	}
	if p.AcquireBackend(a, Tried{}) {
		t.Error("a draining backend was acquired by affinity")
	}
	if slices.Contains(p.Up(), a) || !slices.Contains(p.Backends(), a) {
		t.Error("a draining backend must leave the snapshot and stay a member")
	}
	a.Done(false)
	if !a.Drained() {
		t.Error("not drained once its last attempt ended")
	}
	if !a.Stats().Draining {
		t.Error("stats do not show draining")
	}
	// Health still moves while it drains.
	p.MarkDown(a, "check failed")
	if !p.Enable(a) || p.Enable(a) {
		t.Fatal("Enable reports a change only the first time")
	}
	if slices.Contains(p.Up(), a) {
		t.Error("an enabled backend that is down is in rotation")
	}
	p.MarkUp(a)
	if !slices.Contains(p.Up(), a) {
		t.Error("an enabled, healthy backend is out of rotation")
	}
}

// TestSetWeight rebuilds the tables: 3:1 after the change.
func TestSetWeight(t *testing.T) {
	p, bs := newPool(t, 2)
	if err := p.SetWeight(bs[0], 3); err != nil {
		t.Fatal(err)
	}
	n := map[*Backend]int{}
	for range 400 {
		n[p.Next(nil, Tried{})]++
	}
	if n[bs[0]] != 300 || n[bs[1]] != 100 {
		t.Errorf("picks %d:%d, want 300:100", n[bs[0]], n[bs[1]])
	}
	if err := p.SetWeight(bs[0], 0); err == nil {
		t.Error("weight 0 accepted")
	}
	other := mustBackend(t, "http://other:1")
	if err := p.SetWeight(other, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("weight of a stranger: %v, want ErrNotFound", err)
	}
	if err := bs[0].SetOptions(Options{Weight: 2}); err == nil {
		t.Error("SetOptions changed a member behind its pool's back")
	}
}

// TestUpdateReplacesWhatChangesKind: a URL that comes back speaking another
// protocol, or checked another way, is a new backend: the member leaves
// (with its connections, which cannot speak the new protocol) and the
// newcomer joins.
func TestUpdateReplacesWhatChangesKind(t *testing.T) {
	for _, tc := range []struct{ before, after string }{
		{"http://a:1", "http://a:1 proto=h2c"},
		{"https://a:1 proto=h2", "https://a:1"},
		{"http://a:1 proto=h2c", "http://a:1 proto=h2c health=grpc"},
		{"http://a:1 proto=h2c health=grpc", "http://a:1 proto=h2c health=grpc:svc"},
		// The same URL, dialled at another address: a name's trailing
		// dot, which the resolver reads.
		{"http://a.example:1", "http://a.example.:1"},
		{"http://a.example.:1", "http://a.example:1"},
	} {
		a := mustBackend(t, tc.before)
		p, err := New([]*Backend{a}, nil)
		if err != nil {
			t.Fatal(err)
		}
		a2 := mustBackend(t, tc.after)
		added, removed, err := p.Update([]*Backend{a2}, nil)
		if err != nil {
			t.Fatalf("%s -> %s: %v", tc.before, tc.after, err)
		}
		if !slices.Equal(added, []*Backend{a2}) || !slices.Equal(removed, []*Backend{a}) {
			t.Errorf("%s -> %s: added %v removed %v, want the newcomer in and the member out", tc.before, tc.after, added, removed)
		}
		if got := p.Backends(); len(got) != 1 || got[0] != a2 || a2.Pool() != p || a.Pool() != nil {
			t.Errorf("%s -> %s: members %v", tc.before, tc.after, urls(got))
		}
		if got := a2.Options().String(); got != mustBackend(t, tc.after).Options().String() {
			t.Errorf("%s -> %s: newcomer has options %q", tc.before, tc.after, got)
		}
	}
}
