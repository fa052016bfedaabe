package pool

import (
	"fmt"
	"testing"
)

// benchRequest hands out one of a fixed set of keys, the next on each call,
// as a stream of different clients would. Each goroutine has its own.
type benchRequest struct {
	keys [][]byte
	i    int
}

func (r *benchRequest) Key(Key) []byte {
	r.i++
	return r.keys[r.i&(len(r.keys)-1)]
}

// BenchmarkPick measures one pick per policy over 2, 16 and 256 usable
// backends with mixed weights (1, 2, 3) and 1 to 4 attempts in flight on
// each (so least-conn cannot stop at an idle one), from every core at once:
// the cost a request pays to choose its backend, contention on shared
// counters included. It must report 0 allocs/op. cpu-ns/op is the CPU time
// the process used per pick (all cores), which other load on the machine
// does not inflate the way it does the wall-clock ns/op.
func BenchmarkPick(b *testing.B) {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
	}
	for _, name := range PolicyNames {
		for _, n := range []int{2, 16, 256} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				opts := make([]string, n)
				for i := range opts {
					opts[i] = fmt.Sprintf("weight=%d", i%3+1)
				}
				pol, err := NewPolicy(name, Key{Kind: KeyClientIP})
				if err != nil {
					b.Fatal(err)
				}
				bs := backendsWith(b, opts...)
				for i, be := range bs {
					for range i%4 + 1 {
						be.Begin()
					}
				}
				p, err := New(bs, pol)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				cpu := cpuTime()
				b.RunParallel(func(pb *testing.PB) {
					r := &benchRequest{keys: keys}
					for pb.Next() {
						if p.Next(r, Tried{}) == nil {
							b.Fatal("no backend")
						}
					}
				})
				if cpu := cpuTime() - cpu; cpu > 0 {
					b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// BenchmarkAcquire is a pick plus the attempt's bookkeeping (TryBegin and
// Done), as the proxy does it per request, for the default policy.
func BenchmarkAcquire(b *testing.B) {
	for _, tc := range []struct{ name, opt string }{{"unlimited", ""}, {"max_conns", "max_conns=1000000"}} {
		opt := tc.opt
		b.Run("round-robin/16/"+tc.name, func(b *testing.B) {
			opts := make([]string, 16)
			for i := range opts {
				opts[i] = opt
			}
			p, err := New(backendsWith(b, opts...), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					be, _ := p.Acquire(nil, Tried{})
					be.Done(false)
				}
			})
			if cpu := cpuTime() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkRebuild measures what a health change costs: building a picker
// (weighted sequence, alias table, Maglev table) over n backends with
// weights 1 to 10. It runs off the request path, once per change.
func BenchmarkRebuild(b *testing.B) {
	for _, name := range PolicyNames {
		for _, n := range []int{2, 16, 256} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				opts := make([]string, n)
				for i := range opts {
					opts[i] = fmt.Sprintf("weight=%d", i%10+1)
				}
				up := backendsWith(b, opts...)
				pol, err := NewPolicy(name, Key{Kind: KeyClientIP})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					pol.Picker(up)
				}
			})
		}
	}
}
