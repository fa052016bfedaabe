package pool

import (
	"fmt"
	"testing"
)

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 256} {
		b.Run(fmt.Sprintf("round-robin/%d", n), func(b *testing.B) {
			p, _ := newPool(b, n)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if p.Next(nil, Tried{}) == nil {
						b.Fatal("no backend")
					}
				}
			})
		})
	}
}
