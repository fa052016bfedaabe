package proxy

import (
	"net"
	"strconv"
	"testing"
)

// TestClientSet follows the sweep's set of client records (a connSet)
// through adds and removes in several orders: each record is in the
// snapshot exactly while it is in the set, removing twice does nothing, and
// records added by connection are found by it until removed.
func TestClientSet(t *testing.T) {
	conns := make([]net.Conn, 5)
	recs := make([]*clientConn, 5)
	for i := range recs {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		conns[i] = a
		recs[i] = &clientConn{conn: a}
	}
	for _, tc := range []struct {
		name   string
		byConn bool
		remove []int // indexes into recs, in order; may repeat
	}{
		{"first to last", false, []int{0, 1, 2, 3, 4}},
		{"last to first", false, []int{4, 3, 2, 1, 0}},
		{"middle first, twice", false, []int{2, 2, 0, 4, 1, 3}},
		{"by connection", true, []int{1, 3, 3, 0, 4, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s clientSet
			in := map[*clientConn]bool{}
			for _, cc := range recs {
				if tc.byConn {
					s.addConn(cc)
				} else {
					s.add(cc)
				}
				in[cc] = true
			}
			check := func(step string) {
				t.Helper()
				snap := s.snapshot()
				seen := map[*clientConn]bool{}
				for _, cc := range snap {
					if !in[cc] || seen[cc] {
						t.Fatalf("%s: snapshot holds %p, removed or twice", step, cc)
					}
					seen[cc] = true
				}
				if len(seen) != len(in) {
					t.Fatalf("%s: snapshot holds %d records, want %d", step, len(seen), len(in))
				}
				for i, cc := range recs {
					if got := s.lookup(conns[i]); got != nil && (!tc.byConn || !in[cc]) {
						t.Fatalf("%s: lookup of connection %d found a record, want none", step, i)
					} else if got == nil && tc.byConn && in[cc] {
						t.Fatalf("%s: lookup of connection %d found nothing", step, i)
					}
				}
			}
			check("after adding")
			for _, i := range tc.remove {
				if tc.byConn {
					s.removeConn(conns[i])
				} else {
					s.remove(recs[i])
				}
				delete(in, recs[i])
				check("after removing " + strconv.Itoa(i))
			}
		})
	}
}
