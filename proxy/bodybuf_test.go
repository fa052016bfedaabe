package proxy

import "testing"

func TestBodyClass(t *testing.T) {
	for _, tc := range []struct {
		n, class, size int
	}{
		{0, 0, 512},
		{1, 0, 512},
		{512, 0, 512},
		{513, 1, 1024},
		{4096, 3, 4096},
		{65536, 7, 65536},
		{65537, 8, 131072},
		{1 << 20, 11, 1 << 20},
	} {
		if got := bodyClass(tc.n); got != tc.class {
			t.Errorf("bodyClass(%d) = %d, want %d", tc.n, got, tc.class)
		}
		b := getBodyBuf(tc.n)
		if len(b.B) != tc.n || cap(b.B) != tc.size {
			t.Errorf("getBodyBuf(%d): len %d cap %d, want len %d cap %d", tc.n, len(b.B), cap(b.B), tc.n, tc.size)
		}
		putBodyBuf(b)
	}
	big := getBodyBuf(1<<20 + 1)
	if len(big.B) != 1<<20+1 {
		t.Errorf("getBodyBuf(1 MiB + 1): len %d", len(big.B))
	}
	putBodyBuf(big) // dropped: no class holds it
	if b := getBodyBuf(1 << 20); cap(b.B) != 1<<20 {
		t.Errorf("a buffer over the largest class came back as one of it: cap %d", cap(b.B))
	}
}

// TestBodyBufRareSizes: a size seen once in twenty finds its buffer again,
// after many thousands of others (bytebufferpool dropped such buffers once
// it calibrated its pool to the common size).
func TestBodyBufRareSizes(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates, and sync.Pool drops some puts under it")
	}
	for range 50_000 {
		putBodyBuf(getBodyBuf(20))
	}
	i := 0
	next := func() {
		i++
		n := 20
		if i%20 == 0 {
			n = 64 << 10
		}
		b := getBodyBuf(n)
		b.B[len(b.B)-1] = 1
		putBodyBuf(b)
	}
	if n := allocsPerRun(t, 10_000, next); n > strayAllocs {
		t.Errorf("%.2f allocations per body with one in twenty of 64 KiB, want 0", n)
	}
}
