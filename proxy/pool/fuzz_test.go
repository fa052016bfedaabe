package pool

import "testing"

// FuzzNewBackend parses arbitrary backend addresses: never a panic, and a
// backend that parses has a canonical URL that parses to itself, and a
// dial address that parses to the same backend.
func FuzzNewBackend(f *testing.F) {
	for _, seed := range []string{
		"http://localhost:8081", "HTTP://10.0.0.1", "http://[::1]:9000", "htp://x", "http://h:1/api",
		"http://u:p@h:1", "http://h:70000", "http://%zz", "http://[::1", " http://b:1 ",
		"http://localhost.:8081", "http://127.1:1", "http://0x7F.1", "http://2130706433:1", "http://127.0.0.1.:1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := NewBackend(s)
		if err != nil {
			return
		}
		again, err := NewBackend(b.URL())
		if err != nil || again.URL() != b.URL() {
			t.Fatalf("%q parsed to %q, which parses to %v, %v", s, b.URL(), again, err)
		}
		dialled, err := NewBackend(b.Scheme() + "://" + b.Addr())
		if err != nil || dialled.URL() != b.URL() || dialled.Addr() != b.Addr() {
			t.Fatalf("%q is dialled at %q, which parses to %v, %v", s, b.Addr(), dialled, err)
		}
	})
}
