package pool

import "testing"

// FuzzNewBackend parses arbitrary backend addresses: never a panic, and a
// backend that parses has a canonical URL that parses to itself.
func FuzzNewBackend(f *testing.F) {
	for _, seed := range []string{
		"http://localhost:8081", "HTTP://10.0.0.1", "http://[::1]:9000", "htp://x", "http://h:1/api",
		"http://u:p@h:1", "http://h:70000", "http://%zz", "http://[::1", " http://b:1 ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := NewBackend(s)
		if err != nil {
			return
		}
		again, err := NewBackend(b.URL())
		if err != nil || again.URL() != b.URL() || again.Addr() != b.Addr() {
			t.Fatalf("%q parsed to %q, which parses to %v, %v", s, b.URL(), again, err)
		}
	})
}
